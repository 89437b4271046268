"""Slack's part of `conductbot doctor`: what the adapter needs, checked against Slack.

It asks Slack with slack_sdk's AsyncWebClient and the configured tokens: `auth.test` (which
token, which workspace, and the scopes granted, from the `X-OAuth-Scopes` response header),
`conversations.info` for every channel the bot watches or posts to (does it exist, is the bot a
member), `users.info` for the admin behind the user token and for each moderator,
`usergroups.users.list` for the moderator group and `apps.connections.open` for the Socket Mode
token. Only read methods are called: nothing is changed on Slack.
"""

from __future__ import annotations

__all__ = ["BOT_SCOPES", "GROUP_SCOPES", "PRIVATE_SCOPES", "USER_SCOPES", "check_slack",
           "scopes_of"]

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters import doctor as checklist
from adapters.doctor import Check, RegisteredModerator, failed, passed, warned
from adapters.slack.config import SlackConfig

log = logging.getLogger(__name__)

PLATFORM = "slack"
APPS = "https://api.slack.com/apps"

#: The bot token's scopes the adapter needs (adapters/slack/adapter.py), with why.
BOT_SCOPES: Mapping[str, str] = {
    "channels:history": "receive messages in public channels (message.channels events)",
    "channels:read": "check channels and read their names (conversations.info)",
    "chat:write": "notices, escalations, answers and the digest (chat.postMessage, "
                  "chat.postEphemeral)",
    "commands": "the /mod and /appeal commands",
    "im:write": "open a DM for private notices (conversations.open)",
    "channels:manage": "remove timed-out and suspended members and let them back "
                       "(conversations.kick, conversations.invite)",
    "users:read": "look up users: moderators and the admin (users.info)",
}
#: The same for private channels: needed when a configured channel is private, or when
#: SLACK_CHANNELS is empty (the bot then moderates every channel it is in, private ones too).
PRIVATE_SCOPES: Mapping[str, str] = {
    "groups:history": "receive messages in private channels (message.groups events)",
    "groups:read": "check private channels and read their names (conversations.info)",
    "groups:write": "remove members from private channels (conversations.kick)",
}
#: Needed only with SLACK_MODERATOR_GROUP.
GROUP_SCOPES: Mapping[str, str] = {
    "usergroups:read": "read SLACK_MODERATOR_GROUP's members (usergroups.users.list)",
}
#: The admin's user token: deleting members' messages (`hide`: chat.delete).
USER_SCOPES: Mapping[str, str] = {
    "chat:write": "delete members' messages (chat.delete)",
}

_SCOPE_FIX = ("{apps} → your app → OAuth & Permissions → Scopes → {kind} Token Scopes: add "
              "{scope} (or add it to the app manifest), then Reinstall to Workspace{then}")


@dataclass(frozen=True, slots=True)
class _Channel:
    id: str
    role: str  # "moderators' channel", "watched", "digest"
    variable: str


def scopes_of(headers: Mapping[str, Any], /) -> frozenset[str] | None:
    """The scopes Slack says a token has (the X-OAuth-Scopes header); None when absent."""
    for key, value in headers.items():
        if key.lower() == "x-oauth-scopes":
            text = value[0] if isinstance(value, list) else str(value)
            return frozenset(s.strip() for s in text.split(",") if s.strip())
    return None


def _code(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or exc.response.status_code)
    except (AttributeError, TypeError):  # pragma: no cover - a malformed response
        return str(exc)


def _fail(name: str, detail: str, /, *, fix: str, **data: object) -> Check:
    return failed(PLATFORM, name, detail, fix=fix, **data)


def _pass(name: str, detail: str = "", /, **data: object) -> Check:
    return passed(PLATFORM, name, detail, **data)


