"""Several bot processes on one database: each action is executed once, each message decided
once, ladder steps fire once, and a process killed mid-run has its claimed actions taken over
when its lease ends.

Real processes (python -c) on each backend in turn: a SQLite file, then a database on the
test run's PostgreSQL server. Each records what its platform was asked to do in a log file of
its own, which the test reads afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.database import Target
from bot.models import Action, ActionKind, Message, Platform
from bot.policy import Policy
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

    db, log, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    hang_at = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    feed = json.loads(sys.argv[5]) if len(sys.argv) > 5 else []

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
            # As the bot does: each event decided, then the outbox run.
            for line in feed:
                await moderator.handle(Message(Platform.CONSOLE, line["id"], "general",
                                               line["author"], line["text"],
                                               datetime.fromisoformat(line["at"])))
                await moderator.run_outbox(port, limit=5)
            idle = 0
            while idle < 40:  # until nothing has been claimable for a while (2 s > the lease)
                idle = 0 if await moderator.run_outbox(port, limit=5) else idle + 1
                await asyncio.sleep(0.05)

    from datetime import datetime
    asyncio.run(main())
""")


async def spawn(db: Target, log: Path, *, hang_at: int = 0,
                feed: list[dict[str, str]] | None = None) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, str(db), str(log), "bot", str(hang_at),
        json.dumps(feed or []), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def query(db: Target, sql: str) -> list[tuple[object, ...]]:
    async with Store.open(db) as store:
        return [tuple(row) for row in await store._read(sql)]


async def kill_when_stuck(process: asyncio.subprocess.Process, log: Path) -> None:
    """Wait until the process hangs holding claimed actions, then SIGKILL it."""
    hung = Path(str(log) + ".hung")
    for _ in range(600):
        if await asyncio.to_thread(hung.exists):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the process to kill never got stuck")
    process.send_signal(signal.SIGKILL)
    await process.wait()


async def executed_once(db: Target, logs: list[Path]) -> Counter[int]:
    """Every outbox row was executed exactly once across the processes' logs, and none is
    left pending or claimed; what each row id was executed, from the logs."""
    executed = Counter(int(line) for log in logs if log.exists()
                       for line in log.read_text().split())
    ids = [r[0] for r in await query(db, "SELECT id FROM outbox ORDER BY id")]
    statuses = Counter(r[0] for r in await query(db, "SELECT status FROM outbox"))
    left = (await query(db, "SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL"))[0][0]
    assert sorted(executed) == ids  # every action, including those the killed one held
    assert set(executed.values()) == {1}  # and none twice
    assert statuses == {"done": len(ids)} and left == 0
    return executed


async def test_three_processes_execute_each_action_once_even_when_one_is_killed(
        database: Target, tmp_path: Path) -> None:
    async with Store.open(database) as store:
        await store.enqueue([Action(kind=ActionKind.NOTIFY, platform=Platform.CONSOLE,
                                    user=f"u{i}", payload={"text": f"notice {i}"})
                             for i in range(ACTIONS)], case_id=None)
    logs = [tmp_path / f"p{i}.log" for i in range(4)]
    # The fourth process claims a batch and hangs on its third action: it is killed there.
    stuck = await spawn(database, logs[3], hang_at=3)
    await kill_when_stuck(stuck, logs[3])
    workers = [await spawn(database, log) for log in logs[:3]]
    results = await asyncio.gather(*(w.communicate() for w in workers))
    assert all(w.returncode == 0 for w in workers), [err.decode()[-2000:] for _, err in results]
    executed = await executed_once(database, logs)
    assert len(executed) == ACTIONS
    # The work was shared: each of the three did some of it.
    assert all(log.exists() and log.read_text().split() for log in logs[:3])


