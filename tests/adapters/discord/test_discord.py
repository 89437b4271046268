"""The real discord.py client, driven through DiscordAdapter against a fake Discord on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord
import pytest

from adapters.discord import DiscordAdapter, DiscordConfig, DiscordConfigError
from adapters.discord.convert import edit_revision
from bot.errors import PlatformError, TargetNotFound
from bot.models import (
    Action,
    ActionKind,
    ActionStatus,
    CaseState,
    MemberStatus,
    Message,
    Mode,
    Platform,
    Role,
)
from bot.moderator import Handled, Moderator
from bot.policy import Policy, load_policy
from bot.scoring import Batcher
from bot.store import Store
from tests.adapters.discord.fake_discord import (
    APP_ID,
    BOT_ID,
    BOT_ROLE_ID,
    GENERAL_ID,
    GUILD_ID,
    MEMBER_ID,
    MOD_ID,
    MOD_ROLE_ID,
    MODS_ID,
    NEW_MOD_ID,
    USERS,
    FakeDiscord,
    member,
    message,
    snowflake,
)
from tests.conftest import ROOT, KeywordScorer

pytestmark = pytest.mark.timeout(30)


@dataclass
class World:
    fake: FakeDiscord
    adapter: DiscordAdapter
    store: Store
    handled: list[tuple[tuple[str, str, int], Handled | None]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    #: every Message the core was handed, in order
    seen: list[Message] = field(default_factory=list)

    async def settle(self, mid: str, count: int = 1) -> None:
        """Wait (5 s at most) until the core has handled `count` deliveries of message `mid`
        and the outbox run that follows has finished."""
        async with asyncio.timeout(5):
            async with self.changed:
                await self.changed.wait_for(
                    lambda: sum(1 for key, _ in self.handled if key[1] == mid) >= count)
            await asyncio.sleep(0.05)  # let the handler task reach its outbox run
            await self.adapter.moderator.outbox_idle(Platform.DISCORD)

    def sent_to(self, channel_id: str) -> list[dict[str, Any]]:
        return [r.body for r in self.fake.find("POST", rf"/channels/{channel_id}/messages")]


@pytest.fixture
def overrides() -> dict[str, Any]:
    """DiscordConfig fields a test changes (parametrize `overrides` to set them)."""
    return {}


@pytest.fixture
async def world(tmp_path: Path, test_policy: Policy,
                overrides: dict[str, Any]) -> AsyncIterator[World]:
    async with connected(tmp_path, test_policy, FakeDiscord(),
                         guild_ids=frozenset({int(GUILD_ID)}), **overrides) as world:
        yield world


@contextlib.asynccontextmanager
async def connected(tmp_path: Path, policy: Policy, fake: FakeDiscord, *,
                    guild_ids: frozenset[int], ready_within: float = 10,
                    **overrides: Any) -> AsyncIterator[World]:
    """The adapter on a new store, connected to `fake` (started here) and ready, with Karen
    Lomax in the register as a moderator; DiscordConfig's `overrides` applied."""
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    await fake.start()
    task: asyncio.Task[None] | None = None
    try:
        async with Store.open(tmp_path / "db.sqlite3") as store, \
                Batcher(KeywordScorer()) as batcher:
            moderator = Moderator(store=store, policy=policy, scorer=batcher)
            await store.import_member(membership_number="M0001", name="Karen Lomax",
                                      status=MemberStatus.ACTIVE, roles={Role.MODERATOR},
                                      reason=None, suspended_from=None, suspended_until=None,
                                      accounts=[(Platform.DISCORD, MOD_ID)], actor="test")
            world = World(fake, None, store)  # type: ignore[arg-type]
            original = moderator.handle

            async def spy(msg: Any, /) -> Handled | None:
                world.seen.append(msg)
                result = await original(msg)
                world.handled.append((msg.key, result))
                async with world.changed:
                    world.changed.notify_all()
                return result

            moderator.handle = spy  # type: ignore[method-assign]
            config = DiscordConfig(**{
                "token": "test-token", "guild_ids": guild_ids,
                "mod_channel_id": int(MODS_ID), "api_base": fake.api_base,
                "gateway_url": fake.gateway_url, **overrides})
            world.adapter = DiscordAdapter(moderator, config, outbox_interval=3600,
                                           guild_ready_timeout=0.05)
            task = asyncio.create_task(world.adapter.run())
            ready = asyncio.create_task(world.adapter.ready.wait())
            done, _ = await asyncio.wait({task, ready}, timeout=ready_within,
                                         return_when=asyncio.FIRST_COMPLETED)
            if ready not in done:
                ready.cancel()
                if task in done:
                    task.result()
                raise AssertionError("the client never became ready")
            try:
                yield world
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        await fake.stop()
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


def interaction(kind: int, data: dict[str, Any], *, user: str = MOD_ID,
                msg: dict[str, Any] | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": snowflake(), "application_id": APP_ID, "type": kind, "token": f"tok{snowflake()}",
        "version": 1, "guild_id": GUILD_ID, "channel_id": MODS_ID,
        "channel": {"id": MODS_ID, "type": 0, "guild_id": GUILD_ID, "name": "moderators",
                    "position": 1, "permission_overwrites": [], "nsfw": False,
                    "parent_id": None},
        "member": member(user), "data": data, "attachment_size_limit": 8 * 1024 * 1024,
        "context": 0, "locale": "en-GB", "guild_locale": "en-GB", "app_permissions": "8",
        "entitlements": [], "authorizing_integration_owners": {"0": GUILD_ID},
    }
    if msg is not None:
        payload["message"] = msg
    return payload


