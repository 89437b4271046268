"""Discord's part of `conductbot doctor`: what the adapter needs, checked against Discord.

It logs in over REST only (discord.py's `Client.login`, no gateway connection) and reads the
application (its flags say which privileged intents are enabled), the servers the bot is in, each
server's roles and channels (with their permission overwrites) and the bot's own member record.
Permissions are computed by discord.py itself: `GuildChannel.permissions_for(member)` (owner,
@everyone and role permissions, the Administrator shortcut, then the channel's overwrites for
@everyone, the member's roles and the member, implicit denials and timeouts) and
`Member.guild_permissions` for server-wide ones. Nothing is changed on Discord.
"""

from __future__ import annotations

__all__ = ["GUILD_NEEDS", "INTENTS", "POST_NEEDS", "RAID_NEEDS", "WATCH_NEEDS", "Intent", "Need",
           "check_discord", "invite_permissions"]

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import aiohttp
import discord

from adapters import doctor as checklist
from adapters.discord.config import DiscordConfig
from adapters.doctor import Check, RegisteredModerator, failed, join_names, passed, warned

log = logging.getLogger(__name__)

PLATFORM = "discord"
PORTAL = "https://discord.com/developers/applications"


@dataclass(frozen=True, slots=True)
class Need:
    """A permission the bot needs, named as discord.py and as Discord's settings show it."""

    permission: str  # a discord.Permissions attribute
    label: str  # as Server Settings and Edit Channel name it
    why: str


@dataclass(frozen=True, slots=True)
class Intent:
    """A privileged gateway intent the adapter asks for (see DiscordAdapter.__init__)."""

    flag: str  # discord.ApplicationFlags attribute; flag + "_limited" counts too
    label: str  # as the developer portal names it
    why: str


#: What the adapter needs, from adapters/discord/adapter.py. In each watched channel: to see the
#: messages (gateway), read them back after a stop (`catch_up`: history) and delete them (`hide`).
WATCH_NEEDS = (
    Need("view_channel", "View Channel", "receive members' messages"),
    Need("read_message_history", "Read Message History", "catch up after a restart"),
    Need("manage_messages", "Manage Messages", "delete (hide) members' messages"),
)
#: Where the bot posts: escalations and reports (the moderators' channel) and the digest; both
#: are embeds (`escalate`, `report`, `post`; `mod_channel_problem` checks the same three).
POST_NEEDS = (
    Need("view_channel", "View Channel", "see the channel"),
    Need("send_messages", "Send Messages", "post there"),
    Need("embed_links", "Embed Links", "post escalations and the digest, which are embeds"),
)
#: In watched channels when the policy answers a raid with slowmode (`slowmode`).
RAID_NEEDS = (
    Need("manage_channels", "Manage Channels",
         "slow a raided channel down ([spam.raid] response \"slowmode\")"),
)
#: The moderators' log is plain text lines (`post`).
LOG_NEEDS = POST_NEEDS[:2]
#: Server-wide: timeouts and suspensions edit the member (`_set_timeout`).
GUILD_NEEDS = (
    Need("moderate_members", "Timeout Members", "time members out (timeouts, suspensions)"),
)
#: The privileged intents DiscordAdapter asks for; without them Discord refuses the connection.
INTENTS = (
    Intent("gateway_message_content", "Message Content Intent",
           "without it Discord sends empty message text and nothing can be moderated"),
    Intent("gateway_guild_members", "Server Members Intent",
           "members' roles (moderator and exempt roles) and timeouts"),
)


def invite_permissions() -> discord.Permissions:
    """Every permission the checks below look for: what an invite link should grant."""
    perms = discord.Permissions.none()
    for need in (*WATCH_NEEDS, *RAID_NEEDS, *POST_NEEDS, *GUILD_NEEDS):
        setattr(perms, need.permission, True)
    return perms


@dataclass(frozen=True, slots=True)
class _Server:
    guild: discord.Guild
    me: discord.Member
    channels: Sequence[discord.abc.GuildChannel]