async def test_three_processes_fed_the_same_stream_decide_once_and_act_once_one_killed(
        database: Target, tmp_path: Path) -> None:
    """The same 84 events reach three bots and a fourth that is killed mid-run, each deciding
    and then running its outbox as `bot.py run` does. Seven members write ten insults each
    (a warning and a point apiece) and two abusive posts (an escalation each, whose points
    wait for a moderator): every message is decided once and every action executed once."""
    async with Store.open(database):
        pass
    at = datetime(2026, 11, 20, 20, 0, tzinfo=UTC).isoformat()
    feed = [{"id": f"m{i}", "author": f"a{i % 7}", "at": at,
             "text": "immigrants are vermin" if i % 12 < 2 else f"you idiot, motion {i}"}
            for i in range(84)]
    logs = [tmp_path / f"p{i}.log" for i in range(4)]
    stuck = await spawn(database, logs[3], hang_at=4, feed=feed)
    bots = [await spawn(database, log, feed=feed) for log in logs[:3]]
    await kill_when_stuck(stuck, logs[3])
    results = await asyncio.gather(*(b.communicate() for b in bots))
    assert all(b.returncode == 0 for b in bots), [err.decode()[-2000:] for _, err in results]

    assert await query(database, "SELECT COUNT(*), COUNT(DISTINCT message_id) FROM messages") \
        == [(84, 84)]
    assert await query(database, "SELECT COUNT(*) FROM verdicts") == [(84,)]
    escalations = await query(database, "SELECT COUNT(*) FROM outbox WHERE kind='escalate'")
    assert escalations == [(14,)]  # one per abusive message, not three
    # Each member's ten warnings climb to 10 points (the escalations' wait for review): the
    # 3-point step (1h timeout), the 6-point step (1d timeout, to the queue) and the 10-point
    # step (to the queue) fire once each, whichever process decided which warning.
    steps = await query(database, "SELECT member_id, step, COUNT(*) FROM strikes WHERE "
                                  "step IS NOT NULL GROUP BY member_id, step")
    assert sorted((step, n) for _, step, n in steps) == \
        [(3.0, 1)] * 7 + [(6.0, 1)] * 7 + [(10.0, 1)] * 7
    timeouts = await query(database, "SELECT user_id, COUNT(*) FROM outbox WHERE "
                                     "kind='timeout' GROUP BY user_id ORDER BY user_id")
    assert timeouts == [(f"a{i}", 2) for i in range(7)]
    cases = await query(database, "SELECT kind, COUNT(*) FROM cases GROUP BY kind ORDER BY kind")
    assert cases == [("escalation", 14 + 14), ("warning", 70 - 14)]
    await executed_once(database, logs)


async def test_processes_starting_together_on_a_new_database_migrate_it_once(
        database: Target) -> None:
    """Each process migrates its store when it opens it; five opening an empty database at the
    same moment apply each migration once (under the writer lock) and none fails."""
    from bot.store.migrations import SCHEMA_VERSION

    async def start() -> int:
        async with Store.open(database) as store:
            return await store.schema_version()

    assert await asyncio.gather(*(start() for _ in range(5))) == [SCHEMA_VERSION] * 5
    assert await query(database, "SELECT COUNT(*) FROM members") == [(0,)]


async def test_a_message_kept_by_a_process_that_died_is_decided_by_the_one_still_running(
        database: Target, test_policy: Policy) -> None:
    """Two processes get the same event (a standby beside the active bot): the first keeps it
    in the inbox and dies before deciding it; the second, finding it kept, leaves it to the
    first. A minute on, the second's outbox sweep decides it and carries out its actions."""
    from adapters.console import ConsolePort
    from bot.moderator import INBOX_ORPHAN, Moderator
    from bot.scoring import Batcher
    from tests.conftest import KeywordScorer
    from tests.scenarios.test_members import START, Clock

    clock = Clock(START)
    message = Message(Platform.CONSOLE, "m1", "general", "a1", "you idiot", START)
    async with Store.open(database, clock=clock) as died, \
            Store.open(database, clock=clock) as alive, Batcher(KeywordScorer()) as batcher:
        first = Moderator(store=died, policy=test_policy, scorer=batcher)
        second = Moderator(store=alive, policy=test_policy, scorer=batcher)
        assert await first.accept(message) is not None  # kept, then the process died
        assert await second.accept(message) is None  # the same event: already kept
        assert await second.orphaned(Platform.CONSOLE) == []  # the first may be deciding it
        clock.now = START + INBOX_ORPHAN + timedelta(seconds=1)
        acted = asyncio.Event()

        class Port(ConsolePort):
            async def _do(self, action: Action) -> None:
                await super()._do(action)
                acted.set()

        port = Port(Platform.CONSOLE)
        sweep = asyncio.create_task(second.sweep_outbox(port, every=0.05,
                                                        orphans=second.decide_accepted))
        try:
            await asyncio.wait_for(acted.wait(), 10)
        finally:
            sweep.cancel()
    assert await query(database, "SELECT COUNT(*) FROM verdicts") == [(1,)]
    assert await query(database, "SELECT COUNT(*) FROM inbox") == [(0,)]
    assert [a.kind for a in port.performed] == [ActionKind.NOTIFY]