def slash(sub: str, options: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    return interaction(2, {"id": snowflake(), "name": "mod", "type": 1, "guild_id": GUILD_ID,
                           "options": [{"type": 1, "name": sub, "options": options or []}]},
                       **kw)


async def replies(world: World, token: str) -> list[dict[str, Any]]:
    await world.fake.wait_for(lambda: bool(world.fake.find("POST", rf"/webhooks/{APP_ID}/{token}")))
    return [r.body for r in world.fake.find("POST", rf"/webhooks/{APP_ID}/{token}")]


# -- messages ------------------------------------------------------------------------------------


async def test_abusive_message_is_deleted_noticed_and_escalated(world: World) -> None:
    fake, mid = world.fake, snowflake()
    await fake.dispatch("MESSAGE_CREATE", message(mid, "immigrants are vermin"))
    await world.settle(mid)

    assert [r.path for r in fake.find("DELETE", r"/channels/.*")] == \
        [f"/channels/{GENERAL_ID}/messages/{mid}"]
    dm_open = fake.find("POST", "/users/@me/channels")
    assert [r.body for r in dm_open] == [{"recipient_id": int(MEMBER_ID)}]
    dm_channel = f"96{MEMBER_ID[2:]}"
    (notice,) = world.sent_to(dm_channel)
    assert "clause 1.2 (No discrimination or hate)" in notice["content"]
    assert "> immigrants are vermin" in notice["content"]

    (post,) = world.sent_to(MODS_ID)
    embed = post["embeds"][0]
    assert embed["title"].startswith("Case 1: 1.2 No discrimination or hate")
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert MEMBER_ID in fields["member"] and "general" in fields["channel"]
    assert fields["excerpt"] == "immigrants are vermin"
    assert "identity_attack" in fields["categories"]
    buttons = [c for row in post["components"] for c in row["components"]]
    assert [b["label"] for b in buttons] == ["Uphold", "Dismiss", "Hide", "Timeout"]
    assert buttons[0]["custom_id"] == "cb:resolve 1 uphold upheld from escalation"
    assert all(b["custom_id"].startswith("cb:") for b in buttons)

    # Its 3 strike points reach the ladder's first step only once a moderator upholds it.
    assert fake.find("PATCH", rf"/guilds/{GUILD_ID}/members/{MEMBER_ID}") == []
    assert await world.store.pending_actions() == []
    assert {a.status for a in await world.store.actions()} == {ActionStatus.DONE}


SHADOW_POLICY = dataclasses.replace(load_policy(ROOT / "tests" / "fixtures" / "policy.toml"),
                                    mode=Mode.SHADOW)


@pytest.mark.parametrize("test_policy", [SHADOW_POLICY])
async def test_in_shadow_mode_only_the_moderators_hear_what_would_have_been_done(
        world: World) -> None:
    fake, mid = world.fake, snowflake()
    await fake.dispatch("MESSAGE_CREATE", message(mid, "immigrants are vermin"))
    await world.settle(mid)
    assert fake.find("DELETE", r"/channels/.*") == []
    assert fake.find("POST", "/users/@me/channels") == []  # no DM to the member
    (post,) = world.sent_to(MODS_ID)
    embed = post["embeds"][0]
    assert embed["title"].startswith("Shadow case 1: 1.2 No discrimination or hate")
    assert embed["description"].startswith("Shadow mode: would have escalated; nothing was done.")
    assert embed["color"] == discord.Colour.light_grey().value
    buttons = [c for row in post["components"] for c in row["components"]]
    assert [b["label"] for b in buttons] == ["Uphold", "Dismiss", "Hide", "Timeout"]
    assert fake.find("PATCH", rf"/guilds/{GUILD_ID}/members/{MEMBER_ID}") == []


LOG_ID = "920000000000000009"


@pytest.mark.parametrize("overrides", [{"modlog_channel_id": int(LOG_ID)}])
async def test_the_moderators_log_gets_a_line_per_action_and_pings_nobody(
        world: World) -> None:
    # The outbox sweep ran at start, before the gateway connected: the log's cursor is set.
    mid = snowflake()
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "immigrants are vermin @everyone"))
    await world.settle(mid)
    await world.fake.wait_for(lambda: bool(world.sent_to(LOG_ID)))
    (line,) = world.sent_to(LOG_ID)
    assert "bot hid and escalated a message by" in line["content"]
    assert line["content"].endswith("· case 1") and "#general" in line["content"]
    assert line["allowed_mentions"] == {"parse": []}  # "@everyone" in a name stays text
    (post,) = world.sent_to(MODS_ID)
    assert post["allowed_mentions"] == {"parse": []}


async def test_acceptable_message_causes_no_requests(world: World) -> None:
    before = len(world.fake.requests)
    mid = snowflake()
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "Great canvassing in Leeds today"))
    await world.settle(mid)
    assert world.handled[-1][1] is not None and world.handled[-1][1].verdict.action == "allow"
    assert world.fake.requests[before:] == []


async def test_bots_and_dms_are_ignored(world: World) -> None:
    await world.fake.dispatch("MESSAGE_CREATE", message(snowflake(), "vermin",
                                                        author=BOT_ID))
    dm = message(snowflake(), "vermin", channel_id="98000000000000001")
    del dm["guild_id"], dm["member"]  # a direct message to the bot
    await world.fake.dispatch("MESSAGE_CREATE", dm)
    sentinel = snowflake()
    await world.fake.dispatch("MESSAGE_CREATE", message(sentinel, "hello all"))
    await world.settle(sentinel)
    assert [key[1] for key, _ in world.handled] == [sentinel]


async def test_edit_is_rescored_as_a_new_revision(world: World) -> None:
    fake, mid = world.fake, snowflake()
    await fake.dispatch("MESSAGE_CREATE", message(mid, "I disagree with the motion"))
    await world.settle(mid)
    edited_at = "2026-11-20T12:05:00.000000+00:00"
    update = message(mid, "I disagree with the motion, you idiot", edited=edited_at)
    await fake.dispatch("MESSAGE_UPDATE", update)
    await world.settle(mid, 2)
    await fake.dispatch("MESSAGE_UPDATE", update)  # redelivered: dropped by the inbox
    sentinel = snowflake()
    await fake.dispatch("MESSAGE_CREATE", message(sentinel, "hello all"))
    await world.settle(sentinel)

    keys = [(key, h is not None) for key, h in world.handled if key[1] == mid]
    revision = edit_revision(datetime.fromisoformat(edited_at))
    assert keys == [(("discord", mid, 0), True), (("discord", mid, revision), True)]
    assert world.handled[1][1] is not None and world.handled[1][1].verdict.action == "warn"
    (notice,) = world.sent_to(f"96{MEMBER_ID[2:]}")
    assert "friendly warning" in notice["content"]
    assert fake.find("DELETE", r"/channels/.*") == []


