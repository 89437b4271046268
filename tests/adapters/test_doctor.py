"""`conductbot doctor` against the loopback fakes: the real discord.py and slack_sdk clients ask,
the fakes answer as a set-up with everything granted, then with one piece missing at a time."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest

from adapters import doctor as checklist
from adapters.discord.doctor import invite_permissions
from adapters.doctor import Report, Status, render_text, run_doctor
from adapters.slack.doctor import BOT_SCOPES, GROUP_SCOPES, PRIVATE_SCOPES, USER_SCOPES
from bot.config import Settings
from bot.errors import ConductError
from bot.models import MemberStatus, Platform, Role
from bot.store import Store
from tests.adapters.discord.fake_discord import (
    BOT_PERMISSIONS,
    BOT_ROLE_ID,
    GENERAL_ID,
    GUILD_ID,
    MOD_ID,
    MOD_ROLE_ID,
    MODS_ID,
    FakeDiscord,
    channel,
)
from tests.adapters.slack.fake_slack import ADMIN, GENERAL, MODERATOR, MODS, FakeSlack
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(60)

DIGEST_ID = "920000000000000003"  # the Discord digest channel
RANDOM_ID = "920000000000000004"
SLACK_DIGEST = "CDIGEST01"
GONE = "940000000000000099"  # a Discord id that is nobody in the server
VIEW, SEND, MANAGE, EMBED, HISTORY, TIMEOUT = 1024, 2048, 8192, 16384, 65536, 1 << 40
MANAGE_CHANNELS = 16
#: What a watched channel needs under the default policy (raids answered with slowmode).
WATCHED = "View Channel, Read Message History, Manage Messages and Manage Channels"

#: The checks a complete set-up passes, in the order a user reads them.
ALL_GOOD = [
    ("discord", "token accepted: logged in as conductbot (900000000000000001)"),
    ("discord", "Message Content Intent enabled"),
    ("discord", "Server Members Intent enabled"),
    ("discord", "no Interactions Endpoint URL: slash commands and buttons reach the bot over "
                "the gateway"),
    ("discord", "in server Party members: 910000000000000001; the bot's role: @conductbot"),
    ("discord", "server Party members: Timeout Members"),
    ("discord", "moderators' channel #moderators: View Channel, Send Messages and Embed Links"),
    ("discord", f"#general (watched): {WATCHED}"),
    ("discord", "#digest (digest): View Channel, Send Messages and Embed Links"),
    ("discord", "DISCORD_MOD_ROLE_IDS 930000000000000001: role @Moderator in Party members"),
    ("discord", "moderator Karen Lomax (KAREN, M0001): @karen in Party members"),
    ("slack", "bot token accepted: @conductbot in Party (T0PARTY01)"),
    *[("slack", f"bot scope {scope}: {why}") for scope, why in BOT_SCOPES.items()],
    ("slack", "moderators' channel #cmods0001: the bot is a member"),
    ("slack", "#cgeneral1 (watched): the bot is a member"),
    ("slack", "#cdigest01 (digest): the bot is a member"),
    ("slack", "admin user token (deletes): @alex, a workspace admin"),
    ("slack", "moderator Karen Lomax (KAREN, M0001): @karen"),
]


@dataclass
class Fakes:
    discord: FakeDiscord
    slack: FakeSlack
    env: dict[str, str]
    db: Path

    async def doctor(self, **changes: str | None) -> Report:
        """Run the doctor with the environment changed (None removes a variable)."""
        env = {**self.env, **changes}
        return await run_doctor(Settings(db=self.db),
                                {k: v for k, v in env.items() if v is not None})

    async def register(self, name: str, number: str, *accounts: tuple[Platform, str]) -> None:
        async with Store.open(self.db) as store:
            await store.import_member(membership_number=number, name=name,
                                      status=MemberStatus.ACTIVE, roles={Role.MODERATOR},
                                      reason=None, suspended_from=None, suspended_until=None,
                                      accounts=list(accounts), actor="test")


@pytest.fixture
async def fakes(tmp_path: Path) -> AsyncIterator[Fakes]:
    saved = discord.http.Route.BASE
    fake_discord, fake_slack = FakeDiscord(), FakeSlack()
    fake_discord.extra_channels = [channel(DIGEST_ID, "digest", 2)]
    await fake_discord.start()
    await fake_slack.start()
    env = {
        "DISCORD_TOKEN": "test-token", "DISCORD_GUILD_IDS": GUILD_ID,
        "DISCORD_MOD_CHANNEL_ID": MODS_ID, "DISCORD_WATCH_CHANNEL_IDS": GENERAL_ID,
        "DISCORD_MOD_ROLE_IDS": MOD_ROLE_ID, "DISCORD_API_BASE": fake_discord.api_base,
        "CONDUCTBOT_DIGEST_DISCORD_CHANNEL": DIGEST_ID,
        "SLACK_BOT_TOKEN": "xoxb-test-bot", "SLACK_USER_TOKEN": "xoxp-test-admin",
        "SLACK_SIGNING_SECRET": "secret", "SLACK_MOD_CHANNEL": MODS,
        "SLACK_CHANNELS": GENERAL, "SLACK_API_BASE": fake_slack.api_base,
        "CONDUCTBOT_DIGEST_SLACK_CHANNEL": SLACK_DIGEST,
    }
    world = Fakes(fake_discord, fake_slack, env, tmp_path / "db.sqlite3")
    await world.register("Karen Lomax", "M0001", (Platform.DISCORD, MOD_ID),
                         (Platform.SLACK, MODERATOR))
    try:
        yield world
    finally:
        await fake_discord.stop()
        await fake_slack.stop()
        discord.http.Route.BASE = saved


def lines(report: Report) -> list[tuple[str, str]]:
    """(platform, 'name: detail') of every check."""
    return [(c.platform, c.name + (f": {c.detail}" if c.detail else "")) for c in report.checks]


def stable(text: str) -> str:
    """Member ids are random: show them by their member's first name."""
    names = {"M0001": "KAREN", "M0002": "SAM"}
    return re.sub(r"\(m-[0-9a-f]+, (M000\d)\)", lambda m: f"({names[m[1]]}, {m[1]})", text)


