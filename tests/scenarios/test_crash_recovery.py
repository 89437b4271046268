"""A replay killed midway (SIGKILL: no clean-up runs) and run again ends exactly where an
uninterrupted replay does: the same verdict per message, none twice, none missing, every
platform action once (issue 11, point 10)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.model

MESSAGES = 48
KILL_AFTER = 8  # verdicts on record when the first run is killed


def replay(jsonl: Path, db: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    env.pop("CONDUCTBOT_POLICY", None)
    return subprocess.Popen(
        [sys.executable, str(ROOT / "bot.py"), "replay", str(jsonl), "--db", str(db), "--json",
         "--no-progress"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[bytes]) -> None:
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]


def count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def decisions(db: Path) -> dict[str, object]:
    with sqlite3.connect(db) as conn:
        verdicts = conn.execute(
            "SELECT m.platform, m.message_id, m.revision, v.action, v.clause, v.categories, "
            "v.rule_ids FROM verdicts v JOIN messages m ON m.id = v.message_row").fetchall()
        outbox = conn.execute(
            "SELECT m.message_id, o.kind, o.platform, o.user_id, o.status FROM outbox o "
            "JOIN verdicts v ON v.id = o.verdict_id JOIN messages m ON m.id = v.message_row "
            "ORDER BY 1, 2, 3, 4").fetchall()
        cases = conn.execute("SELECT kind, state, clause FROM cases ORDER BY 1, 2, 3").fetchall()
        messages = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    return {"verdicts": sorted(verdicts), "outbox": outbox, "cases": cases,
            "messages": messages, "verdict_count": len(verdicts)}


def test_a_replay_killed_midway_and_rerun_decides_like_one_that_never_stopped(
        tmp_path: Path) -> None:
    lines = (ROOT / "examples" / "forum.jsonl").read_text(encoding="utf-8").splitlines()
    jsonl = tmp_path / "forum.jsonl"
    jsonl.write_text("\n".join(lines[:MESSAGES]) + "\n", encoding="utf-8")

    # The uninterrupted run goes alongside (each run spends most of its time loading the model).
    clean = tmp_path / "clean.sqlite3"
    uninterrupted = replay(jsonl, clean)

    crashed = tmp_path / "crashed.sqlite3"
    proc = replay(jsonl, crashed)
    deadline = time.monotonic() + 180
    while count(crashed, "SELECT COUNT(*) FROM verdicts") < KILL_AFTER:
        assert proc.poll() is None, "the replay ended before it could be killed"
        assert time.monotonic() < deadline, "no verdicts recorded in time"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    decided = count(crashed, "SELECT COUNT(*) FROM verdicts")
    assert KILL_AFTER <= decided < MESSAGES  # killed midway
    # Actions are performed at the end of a replay: the killed run left them waiting.
    assert count(crashed, "SELECT COUNT(*) FROM outbox WHERE status = 'done'") == 0

    finish(replay(jsonl, crashed))
    finish(uninterrupted)

    expected, got = decisions(clean), decisions(crashed)
    assert expected["verdict_count"] == expected["messages"] == MESSAGES
    assert got["verdict_count"] == got["messages"] == MESSAGES  # none twice, none missing
    assert got["verdicts"] == expected["verdicts"]
    assert got["cases"] == expected["cases"]
    assert got["outbox"] == expected["outbox"]  # each action once
    assert {row[-1] for row in got["outbox"]} == {"done"}