def recent_id(offset: int = 0) -> str:
    """A snowflake of now (catch-up reads no further back than CATCH_UP_WINDOW)."""
    return str(discord.utils.time_snowflake(datetime.now(UTC)) + offset)


async def test_messages_posted_while_away_are_caught_up(world: World) -> None:
    fake, first = world.fake, recent_id()
    await fake.dispatch("MESSAGE_CREATE", message(first, "hello all"))
    await world.settle(first)
    # Posted while the bot was down: the channel's history holds them, the gateway never sent.
    missed = [message(recent_id(1), "immigrants are vermin"),
              message(recent_id(2), "see you on Saturday")]
    fake.history[GENERAL_ID] = [message(first, "hello all"), *missed]

    assert await world.adapter.catch_up() == 2
    await world.settle(missed[1]["id"])
    assert [key[1] for key, _ in world.handled] == [first, missed[0]["id"], missed[1]["id"]]
    assert [r.path for r in fake.find("DELETE", r"/channels/.*")] == \
        [f"/channels/{GENERAL_ID}/messages/{missed[0]['id']}"]
    (read,) = fake.find("GET", rf"/channels/{GENERAL_ID}/messages")
    assert read.query["after"] == first  # from the last message decided there
    # Nothing new since: a second catch-up reads nothing and decides nothing twice.
    assert await world.adapter.catch_up() == 0
    assert len(world.handled) == 3


async def test_a_message_accepted_before_a_stop_is_decided_at_the_next_start(
        world: World) -> None:
    mid = snowflake()
    core = Message(Platform.DISCORD, mid, GENERAL_ID, MEMBER_ID, "immigrants are vermin",
                   datetime.now(UTC), channel_name="general")
    # Accepted (in the store's inbox) but the process stopped before deciding it.
    assert await world.adapter.moderator.accept(core) is not None
    await world.adapter.resume()
    await world.settle(mid)
    assert world.handled[-1][1] is not None
    assert world.handled[-1][1].verdict.action == "escalate"
    assert await world.adapter.moderator.waiting(Platform.DISCORD) == []


# -- commands and buttons ------------------------------------------------------------------------


async def test_mod_queue_answers_moderators_privately(world: World) -> None:
    mid = snowflake()
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "immigrants are vermin"))
    await world.settle(mid)
    payload = slash("queue")
    await world.fake.dispatch("INTERACTION_CREATE", payload)
    (followup,) = await replies(world, payload["token"])
    (callback,) = world.fake.find("POST", rf"/interactions/{payload['id']}/.*/callback")
    assert callback.body["type"] == 5 and callback.body["data"]["flags"] == 64  # deferred
    assert followup["flags"] == 64
    assert followup["embeds"][0]["title"] == "1 case(s) waiting"
    assert "#1 [p" in followup["embeds"][0]["description"]
    button = followup["components"][0]["components"][0]
    assert (button["label"], button["custom_id"]) == ("Case 1", "cb:case 1")


async def test_mod_queue_refuses_non_moderators(world: World) -> None:
    payload = slash("queue", user=MEMBER_ID)
    await world.fake.dispatch("INTERACTION_CREATE", payload)
    (followup,) = await replies(world, payload["token"])
    assert followup["flags"] == 64
    assert followup["embeds"][0]["title"] == "Not allowed"
    assert "Only moderators" in followup["embeds"][0]["description"]


async def test_mod_policy_reload_is_a_choice_of_the_policy_command(world: World) -> None:
    payload = slash("policy", [{"type": 3, "name": "action", "value": "reload"}])
    await world.fake.dispatch("INTERACTION_CREATE", payload)
    (followup,) = await replies(world, payload["token"])
    assert followup["embeds"][0]["title"] == "Policy unchanged: the file still says test-1"
    assert "Mode: enforce" in followup["embeds"][0]["description"]
    (entry,) = await world.store.audit_entries(action="policy:reload", limit=5)
    assert entry["action"] == "policy:reload"
    (sync,) = world.fake.find("PUT", rf"/applications/{APP_ID}/guilds/{GUILD_ID}/commands")
    mod = next(c for c in sync.body if c["name"] == "mod")
    policy = next(o for o in mod["options"] if o["name"] == "policy")
    assert [c["value"] for c in policy["options"][0]["choices"]] == ["reload"]


async def test_mod_history_takes_a_user_option(world: World) -> None:
    mid = snowflake()
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "you idiot"))  # known, 1 strike
    await world.settle(mid)
    options = [{"type": 6, "name": "member", "value": MEMBER_ID}]
    payload = slash("history", options)
    payload["data"]["resolved"] = {
        "users": {MEMBER_ID: USERS[MEMBER_ID]},
        "members": {MEMBER_ID: {k: v for k, v in member(MEMBER_ID).items() if k != "user"}}}
    await world.fake.dispatch("INTERACTION_CREATE", payload)
    (followup,) = await replies(world, payload["token"])
    embed = followup["embeds"][0]
    fields = {f["name"]: f["value"] for f in embed.get("fields", [])}
    assert fields.get("accounts") == f"discord:{MEMBER_ID}", embed
    assert fields["points now"] == "1"


async def test_uphold_button_resolves_the_case(world: World) -> None:
    mid = snowflake()
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "immigrants are vermin"))
    await world.settle(mid)
    (post,) = world.sent_to(MODS_ID)
    uphold = post["components"][0]["components"][0]
    posted = message(snowflake(), "", author=BOT_ID, channel_id=MODS_ID,
                     embeds=post["embeds"], components=post["components"])
    payload = interaction(3, {"custom_id": uphold["custom_id"], "component_type": 2},
                          msg=posted)
    await world.fake.dispatch("INTERACTION_CREATE", payload)
    (followup,) = await replies(world, payload["token"])
    assert followup["flags"] == 64 and followup["embeds"][0]["title"] == "Case 1 upheld"
    case = await world.store.get_case(1)
    assert case is not None and case.state is CaseState.UPHELD
    assert case.resolution == "upheld from escalation"
    # upheld, its 3 points count: the ladder's first step, a one-hour timeout
    member_path = rf"/guilds/{GUILD_ID}/members/{MEMBER_ID}"
    await world.fake.wait_for(lambda: bool(world.fake.find("PATCH", member_path)))
    (patch,) = world.fake.find("PATCH", member_path)
    until = datetime.fromisoformat(patch.body["communication_disabled_until"])
    assert 3500 < (until - datetime.now(UTC)).total_seconds() <= 3600
    assert "cooling-off" in followup["embeds"][0]["description"]