async def check_slack(config: SlackConfig, /, *, digest_channel: str | None,
                      moderators: Sequence[RegisteredModerator] | None,
                      db: str = "the database") -> list[Check]:
    """Every Slack check, in checklist order; an unreachable Slack is one failed check saying
    why (the checks that could not be made are left out)."""
    checks: list[Check] = []
    try:
        async with asyncio.timeout(checklist.DOCTOR_TIMEOUT):
            await _checks(config, checks, digest_channel=digest_channel,
                          moderators=moderators, db=db)
    except TimeoutError:
        checks.append(_fail("Slack answered in time",
                            f"no complete answer within {checklist.DOCTOR_TIMEOUT:g} s",
                            fix="check the network (and SLACK_API_BASE if set), then run "
                                "doctor again"))
    except (aiohttp.ClientError, OSError) as exc:
        checks.append(_fail("Slack reachable", f"could not reach Slack: {exc}",
                            fix="check the network, any proxy, and SLACK_API_BASE if set"))
    except SlackApiError as exc:  # a refusal no check above expected
        checks.append(_fail("Slack answered", f"Slack refused a call: {_code(exc)}",
                            fix="run doctor again later; if it persists, see "
                                "https://slack-status.com"))
    except Exception as exc:  # an answer slack_sdk could not read: a check, not a traceback
        log.debug("slack: unexpected answer", exc_info=True)
        checks.append(_fail("Slack answered as expected", f"{type(exc).__name__}: {exc}",
                            fix="run doctor again with -vv to see the details; check "
                                "SLACK_API_BASE if set"))
    return checks


async def _checks(config: SlackConfig, checks: list[Check], *, digest_channel: str | None,
                  moderators: Sequence[RegisteredModerator] | None, db: str) -> None:
    base = config.api_base or AsyncWebClient.BASE_URL
    bot = AsyncWebClient(token=config.bot_token.reveal(), base_url=base)

    # -- the bot token ----------------------------------------------------------------------------
    try:
        me = await bot.auth_test()
    except SlackApiError as exc:
        checks.append(_fail("bot token accepted", f"Slack refused SLACK_BOT_TOKEN: "
                                                  f"{_code(exc)}",
                            fix=f"{APPS} → your app → OAuth & Permissions: copy the Bot User "
                                "OAuth Token (xoxb-) into SLACK_BOT_TOKEN; reinstall the app "
                                "if it was removed"))
        return
    bot_name = str(me.get("user") or "the bot")
    team = str(me.get("team_id") or "")
    checks.append(_pass("bot token accepted", f"@{bot_name} in {me.get('team')} ({team})"))
    granted = scopes_of(me.headers)

    # -- channels (their privacy decides which scopes are needed) -------------------------------
    wanted: list[_Channel] = []
    if config.mod_channel:
        wanted.append(_Channel(config.mod_channel, "moderators' channel", "SLACK_MOD_CHANNEL"))
    # The moderators' channel is never moderated, even when listed (SlackAdapter.keep).
    wanted += [_Channel(c, "watched", "SLACK_CHANNELS") for c in sorted(config.channels)
               if c != config.mod_channel]
    if digest_channel:
        wanted.append(_Channel(digest_channel, "digest", "CONDUCTBOT_DIGEST_SLACK_CHANNEL"))
    if config.modlog_channel:
        wanted.append(_Channel(config.modlog_channel, "moderators' log", "SLACK_MODLOG_CHANNEL"))
    infos: dict[str, dict[str, Any] | str] = {}
    for channel in wanted:
        if channel.id not in infos:
            try:
                infos[channel.id] = dict((await bot.conversations_info(
                    channel=channel.id))["channel"])
            except SlackApiError as exc:
                infos[channel.id] = _code(exc)
    private = any(isinstance(i, dict) and i.get("is_private") for i in infos.values())

    # -- scopes ---------------------------------------------------------------------------------
    needed = dict(BOT_SCOPES)
    if private or not config.channels:
        needed.update(PRIVATE_SCOPES)
    if config.moderator_group:
        needed.update(GROUP_SCOPES)
    if granted is None:
        checks.append(warned(PLATFORM, "bot token scopes", "Slack's answer to auth.test had no "
                                                           "X-OAuth-Scopes header, so the "
                                                           "scopes could not be checked",
                             fix="if SLACK_API_BASE points at a proxy, let it pass that header"))
    else:
        for scope, why in needed.items():
            name = f"bot scope {scope}"
            checks.append(_pass(name, why) if scope in granted else _fail(
                name, f"not granted: {why}",
                fix=_SCOPE_FIX.format(apps=APPS, kind="Bot", scope=scope, then="")))

    # -- channels -------------------------------------------------------------------------------
    if config.mod_channel is None:
        checks.append(_fail("moderators' channel", "SLACK_MOD_CHANNEL is not set: escalations "
                                                   "would have nowhere to go",
                            fix="set SLACK_MOD_CHANNEL to the moderators' channel id (channel "
                                "details → About → Channel ID)"))
    if not config.channels:
        checks.append(_pass("watched channels", "every channel the bot is in (SLACK_CHANNELS "
                                                "is empty)"))
        checks.append(warned(PLATFORM, "suspensions", "SLACK_CHANNELS is empty, so a "
                                                      "suspension cannot remove the member "
                                                      "from any channel (it is recorded as "
                                                      "unsupported)",
                             fix="list the member channels in SLACK_CHANNELS"))
    for channel in wanted:
        checks.append(_channel(channel, infos[channel.id], bot_name))

    # -- the admin's user token, the app-level token, the moderators ----------------------------
    checks += await _user_token(config, bot, team, base)
    if config.app_token is not None:
        checks.append(await _app_token(config, base))
    if config.moderator_group is not None:
        try:
            members = (await bot.usergroups_users_list(
                usergroup=config.moderator_group)).get("users") or []
            checks.append(_pass(f"moderator group {config.moderator_group}",
                                f"{len(members)} member(s)"))
        except SlackApiError as exc:
            checks.append(_fail(f"moderator group {config.moderator_group}",
                                f"Slack refused usergroups.users.list: {_code(exc)}",
                                fix="check SLACK_MODERATOR_GROUP (a user group id, S...) and "
                                    "the usergroups:read scope"))
    checks += await _moderators(bot, config, moderators, db=db)