def _fail(name: str, detail: str, /, *, fix: str, **data: object) -> Check:
    return failed(PLATFORM, name, detail, fix=fix, **data)


def _pass(name: str, detail: str = "", /, **data: object) -> Check:
    return passed(PLATFORM, name, detail, **data)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """What discord.py logs while a REST-only client is made and logs in is no news in a
    checklist: the log-in line, the voice libraries it lacks, the intents it was not given
    (the gateway is never opened). At -vv (DEBUG) everything still shows."""
    loggers = [logging.getLogger(name) for name in ("discord.client", "discord.state")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        if not logger.isEnabledFor(logging.DEBUG):
            logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


async def check_discord(config: DiscordConfig, /, *, digest_channel: str | None,
                        moderators: Sequence[RegisteredModerator] | None,
                        db: str = "the database", slowmode: bool = False) -> list[Check]:
    """Every Discord check, in checklist order; an unreachable or refusing Discord is one
    failed check saying why (the checks that could not be made are left out). With
    `slowmode` (the policy answers raids so), watched channels need Manage Channels too."""
    checks: list[Check] = []
    saved = discord.http.Route.BASE
    if config.api_base:  # discord.py keeps the REST base as a class attribute
        discord.http.Route.BASE = config.api_base
    try:
        async with asyncio.timeout(checklist.DOCTOR_TIMEOUT):
            with _quiet():
                client = discord.Client(intents=discord.Intents.none())
            async with client:
                await _checks(client, config, checks, digest_channel=digest_channel,
                              moderators=moderators, db=db,
                              watch=WATCH_NEEDS + (RAID_NEEDS if slowmode else ()))
    except discord.LoginFailure:
        checks.append(_fail(
            "token accepted", "Discord refused DISCORD_TOKEN",
            fix=f"{PORTAL} → your application → Bot → Reset Token, and put the new token in "
                "DISCORD_TOKEN (the bare token, no 'Bot ' prefix)"))
    except TimeoutError:
        checks.append(_fail(
            "Discord answered in time",
            f"no complete answer within {checklist.DOCTOR_TIMEOUT:g} s",
            fix="check the network (and DISCORD_API_BASE if set), then run doctor again"))
    except (aiohttp.ClientError, OSError) as exc:
        checks.append(_fail(
            "Discord reachable", f"could not reach Discord: {exc}",
            fix="check the network, any proxy, and DISCORD_API_BASE if set"))
    except discord.HTTPException as exc:
        checks.append(_fail(
            "Discord answered", f"HTTP {exc.status}: {exc.text or exc}",
            fix="run doctor again later; if it persists, see https://discordstatus.com"))
    except Exception as exc:  # an answer discord.py could not read: a check, not a traceback
        log.debug("discord: unexpected answer", exc_info=True)
        checks.append(_fail(
            "Discord answered as expected", f"{type(exc).__name__}: {exc}",
            fix="run doctor again with -vv to see the details; check DISCORD_API_BASE if set"))
    finally:
        discord.http.Route.BASE = saved
    return checks


async def _checks(client: discord.Client, config: DiscordConfig, checks: list[Check], *,
                  digest_channel: str | None,
                  moderators: Sequence[RegisteredModerator] | None, db: str,
                  watch: Sequence[Need]) -> None:
    with _quiet():
        await client.login(config.token.reveal())
    user = client.user
    application = client.application
    assert user is not None and application is not None  # set by login
    checks.append(_pass("token accepted", f"logged in as {user} ({user.id})"))
    bot_page = f"{PORTAL}/{application.id}/bot"

    # -- the application: privileged intents, interactions --------------------------------------
    flags = application.flags
    for intent in INTENTS:
        on = getattr(flags, intent.flag) or getattr(flags, intent.flag + "_limited")
        checks.append(_pass(f"{intent.label} enabled") if on else _fail(
            f"{intent.label} enabled", f"off: {intent.why}",
            fix=f"{bot_page} → Privileged Gateway Intents: turn on {intent.label}, then Save "
                "Changes"))
    if application.interactions_endpoint_url:
        checks.append(_fail(
            "no Interactions Endpoint URL",
            f"set to {application.interactions_endpoint_url}: slash commands and buttons go "
            "there instead of to the bot",
            fix=f"{PORTAL}/{application.id}/information → clear Interactions Endpoint URL, then "
                "Save Changes"))
    else:
        checks.append(_pass("no Interactions Endpoint URL",
                            "slash commands and buttons reach the bot over the gateway"))
    if application.bot_public:
        checks.append(warned(PLATFORM, "Public Bot off",
                             "on: anyone who finds the bot can add it to their server",
                             fix=f"{bot_page} → turn off Public Bot"))

    # -- servers ---------------------------------------------------------------------------------
    invite = discord.utils.oauth_url(application.id, permissions=invite_permissions(),
                                     scopes=("bot", "applications.commands"))
    joined = {g.id: g async for g in client.fetch_guilds(limit=None)}
    wanted = sorted(config.guild_ids) or sorted(joined)
    if not wanted:
        checks.append(_fail("in a server", "the bot is in no Discord server",
                            fix=f"a server admin opens {invite} and adds the bot"))
    servers: list[_Server] = []
    for guild_id in wanted:
        if guild_id not in joined:
            checks.append(_fail(
                f"in server {guild_id}", "the bot is not a member of this server "
                "(DISCORD_GUILD_IDS)",
                fix=f"check the id in DISCORD_GUILD_IDS, or have an admin of that server open "
                    f"{invite}"))
            continue
        guild = await client.fetch_guild(guild_id)
        me = await guild.fetch_member(user.id)
        servers.append(_Server(guild, me, await guild.fetch_channels()))
        checks.append(_pass(f"in server {guild.name}", f"{guild.id}; the bot's role: "
                                                       f"@{me.top_role.name}"))
        perms = me.guild_permissions
        missing = [n for n in GUILD_NEEDS if not getattr(perms, n.permission)]
        name = f"server {guild.name}: " + join_names([n.label for n in GUILD_NEEDS])
        checks.append(_pass(name) if not missing else
                      _fail(name, f"the bot's roles do not grant "
                                  f"{join_names([n.label for n in missing])}, needed to "
                                  f"{'; '.join(n.why for n in missing)}",
                            fix=f"in {guild.name}: Server Settings → Roles → @{me.top_role.name}: "
                                f"turn on {join_names([n.label for n in missing])}; and keep "
                                "that role above the roles of the members it must time out",
                            missing=[n.permission for n in missing]))

    by_id = {c.id: (s, c) for s in servers for c in s.channels}

    # -- the moderators' channel, the watched channels, the digest channel ---------------------
    if config.mod_channel_id is None:
        checks.append(_fail(
            "moderators' channel", "DISCORD_MOD_CHANNEL_ID is not set: escalations would have "
            "nowhere to go",
            fix="set DISCORD_MOD_CHANNEL_ID to the moderators' channel id (right click the "
                "channel, Copy Channel ID)"))
    else:
        checks.append(_channel(by_id, config.mod_channel_id, "moderators' channel",
                               "DISCORD_MOD_CHANNEL_ID", POST_NEEDS))
    if config.watch_channel_ids:
        # The moderators' channel is never moderated, even when listed (DiscordAdapter._unwatched).
        for channel_id in sorted(config.watch_channel_ids - {config.mod_channel_id or 0}):
            checks.append(_channel(by_id, channel_id, "watched", "DISCORD_WATCH_CHANNEL_IDS",
                                   watch))
    elif servers:
        checks += _every_channel(servers, skip=config.mod_channel_id, watch=watch)
    if digest_channel is not None:
        if digest_channel.isdigit():
            checks.append(_channel(by_id, int(digest_channel), "digest",
                                   "CONDUCTBOT_DIGEST_DISCORD_CHANNEL", POST_NEEDS))
        else:
            checks.append(_fail("digest channel", f"CONDUCTBOT_DIGEST_DISCORD_CHANNEL is "
                                                  f"{digest_channel!r}, not a channel id",
                                fix="set it to the channel's id (right click the channel, "
                                    "Copy Channel ID)"))
    if config.modlog_channel_id is not None:
        checks.append(_channel(by_id, config.modlog_channel_id, "moderators' log",
                               "DISCORD_MODLOG_CHANNEL_ID", LOG_NEEDS))

    # -- roles and moderators --------------------------------------------------------------------
    for variable, role_ids in (("DISCORD_MOD_ROLE_IDS", config.mod_role_ids),
                               ("DISCORD_EXEMPT_ROLE_IDS", config.exempt_role_ids)):
        for role_id in sorted(role_ids):
            role = next((r for s in servers if (r := s.guild.get_role(role_id))), None)
            name = f"{variable} {role_id}"
            checks.append(_pass(name, f"role @{role.name} in {role.guild.name}") if role else
                          _fail(name, "no such role in the bot's servers",
                                fix="Server Settings → Roles → ⋯ next to the role → Copy Role "
                                    f"ID, and put that id in {variable}"))
    checks += await _moderators(servers, moderators, config, db=db)


def _place(server: _Server, channel: discord.abc.GuildChannel) -> str:
    return f"#{channel.name} in {server.guild.name}"


def _channel(by_id: dict[int, tuple[_Server, discord.abc.GuildChannel]], channel_id: int,
             role: str, variable: str, needs: Sequence[Need]) -> Check:
    """The bot's permissions in one configured channel."""
    found = by_id.get(channel_id)
    what = role if role.endswith("channel") else f"{role} channel"
    if found is None:
        return _fail(f"{what} {channel_id}", f"no such channel in the bot's servers "
                                             f"({variable})",
                     fix=f"check the id in {variable} (right click the channel, Copy Channel "
                         "ID) and that the channel is in a server the bot is in")
    server, channel = found
    if role in ("moderators' channel", "digest", "moderators' log") and not isinstance(channel,
                                                                    discord.abc.Messageable):
        return _fail(f"{what} #{channel.name}", f"{channel_id} is a "
                                                        f"{channel.type} channel: nothing can "
                                                        "be posted to it",
                     fix=f"set {variable} to a text channel's id")
    label = (f"moderators' channel #{channel.name}" if role == "moderators' channel" else
             f"#{channel.name} ({role})")
    return _permissions(server, channel, label, needs)


def _permissions(server: _Server, channel: discord.abc.GuildChannel, label: str,
                 needs: Sequence[Need]) -> Check:
    """Pass or fail on the permissions discord.py computes for the bot in `channel`."""
    perms = channel.permissions_for(server.me)
    missing = [n for n in needs if not getattr(perms, n.permission)]
    name = f"{label}: " + join_names([n.label for n in needs])
    if not missing:
        return _pass(name)
    return _fail(name, f"the bot lacks {join_names([n.label for n in missing])}, needed to "
                       f"{'; '.join(n.why for n in missing)}",
                 fix=_permission_fix(server, channel, missing),
                 channel=str(channel.id), missing=[n.permission for n in missing])


def _permission_fix(server: _Server, channel: discord.abc.GuildChannel,
                    missing: Sequence[Need]) -> str:
    """Where the missing permissions are taken away, and where to give them back."""
    me, guild = server.me, server.guild
    # Without View Channel Discord takes away every channel permission: fix that first.
    view = next((n for n in missing if n.permission == "view_channel"), None)
    root = [view] if view else list(missing)
    names = join_names([n.label for n in root])
    mine = {r.id for r in me.roles}
    deniers: list[str] = []
    for target, overwrite in channel.overwrites.items():
        applies = target.id == guild.id or target.id in mine or target.id == me.id
        if applies and any(getattr(overwrite, n.permission) is False for n in root):
            named = guild.get_role(target.id)
            deniers.append("@everyone" if target.id == guild.id else
                           f"@{named.name}" if named else "the bot itself")
    role = me.top_role.name
    if deniers:
        fix = (f"in {guild.name}: #{channel.name} → Edit Channel → Permissions: the "
               f"overwrite for {join_names(deniers)} denies {names}; allow {names} for the "
               f"bot's role @{role} there (or remove the denial)")
    elif not all(getattr(me.guild_permissions, n.permission) for n in root):
        fix = (f"in {guild.name}: Server Settings → Roles → @{role}: turn on {names}, or "
               f"allow {names} for @{role} in #{channel.name} → Edit Channel → Permissions")
    else:
        fix = (f"in {guild.name}: #{channel.name} → Edit Channel → Permissions: allow "
               f"{names} for the bot's role @{role}")
    if view and len(missing) > 1:
        fix += " (without View Channel the other permissions do not apply)"
    return fix


def _every_channel(servers: Sequence[_Server], *, skip: int | None,
                   watch: Sequence[Need]) -> list[Check]:
    """DISCORD_WATCH_CHANNEL_IDS is empty: every text channel the bot can see is moderated, so
    it must be able to read back and delete in each; one line for all that pass."""
    checks: list[Check] = []
    good: list[str] = []
    for server in servers:
        for channel in server.channels:
            if channel.id == skip or not isinstance(channel, discord.TextChannel | discord.
                                                    ForumChannel):
                continue
            if not channel.permissions_for(server.me).view_channel:
                continue  # not seen, so not moderated
            check = _permissions(server, channel, f"#{channel.name} (watched)", watch)
            if check.ok:
                good.append(_place(server, channel))
            else:
                checks.append(check)
    labels = join_names([n.label for n in watch[1:]])
    if good:
        checks.insert(0, _pass(f"watched channels: {labels}",
                               f"in all {len(good)} channel(s) the bot can see "
                               "(DISCORD_WATCH_CHANNEL_IDS is empty: every one is moderated)",
                               channels=good))
    elif not checks:
        checks.append(_fail("watched channels", "the bot can see no text channel, so it "
                                                "moderates nothing",
                            fix="give the bot's role View Channel, Read Message History and "
                                "Manage Messages in the channels to moderate, or list them in "
                                "DISCORD_WATCH_CHANNEL_IDS"))
    return checks


async def _moderators(servers: Sequence[_Server],
                      moderators: Sequence[RegisteredModerator] | None,
                      config: DiscordConfig, *, db: str) -> list[Check]:
    """Each register moderator with a Discord account is a member of one of the servers."""
    if not moderators:
        where = (f"there is no database at {db}" if moderators is None else
                 "no moderator in the register has a Discord account")
        if config.mod_role_ids:
            return [_pass("moderators", f"{where}; DISCORD_MOD_ROLE_IDS makes its holders "
                                        "moderators")]
        return [_fail("moderators", f"{where}, and DISCORD_MOD_ROLE_IDS is empty: nobody can "
                                    "resolve escalations on Discord",
                      fix="import the register with the moderators' Discord ids (conductbot "
                          "members import register.csv; see README, 'The membership "
                          "register'), or set DISCORD_MOD_ROLE_IDS")]
    checks: list[Check] = []
    names = join_names([s.guild.name for s in servers]) or "the bot's servers"
    for moderator in moderators:
        name = f"moderator {moderator.label}"
        if not moderator.account.isdigit():
            checks.append(_fail(name, f"discord:{moderator.account} is not a Discord id",
                                fix="correct the Discord id in the register (Developer Mode, "
                                    "right click the user, Copy User ID) and import it again"))
            continue
        found = None
        for server in servers:
            try:
                found = (server, await server.guild.fetch_member(int(moderator.account)))
                break
            except discord.NotFound:
                continue
        if found is not None:
            checks.append(_pass(name, f"@{found[1].name} in {found[0].guild.name}"))
        else:
            checks.append(_fail(name, f"discord:{moderator.account} is not a member of {names}",
                                fix="correct the Discord id in the register and import it "
                                    "again (conductbot members import), or invite them to "
                                    "the server",
                                account=moderator.account))
    return checks