async def test_pardon_lifts_the_timeout_and_tells_the_member(world: World) -> None:
    mid = snowflake()
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "immigrants are vermin"))
    await world.settle(mid)
    for payload in (
            slash("resolve", [{"type": 4, "name": "number", "value": 1},
                              {"type": 3, "name": "outcome", "value": "uphold"},
                              {"type": 3, "name": "reason", "value": "abuse"}]),
            slash("pardon", [{"type": 4, "name": "number", "value": 1},
                             {"type": 3, "name": "reason", "value": "the member apologised"}])):
        await world.fake.dispatch("INTERACTION_CREATE", payload)
        await replies(world, payload["token"])
    await world.fake.wait_for(lambda: len(world.fake.find(
        "PATCH", rf"/guilds/{GUILD_ID}/members/{MEMBER_ID}")) == 2)
    timeout, lift = world.fake.find("PATCH", rf"/guilds/{GUILD_ID}/members/{MEMBER_ID}")
    assert timeout.body["communication_disabled_until"] is not None
    assert lift.body == {"communication_disabled_until": None}
    await world.fake.wait_for(lambda: len(world.sent_to(f"96{MEMBER_ID[2:]}")) == 2)
    notice = world.sent_to(f"96{MEMBER_ID[2:]}")[-1]["content"]
    assert notice == ("Case 1 has been pardoned: the member apologised. Its strike points no "
                      "longer count. The timeout it caused has been lifted.")


async def test_button_pressed_by_a_member_changes_nothing(world: World) -> None:
    mid = snowflake()
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "immigrants are vermin"))
    await world.settle(mid)
    (post,) = world.sent_to(MODS_ID)
    posted = message(snowflake(), "", author=BOT_ID, channel_id=MODS_ID,
                     embeds=post["embeds"], components=post["components"])
    custom_id = post["components"][0]["components"][1]["custom_id"]
    payload = interaction(3, {"custom_id": custom_id, "component_type": 2}, user=MEMBER_ID,
                          msg=posted)
    await world.fake.dispatch("INTERACTION_CREATE", payload)
    (followup,) = await replies(world, payload["token"])
    assert followup["embeds"][0]["title"] == "Not allowed"
    case = await world.store.get_case(1)
    assert case is not None and case.state is CaseState.OPEN


@pytest.mark.parametrize(("overrides", "title"), [
    ({"mod_role_ids": frozenset({int(MOD_ROLE_ID)})}, "0 case(s) waiting"),
    ({}, "Not allowed"),
])
async def test_discord_moderator_role_maps_onto_the_core_role(world: World, title: str) -> None:
    payload = slash("queue", user=NEW_MOD_ID)
    await world.fake.dispatch("INTERACTION_CREATE", payload)
    (followup,) = await replies(world, payload["token"])
    assert followup["embeds"][0]["title"] == title


# -- failures ------------------------------------------------------------------------------------


async def test_429_is_waited_out_and_retried(world: World) -> None:
    mid = snowflake()
    world.fake.inject("DELETE", rf"/channels/{GENERAL_ID}/messages/{mid}", 429,
                      {"message": "You are being rate limited.", "retry_after": 0.3,
                       "global": False},
                      headers={"Retry-After": "1", "Via": "1.1 google",
                               "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                               "X-RateLimit-Reset-After": "0.3", "X-RateLimit-Bucket": "b1",
                               "X-RateLimit-Scope": "user"})
    started = asyncio.get_running_loop().time()
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "immigrants are vermin"))
    await world.settle(mid)
    assert await world.store.pending_actions() == []
    deletes = world.fake.find("DELETE", rf"/channels/{GENERAL_ID}/messages/{mid}")
    assert len(deletes) == 2
    assert asyncio.get_running_loop().time() - started >= 0.3
    assert {a.status for a in await world.store.actions()} == {ActionStatus.DONE}


async def test_forbidden_is_recorded_as_permission_denied(world: World) -> None:
    mid = snowflake()
    world.fake.inject("DELETE", rf"/channels/{GENERAL_ID}/messages/{mid}", 403,
                      {"message": "Missing Permissions", "code": 50013})
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "immigrants are vermin"))
    await world.settle(mid)
    actions = {a.kind: a for a in await world.store.actions()}
    assert actions["delete"].status is ActionStatus.FAILED
    assert actions["delete"].error is not None
    assert actions["delete"].error.startswith("PermissionDenied")
    # the member is not told a message was hidden that is still up; the moderators are told
    assert actions["notify"].status is ActionStatus.CANCELLED
    assert world.fake.find("POST", "/users/@me/channels") == []
    await world.adapter.drain_outbox()  # the report queued by this run goes out in the next
    posts = world.sent_to(MODS_ID)
    assert len(posts) == 2  # the escalation, then the failed delete
    assert "could not hide this message" in posts[1]["embeds"][0]["description"]
    assert "Please delete it by hand" in posts[1]["embeds"][0]["description"]


async def test_resume_replay_is_not_decided_twice(world: World) -> None:
    fake, mid = world.fake, snowflake()
    create = message(mid, "immigrants are vermin")
    await fake.dispatch("MESSAGE_CREATE", create)
    await world.settle(mid)
    fake.after_resume("MESSAGE_CREATE", create)
    await fake.request_reconnect()
    async with asyncio.timeout(10):
        await fake.resumed.wait()
    sentinel = snowflake()
    await fake.dispatch("MESSAGE_CREATE", message(sentinel, "hello all"))
    await world.settle(sentinel)
    assert (fake.identifies, fake.resumes) == (1, 1)
    resume = next(e["d"] for e in fake.gateway_log if e["op"] == 6)
    assert resume["session_id"] == "session-1" and resume["seq"] >= 2
    # The replayed event is dropped by the inbox: decided once.
    assert [h is not None for key, h in world.handled if key[1] == mid] == [True]
    assert len(fake.find("DELETE", rf"/channels/{GENERAL_ID}/messages/{mid}")) == 1
    assert len(world.sent_to(MODS_ID)) == 1


