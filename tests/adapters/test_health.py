"""`bot.py run`'s /healthz and /metrics, scraped over HTTP while it moderates the fakes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
from prometheus_client.parser import text_string_to_metric_families

import adapters.runner
from adapters.connection import Connection, ConnectionState, PlatformWatch
from adapters.slack.adapter import sign
from bot.commands import Commands
from bot.config import Settings
from bot.errors import PermissionDenied, Unavailable
from bot.models import Account, Action, ActionKind, MemberStatus, Platform, Role
from bot.moderator import Moderator
from bot.policy import load_policy
from bot.scoring import Batcher
from bot.store import Store
from tests.adapters.discord.fake_discord import (
    GENERAL_ID,
    GUILD_ID,
    MEMBER_ID,
    MOD_ID,
    MODS_ID,
    FakeDiscord,
    message,
    snowflake,
)
from tests.adapters.slack.fake_slack import (
    BOT_USER,
    GENERAL,
    MEMBER,
    MODERATOR,
    MODS,
    TEAM,
    FakeSlack,
)
from tests.conftest import ROOT, KeywordScorer

pytestmark = pytest.mark.timeout(60)
SECRET = "slack-test-signing-secret"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(predicate: Callable[[], Any], *, within: float = 15, what: str = "") -> None:
    """Poll `predicate` (sync or async) until it holds."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        await asyncio.sleep(0.05)