async def test_everything_granted_passes_every_check_and_changes_nothing(fakes: Fakes) -> None:
    report = await fakes.doctor()
    assert [(p, stable(line)) for p, line in lines(report)] == ALL_GOOD
    assert report.failures == [] and report.exit_code == 0
    assert all(c.status is Status.OK for c in report.checks)
    text = stable(render_text(report))
    assert text.startswith("Discord: all 11 checks passed\n  ✓ token accepted: logged in as "
                           "conductbot (900000000000000001)\n")
    assert "\nSlack: all 13 checks passed\n" in text
    assert text.endswith("\nEverything the bot needs is in place.\n")
    assert "fix:" not in text
    # Read-only: Discord was only asked (GET), Slack only read methods were called.
    assert {r.method for r in fakes.discord.requests} == {"GET"}
    assert {c.method for c in fakes.slack.calls} == {"auth.test", "conversations.info",
                                                     "users.info"}
    # The user token is used only to ask who it is.
    assert {c.method for c in fakes.slack.calls if c.token == "xoxp-test-admin"} == {
        "auth.test"}
    assert discord.http.Route.BASE == "https://discord.com/api/v10"  # put back


def deny(target: str, bits: int, *, kind: int = 0) -> dict[str, Any]:
    """A channel permission overwrite denying `bits` to a role (kind 0) or member (1)."""
    return {"id": target, "type": kind, "allow": "0", "deny": str(bits)}


Setup = Callable[[Fakes], Any]


def _no_message_content(f: Fakes) -> None:
    f.discord.app_flags = 1 << 14  # Server Members only


def _no_members_intent(f: Fakes) -> None:
    f.discord.app_flags = 1 << 18


def _manage_denied_in_general(f: Fakes) -> None:
    f.discord.overwrites[GENERAL_ID] = [deny(BOT_ROLE_ID, MANAGE)]


def _no_timeouts(f: Fakes) -> None:
    f.discord.role_permissions[BOT_ROLE_ID] = str(int(BOT_PERMISSIONS) & ~TIMEOUT)


def _mods_hidden(f: Fakes) -> None:
    f.discord.overwrites[MODS_ID] = [deny(GUILD_ID, VIEW), deny(BOT_ROLE_ID, VIEW)]