async def start_refused(tmp_path: Path, policy: Policy, *,
                        overwrites: dict[str, list[dict[str, Any]]] | None = None,
                        **overrides: Any) -> str:
    """Start the adapter against the fake and return the one-line reason it refuses to run."""
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    fake = FakeDiscord()
    fake.overwrites = overwrites or {}
    await fake.start()
    try:
        async with Store.open(tmp_path / "db.sqlite3") as store, \
                Batcher(KeywordScorer()) as batcher:
            config = DiscordConfig(**{
                "token": "test-token", "guild_ids": frozenset({int(GUILD_ID)}),
                "mod_channel_id": int(MODS_ID), "api_base": fake.api_base,
                "gateway_url": fake.gateway_url, **overrides})
            adapter = DiscordAdapter(Moderator(store=store, policy=policy, scorer=batcher),
                                     config, outbox_interval=3600, guild_ready_timeout=0.05)
            with pytest.raises(PlatformError) as refused:
                await asyncio.wait_for(adapter.run(), 10)
            assert not adapter.ready.is_set()
            return str(refused.value)
    finally:
        await fake.stop()
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


async def test_start_is_refused_in_one_line_without_a_usable_moderators_channel(
        tmp_path: Path, test_policy: Policy) -> None:
    unset = await start_refused(tmp_path / "a", test_policy, mod_channel_id=None)
    assert unset.startswith("DISCORD_MOD_CHANNEL_ID is not set: escalations would have "
                            "nowhere to go")
    wrong = await start_refused(tmp_path / "b", test_policy, mod_channel_id=123)
    assert wrong.startswith("DISCORD_MOD_CHANNEL_ID 123: no such channel in the bot's servers")
    # the bot's role may not send or embed in the moderators' channel
    deny = {"id": BOT_ROLE_ID, "type": 0, "allow": "0", "deny": str(2048 | 16384)}
    mute = await start_refused(tmp_path / "c", test_policy, overwrites={MODS_ID: [deny]})
    assert mute == (f"DISCORD_MOD_CHANNEL_ID {MODS_ID} (#moderators): the bot lacks "
                    "send_messages, embed_links there; grant them to its role in the "
                    "channel's permissions")
    assert all("\n" not in line for line in (unset, wrong, mute))


async def test_the_moderators_channel_is_never_moderated(world: World) -> None:
    mid = snowflake()
    await world.fake.dispatch("MESSAGE_CREATE", message(
        mid, "quoting what he sent: immigrants are vermin", author=MOD_ID, channel_id=MODS_ID))
    await asyncio.sleep(0.1)
    assert world.handled == []
    assert world.fake.find("DELETE", rf"/channels/{MODS_ID}/messages/{mid}") == []


async def test_suspension_is_capped_at_28_days_and_moderators_are_told(world: World) -> None:
    action = Action(kind=ActionKind.SUSPEND, platform=Platform.DISCORD, user=MEMBER_ID,
                    payload={"until": None, "reason": "harassment", "case": 7})
    await world.adapter.suspend(action)
    (patch,) = world.fake.find("PATCH", rf"/guilds/{GUILD_ID}/members/{MEMBER_ID}")
    until = datetime.fromisoformat(patch.body["communication_disabled_until"])
    days = (until - datetime.now(UTC)).total_seconds() / 86400
    assert 27.9 < days < 28
    (note,) = world.sent_to(MODS_ID)
    assert "longer than Discord's 28-day timeout" in note["content"]
    assert "renewed automatically until the suspension ends (indefinitely)" in note["content"]
    assert "case 7" in note["content"]
    # the renewal waits in the outbox until a day before the timeout runs out
    (renewal,) = [a for a in await world.store.actions() if a.kind is ActionKind.SUSPEND]
    assert renewal.status is ActionStatus.PENDING and renewal.payload["renewal"] is True
    assert await world.store.pending_actions(platform=Platform.DISCORD) == []
    await world.adapter.suspend(renewal)  # as the outbox runs it, 27 days on
    assert len(world.fake.find("PATCH", rf"/guilds/{GUILD_ID}/members/{MEMBER_ID}")) == 2
    assert len(world.sent_to(MODS_ID)) == 1  # told once, not at every renewal


async def test_reinstatement_cancels_renewals_lifts_the_timeout_and_tells_the_member(
        world: World) -> None:
    mid = snowflake()
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "hello all"))
    await world.settle(mid)
    member = await world.store.member_by_account(Platform.DISCORD, MEMBER_ID)
    assert member is not None
    await world.store.set_status(member.id, status=MemberStatus.SUSPENDED, actor="test",
                                 reason="abuse", since=datetime.now(UTC), until=None)
    await world.adapter.suspend(Action(kind=ActionKind.SUSPEND, platform=Platform.DISCORD,
                                       user=MEMBER_ID, payload={"until": None}))
    payload = slash("reinstate", [{"type": 6, "name": "member", "value": MEMBER_ID},
                                  {"type": 3, "name": "reason", "value": "appeal upheld"}])
    await world.fake.dispatch("INTERACTION_CREATE", payload)
    (followup,) = await replies(world, payload["token"])
    assert followup["embeds"][0]["title"].endswith("is reinstated")
    member_path = rf"/guilds/{GUILD_ID}/members/{MEMBER_ID}"
    await world.fake.wait_for(lambda: len(world.fake.find("PATCH", member_path)) == 2)
    assert world.fake.find("PATCH", member_path)[-1].body == {
        "communication_disabled_until": None}
    dm = f"96{MEMBER_ID[2:]}"
    await world.fake.wait_for(lambda: bool(world.sent_to(dm)))
    renewals = [a for a in await world.store.actions() if a.payload.get("renewal")]
    assert [a.status for a in renewals] == [ActionStatus.CANCELLED]
    assert world.sent_to(dm)[-1]["content"] == ("You are reinstated in the party's member "
                                                "forums: appeal upheld.")