class Bot:
    """`bot.py run` in a task, its fakes, and HTTP access to its endpoints."""

    def __init__(self, tmp_path: Path, http: aiohttp.ClientSession) -> None:
        self.db = tmp_path / "run.sqlite3"
        self.http = http
        self.slack_port = free_port()
        self.health_port = free_port()
        self.slack = FakeSlack()
        self.discord = FakeDiscord()

    @property
    def health(self) -> str:
        return f"http://127.0.0.1:{self.health_port}"

    def env(self, **overrides: str) -> dict[str, str]:
        return {
            "DISCORD_TOKEN": "test-token", "DISCORD_GUILD_IDS": GUILD_ID,
            "DISCORD_MOD_CHANNEL_ID": MODS_ID, "DISCORD_API_BASE": self.discord.api_base,
            "DISCORD_GATEWAY_URL": self.discord.gateway_url,
            "SLACK_BOT_TOKEN": "xoxb-test-bot", "SLACK_USER_TOKEN": "xoxp-test-admin",
            "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_BASE": self.slack.api_base,
            "SLACK_MOD_CHANNEL": MODS, "SLACK_HOST": "127.0.0.1",
            "SLACK_PORT": str(self.slack_port),
            "CONDUCTBOT_DB": str(self.db), "CONDUCTBOT_POLICY": str(ROOT / "policies" /
                                                                  "default.toml"),
            "CONDUCTBOT_OUTBOX_INTERVAL": "0.5",
            "CONDUCTBOT_HEALTH_HOST": "127.0.0.1",
            "CONDUCTBOT_HEALTH_PORT": str(self.health_port), **overrides}

    async def healthz(self) -> tuple[int, dict[str, Any]]:
        async with self.http.get(f"{self.health}/healthz") as response:
            assert response.content_type == "application/json"
            return response.status, await response.json()

    async def metrics(self) -> Samples:
        async with self.http.get(f"{self.health}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await response.text()
        return {(sample.name, frozenset(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples}

    async def listening(self) -> bool:
        with contextlib.suppress(aiohttp.ClientConnectorError):
            await self.healthz()
            return True
        return False

    async def slack_message(self, text: str, *, n: int) -> None:
        stamp = str(int(time.time()))
        body = json.dumps({
            "type": "event_callback", "team_id": TEAM, "api_app_id": "A0APP0001",
            "event_id": f"Ev0HEALTH{n:02d}", "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
            "event": {"type": "message", "channel": GENERAL, "user": MEMBER, "text": text,
                      "ts": f"{int(time.time())}.{n:06d}", "channel_type": "channel",
                      "team": TEAM}})
        headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
                   "X-Slack-Signature": sign(SECRET, stamp, body)}
        async with self.http.post(f"http://127.0.0.1:{self.slack_port}/slack/events",
                                  data=body.encode(), headers=headers) as response:
            assert response.status == 200


@pytest.fixture
async def bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bot]:
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    monkeypatch.setattr(adapters.runner, "build_scorer", lambda settings: KeywordScorer())
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    async with aiohttp.ClientSession() as http:
        world = Bot(tmp_path, http)
        await world.slack.start()
        await world.discord.start()
        try:
            yield world
        finally:
            await world.slack.stop()
            await world.discord.stop()
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


@contextlib.asynccontextmanager
async def running(world: Bot, monkeypatch: pytest.MonkeyPatch,
                  **overrides: str) -> AsyncIterator[asyncio.Task[None]]:
    """`bot.py run` against the fakes until the block exits (then stopped, servers closed)."""
    for name, value in world.env(**overrides).items():
        monkeypatch.setenv(name, value)
    task = asyncio.create_task(adapters.runner.run(Settings.from_env()))
    try:
        await until(world.listening, what="the health endpoint")
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # Nothing is left listening once the bot stopped.
    with pytest.raises(aiohttp.ClientConnectorError):
        await world.healthz()


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [tuple(row) for row in conn.execute(sql)]


async def import_moderator(db: Path) -> None:
    async with Store.open(db) as store:
        await store.import_member(
            membership_number="M0001", name="Karen Lomax", status=MemberStatus.ACTIVE,
            roles={Role.MODERATOR}, reason=None, suspended_from=None, suspended_until=None,
            accounts=[(Platform.SLACK, MODERATOR), (Platform.DISCORD, MOD_ID)], actor="test")


def settled(db: Path, verdicts: int) -> Callable[[], bool]:
    """All `verdicts` recorded and no outbox row of a running platform left to execute."""
    def check() -> bool:
        decided = query(db, "SELECT COUNT(*) FROM verdicts")[0][0]
        pending = query(db, "SELECT COUNT(*) FROM outbox WHERE status = 'pending'")[0][0]
        return decided == verdicts and pending == 0
    return check


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_healthz_and_metrics_match_what_the_bot_did(
        bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    await import_moderator(bot.db)
    # Slack answers the first deletion with a 429: the row waits a second and goes again.
    bot.slack.inject("chat.delete", status=429, headers={"Retry-After": "1"})
    async with running(bot, monkeypatch):
        await until(lambda: bot.healthz(), what="a first answer")
        await until(lambda: _healthy(bot), what="/healthz 200 with both platforms connected")
        status, body = await bot.healthz()
        assert status == 200 and body["status"] == "ok"
        checks = body["checks"]
        assert set(checks) == {"discord", "slack", "store", "scorer", "outbox"}
        assert checks["discord"]["state"] == checks["slack"]["state"] == "connected"
        assert "gateway ready in 1 server(s)" in checks["discord"]["detail"]
        assert checks["slack"]["detail"].startswith("serving HTTP on 127.0.0.1:")
        assert checks["store"] == {"ok": True, "detail": f"{bot.db} takes a writer"}
        assert checks["scorer"]["model"] == "keyword-test"
        assert checks["outbox"]["ok"] and checks["outbox"]["max_age_seconds"] == 300

        await bot.slack_message("immigrants are vermin", n=1)
        await bot.slack_message("thanks for organising the leaflet drop", n=2)
        for text in ("you idiot", "I will hurt you", "see you at the branch meeting"):
            await bot.discord.dispatch("MESSAGE_CREATE", message(snowflake(), text,
                                                                 author=MEMBER_ID,
                                                                 channel_id=GENERAL_ID))
        await until(settled(bot.db, 5), what="five verdicts, every action executed")
        assert len(bot.slack.find("chat.delete")) == 2

        # A member appeals and a moderator grants it; another escalation is dismissed on
        # review. They act from another process, as `bot.py mod` does: the counts come from
        # the store.
        async with Store.open(bot.db) as store, Batcher(KeywordScorer()) as batcher:
            commands = Commands(Moderator(store=store, policy=load_policy(
                ROOT / "policies" / "default.toml"), scorer=batcher))
            slack_cases = await store.member_cases(
                (await store.member_for(Platform.SLACK, MEMBER)).id)
            discord_cases = await store.member_cases(
                (await store.member_for(Platform.DISCORD, MEMBER_ID)).id)
            escalations = [c for c in discord_cases if c.kind == "escalation"]
            assert len(slack_cases) == 1 and len(escalations) == 1
            appealed, reviewed = slack_cases[0].id, escalations[0].id
            replies = [
                await commands.run(Account(Platform.SLACK, MEMBER),
                                   f"appeal {appealed} I was quoting what a leaflet said"),
                await commands.run(Account(Platform.SLACK, MODERATOR),
                                   f"resolve {appealed} dismiss quoted to condemn it"),
                await commands.run(Account(Platform.DISCORD, MOD_ID),
                                   f"resolve {reviewed} dismiss not aimed at anyone here")]
            assert all(reply.ok for reply in replies), replies
        await until(settled(bot.db, 5), what="the notices of the decisions to go out")

        samples = await bot.metrics()
        status, body = await bot.healthz()
        assert status == 200, body

    # Messages and verdicts, as the store recorded them.
    for platform, count in query(bot.db, "SELECT platform, COUNT(*) FROM messages "
                                         "GROUP BY platform"):
        assert value(samples, "conductbot_messages_received_total", platform=platform) == count
    verdicts = query(bot.db, "SELECT m.platform, v.action, v.mode, COUNT(*) FROM verdicts v "
                             "JOIN messages m ON m.id = v.message_row GROUP BY 1, 2, 3")
    assert sum(row[3] for row in verdicts) == 5
    assert {row[1] for row in verdicts} == {"allow", "warn", "hide", "escalate"}
    for platform, action, mode, count in verdicts:
        assert value(samples, "conductbot_verdicts_total", platform=platform, action=action,
                     mode=mode) == count, (platform, action, mode)
    assert sum(v for (name, _), v in samples.items()
               if name == "conductbot_verdicts_total") == 5
    # Every platform action: its result as written back, each try counted once.
    actions = query(bot.db, "SELECT platform, kind, status, COUNT(*), SUM(attempts) FROM outbox "
                            "GROUP BY 1, 2, 3")
    assert {row[2] for row in actions} == {"done"}
    for platform, kind, status, count, _ in actions:
        assert value(samples, "conductbot_actions_total", platform=platform, kind=kind,
                     outcome=status) == count, (platform, kind)
    tries = sum(v for (name, _), v in samples.items() if name == "conductbot_actions_total")
    assert tries == sum(row[4] for row in actions)
    assert value(samples, "conductbot_actions_total", platform="slack", kind="delete",
                 outcome="retry") == 1
    # The 429, and no other error.
    errors = {labels: v for (name, labels), v in samples.items()
              if name == "conductbot_platform_errors_total"}
    assert errors == {frozenset({("platform", "slack"), ("kind", "rate_limited"),
                                 ("action", "delete")}): 1.0}
    # The scorer: one text scored per message, each batch timed.
    scored = value(samples, "conductbot_scorer_batch_size_sum")
    assert scored == 5
    assert value(samples, "conductbot_scorer_batch_seconds_count") == \
        value(samples, "conductbot_scorer_batch_size_count") >= 1
    assert value(samples, "conductbot_scoring_seconds_count") >= 1
    assert value(samples, "conductbot_scorer_failures_total") == 0
    # What the store holds: nothing waiting; one appeal granted, one verdict overturned.
    for platform in ("discord", "slack"):
        assert value(samples, "conductbot_outbox_backlog", platform=platform) == 0
        assert value(samples, "conductbot_outbox_oldest_age_seconds", platform=platform) == 0
        assert value(samples, "conductbot_inbox_backlog", platform=platform) == 0
        assert value(samples, "conductbot_platform_connected", platform=platform) == 1
        assert value(samples, "conductbot_platform_restarts_total", platform=platform) == 0
    assert value(samples, "conductbot_appeals_total") == 1
    assert value(samples, "conductbot_overturns_total", via="appeal") == 1
    assert value(samples, "conductbot_overturns_total", via="review") == 1


async def _healthy(bot: Bot) -> bool:
    return (await bot.healthz())[0] == 200


async def test_healthz_is_503_with_a_platform_down_a_late_outbox_or_a_locked_store(
        bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    bot.discord.inject("GET", "/users/@me", 401, {"message": "401: Unauthorized", "code": 0})
    async with running(bot, monkeypatch, CONDUCTBOT_HEALTH_OUTBOX_MAX_AGE="1"):
        async def discord_stopped() -> bool:
            return (await bot.healthz())[1]["checks"]["discord"]["state"] == "stopped"

        await until(discord_stopped, what="Discord to stop")
        await until(lambda: _connected(bot, "slack"), what="Slack to connect")
        status, body = await bot.healthz()
        assert status == 503 and body["status"] == "unhealthy"
        checks = body["checks"]
        assert checks["discord"] == {
            "ok": False, "state": "stopped",
            "detail": "Discord refused DISCORD_TOKEN (check the bot token)"}
        assert checks["slack"]["ok"] and checks["store"]["ok"] and checks["scorer"]["ok"]
        assert checks["outbox"]["ok"]
        samples = await bot.metrics()
        assert value(samples, "conductbot_platform_connected", platform="discord") == 0
        assert value(samples, "conductbot_platform_connected", platform="slack") == 1

        # A Discord notice nobody can send (Discord is down) soon waits too long.
        async with Store.open(bot.db) as store:
            await store.enqueue([Action(kind=ActionKind.NOTIFY, platform=Platform.DISCORD,
                                        user=MEMBER_ID, payload={"text": "hello"})],
                                case_id=None)

        async def outbox_late() -> bool:
            return not (await bot.healthz())[1]["checks"]["outbox"]["ok"]

        await until(outbox_late, what="the outbox check to fail")
        outbox = (await bot.healthz())[1]["checks"]["outbox"]
        assert outbox["detail"] == "discord: an action has waited over 1 s to go out"
        assert outbox["platforms"]["discord"]["backlog"] == 1
        assert outbox["platforms"]["discord"]["oldest_age_seconds"] > 1
        assert outbox["platforms"]["slack"] == {"backlog": 0, "scheduled": 0,
                                                "oldest_age_seconds": 0.0}
        samples = await bot.metrics()
        assert value(samples, "conductbot_outbox_backlog", platform="discord") == 1
        assert value(samples, "conductbot_outbox_oldest_age_seconds", platform="discord") > 1

        # Another process holding the write lock: the store check fails within its wait.
        with contextlib.closing(sqlite3.connect(bot.db, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            status, body = await bot.healthz()
            assert time.monotonic() - started < 5
            other.execute("ROLLBACK")
        assert status == 503
        assert body["checks"]["store"]["ok"] is False
        assert "does not take a writer: database is locked" in body["checks"]["store"]["detail"]
        assert (await bot.healthz())[1]["checks"]["store"]["ok"]


async def _connected(bot: Bot, platform: str) -> bool:
    return bool((await bot.healthz())[1]["checks"][platform]["ok"])


async def test_the_supervisor_tells_the_watch_of_each_restart_and_of_the_stop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapters.runner, "RECONNECT_FIRST", 0.01)
    watch = PlatformWatch("slack")
    seen: list[Connection] = []
    outcomes: list[BaseException | None] = [
        Unavailable("could not reach Slack for auth.test", platform="slack"), RuntimeError("bug"),
        PermissionDenied("Slack refused SLACK_BOT_TOKEN", platform="slack")]

    async def start() -> None:
        seen.append(await watch.connection())
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    assert await watch.connection() == Connection(ConnectionState.STARTING, "not started yet")
    await asyncio.wait_for(adapters.runner.supervise("slack", start, watch=watch), 5)
    assert seen[1:] == [
        Connection(ConnectionState.RECONNECTING,
                   "could not reach Slack for auth.test; starting again in 0 s"),
        Connection(ConnectionState.RECONNECTING,
                   "it failed (RuntimeError; see the log); starting again in 0 s")]
    assert await watch.connection() == Connection(ConnectionState.STOPPED,
                                                  "Slack refused SLACK_BOT_TOKEN")
    assert watch.restarts == 2
