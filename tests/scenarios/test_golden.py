"""Golden cases for the shipped policy: the demo week through the real offline scorer.

examples/labels.jsonl holds what a careful human moderator would do with every line of the demo
week (each edit too). The bot must agree on at least 92% of them (the target is 95%), never
hide or escalate a
legitimate post, and the cases the policy's rules decide (threats, doxxing, slurs, tropes,
evasive spellings) must all hold.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.console import read_messages
from bot.members import import_register
from bot.models import Message
from bot.moderator import Handled, Moderator
from bot.policy import Policy
from bot.register import read_register
from bot.scoring import Batcher
from bot.scoring.offline import OfflineScorer
from bot.store import Store

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = [json.loads(line) for line in
          (ROOT / "examples" / "labels.jsonl").read_text(encoding="utf-8").splitlines() if line]
# The target is 0.95 (issue 9); the model of 2026-12-01 (9617f8f8) with thresholds chosen on the
# validation split agrees on 265 of 286. This floor guards against regressions until then.
MIN_AGREEMENT = 0.92


@pytest.fixture(scope="module")
def offline() -> OfflineScorer:
    return OfflineScorer()


@pytest.fixture
async def decided(tmp_path: Path, policy: Policy,
                  offline: OfflineScorer) -> AsyncIterator[dict[tuple[str, int], Handled]]:
    lines = (ROOT / "examples" / "forum.jsonl").read_text(encoding="utf-8").splitlines()
    messages = [item for _, item, _ in read_messages(lines, source="forum.jsonl")]
    assert all(isinstance(m, Message) for m in messages)
    async with Store.open(tmp_path / "golden.sqlite3") as store, Batcher(offline) as batcher:
        # As in `make demo`: the register says who is suspended, who moderates, who is an MP.
        await import_register(store, read_register(ROOT / "examples" / "register.csv"),
                              actor="test")
        moderator = Moderator(store=store, policy=policy, scorer=batcher)
        results = await moderator.handle_many(messages)  # type: ignore[arg-type]
        yield {(h.message.id, h.message.revision): h for h in results if h is not None}


async def test_golden_cases(decided: dict[tuple[str, int], Handled]) -> None:
    assert len(decided) == 286  # every line decided once, edits as new revisions
    assert len(GOLDEN) == len(decided) and {(c["id"], c["revision"]) for c in GOLDEN} == set(
        decided)
    misses = []
    for case in GOLDEN:
        verdict = decided[(case["id"], case["revision"])].verdict
        if verdict.action != case["expected"]:
            misses.append(f"{case['id']}: expected {case['expected']}, got {verdict.action} "
                          f"({', '.join(verdict.categories)}; {', '.join(verdict.rule_ids)})")
    agreement = 1 - len(misses) / len(GOLDEN)
    assert agreement >= MIN_AGREEMENT, "\n".join(misses)


async def test_no_legitimate_post_is_hidden(decided: dict[tuple[str, int], Handled]) -> None:
    wrongly = [f"{c['id']}: {decided[(c['id'], c['revision'])].verdict.action} "
               f"({decided[(c['id'], c['revision'])].verdict.reasons})"
               for c in GOLDEN if c["expected"] == "allow"
               and decided[(c["id"], c["revision"])].verdict.action in ("hide", "escalate")]
    assert not wrongly, "\n".join(wrongly)


async def test_rule_decided_cases_always_hold(decided: dict[tuple[str, int], Handled]) -> None:
    checked = 0
    for case in GOLDEN:
        handled = decided[(case["id"], case["revision"])]
        acting = [h for h in handled.hits if h.kind not in ("protected", "quoted")]
        if case["expected"] == "escalate" and any(h.action == "escalate" for h in acting):
            checked += 1
            assert handled.verdict.action == "escalate", (case, handled.verdict.reasons)
        if case["expected"] == "allow":
            assert not acting, (case, acting)
    assert checked >= 10  # threats, doxxing, slurs and tropes the rules alone decide


async def test_edits_are_rescored(decided: dict[tuple[str, int], Handled]) -> None:
    edits = [key for key in decided if key[1] > 0]
    assert len(edits) == 5
    changed = sum(decided[(mid, 0)].verdict.action != decided[(mid, rev)].verdict.action
                  for mid, rev in edits)
    assert changed >= 3  # two edits make a message worse and two fix an abusive one