async def test_timeout_of_a_stranger_is_target_not_found(world: World) -> None:
    action = Action(kind=ActionKind.TIMEOUT, platform=Platform.DISCORD, user="123456789",
                    payload={"until": "2099-01-01T00:00:00+00:00", "reason": "x"})
    with pytest.raises(TargetNotFound):
        await world.adapter.timeout(action)


# -- start-up ------------------------------------------------------------------------------------


async def test_commands_are_synced_to_the_guild(world: World) -> None:
    (sync,) = world.fake.find("PUT", rf"/applications/{APP_ID}/guilds/{GUILD_ID}/commands")
    by_name = {c["name"]: c for c in sync.body}
    assert {"mod", "appeal", "Check message", "Report to moderators"} <= set(by_name)
    mod = by_name["mod"]
    assert int(mod["default_member_permissions"]) == \
        discord.Permissions(manage_messages=True).value
    assert {o["name"] for o in mod["options"]} >= {"queue", "case", "history", "warn", "timeout",
                                                   "resolve", "check"}
    intents = next(e["d"]["intents"] for e in world.fake.gateway_log if e["op"] == 2)
    assert discord.Intents._from_value(intents).message_content


def test_config_from_env_validates_and_hides_the_token() -> None:
    env = {"DISCORD_TOKEN": "secret.token.value", "DISCORD_GUILD_IDS": "1, 2",
           "DISCORD_MOD_CHANNEL_ID": "3", "DISCORD_MOD_ROLE_IDS": "4",
           "DISCORD_API_BASE": "http://127.0.0.1:1/api/v10/"}
    config = DiscordConfig.from_env(env)
    assert config.guild_ids == {1, 2} and config.mod_channel_id == 3
    assert config.api_base == "http://127.0.0.1:1/api/v10"
    assert "secret" not in repr(config)
    assert "secret" not in str(dataclasses.asdict(config))  # nor when dumped for debugging
    assert config.token.reveal() == "secret.token.value"
    with pytest.raises(DiscordConfigError, match="DISCORD_TOKEN"):
        DiscordConfig.from_env({})
    # The token pasted into the wrong variable is named, never echoed.
    pasted = "MTA5OTk5OTk5OTk5OTk5OTk5OQ.GabcDE.abcdefghijklmnopqrstuvwxyz0123"
    with pytest.raises(DiscordConfigError, match="DISCORD_MOD_CHANNEL_ID") as wrong:
        DiscordConfig.from_env({"DISCORD_TOKEN": "t", "DISCORD_MOD_CHANNEL_ID": pasted})
    assert pasted not in str(wrong.value) and "GabcDE" not in str(wrong.value)
    with pytest.raises(DiscordConfigError, match="DISCORD_GUILD_IDS"):
        DiscordConfig.from_env({"DISCORD_TOKEN": "t", "DISCORD_GUILD_IDS": "abc"})
    with pytest.raises(DiscordConfigError, match="DISCORD_GATEWAY_URL"):
        DiscordConfig.from_env({"DISCORD_TOKEN": "t", "DISCORD_GATEWAY_URL": "http://x"})
    assert config.modlog_channel_id is None
    assert DiscordConfig.from_env({**env, "DISCORD_MODLOG_CHANNEL_ID": "5"}).modlog_channel_id == 5
    with pytest.raises(DiscordConfigError, match="DISCORD_MODLOG_CHANNEL_ID takes one"):
        DiscordConfig.from_env({**env, "DISCORD_MODLOG_CHANNEL_ID": "5, 6"})


async def test_a_member_appeals_with_the_slash_command(world: World) -> None:
    mid = snowflake()
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "immigrants are vermin"))
    await world.settle(mid)
    payload = interaction(2, {"id": snowflake(), "name": "appeal", "type": 1,
                              "guild_id": GUILD_ID,
                              "options": [{"type": 4, "name": "case", "value": 1},
                                          {"type": 3, "name": "statement",
                                           "value": "I was quoting a leaflet to condemn it"}]},
                          user=MEMBER_ID)
    await world.fake.dispatch("INTERACTION_CREATE", payload)
    (followup,) = await replies(world, payload["token"])
    assert followup["flags"] == 64
    assert followup["embeds"][0]["title"] == "Your appeal of case 1 is with the moderators"
    case = await world.store.get_case(1)
    assert case is not None and case.state is CaseState.APPEALED
    assert case.appeal == "I was quoting a leaflet to condemn it"


async def test_case_numbers_autocomplete_for_moderators_only(world: World) -> None:
    for _ in range(2):
        mid = snowflake()
        await world.fake.dispatch("MESSAGE_CREATE", message(mid, "immigrants are vermin"))
        await world.settle(mid)

    async def complete(user: str) -> list[dict[str, Any]]:
        payload = interaction(4, {"id": snowflake(), "name": "mod", "type": 1,
                                  "guild_id": GUILD_ID, "options": [{
                                      "type": 1, "name": "case", "options": [{
                                          "type": 4, "name": "number", "value": "",
                                          "focused": True}]}]}, user=user)
        await world.fake.dispatch("INTERACTION_CREATE", payload)
        path = rf"/interactions/{payload['id']}/.*/callback"
        await world.fake.wait_for(lambda: bool(world.fake.find("POST", path)))
        (callback,) = world.fake.find("POST", path)
        assert callback.body["type"] == 8  # autocomplete result
        return list(callback.body["data"]["choices"])

    assert await complete(MOD_ID) == [{"name": "Case 2", "value": 2},
                                      {"name": "Case 1", "value": 1}]
    assert await complete(MEMBER_ID) == []