def _digest_without_embeds(f: Fakes) -> None:
    f.discord.overwrites[DIGEST_ID] = [deny("900000000000000001", EMBED, kind=1)]


async def _discord_moderator_gone(f: Fakes) -> None:
    await f.register("Sam Gone", "M0002", (Platform.DISCORD, GONE))


def _interactions_url(f: Fakes) -> None:
    f.discord.inject("GET", "/oauth2/applications/@me", 200, {
        "id": "900000000000000001", "name": "conductbot", "icon": None, "description": "",
        "bot_public": False, "bot_require_code_grant": False, "verify_key": "00",
        "owner": {"id": MOD_ID, "username": "karen", "discriminator": "0", "avatar": None},
        "flags": (1 << 18) | (1 << 14),
        "interactions_endpoint_url": "https://bot.example.org/interactions"})


def _slack_scope_missing(f: Fakes) -> None:
    f.slack.bot_scopes.remove("chat:write")


def _private_channel_scope_missing(f: Fakes) -> None:
    f.slack.private_channels.add(GENERAL)
    f.slack.bot_scopes.remove("groups:write")


def _slack_not_in_watched(f: Fakes) -> None:
    f.slack.not_joined.add(GENERAL)


def _slack_not_in_digest(f: Fakes) -> None:
    f.slack.not_joined.add(SLACK_DIGEST)


def _slack_not_in_mods(f: Fakes) -> None:
    f.slack.not_joined.add(MODS)


def _slack_watched_missing(f: Fakes) -> None:
    f.slack.missing_channels.add(GENERAL)


def _user_not_admin(f: Fakes) -> None:
    f.slack.users[ADMIN] = {"name": "alex"}


def _user_token_cannot_write(f: Fakes) -> None:
    f.slack.user_scopes.clear()


async def _slack_moderator_gone(f: Fakes) -> None:
    await f.register("Sam Gone", "M0002", (Platform.SLACK, "UGONE0001"))


def _slack_moderator_deactivated(f: Fakes) -> None:
    f.slack.users["UOLD00001"] = {"name": "old", "deleted": True}
    f.env["SLACK_MODERATORS"] = "UOLD00001"


def _app_token_refused(f: Fakes) -> None:
    f.env["SLACK_APP_TOKEN"] = "xapp-test"
    f.slack.inject("apps.connections.open", error="invalid_auth")


def _user_token_unset(f: Fakes) -> None:
    del f.env["SLACK_USER_TOKEN"]


def _mod_role_unknown(f: Fakes) -> None:
    f.env["DISCORD_MOD_ROLE_IDS"] = "123"


