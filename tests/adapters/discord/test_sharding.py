"""Sharding (DISCORD_SHARD_COUNT, DISCORD_SHARD_IDS): the real discord.py AutoShardedClient,
driven through DiscordAdapter against the fake Discord on 127.0.0.1, which honours the shard
field of IDENTIFY as Discord does (guild GUILD_ID is on shard 0 of 2, OTHER_GUILD_ID on 1).

discord.py waits 5 s before each IDENTIFY but a process's first (Discord's identify rate
limit), so starting two shards, or a shard's new session, takes that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import discord
import pytest

from adapters.connection import ConnectionState
from adapters.discord import DiscordAdapter, DiscordConfig, DiscordConfigError
from bot.config import Secret
from bot.errors import PlatformError
from bot.models import Action, ActionKind, Platform
from bot.moderator import Moderator
from bot.policy import Policy
from bot.scoring import Batcher
from bot.store import Store
from tests.adapters.discord.fake_discord import (
    GENERAL_ID,
    GUILD_ID,
    MEMBER_ID,
    MODS_ID,
    OTHER_GENERAL_ID,
    OTHER_GUILD_ID,
    FakeDiscord,
    message,
    other_guild,
    shard_of,
)
from tests.adapters.discord.test_discord import World, connected
from tests.conftest import KeywordScorer

pytestmark = pytest.mark.timeout(60)

BOTH = frozenset({int(GUILD_ID), int(OTHER_GUILD_ID)})


_serial = itertools.count(1)


def recent_id() -> str:
    """A fresh snowflake of now (catch-up reads no further back than CATCH_UP_WINDOW)."""
    return str(discord.utils.time_snowflake(datetime.now(UTC)) + next(_serial))


@contextlib.asynccontextmanager
async def running(tmp_path: Path, policy: Policy, fake: FakeDiscord | None = None,
                  **overrides: Any) -> AsyncIterator[World]:
    """The adapter connected to a fake Discord whose bot is in both guilds, ready."""
    fake = fake or FakeDiscord()
    fake.add_guild(other_guild())
    # Two shards identify 5 s apart (discord.py's identify rate limit).
    async with connected(tmp_path, policy, fake, guild_ids=BOTH, ready_within=20,
                         **overrides) as world:
        yield world


async def abuse(world: World, guild_id: str, channel_id: str) -> str:
    """Post an abusive message in the guild's channel; wait until it is decided and acted on."""
    mid = recent_id()
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "immigrants are vermin",
                                                        channel_id=channel_id,
                                                        guild_id=guild_id))
    await world.settle(mid)
    return mid


async def state_becomes(adapter: DiscordAdapter, state: ConnectionState) -> str:
    """Wait (5 s at most) until the adapter's connection reads `state`; its detail."""
    async with asyncio.timeout(5):
        while (connection := await adapter.connection()).state is not state:  # noqa: ASYNC110 - discord.py's shard state has no event
            await asyncio.sleep(0.01)
    return connection.detail


def test_the_guilds_sit_on_the_shards_the_tests_say() -> None:
    assert shard_of(GUILD_ID, 2) == 0 and shard_of(OTHER_GUILD_ID, 2) == 1


async def test_two_shards_open_two_sessions_and_moderate_both_guilds(
        tmp_path: Path, test_policy: Policy, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="adapters.discord.adapter")
    async with running(tmp_path, test_policy, shard_count=2) as world:
        fake, client = world.fake, world.adapter.client
        assert isinstance(client, discord.AutoShardedClient)
        assert (client.shard_count, client.shard_ids) == (2, [0, 1])
        # Two gateway sessions, each identified with its shard; each was sent its own guild.
        assert fake.identified == [[0, 2], [1, 2]]
        assert sorted(fake.shard_ws) == [0, 1] and fake.shard_ws[0] is not fake.shard_ws[1]
        assert {g.id: g.shard_id for g in client.guilds} == {int(GUILD_ID): 0,
                                                             int(OTHER_GUILD_ID): 1}
        assert (f"discord: ready as conductbot on shards 0, 1 of 2 in Party members ({GUILD_ID}), "
                f"Young members ({OTHER_GUILD_ID}): watching every text channel; moderators' "
                "channel #moderators") in caplog.text

        # A message on either shard's session is decided and acted on.
        first = await abuse(world, GUILD_ID, GENERAL_ID)
        second = await abuse(world, OTHER_GUILD_ID, OTHER_GENERAL_ID)
        assert [r.path for r in fake.find("DELETE", r"/channels/.*")] == [
            f"/channels/{GENERAL_ID}/messages/{first}",
            f"/channels/{OTHER_GENERAL_ID}/messages/{second}"]
        escalations = world.sent_to(MODS_ID)
        assert [e["embeds"][0]["title"][:7] for e in escalations] == ["Case 1:", "Case 2:"]
        fields = {f["name"]: f["value"] for f in escalations[1]["embeds"][0]["fields"]}
        assert "youth" in fields["channel"]

        # Connected while every shard is open; one dropped shard reads as reconnecting until
        # it resumes.
        detail = await state_becomes(world.adapter, ConnectionState.CONNECTED)
        assert detail.startswith("gateway ready in 2 server(s) on shards 0, 1 of 2")
        fake.accepting.clear()  # the shard's new connection waits for its HELLO
        fake.resumed.clear()
        await fake.drop(shard=1)
        detail = await state_becomes(world.adapter, ConnectionState.RECONNECTING)
        assert detail == "gateway shard 1 of 2 dropped; discord.py is reconnecting"
        fake.accepting.set()
        async with asyncio.timeout(10):
            await fake.resumed.wait()
        await state_becomes(world.adapter, ConnectionState.CONNECTED)
        resume = next(e["d"] for e in fake.gateway_log if e["op"] == 6)
        assert resume["session_id"] == "session-1-shard-1"
        assert fake.identified == [[0, 2], [1, 2]]  # resumed, not identified again
        third = await abuse(world, OTHER_GUILD_ID, OTHER_GENERAL_ID)
        assert fake.find("DELETE", rf"/channels/{OTHER_GENERAL_ID}/messages/{third}")


