"""Several bot processes on one database: each action is executed once, each message decided
once, and a process killed mid-run has its claimed actions taken over when its lease ends.

Real processes (python -c) on a real SQLite file; each records what its platform was asked
to do in a log file of its own, which the test reads afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import textwrap
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.models import Action, ActionKind, Platform
from bot.store import Store
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(120)
ACTIONS = 240

_CHILD = textwrap.dedent("""
    import asyncio, json, os, sys, time
    from datetime import timedelta
    from pathlib import Path
    from adapters.console import ConsolePort
    from bot.models import Message, Platform
    from bot.moderator import Moderator
    from bot.policy import load_policy
    from bot.scoring import Batcher
    from bot.store import Store
    from tests.conftest import KeywordScorer

    db, log, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    hang_at = int(sys.argv[4]) if mode == "outbox" and len(sys.argv) > 4 else 0

    class Port(ConsolePort):
        async def _do(self, action):
            self.done = getattr(self, "done", 0) + 1
            if hang_at and self.done == hang_at:
                Path(str(log) + ".hung").write_text("yes")
                await asyncio.sleep(3600)  # stuck before acting: killed here
            with open(log, "a") as out:  # one line a write: O_APPEND keeps lines whole
                out.write(f"{action.id}\\n")
            await asyncio.sleep(0.002)

    async def main():
        policy = load_policy(Path("tests/fixtures/policy.toml"))
        async with Store.open(db) as store, Batcher(KeywordScorer()) as batcher:
            moderator = Moderator(store=store, policy=policy, scorer=batcher)
            moderator.outbox_lease = timedelta(seconds=1)
            port = Port(Platform.CONSOLE)
            if mode == "decide":
                for line in json.loads(sys.argv[4]):
                    await moderator.handle(Message(Platform.CONSOLE, line["id"], "general",
                                                   line["author"], line["text"],
                                                   datetime.fromisoformat(line["at"])))
                return
            idle = 0
            while idle < 20:  # until nothing has been claimable for a while
                idle = 0 if await moderator.run_outbox(port, limit=5) else idle + 1
                await asyncio.sleep(0.05)

    from datetime import datetime
    asyncio.run(main())
""")


async def spawn(*args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def test_three_processes_execute_each_action_once_even_when_one_is_killed(
        tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    async with Store.open(db) as store:
        await store.enqueue([Action(kind=ActionKind.NOTIFY, platform=Platform.CONSOLE,
                                    user=f"u{i}", payload={"text": f"notice {i}"})
                             for i in range(ACTIONS)], case_id=None)
    logs = [tmp_path / f"p{i}.log" for i in range(4)]
    # The fourth process claims a batch and hangs on its third action: it is killed there.
    stuck = await spawn(str(db), str(logs[3]), "outbox", "3")
    hung = Path(str(logs[3]) + ".hung")
    for _ in range(200):
        if await asyncio.to_thread(hung.exists):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the process to kill never got stuck")
    stuck.send_signal(signal.SIGKILL)
    await stuck.wait()
    workers = [await spawn(str(db), str(log), "outbox") for log in logs[:3]]
    results = await asyncio.gather(*(w.communicate() for w in workers))
    assert all(w.returncode == 0 for w in workers), [err.decode()[-2000:] for _, err in results]

    executed = Counter(int(line) for log in logs if log.exists()
                       for line in log.read_text().split())
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM outbox ORDER BY id")]
        statuses = Counter(r[0] for r in conn.execute("SELECT status FROM outbox"))
        claimed = conn.execute("SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL")
        left = claimed.fetchone()[0]
    assert sorted(executed) == ids  # every action, including those the killed one held
    assert set(executed.values()) == {1}  # and none twice
    assert statuses == {"done": ACTIONS} and left == 0
    # The work was shared: each of the three did some of it.
    assert all(log.exists() and log.read_text().split() for log in logs[:3])


async def test_three_processes_fed_the_same_events_decide_each_message_once(
        tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    async with Store.open(db):
        pass
    at = datetime(2026, 11, 20, 20, 0, tzinfo=UTC).isoformat()
    events = [{"id": f"m{i}", "author": f"a{i % 7}", "at": at,
               "text": "immigrants are vermin" if i % 5 == 0 else f"motion {i} carried"}
              for i in range(60)]
    feed = json.dumps(events)
    deciders = [await spawn(str(db), str(tmp_path / f"d{i}.log"), "decide", feed)
                for i in range(3)]
    results = await asyncio.gather(*(d.communicate() for d in deciders))
    assert all(d.returncode == 0 for d in deciders), [e.decode()[-2000:] for _, e in results]
    with sqlite3.connect(db) as conn:
        messages = conn.execute("SELECT COUNT(*), COUNT(DISTINCT message_id) FROM messages")
        assert messages.fetchone() == (60, 60)
        assert conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0] == 60
        escalations = conn.execute("SELECT COUNT(*) FROM outbox WHERE kind='escalate'")
        assert escalations.fetchone()[0] == 12  # one per abusive message, not three
        cases = conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
        assert cases == 12