MISSING: list[tuple[str, Setup, str, str, str]] = [
    # (test id, what is missing, the one failing check: name: detail, its fix, platform)
    ("message-content-intent", _no_message_content,
     "Message Content Intent enabled: off: without it Discord sends empty message text and "
     "nothing can be moderated",
     "https://discord.com/developers/applications/900000000000000001/bot → Privileged Gateway "
     "Intents: turn on Message Content Intent, then Save Changes", "discord"),
    ("server-members-intent", _no_members_intent,
     "Server Members Intent enabled: off: members' roles (moderator and exempt roles) and "
     "timeouts",
     "https://discord.com/developers/applications/900000000000000001/bot → Privileged Gateway "
     "Intents: turn on Server Members Intent, then Save Changes", "discord"),
    ("manage-messages-overwrite", _manage_denied_in_general,
     f"#general (watched): {WATCHED}: the bot "
     "lacks Manage Messages, needed to delete (hide) members' messages",
     "in Party members: #general → Edit Channel → Permissions: the overwrite for @conductbot "
     "denies Manage Messages; allow Manage Messages for the bot's role @conductbot there (or "
     "remove the denial)", "discord"),
    ("moderate-members-role", _no_timeouts,
     "server Party members: Timeout Members: the bot's roles do not grant Timeout Members, "
     "needed to time members out (timeouts, suspensions)",
     "in Party members: Server Settings → Roles → @conductbot: turn on Timeout Members; and "
     "keep that role above the roles of the members it must time out", "discord"),
    ("discord-mods-hidden", _mods_hidden,
     "moderators' channel #moderators: View Channel, Send Messages and Embed Links: the bot "
     "lacks View Channel, Send Messages and Embed Links, needed to see the channel; post "
     "there; post escalations and the digest, which are embeds",
     "in Party members: #moderators → Edit Channel → Permissions: the overwrite for @everyone "
     "and @conductbot denies View Channel; allow View Channel for the bot's role @conductbot "
     "there (or remove the denial) (without View Channel the other permissions do not apply)",
     "discord"),
    ("discord-digest-embeds", _digest_without_embeds,
     "#digest (digest): View Channel, Send Messages and Embed Links: the bot lacks Embed "
     "Links, needed to post escalations and the digest, which are embeds",
     "in Party members: #digest → Edit Channel → Permissions: the overwrite for the bot "
     "itself denies Embed Links; allow Embed Links for the bot's role @conductbot there (or "
     "remove the denial)", "discord"),
    ("discord-moderator-not-found", _discord_moderator_gone,
     f"moderator Sam Gone (SAM, M0002): discord:{GONE} is not a member of Party members",
     "correct the Discord id in the register and import it again (conductbot members "
     "import), or invite them to the server", "discord"),
    ("discord-mod-role-unknown", _mod_role_unknown,
     "DISCORD_MOD_ROLE_IDS 123: no such role in the bot's servers",
     "Server Settings → Roles → ⋯ next to the role → Copy Role ID, and put that id in "
     "DISCORD_MOD_ROLE_IDS", "discord"),
    ("interactions-endpoint", _interactions_url,
     "no Interactions Endpoint URL: set to https://bot.example.org/interactions: slash "
     "commands and buttons go there instead of to the bot",
     "https://discord.com/developers/applications/900000000000000001/information → clear "
     "Interactions Endpoint URL, then Save Changes", "discord"),
    ("slack-scope", _slack_scope_missing,
     "bot scope chat:write: not granted: notices, escalations, answers and the digest "
     "(chat.postMessage, chat.postEphemeral)",
     "https://api.slack.com/apps → your app → OAuth & Permissions → Scopes → Bot Token Scopes: "
     "add chat:write (or add it to the app manifest), then Reinstall to Workspace", "slack"),
    ("slack-private-scope", _private_channel_scope_missing,
     "bot scope groups:write: not granted: remove members from private channels "
     "(conversations.kick)",
     "https://api.slack.com/apps → your app → OAuth & Permissions → Scopes → Bot Token Scopes: "
     "add groups:write (or add it to the app manifest), then Reinstall to Workspace", "slack"),
    ("slack-not-in-watched", _slack_not_in_watched,
     "#cgeneral1 (watched): the bot is a member: no, so it receives no messages there and "
     "cannot remove members from it",
     "in Slack, open #cgeneral1 and type /invite @conductbot", "slack"),
    ("slack-watched-unknown", _slack_watched_missing,
     "watched channel CGENERAL1: no such channel, or a private one the bot is not in "
     "(SLACK_CHANNELS)",
     "check the id in SLACK_CHANNELS (channel details → About → Channel ID); for a private "
     "channel, /invite @conductbot there", "slack"),
    ("slack-not-in-digest", _slack_not_in_digest,
     "#cdigest01 (digest): the bot is a member: no, so it cannot post the digest there",
     "in Slack, open #cdigest01 and type /invite @conductbot", "slack"),
    ("slack-not-in-mods", _slack_not_in_mods,
     "moderators' channel #cmods0001: the bot is a member: no, so it cannot post escalations "
     "there", "in Slack, open #cmods0001 and type /invite @conductbot", "slack"),
    ("user-token-unset", _user_token_unset,
     "admin user token (deletes): SLACK_USER_TOKEN is not set: a bot token can delete only "
     "the bot's own messages, so hides are recorded as unsupported and moderators must delete "
     "by hand",
     "a workspace admin or owner installs the app (https://api.slack.com/apps → your app → "
     "Install App) and SLACK_USER_TOKEN is set to the User OAuth Token (xoxp-) shown there",
     "slack"),
    ("user-token-not-admin", _user_not_admin,
     "admin user token (deletes): it belongs to @alex, who is not a workspace admin or owner: "
     "Slack lets only admins delete others' messages",
     "a workspace admin or owner installs the app (https://api.slack.com/apps → your app → "
     "Install App) and SLACK_USER_TOKEN is set to the User OAuth Token (xoxp-) shown there",
     "slack"),
    ("user-token-scope", _user_token_cannot_write,
     "user scope chat:write: not granted: delete members' messages (chat.delete)",
     "https://api.slack.com/apps → your app → OAuth & Permissions → Scopes → User Token "
     "Scopes: add chat:write (or add it to the app manifest), then Reinstall to Workspace (as "
     "a workspace admin) and update SLACK_USER_TOKEN", "slack"),
    ("slack-moderator-not-found", _slack_moderator_gone,
     "moderator Sam Gone (SAM, M0002): slack:UGONE0001: no such user in the workspace",
     "correct the Slack id in the register (profile → ⋯ → Copy member ID) and import it again "
     "(conductbot members import)", "slack"),
    ("slack-moderator-deactivated", _slack_moderator_deactivated,
     "SLACK_MODERATORS UOLD00001: @old (UOLD00001) is deactivated",
     "correct the id in SLACK_MODERATORS (profile → ⋯ → Copy member ID)", "slack"),
    ("app-token", _app_token_refused,
     "app-level token (Socket Mode): Slack refused SLACK_APP_TOKEN: invalid_auth",
     "https://api.slack.com/apps → your app → Basic Information → App-Level Tokens: generate "
     "one with connections:write into SLACK_APP_TOKEN, and turn on Socket Mode", "slack"),
]