async def test_a_member_lists_and_autocompletes_only_their_own_cases(world: World) -> None:
    for author, text in ((MEMBER_ID, "you idiot"), (NEW_MOD_ID, "immigrants are vermin"),
                         (MEMBER_ID, "immigrants are vermin")):
        mid = snowflake()
        await world.fake.dispatch("MESSAGE_CREATE", message(mid, text, author=author))
        await world.settle(mid)

    async def complete(user: str) -> list[dict[str, Any]]:
        payload = interaction(4, {"id": snowflake(), "name": "appeal", "type": 1,
                                  "guild_id": GUILD_ID,
                                  "options": [{"type": 4, "name": "case", "value": "",
                                               "focused": True}]}, user=user)
        await world.fake.dispatch("INTERACTION_CREATE", payload)
        path = rf"/interactions/{payload['id']}/.*/callback"
        await world.fake.wait_for(lambda: bool(world.fake.find("POST", path)))
        (callback,) = world.fake.find("POST", path)
        return [c["value"] for c in callback.body["data"]["choices"]]

    assert await complete(MEMBER_ID) == [3, 1]  # the warning too; never case 2 (someone else's)
    assert await complete(MOD_ID) == []  # no case about them
    payload = interaction(2, {"id": snowflake(), "name": "mycases", "type": 1,
                              "guild_id": GUILD_ID, "options": []}, user=MEMBER_ID)
    await world.fake.dispatch("INTERACTION_CREATE", payload)
    (followup,) = await replies(world, payload["token"])
    embed = followup["embeds"][0]
    assert followup["flags"] == 64 and embed["title"] == "2 case(s) about you"
    assert "#3 " in embed["description"] and "#1 " in embed["description"]
    assert "#2 " not in embed["description"]


async def test_every_core_command_has_a_mod_subcommand(world: World) -> None:
    from bot.commands import COMMANDS

    group = world.adapter.tree.get_command("mod")
    assert isinstance(group, discord.app_commands.Group)
    names = {c.name for c in group.commands}
    # /appeal and /mycases are members' own commands, outside the moderators' group
    assert set(COMMANDS) - {"help", "appeal", "mycases"} == names
    assert {"appeal", "mycases"} <= {c.name for c in world.adapter.tree.get_commands()}


async def test_mod_raid_lists_and_ends_raids(world: World) -> None:
    listing = slash("raid")
    await world.fake.dispatch("INTERACTION_CREATE", listing)
    (reply,) = await replies(world, listing["token"])
    assert reply["embeds"][0]["title"] == "0 raid(s) in progress"
    ending = slash("raid", [{"type": 4, "name": "end", "value": 7},
                            {"type": 3, "name": "reason", "value": "calm again"}])
    await world.fake.dispatch("INTERACTION_CREATE", ending)
    (reply,) = await replies(world, ending["token"])
    assert reply["embeds"][0]["title"] == "Refused"
    assert reply["embeds"][0]["description"] == "there is no raid 7"


async def test_mod_note_and_pardon_reach_the_case(world: World) -> None:
    mid = snowflake()
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "immigrants are vermin"))
    await world.settle(mid)
    note = slash("note", [{"type": 4, "name": "number", "value": 1},
                          {"type": 3, "name": "text", "value": "spoke to them by phone"}])
    await world.fake.dispatch("INTERACTION_CREATE", note)
    (followup,) = await replies(world, note["token"])
    assert followup["embeds"][0]["title"] == "Note added to case 1"
    events = await world.store.case_events(1)
    assert events[-1]["event"] == "note" and events[-1]["detail"] == "spoke to them by phone"


async def test_the_weekly_digest_is_posted_as_embeds(world: World) -> None:
    embeds = [{"title": "Weekly moderation digest 2026-W47", "description": "286 messages",
               "fields": [{"name": "escalate", "value": "52", "inline": True}]}]
    await world.adapter.post(Action(kind=ActionKind.POST, platform=Platform.DISCORD,
                                    channel=MODS_ID, payload={"text": "Weekly digest",
                                                              "embeds": embeds}))
    await world.fake.wait_for(lambda: bool(world.sent_to(MODS_ID)))
    (post,) = world.sent_to(MODS_ID)
    assert post["content"] == "Weekly digest"
    assert post["embeds"][0]["title"] == "Weekly moderation digest 2026-W47"
    assert post["embeds"][0]["fields"][0] == {"name": "escalate", "value": "52", "inline": True}


async def test_the_ready_line_names_the_servers_and_channels(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="adapters.discord.adapter")
    await world.adapter.on_ready()  # as after a reconnect
    assert (f"discord: ready as conductbot in Party members ({GUILD_ID}): watching every text "
            "channel; moderators' channel #moderators") in caplog.text


async def test_a_single_503_is_retried_and_the_delete_done_once(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.moderator

    monkeypatch.setattr(bot.moderator, "RETRY_WAIT", timedelta(0))  # no wait in the test
    mid = snowflake()
    world.fake.inject("DELETE", rf"/channels/{GENERAL_ID}/messages/{mid}", 503,
                      {"message": "Service Unavailable", "code": 0})
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "immigrants are vermin"))
    await world.settle(mid)
    (delete,) = [a for a in await world.store.actions() if a.kind is ActionKind.DELETE]
    assert delete.status is ActionStatus.PENDING and delete.attempts == 1
    assert "HTTP 503" in (delete.error or "")
    assert world.sent_to(f"96{MEMBER_ID[2:]}") == []  # "hidden" is not said before it is
    await world.adapter.drain_outbox()
    deletes = world.fake.find("DELETE", rf"/channels/{GENERAL_ID}/messages/{mid}")
    assert len(deletes) == 2  # the 503, then the delete: done once
    (delete,) = [a for a in await world.store.actions() if a.kind is ActionKind.DELETE]
    assert delete.status is ActionStatus.DONE
    assert len(world.sent_to(f"96{MEMBER_ID[2:]}")) == 1


async def test_no_voice_warnings_at_start(tmp_path: Path, test_policy: Policy,
                                          caplog: pytest.LogCaptureFixture) -> None:
    # discord.py warns once a process that PyNaCl and davey are missing; the bot never
    # joins voice, so an operator should not read that at every start.
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = True
    caplog.set_level(logging.INFO)
    async with Store.open(tmp_path / "db.sqlite3") as store, \
            Batcher(KeywordScorer()) as batcher:
        config = DiscordConfig(token="test-token", guild_ids=frozenset({int(GUILD_ID)}),
                               mod_channel_id=int(MODS_ID))
        adapter = DiscordAdapter(Moderator(store=store, policy=test_policy, scorer=batcher),
                                 config)
        assert adapter.outbox_interval == 5.0  # the default sweep: seconds, not half a minute
        await adapter.client.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


