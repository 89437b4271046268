"""`bot.py run` stopped after Slack was told events arrived: none is lost.

The real command line in a child process (a slow test scorer makes deciding lag behind the
acknowledgements), driven by signed Events API requests, against the fake Slack Web API."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapters.slack.adapter import sign
from tests.adapters.slack.fake_slack import BOT_USER, GENERAL, MEMBER, MODS, TEAM, FakeSlack
from tests.adapters.test_runner import free_port

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[3]
SECRET = "slack-test-signing-secret"
EVENTS = 20

#: `bot.py -vv run` with a keyword scorer that takes 0.2 s a batch (the shipped model takes seconds
#: to load; this test is about what the process does with what it acknowledged).
_CHILD = """
import sys, time
import adapters.runner
from tests.conftest import KeywordScorer

class Slow(KeywordScorer):
    def score_batch(self, texts):
        time.sleep(0.2)
        return super().score_batch(texts)

adapters.runner.build_scorer = lambda settings: Slow()
from bot.cli import main
sys.exit(main(["-vv", "run"]))
"""


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def start(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def post_event(http: aiohttp.ClientSession, port: int, n: int) -> int:
    body = json.dumps({
        "type": "event_callback", "team_id": TEAM, "api_app_id": "A0APP0001",
        "event_id": f"Ev{n:08d}", "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        "event": {"type": "message", "channel": GENERAL, "user": MEMBER,
                  "text": "you idiot" if n % 4 == 0 else f"motion {n} passed",
                  # Ten seconds apart: a member's burst would be a flood (policy [spam]).
                  "ts": f"{1780000000 + 10 * n}.000100", "channel_type": "channel",
                  "team": TEAM}})
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
               "X-Slack-Signature": sign(SECRET, stamp, body)}
    for _ in range(300):  # until the child listens
        try:
            async with http.post(f"http://127.0.0.1:{port}/slack/events", data=body.encode(),
                                 headers=headers) as response:
                return response.status
        except aiohttp.ClientConnectorError:
            await asyncio.sleep(0.05)
    raise AssertionError("the bot never listened")


def counts(db: Path) -> tuple[int, int, int]:
    """Messages decided, distinct ones, and messages still waiting in the inbox."""
    with sqlite3.connect(db) as conn:
        decided, distinct = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT message_id) FROM messages").fetchone()
        waiting = conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]
    return int(decided), int(distinct), int(waiting)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
async def test_acknowledged_events_are_all_decided_after_a_stop(
        slack: FakeSlack, tmp_path: Path, signum: signal.Signals) -> None:
    db, port = tmp_path / "run.sqlite3", free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DISCORD_", "SLACK_", "CONDUCTBOT_"))}
    env.update({"SLACK_BOT_TOKEN": "xoxb-test-bot", "SLACK_USER_TOKEN": "xoxp-test-admin",
                "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_BASE": slack.api_base,
                "SLACK_MOD_CHANNEL": MODS, "SLACK_PORT": str(port), "CONDUCTBOT_DB": str(db),
                "PYTHONPATH": str(ROOT)})
    child = await start(env)
    async with aiohttp.ClientSession() as http:
        statuses = [await post_event(http, port, n) for n in range(EVENTS)]
        assert statuses == [200] * EVENTS  # Slack was told each one arrived
        child.send_signal(signum)
        _, err = await asyncio.wait_for(child.communicate(), 60)
        if signum == signal.SIGTERM:
            # A clean stop: the server closed, what was accepted finished, exit 0.
            assert child.returncode == 0, err.decode()
            assert b"stopping: closing connections" in err
            # Even at -vv the log holds no token, no signing secret and no member's words.
            for private in (b"xoxb-test-bot", b"xoxp-test-admin", SECRET.encode(), b"idiot",
                            b"motion 1 passed"):
                assert private not in err, private
        decided, distinct, waiting = counts(db)
        assert decided == distinct and decided + waiting == EVENTS  # nothing lost or doubled
        if signum == signal.SIGKILL:
            assert waiting > 0  # the slow scorer was behind: the inbox holds the rest

        # The next start decides what the stop left, before anything new.
        again = await start(env)
        try:
            async with asyncio.timeout(60):
                while counts(db)[0] < EVENTS:  # noqa: ASYNC110 - another process writes it
                    await asyncio.sleep(0.1)
        finally:
            again.send_signal(signal.SIGTERM)
            await asyncio.wait_for(again.communicate(), 60)
    assert counts(db) == (EVENTS, EVENTS, 0)
    with sqlite3.connect(db) as conn:
        actions = dict(conn.execute("SELECT action, COUNT(*) FROM verdicts GROUP BY action"))
    assert actions == {"allow": EVENTS - EVENTS // 4, "warn": EVENTS // 4}