@pytest.mark.parametrize(("setup", "failure", "fix", "platform"),
                         [m[1:] for m in MISSING], ids=[m[0] for m in MISSING])
async def test_each_missing_piece_fails_exactly_its_check_with_the_fix(
        fakes: Fakes, setup: Setup, failure: str, fix: str, platform: str) -> None:
    done = setup(fakes)
    if asyncio.iscoroutine(done):
        await done
    report = await fakes.doctor()
    assert [stable(f"{c.name}: {c.detail}") for c in report.failures] == [failure]
    assert [(c.platform, c.fix) for c in report.failures] == [(platform, fix)]
    assert report.exit_code == 1
    # What a user reads: the cross, the check, and the fix indented under it.
    text = stable(render_text(report))
    title = {"discord": "Discord", "slack": "Slack"}[platform]
    assert re.search(rf"^{title}: 1 of \d+ checks failed$", text, re.MULTILINE)
    shown = text.splitlines()
    at = next(i for i, line in enumerate(shown) if line.startswith("  ✗ "))
    assert shown[at:at + 2] == [f"  ✗ {failure}", f"      fix: {fix}"]
    assert text.endswith("\n1 check(s) failed: fix them and run `conductbot doctor` again.\n")


async def test_a_manage_messages_denial_is_reported_for_json(fakes: Fakes) -> None:
    _manage_denied_in_general(fakes)
    data = json.loads(checklist.to_json(await fakes.doctor()))
    assert data["ok"] is False and data["failed"] == 1
    bad = [c for c in data["checks"] if c["status"] == "fail"]
    assert bad == [{
        "platform": "discord",
        "check": f"#general (watched): {WATCHED}",
        "status": "fail",
        "detail": "the bot lacks Manage Messages, needed to delete (hide) members' messages",
        "fix": bad[0]["fix"], "channel": GENERAL_ID, "missing": ["manage_messages"]}]
    assert "denies Manage Messages" in bad[0]["fix"]


async def test_limited_intent_flags_count_as_enabled(fakes: Fakes) -> None:
    # Unverified bots in fewer than 100 servers get the *_LIMITED flags.
    fakes.discord.app_flags = (1 << 19) | (1 << 15)
    assert (await fakes.doctor()).failures == []


async def test_private_channel_scopes_are_needed_only_for_private_channels(
        fakes: Fakes) -> None:
    for scope in PRIVATE_SCOPES:
        fakes.slack.bot_scopes.remove(scope)
    report = await fakes.doctor()
    assert report.failures == []  # every configured channel is public
    assert not any("groups:" in c.name for c in report.checks)
    # With SLACK_CHANNELS empty the bot moderates every channel it is in, private ones too.
    report = await fakes.doctor(SLACK_CHANNELS=None)
    assert [c.name for c in report.failures] == [f"bot scope {s}" for s in PRIVATE_SCOPES]
    assert [(c.status, c.name) for c in report.checks if c.name == "suspensions"] == [
        (Status.WARN, "suspensions")]