async def test_shard_ids_run_only_that_shard_and_see_only_its_guild(
        tmp_path: Path, test_policy: Policy) -> None:
    async with running(tmp_path, test_policy, shard_count=2, shard_ids=(1,)) as world:
        fake, client = world.fake, world.adapter.client
        assert isinstance(client, discord.AutoShardedClient)
        assert fake.identified == [[1, 2]]
        assert list(fake.shard_ws) == [1]
        assert [g.id for g in client.guilds] == [int(OTHER_GUILD_ID)]
        assert client.get_guild(int(GUILD_ID)) is None
        # The moderators' channel is in shard 0's guild: found over REST, not refused.
        assert fake.find("GET", rf"/channels/{MODS_ID}")
        detail = await state_becomes(world.adapter, ConnectionState.CONNECTED)
        assert detail.startswith("gateway ready in 1 server(s) on shard 1 of 2")
        with pytest.raises(AssertionError, match="shard 0 is not connected"):
            await fake.dispatch("MESSAGE_CREATE", message(recent_id(), "hello"))

        mid = await abuse(world, OTHER_GUILD_ID, OTHER_GENERAL_ID)
        assert fake.find("DELETE", rf"/channels/{OTHER_GENERAL_ID}/messages/{mid}")
        (escalation,) = world.sent_to(MODS_ID)
        assert escalation["embeds"][0]["title"].startswith("Case 1:")

        # An outbox row about shard 0's guild (another process's) finds its guild over REST.
        await world.adapter.timeout(Action(
            kind=ActionKind.TIMEOUT, platform=Platform.DISCORD, user=MEMBER_ID,
            channel=GENERAL_ID, payload={"until": "2099-01-01T00:00:00+00:00", "reason": "x"}))
        assert fake.find("GET", rf"/channels/{GENERAL_ID}")
        assert [r.path for r in fake.find("PATCH", r"/guilds/\d+/members/\d+")] == [
            f"/guilds/{GUILD_ID}/members/{MEMBER_ID}"]


async def test_a_shard_that_starts_a_new_session_catches_up_its_own_guild(
        tmp_path: Path, test_policy: Policy) -> None:
    async with running(tmp_path, test_policy, shard_count=2) as world:
        fake = world.fake
        for guild_id, channel_id in ((GUILD_ID, GENERAL_ID), (OTHER_GUILD_ID, OTHER_GENERAL_ID)):
            mid = recent_id()
            await fake.dispatch("MESSAGE_CREATE", message(mid, "hello all", channel_id=channel_id,
                                                          guild_id=guild_id))
            await world.settle(mid)
        # Posted while shard 1 was away (its session lost), and in shard 0's guild meanwhile.
        missed, elsewhere = recent_id(), recent_id()
        fake.history[OTHER_GENERAL_ID] = [message(missed, "immigrants are vermin",
                                                  channel_id=OTHER_GENERAL_ID,
                                                  guild_id=OTHER_GUILD_ID)]
        fake.history[GENERAL_ID] = [message(elsewhere, "immigrants are vermin")]
        await fake.invalidate_session(shard=1)
        async with asyncio.timeout(15):  # discord.py waits 5 s before it identifies again
            await fake.ready_sent.wait()
        await world.settle(missed)
        assert fake.identified == [[0, 2], [1, 2], [1, 2]]
        assert fake.find("DELETE", rf"/channels/{OTHER_GENERAL_ID}/messages/{missed}")
        # Only the shard that lost its session was read back.
        assert fake.find("GET", rf"/channels/{GENERAL_ID}/messages") == []
        assert all(key[1] != elsewhere for key, _ in world.handled)
        await state_becomes(world.adapter, ConnectionState.CONNECTED)


