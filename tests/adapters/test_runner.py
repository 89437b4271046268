"""`bot.py run`'s supervision: one platform failing never stops the other."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import time
from pathlib import Path

import aiohttp
import discord
import pytest

import adapters.runner
from adapters.runner import supervise
from adapters.slack.adapter import sign
from bot.config import Settings
from bot.errors import ConductError, PermissionDenied, Unavailable
from bot.store import Store
from tests.adapters.discord.fake_discord import FakeDiscord
from tests.adapters.slack.fake_slack import BOT_USER, GENERAL, MEMBER, MODS, TEAM, FakeSlack
from tests.conftest import ROOT, KeywordScorer

pytestmark = pytest.mark.timeout(30)
SECRET = "slack-test-signing-secret"


async def test_supervise_reconnects_after_outages_and_stops_on_a_refusal(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(adapters.runner, "RECONNECT_FIRST", 0.01)
    outcomes: list[BaseException | None] = [
        Unavailable("could not reach Slack for auth.test", platform="slack", action="auth.test"),
        RuntimeError("a bug"),
        None,  # the connection ended on its own
        PermissionDenied("Slack refused SLACK_BOT_TOKEN", platform="slack", action="auth.test"),
    ]
    starts = 0

    async def start() -> None:
        nonlocal starts
        outcome = outcomes[starts]
        starts += 1
        if outcome is not None:
            raise outcome

    caplog.set_level(logging.INFO, logger="adapters.runner")
    refused = await asyncio.wait_for(supervise("slack", start), 5)
    assert starts == 4
    assert isinstance(refused, PermissionDenied)
    assert "slack: could not reach Slack for auth.test; reconnecting in 0 s" in caplog.text
    assert "slack failed; restarting" in caplog.text
    assert caplog.records[-1].getMessage() == "slack stopped: Slack refused SLACK_BOT_TOKEN"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_platform_refusing_its_token_leaves_the_other_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    slack, refusing = FakeSlack(), FakeDiscord()
    policy = tmp_path / "policy.toml"
    source = (ROOT / "policies" / "default.toml").read_text(encoding="utf-8")
    policy.write_text(source, encoding="utf-8")
    await slack.start()
    await refusing.start()
    refusing.inject("GET", "/users/@me", 401, {"message": "401: Unauthorized", "code": 0})
    port = free_port()
    for name, value in {
            "DISCORD_TOKEN": "revoked-token", "DISCORD_MOD_CHANNEL_ID": "920000000000000002",
            "DISCORD_API_BASE": refusing.api_base, "DISCORD_GATEWAY_URL": refusing.gateway_url,
            "SLACK_BOT_TOKEN": "xoxb-test-bot", "SLACK_USER_TOKEN": "xoxp-test-admin",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_BASE": slack.api_base, "SLACK_MOD_CHANNEL": MODS,
            "SLACK_PORT": str(port), "CONDUCTBOT_DB": str(tmp_path / "run.sqlite3"),
            "CONDUCTBOT_POLICY": str(policy)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    monkeypatch.setattr(adapters.runner, "build_scorer", lambda settings: KeywordScorer())
    caplog.set_level(logging.INFO)
    run = asyncio.create_task(adapters.runner.run(Settings.from_env()))
    try:
        await slack.wait_for(lambda: bool(slack.find("conversations.info")), within=10)
        body = json.dumps({
            "type": "event_callback", "team_id": TEAM, "api_app_id": "A0APP0001",
            "event_id": "Ev0RUNNER1", "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
            "event": {"type": "message", "channel": GENERAL, "user": MEMBER,
                      "text": "immigrants are vermin", "ts": f"{int(time.time())}.000100",
                      "channel_type": "channel", "team": TEAM}})
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
                   "X-Slack-Signature": sign(SECRET, stamp, body)}
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # until the server is listening
                try:
                    async with http.post(f"http://127.0.0.1:{port}/slack/events",
                                         data=body.encode(), headers=headers) as response:
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.05)
        # Slack goes on moderating after Discord refused its token.
        await slack.wait_for(lambda: bool(slack.find("chat.delete")), within=10)
        assert not run.done()
        discord_lines = [r.getMessage() for r in caplog.records
                         if r.name == "adapters.runner" and r.getMessage().startswith("discord")]
        assert discord_lines == ["discord stopped: Discord refused DISCORD_TOKEN (check the "
                                 "bot token)"]
        assert all(r.exc_info is None for r in caplog.records if r.name == "adapters.runner")
        # SIGHUP reloads the policy file in the running bot.
        version = re.search(r'^version = "([^"]+)"', source, re.M)
        assert version is not None
        policy.write_text(source.replace(version[0], 'version = "runner-2"', 1),
                          encoding="utf-8")
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(200):
            if "-> runner-2" in caplog.text:
                break
            await asyncio.sleep(0.05)
        assert f"policy reloaded from {policy}: {version[1]} -> runner-2" in caplog.text
        assert not run.done()
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await slack.stop()
        await refusing.stop()
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved
    async with Store.open(tmp_path / "run.sqlite3") as store:
        assert [a.kind for a in await store.actions()][:1] == ["delete"]


async def test_one_process_per_platform_starts_only_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    slack, other = FakeSlack(), FakeDiscord()
    await slack.start()
    await other.start()
    for name, value in {
            "DISCORD_TOKEN": "test-token", "DISCORD_MOD_CHANNEL_ID": "920000000000000002",
            "DISCORD_API_BASE": other.api_base, "DISCORD_GATEWAY_URL": other.gateway_url,
            "SLACK_BOT_TOKEN": "xoxb-test-bot", "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_BASE": slack.api_base, "SLACK_MOD_CHANNEL": MODS,
            "SLACK_PORT": str(free_port()), "CONDUCTBOT_DB": str(tmp_path / "run.sqlite3"),
            "CONDUCTBOT_HEALTH_PORT": "off"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    monkeypatch.setattr(adapters.runner, "build_scorer", lambda settings: KeywordScorer())
    run = asyncio.create_task(adapters.runner.run(Settings.from_env(), only=["slack"]))
    try:
        await slack.wait_for(lambda: bool(slack.find("auth.test")), within=10)
        await asyncio.sleep(0.3)
        assert not run.done() and other.requests == []  # Discord is another process's
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await slack.stop()
        await other.stop()
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved
    monkeypatch.delenv("DISCORD_TOKEN")
    with pytest.raises(ConductError, match="discord is not configured: set its token"):
        await adapters.runner.run(Settings.from_env(), only=["discord"])