async def test_a_moderator_group_needs_its_scope(fakes: Fakes) -> None:
    fakes.slack.usergroups["S0MODS001"] = [MODERATOR]
    fakes.slack.bot_scopes.remove("usergroups:read")
    report = await fakes.doctor(SLACK_MODERATOR_GROUP="S0MODS001")
    assert [c.name for c in report.failures] == ["bot scope usergroups:read"]
    assert ("slack", "moderator group S0MODS001: 1 member(s)") in lines(report)


async def test_without_a_watch_list_every_visible_channel_is_checked(fakes: Fakes) -> None:
    fakes.discord.extra_channels += [channel(RANDOM_ID, "random", 3),
                                     channel("920000000000000005", "staff", 4)]
    fakes.discord.overwrites[RANDOM_ID] = [deny(BOT_ROLE_ID, MANAGE | HISTORY)]
    fakes.discord.overwrites["920000000000000005"] = [deny(GUILD_ID, VIEW)]  # not seen
    report = await fakes.doctor(DISCORD_WATCH_CHANNEL_IDS=None)
    assert [f"{c.name}: {c.detail}" for c in report.failures] == [
        "#random (watched): View Channel, Read Message History, Manage Messages and Manage "
        "Channels: the bot lacks Read Message History and Manage Messages, needed to catch up "
        "after a restart; delete (hide) members' messages"]
    good = next(c for c in report.checks if c.name.startswith("watched channels"))
    assert (good.name, good.detail) == (
        "watched channels: Read Message History, Manage Messages and Manage Channels",
        "in all 2 channel(s) the bot can see (DISCORD_WATCH_CHANNEL_IDS is empty: every one "
        "is moderated)")
    assert good.data["channels"] == ["#general in Party members", "#digest in Party members"]


async def test_a_server_the_bot_is_not_in(fakes: Fakes) -> None:
    report = await fakes.doctor(DISCORD_GUILD_IDS="910000000000000999")
    discord_failures = [c for c in report.failures if c.platform == "discord"]
    first = discord_failures[0]
    assert (first.name, first.detail) == (
        "in server 910000000000000999",
        "the bot is not a member of this server (DISCORD_GUILD_IDS)")
    assert "https://discord.com/oauth2/authorize?client_id=900000000000000001" in first.fix
    assert f"permissions={invite_permissions().value}" in first.fix
    assert "moderators' channel 920000000000000002: no such channel in the bot's servers " \
           "(DISCORD_MOD_CHANNEL_ID)" in [f"{c.name}: {c.detail}" for c in discord_failures]


async def test_without_a_register_moderators_must_come_from_the_configuration(
        fakes: Fakes, tmp_path: Path) -> None:
    missing = tmp_path / "none" / "db.sqlite3"
    fakes.db = missing
    report = await fakes.doctor(DISCORD_MOD_ROLE_IDS=None)
    assert [f"{c.platform} {c.name}: {c.detail}" for c in report.failures] == [
        f"discord moderators: there is no database at {missing}, and DISCORD_MOD_ROLE_IDS is "
        "empty: nobody can resolve escalations on Discord",
        f"slack moderators: there is no database at {missing}, and SLACK_MODERATORS and "
        "SLACK_MODERATOR_GROUP are empty: nobody can resolve escalations on Slack"]
    assert not missing.exists()  # asking created no empty database
    report = await fakes.doctor(SLACK_MODERATORS=MODERATOR)
    assert report.failures == []
    assert ("slack", "SLACK_MODERATORS UMOD00001: @karen") in lines(report)


async def test_a_refused_token_or_an_unreachable_platform_is_one_failed_check(
        fakes: Fakes) -> None:
    fakes.discord.inject("GET", "/users/@me", 401, {"message": "401: Unauthorized", "code": 0})
    fakes.slack.inject("auth.test", error="invalid_auth")
    report = await fakes.doctor()
    assert [(c.platform, c.name, c.detail) for c in report.checks] == [
        ("discord", "token accepted", "Discord refused DISCORD_TOKEN"),
        ("slack", "bot token accepted", "Slack refused SLACK_BOT_TOKEN: invalid_auth")]
    report = await fakes.doctor(DISCORD_API_BASE="http://127.0.0.1:9/api/v10",
                                SLACK_API_BASE="http://127.0.0.1:9/api/")
    assert [(c.platform, c.name, c.status) for c in report.checks] == [
        ("discord", "Discord reachable", Status.FAIL), ("slack", "Slack reachable", Status.FAIL)]
    assert all(c.detail.startswith(("could not reach Discord: ", "could not reach Slack: "))
               for c in report.checks)