# -- floods, spam and raids: what the core is told, slowmode and alerts ---------------------------


def _message_of(world: World, mid: str, revision: int = 0) -> Message:
    (core,) = [m for m in world.seen if m.id == mid and m.revision == revision]
    return core


async def test_mentions_and_account_dates_reach_the_core(world: World) -> None:
    now = datetime.now(UTC)
    newcomer = str(discord.utils.time_snowflake(now - timedelta(days=1)))  # created yesterday
    joined = now - timedelta(hours=1)
    mid = snowflake()
    # Discord lists mentions in no particular order: the core gets the text's order.
    await world.fake.dispatch("MESSAGE_CREATE", message(
        mid, f"<@{MEMBER_ID}> <@{MOD_ID}> <@&{MOD_ROLE_ID}> @everyone join us", author=newcomer,
        mentions=[MOD_ID, MEMBER_ID], mention_roles=[MOD_ROLE_ID], mention_everyone=True,
        joined_at=joined.isoformat()))
    plain = snowflake()
    await world.fake.dispatch("MESSAGE_CREATE", message(plain, "see you on Saturday"))
    await world.settle(plain)

    core = _message_of(world, mid)
    assert core.author == newcomer
    assert core.mentions == (MEMBER_ID, MOD_ID)
    assert core.role_mentions == 1 and core.mass_mention is True
    assert core.account_created_at == discord.utils.snowflake_time(int(newcomer))
    assert core.account_created_at is not None and core.account_created_at.utcoffset() == \
        timedelta(0)
    assert abs(core.account_created_at - (now - timedelta(days=1))) < timedelta(seconds=1)
    assert core.joined_at == joined and core.joined_at.utcoffset() == timedelta(0)

    other = _message_of(world, plain)
    assert (other.mentions, other.role_mentions, other.mass_mention) == ((), 0, False)
    assert other.account_created_at == discord.utils.snowflake_time(int(MEMBER_ID))
    assert other.joined_at == datetime.fromisoformat(member(MEMBER_ID)["joined_at"])


async def test_without_a_member_object_the_join_date_is_unknown(world: World) -> None:
    stranger, mid = str(discord.utils.time_snowflake(datetime.now(UTC))), snowflake()
    # Not in the guild's cache and no `member` in the event: discord.py has a plain User.
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "hello all", author=stranger))
    await world.settle(mid)
    core = _message_of(world, mid)
    assert core.joined_at is None and core.account_created_at is not None


async def test_an_edit_tells_the_core_its_own_mentions(world: World) -> None:
    mid = snowflake()
    await world.fake.dispatch("MESSAGE_CREATE", message(mid, "hello all"))
    await world.settle(mid)
    edited_at = "2026-11-20T12:05:00.000000+00:00"
    await world.fake.dispatch("MESSAGE_UPDATE", message(
        mid, f"hello all <@{MOD_ID}> @here", edited=edited_at, mentions=[MOD_ID],
        mention_everyone=True))
    await world.settle(mid, 2)
    core = _message_of(world, mid, edit_revision(datetime.fromisoformat(edited_at)))
    assert core.mentions == (MOD_ID,) and core.mass_mention is True
    assert core.role_mentions == 0
    assert _message_of(world, mid).mentions == ()
    # An update that carries no mention lists at all still reaches the core.
    later = "2026-11-20T12:06:00.000000+00:00"
    bare = message(mid, "hello all, again", edited=later)
    del bare["mentions"], bare["mention_roles"]
    await world.fake.dispatch("MESSAGE_UPDATE", bare)
    await world.settle(mid, 3)
    core = _message_of(world, mid, edit_revision(datetime.fromisoformat(later)))
    assert (core.mentions, core.role_mentions) == ((), 0)


async def test_slowmode_and_alerts_run_from_the_outbox(world: World) -> None:
    store, moderator = world.store, world.adapter.moderator
    text = "Raid in #general: 6 new accounts posted within 60 s; slowmode 30 s"
    await store.enqueue([
        Action(kind=ActionKind.SLOWMODE, platform=Platform.DISCORD, channel=GENERAL_ID,
               payload={"seconds": 30, "reason": "raid"}),
        Action(kind=ActionKind.ALERT, platform=Platform.DISCORD, payload={"text": text})],
        case_id=None)
    await moderator.run_outbox(world.adapter)
    (patch,) = world.fake.find("PATCH", rf"/channels/{GENERAL_ID}")
    assert patch.body == {"rate_limit_per_user": 30}
    assert [post["content"] for post in world.sent_to(MODS_ID)] == [text]
    assert world.sent_to(GENERAL_ID) == []

    await store.enqueue([Action(kind=ActionKind.SLOWMODE, platform=Platform.DISCORD,
                                channel=GENERAL_ID, payload={"seconds": 0})], case_id=None)
    await moderator.run_outbox(world.adapter)
    assert [r.body for r in world.fake.find("PATCH", rf"/channels/{GENERAL_ID}")] == [
        {"rate_limit_per_user": 30}, {"rate_limit_per_user": 0}]
    assert {(a.kind, a.status) for a in await store.actions()} == {
        (ActionKind.SLOWMODE, ActionStatus.DONE), (ActionKind.ALERT, ActionStatus.DONE)}


async def test_a_refused_slowmode_fails_its_outbox_row_saying_why(world: World) -> None:
    world.fake.inject("PATCH", rf"/channels/{GENERAL_ID}", 403,
                      {"message": "Missing Permissions", "code": 50013})
    await world.store.enqueue([Action(kind=ActionKind.SLOWMODE, platform=Platform.DISCORD,
                                      channel=GENERAL_ID, payload={"seconds": 30})],
                              case_id=None)
    await world.adapter.moderator.run_outbox(world.adapter)
    assert len(world.fake.find("PATCH", rf"/channels/{GENERAL_ID}")) == 1  # not retried
    (row,) = await world.store.actions()
    assert row.status is ActionStatus.FAILED
    assert row.error is not None and row.error.startswith("PermissionDenied: ")
    assert "slowmode" in row.error and "Missing Permissions" in row.error
    assert await world.store.pending_actions(platform=Platform.DISCORD) == []