async def test_too_few_shards_stop_the_adapter_naming_the_variable(
        tmp_path: Path, test_policy: Policy) -> None:
    fake = FakeDiscord()
    fake.recommended_shards, fake.require_sharding = 2, True
    with pytest.raises(PlatformError) as refused:
        async with running(tmp_path, test_policy, fake):
            pass  # pragma: no cover - never ready
    assert str(refused.value) == (
        "Discord requires more gateway shards than 1 for the bot's servers: set "
        "DISCORD_SHARD_COUNT to 2 (what Discord recommends); see docs/discord.md")
    assert fake.identified == [None]
    assert fake.find("GET", "/gateway/bot")


async def test_the_client_class_follows_the_shard_count(tmp_path: Path,
                                                        test_policy: Policy) -> None:
    async with Store.open(tmp_path / "db.sqlite3") as store, \
            Batcher(KeywordScorer()) as batcher:
        moderator = Moderator(store=store, policy=test_policy, scorer=batcher)
        plain = DiscordAdapter(moderator, DiscordConfig(token=Secret("t")))
        sharded = DiscordAdapter(moderator, DiscordConfig(token=Secret("t"), shard_count=3,
                                                          shard_ids=(2, 0)))
        async with plain.client, sharded.client:  # set up and closed, never connected
            assert not isinstance(plain.client, discord.AutoShardedClient)
            assert isinstance(sharded.client, discord.AutoShardedClient)
            assert isinstance(sharded.client, type(plain.client))  # one behaviour for both
            assert (sharded.client.shard_count, sharded.client.shard_ids) == (3, [0, 2])
            assert sharded.client.adapter is sharded


def test_shard_settings_are_read_and_validated() -> None:
    env = {"DISCORD_TOKEN": "t"}
    assert (DiscordConfig.from_env(env).shard_count, DiscordConfig.from_env(env).shards) == \
        (None, None)
    config = DiscordConfig.from_env({**env, "DISCORD_SHARD_COUNT": " 4 "})
    assert (config.shard_count, config.shard_ids, config.shards) == (4, None, (0, 1, 2, 3))
    config = DiscordConfig.from_env({**env, "DISCORD_SHARD_COUNT": "4",
                                     "DISCORD_SHARD_IDS": "3, 1,1"})
    assert (config.shard_ids, config.shards) == ((1, 3), (1, 3))
    for bad in ("0", "-1", "x", "1.5"):
        with pytest.raises(DiscordConfigError) as wrong:
            DiscordConfig.from_env({**env, "DISCORD_SHARD_COUNT": bad})
        assert str(wrong.value) == ("DISCORD_SHARD_COUNT must be a positive whole number (how "
                                    "many gateway shards the bot runs in all), not "
                                    f"{bad!r}")
    with pytest.raises(DiscordConfigError) as wrong:
        DiscordConfig.from_env({**env, "DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "1,2"})
    assert str(wrong.value) == ("DISCORD_SHARD_IDS: shard 2 does not exist with "
                                "DISCORD_SHARD_COUNT=2 (shard ids run from 0 to 1)")
    with pytest.raises(DiscordConfigError, match="shards 2, 5 do not exist"):
        DiscordConfig.from_env({**env, "DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "5,2"})
    for bad in ("x", "-1"):
        with pytest.raises(DiscordConfigError) as wrong:
            DiscordConfig.from_env({**env, "DISCORD_SHARD_COUNT": "2",
                                    "DISCORD_SHARD_IDS": f"0,{bad}"})
        assert str(wrong.value) == ("DISCORD_SHARD_IDS must be a comma-separated list of shard "
                                    f"ids (0, 1, ...), not {bad!r}")
    with pytest.raises(DiscordConfigError) as wrong:
        DiscordConfig.from_env({**env, "DISCORD_SHARD_IDS": "0"})
    assert str(wrong.value) == ("DISCORD_SHARD_IDS is set but DISCORD_SHARD_COUNT is not: set "
                                "the number of shards the bot runs in all")
    # A token pasted into the wrong variable is named, never echoed.
    pasted = "MTA5OTk5OTk5OTk5OTk5OTk5OQ.GabcDE.abcdefghijklmnopqrstuvwxyz0123"
    with pytest.raises(DiscordConfigError, match="DISCORD_SHARD_COUNT") as wrong:
        DiscordConfig.from_env({**env, "DISCORD_SHARD_COUNT": pasted})
    assert "GabcDE" not in str(wrong.value)