async def test_a_platform_that_does_not_answer_in_time(fakes: Fakes,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checklist, "DOCTOR_TIMEOUT", 0.3)

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up and closes
        writer.close()

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    async with silent:
        report = await fakes.doctor(DISCORD_API_BASE=f"http://127.0.0.1:{port}/api/v10",
                                    SLACK_BOT_TOKEN=None, CONDUCTBOT_DIGEST_SLACK_CHANNEL=None)
    assert [(c.name, c.detail, c.fix) for c in report.checks] == [
        ("Discord answered in time", "no complete answer within 0.3 s",
         "check the network (and DISCORD_API_BASE if set), then run doctor again")]


async def test_only_configured_platforms_are_checked(fakes: Fakes) -> None:
    report = await fakes.doctor(DISCORD_TOKEN=None, CONDUCTBOT_DIGEST_DISCORD_CHANNEL=None)
    assert report.platforms == ("slack",)
    assert {c.platform for c in report.checks} == {"slack"}
    assert fakes.discord.requests == []
    with pytest.raises(ConductError, match="no platform is configured"):
        await fakes.doctor(DISCORD_TOKEN=None, SLACK_BOT_TOKEN=None)
    with pytest.raises(ConductError, match="the digest is set to post to discord"):
        await fakes.doctor(DISCORD_TOKEN=None)


def test_the_documented_set_up_grants_what_doctor_checks() -> None:
    # docs/slack.md's manifest asks for every scope the doctor may require.
    manifest = (ROOT / "docs" / "slack.md").read_text(encoding="utf-8")
    bot_part, user_part = manifest.split("    user:", 1)
    bot = set(re.findall(r"^      - ([a-z:]+)", bot_part.split("    bot:", 1)[1],
                         re.MULTILINE))
    user = set(re.findall(r"^      - ([a-z:]+)", user_part.split("settings:", 1)[0],
                          re.MULTILINE))
    assert bot == {*BOT_SCOPES, *PRIVATE_SCOPES, *GROUP_SCOPES}
    assert user == set(USER_SCOPES)
    # docs/discord.md's invite link grants every permission the doctor checks.
    guide = (ROOT / "docs" / "discord.md").read_text(encoding="utf-8")
    invite = int(re.search(r"permissions=(\d+)", guide)[1])  # type: ignore[index]
    assert invite_permissions() <= discord.Permissions(invite)
    assert "conductbot doctor" in guide and "conductbot doctor" in manifest