def _channel(channel: _Channel, info: dict[str, Any] | str, bot_name: str) -> Check:
    """One configured channel: it exists, is not archived, and the bot is a member."""
    label = (f"moderators' channel {channel.id}" if channel.role == "moderators' channel" else
             f"{channel.role} channel {channel.id}")
    if isinstance(info, str):
        if info == "channel_not_found":
            return _fail(label, f"no such channel, or a private one the bot is not in "
                                f"({channel.variable})",
                         fix=f"check the id in {channel.variable} (channel details → About → "
                             f"Channel ID); for a private channel, /invite @{bot_name} there")
        return _fail(label, f"Slack refused conversations.info: {info}",
                     fix="see the scope checks above (channels:read, groups:read)"
                     if info == "missing_scope" else "run doctor again later")
    name = f"#{info.get('name') or channel.id}"
    label = (f"moderators' channel {name}" if channel.role == "moderators' channel" else
             f"{name} ({channel.role})")
    if info.get("is_archived"):
        return _fail(label, "the channel is archived",
                     fix=f"unarchive {name} or set {channel.variable} to another channel")
    if not info.get("is_member"):
        why = {"watched": "it receives no messages there and cannot remove members from it",
               "digest": "it cannot post the digest there",
               "moderators' log": "it cannot post the moderators' log there"}.get(
            channel.role, "it cannot post escalations there")
        return _fail(f"{label}: the bot is a member", f"no, so {why}",
                     fix=f"in Slack, open {name} and type /invite @{bot_name}",
                     channel=channel.id)
    return _pass(f"{label}: the bot is a member")


