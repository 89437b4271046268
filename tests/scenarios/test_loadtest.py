"""The load generator (`make loadtest`) and the benchmarks' message mix keep working.

The full run (20 msg/s for 5 minutes) is a measurement, not a test; here a few seconds of it
check that `bot.py run` starts against both fakes, decides every message and reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from benchmix import LONG_WORDS, realistic_mix  # noqa: E402


def test_the_mix_is_mostly_short_posts_with_a_few_long_ones() -> None:
    texts = realistic_mix()
    assert texts == realistic_mix()  # seeded: every run measures the same texts
    words = sorted(len(t.split()) for t in texts)
    assert len(texts) == 300
    assert all(5 <= n <= 40 for n in words[:275])
    assert all(n >= LONG_WORDS * 0.9 for n in words[275:])


@pytest.mark.model
def test_a_short_load_run_decides_every_message_and_reports() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "loadtest.py"), "--rate", "10",
                           "--seconds", "3"], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "decided and stored: 30 of 30 messages" in done.stdout
    for label in ("Slack ack", "event to action", "peak RSS"):
        assert label in done.stdout