async def _cli(fakes: Fakes, *args: str, **changes: str | None) -> tuple[int, str, str]:
    """`python bot.py doctor ARGS` with the fakes' environment, as a user runs it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DISCORD_", "SLACK_", "CONDUCTBOT_"))}
    env.update({k: v for k, v in {**fakes.env, **changes}.items() if v is not None})
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bot.py"), "doctor", "--db", str(fakes.db), *args,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_command_prints_the_checklist_and_exits_by_the_result(fakes: Fakes) -> None:
    code, out, err = await _cli(fakes)
    assert (code, err) == (0, "")
    assert out.endswith("Everything the bot needs is in place.\n")
    _no_message_content(fakes)
    _slack_not_in_watched(fakes)
    code, out, err = await _cli(fakes)
    assert code == 1 and err == ""
    assert "Discord: 1 of 11 checks failed\n" in out and "Slack: 1 of 13 checks failed\n" in out
    assert ("  ✗ Message Content Intent enabled: off: without it Discord sends empty message "
            "text and nothing can be moderated\n      fix: https://discord.com/developers/"
            "applications/900000000000000001/bot → Privileged Gateway Intents: turn on "
            "Message Content Intent, then Save Changes\n") in out
    assert ("  ✗ #cgeneral1 (watched): the bot is a member: no, so it receives no messages "
            "there and cannot remove members from it\n      fix: in Slack, open #cgeneral1 and "
            "type /invite @conductbot\n") in out
    assert out.endswith("2 check(s) failed: fix them and run `conductbot doctor` again.\n")
    assert "test-token" not in out + err and "xoxb-test-bot" not in out + err
    code, out, _ = await _cli(fakes, "--json")
    assert code == 1 and json.loads(out)["failed"] == 2


async def test_the_command_exits_2_on_configuration_errors(fakes: Fakes) -> None:
    code, out, err = await _cli(fakes, DISCORD_TOKEN=None, SLACK_BOT_TOKEN=None,
                                CONDUCTBOT_DIGEST_DISCORD_CHANNEL=None,
                                CONDUCTBOT_DIGEST_SLACK_CHANNEL=None)
    assert (code, out) == (2, "")
    assert "error: no platform is configured: set DISCORD_TOKEN" in " ".join(err.split())
    code, out, err = await _cli(fakes, DISCORD_GUILD_IDS="general")
    assert (code, out) == (2, "")
    assert "DISCORD_GUILD_IDS must be a comma-separated list of Discord ids" in " ".join(
        err.split())


async def test_an_answer_the_library_cannot_read_is_a_failed_check(fakes: Fakes) -> None:
    fakes.discord.inject("GET", "/users/@me/guilds", 200, {"not": "a list of guilds"})
    report = await fakes.doctor(SLACK_BOT_TOKEN=None, CONDUCTBOT_DIGEST_SLACK_CHANNEL=None)
    last = report.checks[-1]
    assert (last.name, last.status) == ("Discord answered as expected", Status.FAIL)
    assert last.fix.startswith("run doctor again with -vv")
    assert [c.name for c in report.failures] == ["Discord answered as expected"]


async def test_the_moderators_channel_is_never_checked_as_watched(fakes: Fakes) -> None:
    # It is never moderated, so it needs no Manage Messages even when listed.
    report = await fakes.doctor(DISCORD_WATCH_CHANNEL_IDS=f"{GENERAL_ID},{MODS_ID}",
                                SLACK_CHANNELS=f"{GENERAL},{MODS}")
    assert report.failures == []
    watched = [(c.platform, c.name) for c in report.checks if "(watched)" in c.name]
    assert watched == [
        ("discord", "#general (watched): View Channel, Read Message History, Manage "
                    "Messages and Manage Channels"),
        ("slack", "#cgeneral1 (watched): the bot is a member")]


async def test_the_moderators_log_channels_are_checked_where_configured(fakes: Fakes) -> None:
    log_id = "920000000000000005"
    fakes.discord.extra_channels.append(channel(log_id, "modlog", 3))
    fakes.discord.overwrites[log_id] = [deny("900000000000000001", SEND, kind=1)]
    fakes.slack.not_joined.add("CMODLOG01")
    report = await fakes.doctor(DISCORD_MODLOG_CHANNEL_ID=log_id,
                                SLACK_MODLOG_CHANNEL="CMODLOG01")
    assert sorted((c.platform, c.name.split(":")[0]) for c in report.failures) == [
        ("discord", "#modlog (moderators' log)"), ("slack", "#cmodlog01 (moderators' log)")]
    assert "Send Messages" in next(c.detail for c in report.failures
                                   if c.platform == "discord")
    assert report.exit_code == 1


async def test_manage_channels_is_needed_only_where_raids_get_slowmode(
        fakes: Fakes, tmp_path: Path) -> None:
    fakes.discord.overwrites[GENERAL_ID] = [deny(BOT_ROLE_ID, MANAGE_CHANNELS)]
    report = await fakes.doctor()  # the default policy answers a raid with slowmode
    assert [(c.name.split(":")[0], c.detail) for c in report.failures] == [
        ("#general (watched)", "the bot lacks Manage Channels, needed to slow a raided channel "
                               "down ([spam.raid] response \"slowmode\")")]
    alert_only = tmp_path / "alert.toml"
    alert_only.write_text((ROOT / "policies" / "default.toml").read_text(encoding="utf-8")
                          .replace('response = "slowmode"', 'response = "alert"', 1),
                          encoding="utf-8")
    report = await run_doctor(Settings(db=fakes.db, policy=alert_only),
                              {k: v for k, v in fakes.env.items() if v is not None})
    assert report.failures == []