async def _user_token(config: SlackConfig, bot: AsyncWebClient, team: str,
                      base: str) -> list[Check]:
    """The workspace admin's user token: accepted, same workspace, chat:write, an admin."""
    name = "admin user token (deletes)"
    install = (f"a workspace admin or owner installs the app ({APPS} → your app → Install "
               "App) and SLACK_USER_TOKEN is set to the User OAuth Token (xoxp-) shown there")
    if config.user_token is None:
        return [_fail(name, "SLACK_USER_TOKEN is not set: a bot token can delete only the "
                            "bot's own messages, so hides are recorded as unsupported and "
                            "moderators must delete by hand", fix=install)]
    user_client = AsyncWebClient(token=config.user_token.reveal(), base_url=base)
    try:
        who = await user_client.auth_test()
    except SlackApiError as exc:
        return [_fail(name, f"Slack refused SLACK_USER_TOKEN: {_code(exc)}", fix=install)]
    checks: list[Check] = []
    if team and who.get("team_id") and who.get("team_id") != team:
        return [_fail(name, f"the token belongs to workspace {who.get('team')} "
                            f"({who.get('team_id')}), not the bot's ({team})", fix=install)]
    scopes = scopes_of(who.headers)
    for scope, why in USER_SCOPES.items():
        if scopes is not None and scope not in scopes:
            checks.append(_fail(f"user scope {scope}", f"not granted: {why}",
                                fix=_SCOPE_FIX.format(apps=APPS, kind="User", scope=scope,
                                                      then=" (as a workspace admin) and "
                                                           "update SLACK_USER_TOKEN")))
    user = str(who.get("user_id") or "")
    try:
        profile = (await bot.users_info(user=user))["user"]
    except SlackApiError as exc:
        checks.insert(0, _fail(name, f"cannot tell whether <@{user}> is an admin: Slack refused "
                                     f"users.info: {_code(exc)}",
                               fix="see the users:read scope check above"))
        return checks
    handle = f"@{profile.get('name') or user}"
    if profile.get("deleted"):
        checks.insert(0, _fail(name, f"it belongs to {handle}, whose account is deactivated",
                               fix=install))
    elif profile.get("is_admin") or profile.get("is_owner") or profile.get("is_primary_owner"):
        role = "owner" if profile.get("is_owner") or profile.get("is_primary_owner") else "admin"
        checks.insert(0, _pass(name, f"{handle}, a workspace {role}"))
    else:
        checks.insert(0, _fail(name, f"it belongs to {handle}, who is not a workspace admin or "
                                     "owner: Slack lets only admins delete others' messages",
                               fix=install))
    return checks


async def _app_token(config: SlackConfig, base: str) -> Check:
    """The app-level token opens Socket Mode connections (asks for a URL, does not connect)."""
    assert config.app_token is not None
    name = "app-level token (Socket Mode)"
    try:
        await AsyncWebClient(base_url=base).apps_connections_open(
            app_token=config.app_token.reveal())
    except SlackApiError as exc:
        return _fail(name, f"Slack refused SLACK_APP_TOKEN: {_code(exc)}",
                     fix=f"{APPS} → your app → Basic Information → App-Level Tokens: generate "
                         "one with connections:write into SLACK_APP_TOKEN, and turn on Socket "
                         "Mode")
    return _pass(name, "Slack accepts it for Socket Mode")


async def _moderators(bot: AsyncWebClient, config: SlackConfig,
                      moderators: Sequence[RegisteredModerator] | None, *,
                      db: str) -> list[Check]:
    """Every moderator (the register's, and SLACK_MODERATORS) is an active Slack user."""
    people = [(m.account, f"moderator {m.label}") for m in moderators or []]
    people += [(u, f"SLACK_MODERATORS {u}") for u in sorted(config.moderators)
               if u not in {m.account for m in moderators or []}]
    if not people:
        where = (f"there is no database at {db}" if moderators is None else
                 "no moderator in the register has a Slack account")
        if config.moderator_group:
            return [_pass("moderators", f"{where}; SLACK_MODERATOR_GROUP's members are "
                                        "moderators")]
        return [_fail("moderators", f"{where}, and SLACK_MODERATORS and SLACK_MODERATOR_GROUP "
                                    "are empty: nobody can resolve escalations on Slack",
                      fix="import the register with the moderators' Slack ids (conductbot "
                          "members import register.csv; see README, 'The membership "
                          "register'), or set SLACK_MODERATORS")]
    checks: list[Check] = []
    for account, name in people:
        fix = ("correct the Slack id in the register (profile → ⋯ → Copy member ID) and import "
               "it again (conductbot members import)" if name.startswith("moderator ") else
               "correct the id in SLACK_MODERATORS (profile → ⋯ → Copy member ID)")
        try:
            user = (await bot.users_info(user=account))["user"]
        except SlackApiError as exc:
            code = _code(exc)
            checks.append(_fail(name, f"slack:{account}: " + (
                "no such user in the workspace" if code in ("user_not_found", "users_not_found")
                else f"Slack refused users.info: {code}"),
                fix=fix if code != "missing_scope" else "see the users:read scope check above",
                account=account))
            continue
        if user.get("deleted"):
            checks.append(_fail(name, f"@{user.get('name')} ({account}) is deactivated",
                                fix=fix, account=account))
        else:
            checks.append(_pass(name, f"@{user.get('name') or account}"))
    return checks
