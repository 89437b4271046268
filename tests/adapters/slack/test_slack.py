"""The real slack-bolt app, served over HTTP on 127.0.0.1 and sent requests signed as Slack signs
them, with its AsyncWebClient talking to a fake Slack Web API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

from adapters.slack import SlackAdapter, SlackConfig, SlackConfigError, from_slack, sign
from adapters.slack.convert import Mentions, mentions_in, ts_revision
from bot.errors import (
    PermissionDenied,
    PlatformError,
    RateLimited,
    TargetNotFound,
    Unavailable,
    UnsupportedAction,
)
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

pytestmark = pytest.mark.timeout(30)

SECRET = "slack-test-signing-secret"
_counter = itertools.count(1)


def next_ts() -> str:
    return f"{int(time.time())}.{next(_counter):06d}"


@dataclass
class World:
    fake: FakeSlack
    adapter: SlackAdapter
    store: Store
    url: str
    http: aiohttp.ClientSession
    handled: list[tuple[tuple[str, str, int], Handled | None]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    #: every Message the core was handed, in order
    seen: list[Message] = field(default_factory=list)

    async def settle(self, mid: str, count: int = 1) -> None:
        """Wait (5 s at most) until `count` deliveries of `mid` were handled and acted on."""
        async with asyncio.timeout(5):
            async with self.changed:
                await self.changed.wait_for(
                    lambda: sum(1 for key, _ in self.handled if key[1] == mid) >= count)
            await asyncio.sleep(0.05)
            await self.adapter.settle()

    async def send(self, body: str, *, content_type: str, ts: int | None = None,
                   secret: str = SECRET, headers: dict[str, str] | None = None
                   ) -> tuple[int, str]:
        stamp = str(int(time.time()) if ts is None else ts)
        sent = {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": sign(secret, stamp, body), **(headers or {})}
        async with self.http.post(f"{self.url}/slack/events", data=body.encode(),
                                  headers=sent) as response:
            return response.status, await response.text()

    async def event(self, event: dict[str, Any], *, event_id: str | None = None,
                    **kw: Any) -> tuple[int, str]:
        envelope = {"token": "legacy", "team_id": TEAM, "api_app_id": "A0APP0001",
                    "type": "event_callback", "event": event,
                    "event_id": event_id or f"Ev{next(_counter):08d}",
                    "event_time": int(time.time()),
                    "authorizations": [{"team_id": TEAM, "user_id": BOT_USER,
                                        "is_bot": True}]}
        return await self.send(json.dumps(envelope), content_type="application/json", **kw)

    async def command(self, name: str, text: str, *, user: str) -> str:
        """Send a slash command; returns the response_url key its answer goes to."""
        key = f"r{next(_counter)}"
        form = {"token": "legacy", "team_id": TEAM, "team_domain": "party",
                "channel_id": MODS, "channel_name": "moderators", "user_id": user,
                "user_name": "someone", "command": name, "text": text,
                "response_url": f"{self.fake.url}/response/{key}",
                "trigger_id": f"trig.{next(_counter)}", "api_app_id": "A0APP0001"}
        status, _ = await self.send(urlencode(form),
                                    content_type="application/x-www-form-urlencoded")
        assert status == 200
        return key

    async def interactive(self, payload: dict[str, Any]) -> tuple[int, str]:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.send(body, content_type="application/x-www-form-urlencoded")

    async def answer(self, key: str) -> dict[str, Any]:
        method = f"response_url:{key}"
        await self.fake.wait_for(lambda: bool(self.fake.find(method)))
        (call,) = self.fake.find(method)
        return call.params


def message(text: str, *, user: str = MEMBER, channel: str = GENERAL,
            ts: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "channel": channel, "user": user, "text": text,
            "ts": ts or next_ts(), "channel_type": "channel", "team": TEAM, **extra}


@pytest.fixture
def overrides() -> dict[str, Any]:
    """SlackConfig fields a test changes (parametrize `overrides` to set them)."""
    return {}


@pytest.fixture
async def world(tmp_path: Path, test_policy: Policy,
                overrides: dict[str, Any]) -> AsyncIterator[World]:
    fake = FakeSlack()
    await fake.start()
    try:
        async with Store.open(tmp_path / "db.sqlite3") as store, \
                Batcher(KeywordScorer()) as batcher, aiohttp.ClientSession() as http:
            moderator = Moderator(store=store, policy=test_policy, scorer=batcher)
            await store.import_member(membership_number="M0001", name="Karen Lomax",
                                      status=MemberStatus.ACTIVE, roles={Role.MODERATOR},
                                      reason=None, suspended_from=None, suspended_until=None,
                                      accounts=[(Platform.SLACK, MODERATOR)], actor="test")
            config = SlackConfig(**{
                "bot_token": "xoxb-test-bot", "user_token": "xoxp-test-admin",
                "signing_secret": SECRET, "mod_channel": MODS, "api_base": fake.api_base,
                **overrides})
            adapter = SlackAdapter(moderator, config, outbox_interval=3600)
            async with adapter.serve_http(host="127.0.0.1", port=0) as port:
                world = World(fake, adapter, store, f"http://127.0.0.1:{port}", http)
                original = moderator.handle

                async def spy(msg: Any, /) -> Handled | None:
                    world.seen.append(msg)
                    result = await original(msg)
                    world.handled.append((msg.key, result))
                    async with world.changed:
                        world.changed.notify_all()
                    return result

                moderator.handle = spy  # type: ignore[method-assign]
                try:
                    yield world
                finally:
                    await adapter.settle()
    finally:
        await fake.stop()


# -- signing ---------------------------------------------------------------------------------------

VECTOR_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmib"
    "IGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")


def test_signing_matches_slacks_published_test_vector() -> None:
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert sign("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, VECTOR_BODY) == expected
    verifier = SignatureVerifier("8f742231b10e8888abcd99yyyzzz85a5")
    assert verifier.generate_signature(timestamp="1531420618", body=VECTOR_BODY) == expected


async def test_forged_and_stale_requests_are_refused(world: World) -> None:
    status, _ = await world.event(message("immigrants are vermin"), secret="not-the-secret")
    assert status == 401
    status, _ = await world.event(message("immigrants are vermin"),
                                  ts=int(time.time()) - 301)
    assert status == 401
    await asyncio.sleep(0.1)
    assert world.handled == []
    assert [c.method for c in world.fake.calls if c.method != "auth.test"] == []


async def test_url_verification_echoes_the_challenge(world: World) -> None:
    body = json.dumps({"token": "legacy", "challenge": "abc123", "type": "url_verification"})
    status, text = await world.send(body, content_type="application/json")
    assert status == 200 and "abc123" in text


# -- messages --------------------------------------------------------------------------------------


async def test_abusive_message_is_deleted_noticed_and_escalated(world: World) -> None:
    fake, event = world.fake, message("immigrants are vermin")
    status, _ = await world.event(event)
    assert status == 200
    await world.settle(event["ts"])

    (delete,) = fake.find("chat.delete")
    assert delete.params == {"channel": GENERAL, "ts": event["ts"]}
    assert delete.token == "xoxp-test-admin"  # members' messages need the admin's user token
    (ephemeral,) = fake.find("chat.postEphemeral")
    assert ephemeral.params["channel"] == GENERAL and ephemeral.params["user"] == MEMBER
    assert "clause 1.2 (No discrimination or hate)" in ephemeral.params["text"]
    (dm_open,) = fake.find("conversations.open")
    assert dm_open.params["users"] == MEMBER
    posts = fake.find("chat.postMessage")
    assert [p.params["channel"] for p in posts] == ["D" + MEMBER[1:], MODS]
    assert "> immigrants are vermin" in posts[0].params["text"]
    assert all(c.token == "xoxb-test-bot" for c in fake.calls if c.method != "chat.delete")

    blocks = posts[1].params["blocks"]
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"].startswith("Case 1: 1.2 No discrimination or hate")
    fields = " ".join(f["text"] for f in blocks[1]["fields"])
    assert f"<@{MEMBER}>" in fields and f"<#{GENERAL}>" in fields
    assert "identity_attack" in fields
    assert "> immigrants are vermin" in blocks[2]["text"]["text"]
    buttons = blocks[-1]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Uphold", "Dismiss", "Hide", "Resolve…"]
    assert buttons[0]["value"] == "resolve 1 uphold upheld from escalation"
    assert buttons[3]["value"] == "1"

    actions = {a.kind: a for a in await world.store.actions()}
    assert actions[ActionKind.DELETE].status is ActionStatus.DONE
    assert actions[ActionKind.ESCALATE].status is ActionStatus.DONE
    # Its strike points wait for a moderator: no timeout (no kick) before review.
    assert ActionKind.TIMEOUT not in actions and world.fake.find("conversations.kick") == []


SHADOW_POLICY = dataclasses.replace(load_policy(ROOT / "tests" / "fixtures" / "policy.toml"),
                                    mode=Mode.SHADOW)


@pytest.mark.parametrize("test_policy", [SHADOW_POLICY])
async def test_in_shadow_mode_only_the_moderators_hear_what_would_have_been_done(
        world: World) -> None:
    event = message("immigrants are vermin")
    await world.event(event)
    await world.settle(event["ts"])
    fake = world.fake
    assert fake.find("chat.delete") == [] and fake.find("chat.postEphemeral") == []
    assert fake.find("conversations.open") == [] and fake.find("conversations.kick") == []
    (post,) = fake.find("chat.postMessage")
    assert post.params["channel"] == MODS
    blocks = post.params["blocks"]
    assert blocks[0]["text"]["text"].startswith("Shadow case 1: 1.2 No discrimination or hate")
    assert post.params["text"].startswith("Shadow case 1:")
    context = blocks[3]["elements"][0]["text"]
    assert context.startswith("Shadow mode: would have escalated; nothing was done.")
    assert [b["text"]["text"] for b in blocks[-1]["elements"]] == [
        "Uphold", "Dismiss", "Hide", "Resolve…"]


@pytest.mark.parametrize("overrides", [{"modlog_channel": "CLOG00001"}])
async def test_the_moderators_log_gets_a_line_per_action(world: World) -> None:
    event = message("immigrants are vermin")
    await world.event(event)
    await world.settle(event["ts"])
    await world.fake.wait_for(lambda: any(p.params["channel"] == "CLOG00001"
                                          for p in world.fake.find("chat.postMessage")))
    (line,) = [p.params["text"] for p in world.fake.find("chat.postMessage")
               if p.params["channel"] == "CLOG00001"]
    assert "bot hid and escalated a message by" in line and line.endswith("· case 1")


async def test_acceptable_message_causes_no_calls(world: World) -> None:
    event = message("Great canvassing in Leeds today")
    await world.event(event)
    await world.settle(event["ts"])
    assert world.handled[-1][1] is not None
    assert world.handled[-1][1].verdict.action == "allow"
    # only the channel's name is looked up (once: it is cached), for channel rules and notices
    assert [c.method for c in world.fake.calls if c.method != "auth.test"] == [
        "conversations.info"]
    again = message("And the rota for Saturday is up")
    await world.event(again)
    await world.settle(again["ts"])
    assert len(world.fake.find("conversations.info")) == 1
    handled = world.handled[-1][1]
    assert handled is not None and handled.message.channel_name == GENERAL.lower()


async def test_retried_event_is_processed_once(world: World) -> None:
    event = message("immigrants are vermin")
    await world.event(event, event_id="EvRETRY001")
    await world.settle(event["ts"])
    status, _ = await world.event(event, event_id="EvRETRY001",
                                  headers={"X-Slack-Retry-Num": "1",
                                           "X-Slack-Retry-Reason": "http_timeout"})
    assert status == 200
    sentinel = message("hello all")
    await world.event(sentinel)
    await world.settle(sentinel["ts"])
    assert [key[1] for key, _ in world.handled] == [event["ts"], sentinel["ts"]]
    assert len(world.fake.find("chat.delete")) == 1


async def test_bots_joins_and_unwatched_channels_are_ignored(world: World) -> None:
    await world.event(message("vermin", bot_id="B0OTHER01"))
    await world.event(message("vermin", subtype="bot_message"))
    await world.event(message("vermin", subtype="channel_join"))
    sentinel = message("hello all")
    await world.event(sentinel)
    await world.settle(sentinel["ts"])
    assert [key[1] for key, _ in world.handled] == [sentinel["ts"]]


async def test_edit_is_rescored_as_a_new_revision(world: World) -> None:
    original = message("I disagree with the motion")
    await world.event(original)
    await world.settle(original["ts"])
    edited_ts = next_ts()
    change = {"type": "message", "subtype": "message_changed", "channel": GENERAL,
              "hidden": True, "ts": edited_ts, "event_ts": edited_ts,
              "message": {**original, "text": "I disagree with the motion, you idiot",
                          "edited": {"user": MEMBER, "ts": edited_ts}},
              "previous_message": original}
    await world.event(change)
    await world.settle(original["ts"], 2)
    await world.event(change)  # a redelivery with a new event_id: the inbox drops it
    sentinel = message("hello all")
    await world.event(sentinel)
    await world.settle(sentinel["ts"])
    revision = ts_revision(edited_ts)
    keys = [(key, h is not None) for key, h in world.handled]
    assert keys == [(("slack", original["ts"], 0), True),
                    (("slack", original["ts"], revision), True),
                    (("slack", sentinel["ts"], 0), True)]
    assert world.fake.find("chat.delete") == []
    (dm,) = world.fake.find("chat.postMessage")
    assert "friendly warning" in dm.params["text"]


def test_convert_threads_and_watch_list() -> None:
    reply = message("a reply", ts="1790000001.000200", thread_ts="1790000000.000100")
    core = from_slack(reply)
    assert core is not None
    assert (core.thread, core.reply_to, core.revision) == ("1790000000.000100",
                                                           "1790000000.000100", 0)
    assert core.sent_at.timestamp() == pytest.approx(1790000001.0002)
    parent = from_slack(message("a parent", ts="1790000000.000100",
                                thread_ts="1790000000.000100"))
    assert parent is not None and parent.reply_to is None
    assert from_slack(message("elsewhere"), watch={"COTHER001"}) is None
    assert from_slack(message("here"), watch={GENERAL}) is not None


@pytest.mark.parametrize("overrides", [{"user_token": None}])
async def test_without_a_user_token_hide_is_unsupported_but_escalated(world: World) -> None:
    event = message("immigrants are vermin")
    await world.event(event)
    await world.settle(event["ts"])
    assert world.fake.find("chat.delete") == []
    actions = {a.kind: a for a in await world.store.actions()}
    assert actions[ActionKind.DELETE].status is ActionStatus.UNSUPPORTED
    assert "SLACK_USER_TOKEN" in (actions[ActionKind.DELETE].error or "")
    assert actions[ActionKind.ESCALATE].status is ActionStatus.DONE
    (post,) = [c for c in world.fake.find("chat.postMessage") if c.params["channel"] == MODS]
    assert post.params["blocks"][0]["text"]["text"].startswith("Case 1:")


# -- commands, buttons, modal ----------------------------------------------------------------------


async def test_mod_queue_answers_moderators_privately(world: World) -> None:
    event = message("immigrants are vermin")
    await world.event(event)
    await world.settle(event["ts"])
    answer = await world.answer(await world.command("/mod", "queue", user=MODERATOR))
    assert answer["response_type"] == "ephemeral"
    blocks = answer["blocks"]
    assert blocks[0] == {"type": "header",
                         "text": {"type": "plain_text", "text": "1 case(s) waiting",
                                  "emoji": True}}
    assert "#1 [p" in blocks[1]["text"]["text"]
    (button,) = blocks[-1]["elements"]
    assert (button["text"]["text"], button["value"]) == ("Case 1", "case 1")


async def test_mod_queue_refuses_members(world: World) -> None:
    answer = await world.answer(await world.command("/mod", "queue", user=MEMBER))
    assert answer["response_type"] == "ephemeral"
    assert answer["blocks"][0]["text"]["text"] == "Not allowed"
    assert "Only moderators" in answer["blocks"][1]["text"]["text"]


@pytest.mark.parametrize("overrides", [{"moderators": frozenset({"UNEWMOD01"})}])
async def test_slack_moderators_map_onto_the_core_role(world: World) -> None:
    answer = await world.answer(await world.command("/mod", "queue", user="UNEWMOD01"))
    assert answer["blocks"][0]["text"]["text"] == "0 case(s) waiting"


async def test_a_member_appeals_with_the_slash_command(world: World) -> None:
    event = message("immigrants are vermin")
    await world.event(event)
    await world.settle(event["ts"])
    answer = await world.answer(await world.command(
        "/appeal", "1 I wasn't attacking anyone, I was quoting a leaflet", user=MEMBER))
    assert answer["blocks"][0]["text"]["text"] == "Your appeal of case 1 is with the moderators"
    case = await world.store.get_case(1)
    assert case is not None and case.state is CaseState.APPEALED
    assert case.appeal == "I wasn't attacking anyone, I was quoting a leaflet"


def block_actions(action: dict[str, Any], *, user: str = MODERATOR) -> dict[str, Any]:
    return {"type": "block_actions", "user": {"id": user, "team_id": TEAM},
            "api_app_id": "A0APP0001", "token": "legacy", "team": {"id": TEAM},
            "channel": {"id": MODS, "name": "moderators"},
            "container": {"type": "message", "channel_id": MODS,
                          "message_ts": "1790000000.000001"},
            "trigger_id": f"trig.{next(_counter)}",
            "actions": [{**action, "block_id": "b1", "type": "button",
                         "action_ts": "1790000000.1"}]}


async def escalation_buttons(world: World) -> list[dict[str, Any]]:
    event = message("immigrants are vermin")
    await world.event(event)
    await world.settle(event["ts"])
    (post,) = [c for c in world.fake.find("chat.postMessage") if c.params["channel"] == MODS]
    return list(post.params["blocks"][-1]["elements"])


async def test_uphold_button_resolves_the_case(world: World) -> None:
    uphold = (await escalation_buttons(world))[0]
    status, _ = await world.interactive(block_actions(
        {"action_id": uphold["action_id"], "value": uphold["value"]}))
    assert status == 200
    await world.fake.wait_for(lambda: bool(world.fake.find("chat.postEphemeral")[1:]))
    answer = world.fake.find("chat.postEphemeral")[-1]
    assert answer.params["user"] == MODERATOR and answer.params["channel"] == MODS
    assert answer.params["blocks"][0]["text"]["text"] == "Case 1 upheld"
    case = await world.store.get_case(1)
    assert case is not None and case.state is CaseState.UPHELD
    assert case.resolution == "upheld from escalation"
    # Upheld, the ladder's one-hour timeout: Slack has none, so the member leaves the channel
    # and a restore row waits for the hour to pass.
    await world.fake.wait_for(lambda: bool(world.fake.find("conversations.kick")))
    (kick,) = world.fake.find("conversations.kick")
    assert kick.params == {"channel": GENERAL, "user": MEMBER}
    await world.adapter.moderator.outbox_idle(Platform.SLACK)  # the kick's run has ended
    restore = next(a for a in await world.store.actions() if a.kind is ActionKind.RESTORE)
    assert restore.status is ActionStatus.PENDING and restore.payload["channels"] == [GENERAL]
    assert await world.store.pending_actions(platform=Platform.SLACK) == []  # not yet

    # Pardoned: the member is invited back now and told.
    await world.command("/mod", "pardon 1 the context was a quotation", user=MODERATOR)
    await world.fake.wait_for(lambda: bool(world.fake.find("conversations.invite")))
    (invite,) = world.fake.find("conversations.invite")
    assert invite.params == {"channel": GENERAL, "users": MEMBER}
    await world.fake.wait_for(lambda: len(world.fake.find("chat.postMessage")) == 3)
    notice = world.fake.find("chat.postMessage")[-1].params
    assert notice["channel"] == "D" + MEMBER[1:]
    assert notice["text"] == ("Case 1 has been pardoned: the context was a quotation. Its "
                              "strike points no longer count. The timeout it caused has been "
                              "lifted.")


async def test_button_clicked_by_a_member_changes_nothing(world: World) -> None:
    dismiss = (await escalation_buttons(world))[1]
    await world.interactive(block_actions(
        {"action_id": dismiss["action_id"], "value": dismiss["value"]}, user=MEMBER))
    await world.fake.wait_for(lambda: bool(world.fake.find("chat.postEphemeral")[1:]))
    answer = world.fake.find("chat.postEphemeral")[-1]
    assert answer.params["blocks"][0]["text"]["text"] == "Not allowed"
    case = await world.store.get_case(1)
    assert case is not None and case.state is CaseState.OPEN


async def test_resolve_modal_resolves_the_case(world: World) -> None:
    resolve = (await escalation_buttons(world))[3]
    payload = block_actions({"action_id": resolve["action_id"], "value": resolve["value"]})
    await world.interactive(payload)
    await world.fake.wait_for(lambda: bool(world.fake.find("views.open")))
    (opened,) = world.fake.find("views.open")
    assert opened.params["trigger_id"] == payload["trigger_id"]
    view = opened.params["view"]
    assert view["callback_id"] == "cb-resolve" and view["private_metadata"] == "1"

    submission = {
        "type": "view_submission", "team": {"id": TEAM}, "api_app_id": "A0APP0001",
        "token": "legacy", "trigger_id": f"trig.{next(_counter)}",
        "user": {"id": MODERATOR, "team_id": TEAM},
        "view": {**view, "id": "V0001", "team_id": TEAM, "state": {"values": {
            "outcome": {"outcome": {"type": "static_select",
                                    "selected_option": {"value": "dismiss"}}},
            "reason": {"reason": {"type": "plain_text_input",
                                  "value": "satire of a tabloid headline"}}}}}}
    status, _ = await world.interactive(submission)
    assert status == 200
    await world.fake.wait_for(
        lambda: any(c.params["channel"] == MODERATOR for c in world.fake.find("chat.postMessage")))
    case = await world.store.get_case(1)
    assert case is not None and case.state is CaseState.DISMISSED
    assert case.resolution == "satire of a tabloid headline"


# -- the port's failures ---------------------------------------------------------------------------


async def test_slack_errors_map_onto_the_core_tree(world: World) -> None:
    adapter, fake = world.adapter, world.fake
    hide = Action(kind=ActionKind.DELETE, platform=Platform.SLACK, channel=GENERAL,
                  message_id="1790000000.000100", user=MEMBER)
    fake.inject("chat.delete", error="cant_delete_message")
    with pytest.raises(PermissionDenied):
        await adapter.hide(hide)
    fake.inject("chat.delete", error="message_not_found")
    with pytest.raises(TargetNotFound):
        await adapter.hide(hide)
    fake.inject("chat.delete", status=429, headers={"Retry-After": "7"})
    with pytest.raises(RateLimited) as limited:
        await adapter.hide(hide)
    assert limited.value.retry_after == 7.0
    fake.inject("chat.delete", status=503, error="service_unavailable")
    with pytest.raises(Unavailable, match="service_unavailable"):  # retried, unlike a refusal
        await adapter.hide(hide)
    fake.inject("chat.delete", error="fatal")
    with pytest.raises(PlatformError) as permanent:
        await adapter.hide(hide)
    assert not isinstance(permanent.value, Unavailable)
    with pytest.raises(UnsupportedAction, match="a timeout without an end"):
        await adapter.timeout(Action(kind=ActionKind.TIMEOUT, platform=Platform.SLACK,
                                     user=MEMBER))


async def test_notice_falls_back_to_dm_when_member_left_the_channel(world: World) -> None:
    world.fake.inject("chat.postEphemeral", error="user_not_in_channel")
    await world.adapter.notify(Action(kind=ActionKind.NOTIFY, platform=Platform.SLACK,
                                      channel=GENERAL, user=MEMBER, payload={"text": "notice"}))
    (dm,) = world.fake.find("chat.postMessage")
    assert dm.params == {"channel": "D" + MEMBER[1:], "text": "notice"}


@pytest.mark.parametrize("overrides", [{"channels": frozenset({GENERAL, "CDEBATE01"})}])
async def test_suspend_removes_the_member_from_watched_channels(world: World) -> None:
    world.fake.inject("conversations.kick", error="not_in_channel")  # already out of one
    await world.adapter.suspend(Action(kind=ActionKind.SUSPEND, platform=Platform.SLACK,
                                       user=MEMBER, payload={"until": None}))
    kicks = world.fake.find("conversations.kick")
    assert [(k.params["channel"], k.params["user"]) for k in kicks] == \
        [("CDEBATE01", MEMBER), (GENERAL, MEMBER)]
    assert [a for a in await world.store.actions() if a.kind is ActionKind.RESTORE] == []


@pytest.mark.parametrize("overrides", [{"channels": frozenset({GENERAL, "CDEBATE01"})}])
async def test_a_suspension_ends_with_a_return_and_a_reinstatement_brings_it_now(
        world: World) -> None:
    until = datetime.now(UTC) + timedelta(days=30)
    await world.adapter.suspend(Action(kind=ActionKind.SUSPEND, platform=Platform.SLACK,
                                       user=MEMBER, payload={"until": until.isoformat()}))
    (back,) = [a for a in await world.store.actions() if a.kind is ActionKind.RESTORE]
    assert back.payload["channels"] == ["CDEBATE01", GENERAL]
    assert await world.store.pending_actions(platform=Platform.SLACK) == []  # in 30 days
    # a reinstatement's lift invites the member back to every watched channel now
    await world.adapter.restore(Action(kind=ActionKind.RESTORE, platform=Platform.SLACK,
                                       user=MEMBER, payload={"lift": True}))
    assert [c.params for c in world.fake.find("conversations.invite")] == [
        {"channel": "CDEBATE01", "users": MEMBER}, {"channel": GENERAL, "users": MEMBER}]


# -- configuration ---------------------------------------------------------------------------------


def test_config_from_env_validates_and_hides_secrets() -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-secret-bot", "SLACK_USER_TOKEN": "xoxp-secret-user",
           "SLACK_SIGNING_SECRET": "secret-signing", "SLACK_CHANNELS": "C1AAA, C2BBB",
           "SLACK_MOD_CHANNEL": "CMODS0001", "SLACK_MODERATORS": "U1AAA",
           "SLACK_API_BASE": "http://127.0.0.1:1/api/"}
    config = SlackConfig.from_env(env)
    assert config.channels == {"C1AAA", "C2BBB"} and config.mod_channel == "CMODS0001"
    assert config.port == 3000 and not config.socket_mode
    for shown in (repr(config), str(config), str(dataclasses.asdict(config))):
        assert not {"xoxb-secret-bot", "xoxp-secret-user", "secret-signing"} & set(
            re.findall(r"[\w-]+", shown)), shown  # nor when a config is dumped
    assert config.user_token is not None and config.user_token.reveal() == "xoxp-secret-user"
    with pytest.raises(SlackConfigError, match="SLACK_BOT_TOKEN"):
        SlackConfig.from_env({})
    # A token pasted into the wrong variable is named, never echoed.
    with pytest.raises(SlackConfigError, match="SLACK_MOD_CHANNEL") as pasted:
        SlackConfig.from_env({**env, "SLACK_MOD_CHANNEL": "xoxb-1234-5678-pasted"})
    assert "pasted" not in str(pasted.value) and "looks like a token" in str(pasted.value)
    with pytest.raises(SlackConfigError, match="SLACK_BOT_TOKEN") as bad:
        SlackConfig.from_env({"SLACK_BOT_TOKEN": "xoxp-wrong-kind", "SLACK_SIGNING_SECRET": "s"})
    assert "wrong-kind" not in str(bad.value)
    with pytest.raises(SlackConfigError, match="SLACK_SIGNING_SECRET"):
        SlackConfig.from_env({"SLACK_BOT_TOKEN": "xoxb-x"})
    assert SlackConfig.from_env({"SLACK_BOT_TOKEN": "xoxb-x",
                                 "SLACK_APP_TOKEN": "xapp-y"}).socket_mode
    with pytest.raises(SlackConfigError, match="SLACK_API_BASE"):
        SlackConfig.from_env({**env, "SLACK_API_BASE": "http://127.0.0.1:1/api"})
    with pytest.raises(SlackConfigError, match="SLACK_PORT"):
        SlackConfig.from_env({**env, "SLACK_PORT": "http"})
    assert config.host == "0.0.0.0"  # Bolt's own default: Slack must reach the endpoint
    assert config.modlog_channel is None
    assert SlackConfig.from_env({**env, "SLACK_MODLOG_CHANNEL": "CLOG1"}).modlog_channel == \
        "CLOG1"
    with pytest.raises(SlackConfigError, match="SLACK_MODLOG_CHANNEL takes one"):
        SlackConfig.from_env({**env, "SLACK_MODLOG_CHANNEL": "CLOG1,CLOG2"})
    assert SlackConfig.from_env({**env, "SLACK_HOST": "127.0.0.1"}).host == "127.0.0.1"
    assert SlackConfig.from_env({**env, "SLACK_HOST": "::1"}).host == "::1"
    for bad in ("0.0.0.0:3000", "two words", "http://localhost"):
        with pytest.raises(SlackConfigError, match="SLACK_HOST must be an IP address"):
            SlackConfig.from_env({**env, "SLACK_HOST": bad})


async def test_serving_binds_the_configured_address_and_bolt_stays_quiet(
        tmp_path: Path, test_policy: Policy, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # Bolt reads SLACK_BOT_TOKEN itself and warned at every start that it "will be unused".
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-bot")
    caplog.set_level(logging.INFO)
    async with Store.open(tmp_path / "db.sqlite3") as store, \
            Batcher(KeywordScorer()) as batcher:
        moderator = Moderator(store=store, policy=test_policy, scorer=batcher)
        config = SlackConfig(bot_token="xoxb-test-bot", signing_secret="s", host="127.0.0.1",
                             port=0)
        adapter = SlackAdapter(moderator, config)
        async with adapter.serve_http() as port, aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/slack/events", data=b"{}") as r:
                assert r.status == 401  # served (and unsigned, so refused)
    assert f"slack: serving HTTP on 127.0.0.1:{port}/slack/events" in caplog.text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


# -- Socket Mode -----------------------------------------------------------------------------------


async def test_socket_mode_delivers_an_event_end_to_end(world: World) -> None:
    config = SlackConfig(bot_token="xoxb-test-bot", user_token="xoxp-test-admin",
                         app_token="xapp-test-app", mod_channel=MODS,
                         api_base=world.fake.api_base)
    adapter = SlackAdapter(world.adapter.moderator, config, outbox_interval=3600)
    event = message("immigrants are vermin")
    async with adapter.socket_mode():
        await world.fake.push({
            "envelope_id": "env-1", "type": "events_api", "accepts_response_payload": False,
            "retry_attempt": 0, "retry_reason": "",
            "payload": {"token": "legacy", "team_id": TEAM, "api_app_id": "A0APP0001",
                        "type": "event_callback", "event": event, "event_id": "EvSOCKET01",
                        "event_time": int(time.time())}})
        await world.settle(event["ts"])
        await adapter.settle()
        await world.fake.wait_for(
            lambda: any(f.get("envelope_id") == "env-1" for f in world.fake.socket_frames))
    (opened,) = world.fake.find("apps.connections.open")
    assert opened.token == "xapp-test-app"
    assert [c.params["channel"] for c in world.fake.find("chat.delete")] == [GENERAL]
    assert [c.params["channel"] for c in world.fake.find("chat.postMessage")][-1] == MODS


# -- running ---------------------------------------------------------------------------------------


def test_runner_knows_slack_and_refuses_a_bad_setting_before_connecting(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from adapters.runner import configured_platforms
    from bot.cli import main

    assert configured_platforms({"SLACK_BOT_TOKEN": "xoxb-1"}) == ["slack"]
    assert configured_platforms({"SLACK_BOT_TOKEN": "xoxb-1", "DISCORD_TOKEN": "d"}) == \
        ["discord", "slack"]
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret-value")
    assert main(["run"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "SLACK_SIGNING_SECRET is not set" in err
    assert "very-secret" not in err


async def test_run_serves_until_cancelled_and_warns_without_a_user_token(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    config = SlackConfig(bot_token="xoxb-test-bot", signing_secret=SECRET, mod_channel=MODS,
                         api_base=world.fake.api_base, port=0)
    caplog.set_level(logging.INFO, logger="adapters.slack.adapter")
    adapter = SlackAdapter(world.adapter.moderator, config)
    task = asyncio.create_task(adapter.run())
    await world.fake.wait_for(lambda: bool(world.fake.find("conversations.info")))
    await asyncio.sleep(0.1)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "SLACK_USER_TOKEN is not set" in caplog.text
    assert "xoxb-test-bot" not in caplog.text
    assert f"slack: ready as @conductbot in Party ({TEAM}): watching every channel the bot " \
           f"is in; moderators' channel #{MODS.lower()}" in caplog.text


@pytest.mark.parametrize(("missing", "not_joined", "mod_channel", "expected"), [
    (set(), set(), None, "SLACK_MOD_CHANNEL is not set: escalations would have nowhere to go"),
    ({MODS}, set(), MODS, f"SLACK_MOD_CHANNEL {MODS}: Slack found no target"),
    (set(), {MODS}, MODS, f"SLACK_MOD_CHANNEL {MODS} (#{MODS.lower()}): the bot is not a "
                          "member"),
])
async def test_start_is_refused_in_one_line_without_a_usable_moderators_channel(
        world: World, missing: set[str], not_joined: set[str], mod_channel: str | None,
        expected: str) -> None:
    world.fake.missing_channels, world.fake.not_joined = missing, not_joined
    config = SlackConfig(bot_token="xoxb-test-bot", signing_secret=SECRET,
                         mod_channel=mod_channel, api_base=world.fake.api_base, port=0)
    with pytest.raises(PlatformError) as refused:
        await asyncio.wait_for(SlackAdapter(world.adapter.moderator, config).run(), 5)
    assert str(refused.value).startswith(expected) and "\n" not in str(refused.value)


async def test_the_moderators_channel_is_never_moderated(world: World) -> None:
    event = message("quoting the abuse: immigrants are vermin", channel=MODS)
    await world.event(event)
    await world.adapter.settle()
    assert world.handled == [] and world.fake.find("chat.delete") == []


async def test_timeout_ends_by_inviting_the_member_back(world: World) -> None:
    until = datetime.now(UTC) + timedelta(hours=2)
    await world.adapter.timeout(Action(
        kind=ActionKind.TIMEOUT, platform=Platform.SLACK, channel=GENERAL, user=MEMBER,
        payload={"until": until.isoformat(), "duration": "2h"}))
    assert [c.params for c in world.fake.find("conversations.kick")] == [
        {"channel": GENERAL, "user": MEMBER}]
    (restore,) = [a for a in await world.store.actions() if a.kind is ActionKind.RESTORE]
    assert restore.status is ActionStatus.PENDING
    assert await world.adapter.moderator.run_outbox(world.adapter) == []  # two hours to go
    world.fake.inject("conversations.invite", error="already_in_channel")  # rejoined early
    await world.adapter.restore(restore)
    await world.adapter.restore(restore)
    assert [c.params for c in world.fake.find("conversations.invite")] == [
        {"channel": GENERAL, "users": MEMBER}] * 2


@pytest.mark.parametrize("overrides", [{"moderator_group": "SMODS0001"}])
async def test_members_of_the_moderator_group_are_moderators(world: World) -> None:
    newcomer = "U9NEWMOD1"
    refused = await world.adapter.run_command(newcomer, "queue")
    assert not refused.ok
    world.fake.usergroups["SMODS0001"] = [newcomer]
    await world.adapter.refresh_moderator_group()
    allowed = await world.adapter.run_command(newcomer, "queue")
    assert allowed.ok and allowed.title.endswith("case(s) waiting")


def test_moderator_group_setting_is_validated() -> None:
    base = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    assert SlackConfig.from_env({**base, "SLACK_MODERATOR_GROUP": "S0MODS001"}
                                ).moderator_group == "S0MODS001"
    with pytest.raises(SlackConfigError, match="SLACK_MODERATOR_GROUP takes one user group"):
        SlackConfig.from_env({**base, "SLACK_MODERATOR_GROUP": "U0NOTAGRP"})


async def test_the_weekly_digest_is_posted_as_blocks(world: World) -> None:
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "Digest 2026-W47"}}]
    await world.adapter.post(Action(kind=ActionKind.POST, platform=Platform.SLACK,
                                    channel="CDIGEST01", payload={"text": "Weekly digest",
                                                                  "blocks": blocks}))
    (call,) = world.fake.find("chat.postMessage")
    assert call.params["channel"] == "CDIGEST01" and call.params["text"] == "Weekly digest"
    posted = call.params["blocks"]
    assert (json.loads(posted) if isinstance(posted, str) else posted) == blocks


@pytest.mark.parametrize("overrides", [{"channels": frozenset({GENERAL, "CDEBATE01",
                                                               "CZZZLAST1"})}])
async def test_a_partial_timeout_queues_a_return_for_each_channel_left(world: World) -> None:
    # in sorted order: CDEBATE01 is left, #general can never be left, the last is rate limited
    until = datetime.now(UTC) + timedelta(hours=1)
    timeout = Action(kind=ActionKind.TIMEOUT, platform=Platform.SLACK, channel=GENERAL,
                     user=MEMBER, payload={"until": until.isoformat(), "case": 4})
    world.fake.injected["conversations.kick"] = [
        (200, {"ok": True}, {}),
        (200, {"ok": False, "error": "cant_kick_from_general"}, {}),
        (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "3"}),
    ]
    with pytest.raises(RateLimited):
        await world.adapter.timeout(timeout)
    (restore,) = [a for a in await world.store.actions() if a.kind is ActionKind.RESTORE]
    assert restore.payload["channels"] == ["CDEBATE01"] and restore.payload["case"] == 4
    # the run stopped at the rate limit: the refusal is reported when a run completes
    assert world.fake.find("chat.postMessage") == []

    # the outbox retries: CDEBATE01 is left already, #general refused again, the last one left
    world.fake.injected["conversations.kick"] = [
        (200, {"ok": False, "error": "not_in_channel"}, {}),
        (200, {"ok": False, "error": "cant_kick_from_general"}, {}),
    ]
    await world.adapter.timeout(timeout)
    restores = [a.payload["channels"] for a in await world.store.actions()
                if a.kind is ActionKind.RESTORE]
    assert restores == [["CDEBATE01"], ["CZZZLAST1"]]
    (report,) = [c for c in world.fake.find("chat.postMessage") if c.params["channel"] == MODS]
    text = report.params["text"]
    assert f"Slack would not remove them from <#{GENERAL}> (cant_kick_from_general)" in text
    assert "removed from 1 other channel(s)" in text and "case 4" in text


@pytest.mark.parametrize("overrides", [{"channels": frozenset({GENERAL})}])
async def test_a_timeout_slack_refuses_everywhere_fails_and_is_reported(world: World) -> None:
    world.fake.inject("conversations.kick", error="cant_kick_from_general")
    until = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(PermissionDenied, match="refused every channel"):
        await world.adapter.timeout(Action(kind=ActionKind.TIMEOUT, platform=Platform.SLACK,
                                           user=MEMBER, payload={"until": until.isoformat()}))
    assert [a for a in await world.store.actions() if a.kind is ActionKind.RESTORE] == []
    (report,) = world.fake.find("chat.postMessage")
    assert report.params["channel"] == MODS and "removed from no channel" in \
        report.params["text"]


async def test_a_rate_limited_dm_does_not_repeat_the_ephemeral_notice(world: World) -> None:
    event = message("you idiot")  # a warning: an ephemeral notice and a DM
    world.fake.inject("chat.postMessage", status=429, headers={"Retry-After": "0"})
    await world.event(event)
    await world.settle(event["ts"])
    (notice,) = [a for a in await world.store.actions() if a.kind is ActionKind.NOTIFY]
    assert notice.status is ActionStatus.PENDING and notice.payload["ephemeral_done"] is True
    await world.adapter.drain_outbox()  # the retry
    assert len(world.fake.find("chat.postEphemeral")) == 1
    dms = [c for c in world.fake.find("chat.postMessage") if c.params["channel"].startswith("D")]
    assert len(dms) == 2  # the rate-limited try and the retry; the member sees it once
    (notice,) = [a for a in await world.store.actions() if a.kind is ActionKind.NOTIFY]
    assert notice.status is ActionStatus.DONE


async def test_bot_run_refuses_to_start_in_one_line(
        world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`bot.py run` with Slack configured but no moderators' channel: the platform's own
    error (which the CLI prints as one line, exit 2), not a task group's traceback."""
    import adapters.runner
    from bot.config import Settings

    for name in ("DISCORD_TOKEN", "SLACK_MOD_CHANNEL", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-bot")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("SLACK_API_BASE", world.fake.api_base)
    monkeypatch.setenv("CONDUCTBOT_DB", str(tmp_path / "run.sqlite3"))
    monkeypatch.setattr(adapters.runner, "build_scorer", lambda settings: KeywordScorer())
    with pytest.raises(PlatformError) as refused:
        await asyncio.wait_for(adapters.runner.run(Settings.from_env()), 10)
    assert str(refused.value).startswith("SLACK_MOD_CHANNEL is not set: escalations would")


# -- floods, spam and raids: what the core is told, slowmode and alerts ---------------------------


async def test_mentions_reach_the_core_and_account_dates_stay_unknown(world: World) -> None:
    noisy = message(f"<@{MODERATOR}> and <@UOTHER001|priya>, <!subteam^S0MODS001|@mods> "
                    f"<!here> <@{MODERATOR}> read this")
    plain = message("see you on Saturday")
    for event in (noisy, plain):
        await world.event(event)
    await world.settle(plain["ts"])
    (core,) = [m for m in world.seen if m.id == noisy["ts"]]
    assert core.mentions == (MODERATOR, "UOTHER001")  # in order, each once
    assert core.role_mentions == 1 and core.mass_mention is True
    assert core.account_created_at is None and core.joined_at is None
    (other,) = [m for m in world.seen if m.id == plain["ts"]]
    assert (other.mentions, other.role_mentions, other.mass_mention) == ((), 0, False)


def test_an_edit_is_parsed_for_mentions_like_a_new_message() -> None:
    original = message("hello all", ts="1790000000.000100")
    change = {"type": "message", "subtype": "message_changed", "channel": GENERAL,
              "hidden": True, "ts": "1790000050.000200",
              "message": {**original, "text": "hello <!channel> <@UOTHER001> "
                                              "<!subteam^S0MODS001> <!subteam^S0PRESS01>",
                          "edited": {"user": MEMBER, "ts": "1790000050.000200"}},
              "previous_message": original}
    core = from_slack(change)
    assert core is not None and core.revision == ts_revision("1790000050.000200")
    assert core.mentions == ("UOTHER001",) and core.role_mentions == 2
    assert core.mass_mention is True
    first = from_slack(original)
    assert first is not None and (first.mentions, first.role_mentions, first.mass_mention) == \
        ((), 0, False)


@pytest.mark.parametrize(("text", "expected"), [
    ("<!here|here> <!channel> <!everyone>", Mentions((), 0, True)),
    ("<@W0ENTERP1> <@U0AAA> <@U0AAA|again>", Mentions(("W0ENTERP1", "U0AAA"), 0, False)),
    ("<!subteam^S1|@a> <!subteam^S1> <!subteam^S2>", Mentions((), 2, False)),
    # channels, links and what a member typed (Slack escapes < and >) are no mentions
    ("<#C0GENERAL|general> <https://example.org|site> &lt;@U0FAKE&gt; @here <!date^1|x>",
     Mentions((), 0, False)),
])
def test_slack_mention_markup(text: str, expected: Mentions) -> None:
    assert mentions_in(text) == expected


def _slack_escaped(text: str) -> str:
    """Text as Slack delivers what a member typed: &, < and > escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_USER_IDS = st.from_regex(r"[UW][A-Z0-9]{2,10}", fullmatch=True)
_LABELS = st.none() | st.text(max_size=8).map(_slack_escaped)
_MARKUP = st.one_of(
    st.tuples(st.just("user"), _USER_IDS, _LABELS),
    st.tuples(st.just("group"), st.from_regex(r"S[A-Z0-9]{2,10}", fullmatch=True), _LABELS),
    st.tuples(st.just("everyone"), st.sampled_from(["here", "channel", "everyone"]), _LABELS))


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_any_text_parses_without_error(text: str) -> None:
    found = mentions_in(text)
    assert all(f"<@{user}" in text for user in found.users)
    assert len(set(found.users)) == len(found.users)
    assert 0 <= found.groups <= text.count("<!subteam^")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text().map(_slack_escaped), min_size=1, max_size=6),
       st.lists(_MARKUP, max_size=5))
def test_inserted_mentions_are_all_found_in_order_once_each(
        fillers: list[str], markup: list[tuple[str, str, str | None]]) -> None:
    parts = [fillers[0]]
    for place, (kind, ident, label) in enumerate(markup):
        head = {"user": f"<@{ident}", "group": f"<!subteam^{ident}", "everyone": f"<!{ident}"}
        parts.append(head[kind] + (f"|{label}" if label is not None else "") + ">")
        parts.append(fillers[(place + 1) % len(fillers)])
    found = mentions_in("".join(parts))
    users = [ident for kind, ident, _ in markup if kind == "user"]
    assert found.users == tuple(dict.fromkeys(users))
    assert found.groups == len({ident for kind, ident, _ in markup if kind == "group"})
    assert found.everyone == any(kind == "everyone" for kind, _, _ in markup)


async def test_a_slowmode_is_unsupported_on_slack_and_an_alert_is_posted(world: World) -> None:
    text = "Raid in #general: 6 new accounts posted within 60 s"
    await world.store.enqueue([
        Action(kind=ActionKind.SLOWMODE, platform=Platform.SLACK, channel=GENERAL,
               payload={"seconds": 30}),
        Action(kind=ActionKind.ALERT, platform=Platform.SLACK, payload={"text": text})],
        case_id=None)
    before = len(world.fake.calls)
    await world.adapter.moderator.run_outbox(world.adapter)
    # the slowmode calls nothing: only the alert reaches Slack
    assert [c.method for c in world.fake.calls[before:]] == ["chat.postMessage"]
    rows = {a.kind: a for a in await world.store.actions()}
    assert rows[ActionKind.SLOWMODE].status is ActionStatus.UNSUPPORTED
    assert "Slack has no slowmode" in (rows[ActionKind.SLOWMODE].error or "")
    assert rows[ActionKind.ALERT].status is ActionStatus.DONE
    (post,) = world.fake.find("chat.postMessage")
    assert post.params["channel"] == MODS and post.params["text"] == text
