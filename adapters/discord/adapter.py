"""The Discord adapter: gateway events to the core, the core's outbox to Discord, slash commands.

Contract of `run_discord(moderator, config)` (what `bot.py run` starts in a TaskGroup):

* it logs in with `config.token`, registers the slash commands (`/mod ...`, `/appeal`, message
  menus), connects to the gateway and runs until cancelled; cancelling it closes the connection
  cleanly and re-raises CancelledError;
* every guild message (and every edit, as a new revision) is written to the store's durable inbox
  (`moderator.accept`) and decided from there (`moderator.decide_accepted`), then the adapter
  executes the Discord rows of the outbox (`moderator.run_outbox(adapter)`); a background loop
  retries rows that were rate limited;
* once ready (at start and after every reconnect that is not a resume) it decides what a stop
  left in the inbox, then catches up: each channel's history since the last message decided
  there, at most CATCH_UP_LIMIT messages a channel and none older than CATCH_UP_WINDOW;
* it raises `PermissionDenied` when Discord refuses the token and `PlatformError` when the
  privileged Message Content intent is not enabled for the application; other exceptions from
  discord.py propagate;
* with `config.shard_count` set the client is discord.py's AutoShardedClient running the shards
  `config.shard_ids` (default: all) in one process; several processes may split the shards
  between them on one database. Ready means every shard this process runs is ready; a shard
  that later starts a new session (not a resume) has its own servers' channels caught up; the
  connection is up while every shard this process runs is open; a moderators' channel or a
  member in a server of another process's shard is found over REST. Discord closing the gateway
  for a wrong shard or for too few shards raises `PlatformError` naming DISCORD_SHARD_COUNT;
* `config.api_base` / `config.gateway_url` repoint discord.py's REST base and gateway for the
  whole process (discord.py keeps them as class attributes), for tests and proxies;
* the token is never logged.
"""

from __future__ import annotations

__all__ = ["CATCH_UP_LIMIT", "CATCH_UP_WINDOW", "MAX_TIMEOUT", "CommandButton", "DiscordAdapter",
           "run_discord"]

import asyncio
import contextlib
import logging
import math
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import aiohttp
import discord
import yarl
from discord import app_commands

from adapters.common import clip as _clip
from adapters.common import need
from adapters.connection import Connection, ConnectionState, PlatformWatch
from adapters.discord.config import DiscordConfig
from adapters.discord.convert import from_discord
from adapters.discord.doctor import POST_NEEDS
from bot.actions import shadow_title
from bot.commands import Button, Commands, Reply
from bot.config import OUTBOX_INTERVAL
from bot.errors import (
    ConductError,
    InputError,
    PermissionDenied,
    PlatformError,
    RateLimited,
    TargetNotFound,
    Unavailable,
    UnsupportedAction,
)
from bot.models import Account, Action, ActionStatus, CaseState, Message, Platform, Role
from bot.moderator import Moderator

log = logging.getLogger(__name__)

#: Discord's longest timeout ("communication disabled"); a minute's margin for clock skew.
MAX_TIMEOUT = timedelta(days=28)
_MARGIN = timedelta(minutes=1)
#: A long suspension's 28-day timeout is renewed this long before it runs out.
_RENEW_BEFORE = timedelta(days=1)
#: Catch-up after a stop reads at most this many messages a channel, none older than the window.
CATCH_UP_LIMIT = 200
CATCH_UP_WINDOW = timedelta(days=3)
_PREFIX = "cb:"
_CUSTOM_ID_MAX = 100
_STYLES = {"primary": discord.ButtonStyle.primary, "danger": discord.ButtonStyle.danger,
           "secondary": discord.ButtonStyle.secondary, "success": discord.ButtonStyle.success}



def _chunks(text: str, size: int = 2000) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


class CommandButton(discord.ui.DynamicItem[discord.ui.Button[Any]],
                    template=re.escape(_PREFIX) + r"(?P<command>.+)"):
    """A button whose custom_id carries a core command; pressing it runs the command as the
    presser (the core checks their permission). Registered with `add_dynamic_items`, so buttons
    on old messages keep working after a restart."""

    def __init__(self, command: str, *, label: str = "Run",
                 style: discord.ButtonStyle = discord.ButtonStyle.secondary) -> None:
        super().__init__(discord.ui.Button(label=_clip(label, 80), style=style,
                                           custom_id=_PREFIX + command))
        self.command = command

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any],
                             item: discord.ui.Item[Any], match: re.Match[str], /
                             ) -> CommandButton:
        """Rebuild the button from a click on any message, old or new."""
        button = item if isinstance(item, discord.ui.Button) else None
        return cls(match["command"], label=(button.label if button else None) or "Run",
                   style=button.style if button else discord.ButtonStyle.secondary)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Run the command as whoever pressed the button; answer privately."""
        adapter = getattr(interaction.client, "adapter", None)
        if not isinstance(adapter, DiscordAdapter):  # pragma: no cover - wiring error
            return
        await adapter.run_command(interaction, self.command)


def command_view(buttons: Sequence[Button], /) -> discord.ui.View | None:
    """A persistent view (timeout=None) of the Reply's buttons; None when there are none."""
    items = [b for b in buttons if len(_PREFIX + b.command) <= _CUSTOM_ID_MAX][:25]
    if not items:
        return None
    view = discord.ui.View(timeout=None)
    for b in items:
        view.add_item(CommandButton(b.command, label=b.label,
                                    style=_STYLES.get(b.style, discord.ButtonStyle.secondary)))
    return view


def reply_embed(reply: Reply, /) -> discord.Embed:
    """A core Reply as an embed: title, text as description, fields inline."""
    embed = discord.Embed(title=_clip(reply.title, 256),
                          description=_clip(reply.text, 4096) or None,
                          colour=discord.Colour.blurple() if reply.ok else discord.Colour.red())
    for name, value in reply.fields[:25]:
        embed.add_field(name=_clip(str(name), 256), value=_clip(str(value) or "-", 1024),
                        inline=True)
    return embed


class _Client(discord.Client):
    """discord.Client that knows its adapter (for button callbacks) and runs its setup."""

    def __init__(self, adapter: DiscordAdapter, **options: Any) -> None:
        super().__init__(**options)
        self.adapter = adapter

    async def setup_hook(self) -> None:
        await self.adapter.setup()


class _ShardedClient(_Client, discord.AutoShardedClient):
    """The same client over several gateway shards (DISCORD_SHARD_COUNT): _Client's behaviour,
    discord.py's AutoShardedClient's connections (`shard_count=`, `shard_ids=`)."""


#: Gateway close codes that sharding settings cause, and the operator must fix.
_INVALID_SHARD = 4010
_SHARDING_REQUIRED = 4011


class DiscordAdapter:
    """The PlatformPort for Discord, holding the core by composition."""

    platform = Platform.DISCORD

    def __init__(self, moderator: Moderator, config: DiscordConfig, /, *,
                 sync_commands: bool = True, outbox_interval: float = OUTBOX_INTERVAL,
                 **client_options: Any) -> None:
        self.moderator = moderator
        self.config = config
        self.commands = Commands(moderator)
        self.sync_commands = sync_commands
        self.outbox_interval = outbox_interval
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.message_content = True  # privileged: enable it in the developer portal
        intents.members = True  # privileged: role changes and member lookups
        # The bot never joins voice: discord.py's warnings that its voice libraries are
        # missing would only alarm an operator at every start.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        if config.modlog_channel_id is not None:
            moderator.modlog_channels[Platform.DISCORD] = str(config.modlog_channel_id)
        # Nothing the bot sends pings anyone: a display name or a quoted message holding
        # "@everyone" stays text in a log line, a digest or a notice.
        client_options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        self.client: _Client
        if config.shard_count is None:
            self.client = _Client(self, intents=intents, **client_options)
        else:
            self.client = _ShardedClient(self, intents=intents, shard_count=config.shard_count,
                                         shard_ids=list(config.shards or ()), **client_options)
        self.tree = app_commands.CommandTree(self.client)
        self.ready = asyncio.Event()
        self.startup_error: PlatformError | None = None
        #: Running catch-ups: None for the whole process, else one shard's after a new session.
        self._resuming: dict[int | None, asyncio.Task[None]] = {}
        #: The moderators' channel's name, when it is in a server of another process's shard.
        self._remote_mod_channel: str | None = None
        self._build_commands()
        self.client.event(self.on_message)
        self.client.event(self.on_raw_message_edit)
        self.client.event(self.on_ready)
        self.client.event(self.on_shard_ready)

    # -- lifecycle ---------------------------------------------------------------------------

    def _apply_overrides(self) -> None:
        if self.config.api_base:
            discord.http.Route.BASE = self.config.api_base
        if self.config.gateway_url:
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.config.gateway_url)

    async def setup(self) -> None:
        """Register persistent buttons and (optionally) sync the slash commands."""
        self.client.add_dynamic_items(CommandButton)
        if not self.sync_commands:
            return
        if self.config.guild_ids:
            for guild_id in sorted(self.config.guild_ids):
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()

    @property
    def _unwatched(self) -> frozenset[int]:
        """Never moderated: the moderators' own channel, where they quote evidence."""
        mods = self.config.mod_channel_id
        return frozenset() if mods is None else frozenset({mods})

    @property
    def runs_every_shard(self) -> bool:
        """Whether this process receives every server's events (unsharded, or all shards);
        otherwise servers on other processes' shards are not in discord.py's cache."""
        shards = self.config.shards
        return shards is None or len(shards) == self.config.shard_count

    def _shards_text(self) -> str:
        """' on shards 0, 1 of 2' when sharded (for log lines), else ''."""
        shards = self.config.shards
        if shards is None:
            return ""
        return (f" on shard{'s' if len(shards) > 1 else ''} {', '.join(map(str, shards))} "
                f"of {self.config.shard_count}")

    async def on_ready(self) -> None:
        """Check the moderators' channel, say what is watched, and mark the adapter ready
        (tests and health checks wait on it); without a usable moderators' channel, stop with
        one line saying what to fix (escalations would be lost). Sharded, discord.py calls it
        once every shard this process runs is ready."""
        problem = await self._mod_channel_problem()
        if problem is not None:
            self.startup_error = PlatformError(problem, platform="discord", action="start")
            await self.client.close()
            return
        guilds = [g for g in self.client.guilds
                  if not self.config.guild_ids or g.id in self.config.guild_ids]
        watched = ", ".join(f"#{getattr(self.client.get_channel(c), 'name', c)}"
                            for c in sorted(self.config.watch_channel_ids)) or \
            "every text channel"
        mods = self.client.get_channel(self.config.mod_channel_id or 0)
        log.info("discord: ready as %s%s in %s: watching %s; moderators' channel #%s",
                 self.client.user, self._shards_text(),
                 ", ".join(f"{g.name} ({g.id})" for g in guilds) or "no guild",
                 watched, getattr(mods, "name", self._remote_mod_channel or "-"))
        first = not self.ready.is_set()
        self.ready.set()
        # Sharded, discord.py calls on_ready again only when every shard happened to start a
        # new session; each shard's own catch-up (on_shard_ready) has that covered.
        if first or self.config.shard_count is None:
            self._catch_up_later(None)

    async def on_shard_ready(self, shard_id: int) -> None:
        """A shard is ready (sharded clients only). At start on_ready follows once all are; a
        shard that starts a new session later (Discord invalidated its session, or it could
        not resume) lost whatever was posted meanwhile: catch its servers up."""
        shard_guilds = [g for g in self.client.guilds if g.shard_id == shard_id]
        if not self.ready.is_set():
            log.info("discord: shard %s of %s ready in %d server(s)", shard_id,
                     self.config.shard_count, len(shard_guilds))
            return
        log.info("discord: shard %s of %s started a new session in %d server(s); catching its "
                 "servers up", shard_id, self.config.shard_count, len(shard_guilds))
        self._catch_up_later(shard_id)

    def _catch_up_later(self, shard_id: int | None) -> None:
        """Start `resume(shard_id)` unless the same one is still running."""
        running = self._resuming.get(shard_id)
        if running is None or running.done():
            self._resuming[shard_id] = asyncio.create_task(
                self.resume(shard_id),
                name="discord-catch-up" + ("" if shard_id is None else f"-shard-{shard_id}"))

    async def resume(self, shard_id: int | None = None) -> None:
        """Decide what a stop left in the inbox, then what was posted while the bot was away
        (in `shard_id`'s servers only, when given)."""
        try:
            for entry, message in await self.moderator.waiting(Platform.DISCORD):
                await self._decide(entry, message)
            caught = await self.catch_up(shard_id)
        except ConductError as exc:
            log.error("discord: catch-up failed: %s", exc)
            return
        if caught:
            log.info("discord: caught up on %d message(s) posted while the bot was away%s",
                     caught, "" if shard_id is None else f" (shard {shard_id})")

    async def catch_up(self, shard_id: int | None = None) -> int:
        """Moderate each channel's history since the last message decided there (at most
        CATCH_UP_LIMIT a channel, none older than CATCH_UP_WINDOW); how many were read. A
        channel never moderated before is not read back: the bot starts there from now.
        Only channels of this process's shards are read (of `shard_id` only, when given):
        another process catches up its own."""
        latest = await self.moderator.store.latest_decided(Platform.DISCORD)
        floor = discord.utils.time_snowflake(datetime.now(UTC) - CATCH_UP_WINDOW)
        read = 0
        for channel_id, last in sorted(latest.items()):
            channel = self.client.get_channel(int(channel_id))
            if not isinstance(channel, discord.TextChannel | discord.Thread):
                continue
            if shard_id is not None and channel.guild.shard_id != shard_id:
                continue
            try:
                with _translate(f"read #{channel.name}'s history"):
                    async for message in channel.history(after=discord.Object(max(last, floor)),
                                                         limit=CATCH_UP_LIMIT,
                                                         oldest_first=True):
                        read += 1
                        await self.on_message(message)
            except PlatformError as exc:
                log.warning("discord: no catch-up in #%s: %s", channel.name, exc)
        return read

    async def _mod_channel_problem(self) -> str | None:
        """`mod_channel_problem`, except that a channel in a server on a shard this process
        does not run (so not in its cache) is looked up over REST: the process running that
        shard checks the bot's permissions there."""
        problem = self.mod_channel_problem()
        channel_id = self.config.mod_channel_id
        if problem is None or channel_id is None or self.runs_every_shard or \
                self.client.get_channel(channel_id) is not None:
            return problem
        try:
            data = await self._fetch_channel(channel_id)
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("discord: could not look up DISCORD_MOD_CHANNEL_ID %s over REST: %s",
                        channel_id, exc)
            return problem
        guild_id = data.get("guild_id")
        shard = None if guild_id is None else self._shard_of(int(guild_id))
        if shard is None or shard in (self.config.shards or ()):
            return problem
        self._remote_mod_channel = str(data.get("name") or channel_id)
        log.info("discord: the moderators' channel #%s is in a server on shard %s, which "
                 "another process runs (it checks the bot's permissions there)",
                 self._remote_mod_channel, shard)
        return None

    async def _fetch_channel(self, channel_id: int) -> dict[str, Any]:
        """The channel's payload over REST (GET /channels/{id}), for a channel not in the
        cache."""
        return cast(dict[str, Any], await self.client.http.get_channel(channel_id))

    def _shard_of(self, guild_id: int) -> int | None:
        """The shard that receives a server's events; None when unsharded."""
        count = self.config.shard_count
        return None if count is None else (guild_id >> 22) % count

    def mod_channel_problem(self) -> str | None:
        """Why the bot cannot post escalations to the moderators' channel, or None."""
        channel_id = self.config.mod_channel_id
        if channel_id is None:
            return ("DISCORD_MOD_CHANNEL_ID is not set: escalations would have nowhere to go; "
                    "set it to the moderators' channel id (right click the channel, Copy "
                    "Channel ID)")
        channel = self.client.get_channel(channel_id)
        if not isinstance(channel, discord.abc.GuildChannel):
            return (f"DISCORD_MOD_CHANNEL_ID {channel_id}: no such channel in the bot's servers; "
                    "check the id, and that the bot's role can view the channel")
        perms = channel.permissions_for(channel.guild.me)
        missing = [n.permission for n in POST_NEEDS if not getattr(perms, n.permission)]
        if missing:
            return (f"DISCORD_MOD_CHANNEL_ID {channel_id} (#{channel.name}): the bot lacks "
                    f"{', '.join(missing)} there; grant them to its role in the channel's "
                    "permissions")
        return None

    async def run(self) -> None:
        """Log in, connect and serve until cancelled (see the module docstring)."""
        self._apply_overrides()
        try:
            async with self.client:
                with _translate("log in"):
                    await self.client.login(self.config.token.reveal())
                drain = asyncio.create_task(
                    self.moderator.sweep_outbox(self, every=self.outbox_interval,
                                                orphans=self._decide),
                    name="discord-outbox")
                try:
                    await self.client.connect(reconnect=True)
                    if self.startup_error is not None:
                        raise self.startup_error
                finally:
                    for task in (drain, *self._resuming.values()):
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
        except discord.LoginFailure as exc:
            raise PermissionDenied("Discord refused DISCORD_TOKEN (check the bot token)",
                                   platform="discord", action="login") from exc
        except discord.PrivilegedIntentsRequired as exc:
            raise PlatformError("enable the Message Content and Server Members intents for the "
                                "bot in the Discord developer portal (see docs/discord.md)",
                                platform="discord", action="connect") from exc
        except discord.ConnectionClosed as exc:
            if exc.code == _INVALID_SHARD:
                raise PlatformError(
                    f"Discord refused the gateway shards{self._shards_text()}: check "
                    "DISCORD_SHARD_COUNT and DISCORD_SHARD_IDS (every process must use the same "
                    "count)", platform="discord", action="connect") from exc
            if exc.code == _SHARDING_REQUIRED:
                raise PlatformError(await self._sharding_advice(), platform="discord",
                                    action="connect") from exc
            raise

    async def _sharding_advice(self) -> str:
        """Why Discord closed with 4011 (the bot is in too many servers for its shards), and
        the shard count Discord recommends (GET /gateway/bot), when it says."""
        current = self.config.shard_count or 1
        # discord.py closed the client's HTTP session with the gateway: ask with a new one.
        http = discord.http.HTTPClient(asyncio.get_running_loop())
        try:
            await http.static_login(self.config.token.reveal())
            recommended, _, _ = await http.get_bot_gateway()
        except (discord.DiscordException, aiohttp.ClientError, OSError, TimeoutError):
            recommended = None
        finally:
            await http.close()
        advice = (f"set DISCORD_SHARD_COUNT to {recommended} (what Discord recommends)"
                  if recommended and recommended > current else
                  "set DISCORD_SHARD_COUNT higher")
        return (f"Discord requires more gateway shards than {current} for the bot's servers: "
                f"{advice}; see docs/discord.md")

    async def drain_outbox(self) -> list[Action]:
        """Execute this platform's pending outbox rows (the core serialises runs)."""
        return await self.moderator.run_outbox(self)

    async def connection(self) -> Connection:
        """Connected once ready and while the gateway socket is open, sharded: every socket of
        the shards this process runs (discord.py reconnects and resumes a dropped one by
        itself; meanwhile it reads as reconnecting)."""
        if self.startup_error is not None:
            return Connection(ConnectionState.STOPPED, str(self.startup_error))
        if self.client.is_closed():
            return Connection(ConnectionState.STOPPED, "the client closed its connection")
        if not self.ready.is_set():
            return Connection(ConnectionState.STARTING, "logging in and connecting to the "
                              "gateway")
        if isinstance(self.client, discord.AutoShardedClient):
            return self._shards_connection(self.client)
        ws = self.client.ws
        if ws is None or not ws.open:
            return Connection(ConnectionState.RECONNECTING, "the gateway connection dropped; "
                              "discord.py is reconnecting")
        latency = self.client.latency
        beat = f", heartbeat {latency * 1000:.0f} ms" if math.isfinite(latency) else ""
        return Connection(ConnectionState.CONNECTED,
                          f"gateway ready in {len(self.client.guilds)} server(s){beat}")

    def _shards_connection(self, client: discord.AutoShardedClient) -> Connection:
        """Sharded: connected while every shard this process runs has its socket open."""
        shards = client.shards
        expected = self.config.shards or tuple(sorted(shards))
        down = [i for i in expected if i not in shards or shards[i].is_closed()]
        if down:
            return Connection(ConnectionState.RECONNECTING, (
                f"gateway shard{'s' if len(down) > 1 else ''} {', '.join(map(str, down))} of "
                f"{self.config.shard_count} dropped; discord.py is reconnecting"))
        beats = [shards[i].latency for i in expected if math.isfinite(shards[i].latency)]
        beat = f", heartbeat up to {max(beats) * 1000:.0f} ms" if beats else ""
        return Connection(ConnectionState.CONNECTED,
                          f"gateway ready in {len(client.guilds)} server(s){self._shards_text()}"
                          f"{beat}")

    # -- events ------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        """A new message: convert, decide, act."""
        core = from_discord(message, watch=self.config.watch_channel_ids,
                            guilds=self.config.guild_ids, ignore=self._unwatched)
        if core is not None:
            await self.sync_roles(message.author)
            await self._receive(core)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """An edit (cached or not): decide the new text as a new revision."""
        message = payload.message
        if "content" not in payload.data:
            return  # an embed unfurl, a pin or similar: the text did not change
        core = from_discord(message, edited=True, watch=self.config.watch_channel_ids,
                            guilds=self.config.guild_ids, ignore=self._unwatched,
                            raw=dict(payload.data))
        if core is not None:
            await self.sync_roles(message.author)
            await self._receive(core)

    async def _receive(self, message: Message) -> None:
        """Keep the message in the inbox, then decide it (a redelivery is dropped)."""
        try:
            entry = await self.moderator.accept(message)
        except InputError as exc:
            log.warning("discord: not moderated: %s", exc)
            return
        except ConductError as exc:  # the next catch-up reads it again
            log.error("discord: could not keep %s: %s", message.key, exc)
            return
        if entry is not None:
            await self._decide(entry, message)

    async def _decide(self, entry: int, message: Message) -> None:
        try:
            handled = await self.moderator.decide_accepted(entry, message)
        except ConductError as exc:
            log.error("discord: could not moderate %s (kept for the next start): %s",
                      message.key, exc)
            return
        except Exception:
            log.exception("discord: could not moderate %s (kept for the next start)",
                          message.key)
            return
        if handled is not None and handled.actions:
            await self.drain_outbox()

    async def sync_roles(self, user: discord.abc.User) -> None:
        """Give the core member the moderator/exempt role their Discord roles imply (never
        removes a role: the party register stays the authority)."""
        if not isinstance(user, discord.Member):
            return
        ids = {role.id for role in user.roles}
        wanted: set[Role] = set()
        if ids & self.config.mod_role_ids:
            wanted.add(Role.MODERATOR)
        if ids & self.config.exempt_role_ids:
            wanted.add(Role.EXEMPT)
        if wanted:
            await self.moderator.grant_roles(Platform.DISCORD, str(user.id), frozenset(wanted),
                                             actor="discord-roles",
                                             display_name=user.display_name)

    # -- commands ----------------------------------------------------------------------------

    async def run_command(self, interaction: discord.Interaction[Any],
                          words: str | Sequence[str]) -> None:
        """Defer, run a core command as the interaction's user, answer with an ephemeral embed,
        then execute whatever the command put in the outbox."""
        if not interaction.response.is_done():
            await interaction.response.defer(ephemeral=True, thinking=True)
        await self.sync_roles(interaction.user)
        reply = await self.commands.run(Account(Platform.DISCORD, str(interaction.user.id)),
                                        words)
        view = command_view(reply.buttons)
        if view is None:
            await interaction.followup.send(embed=reply_embed(reply), ephemeral=True)
        else:
            await interaction.followup.send(embed=reply_embed(reply), view=view, ephemeral=True)
        await self.drain_outbox()

    async def _is_moderator(self, user: discord.abc.User) -> bool:
        await self.sync_roles(user)
        member = await self.moderator.resolve_member(Platform.DISCORD, str(user.id))
        return Role.MODERATOR in member.roles

    def _build_commands(self) -> None:
        mod = app_commands.Group(
            name="mod", description="Moderation: cases, members, sanctions",
            default_permissions=discord.Permissions(manage_messages=True), guild_only=True)
        run = self.run_command

        @mod.command(name="queue", description="Cases waiting, most urgent first")
        @app_commands.describe(filters="e.g. mine, unassigned, clause:1.2, channel:general, "
                                       "platform:slack, page:2")
        async def queue(interaction: discord.Interaction[Any], filters: str = "") -> None:
            await run(interaction, ["queue", *filters.split()])

        @mod.command(name="case", description="Show a case: evidence, state, history")
        @app_commands.describe(number="Case number")
        async def case(interaction: discord.Interaction[Any],
                       number: app_commands.Range[int, 1]) -> None:
            await run(interaction, ["case", str(number)])

        @case.autocomplete("number")
        async def case_numbers(interaction: discord.Interaction[Any], current: str
                               ) -> list[app_commands.Choice[int]]:
            if not await self._is_moderator(interaction.user):
                return []
            digits = "".join(c for c in current if c.isdigit())
            ids = await self.moderator.store.case_ids(prefix=digits, limit=25)
            return [app_commands.Choice(name=f"Case {i}", value=i) for i in ids]

        @mod.command(name="history", description="A member's status, strike points and cases")
        async def history(interaction: discord.Interaction[Any], member: discord.User) -> None:
            await run(interaction, ["history", f"discord:{member.id}"])

        @mod.command(name="warn", description="Warn a member privately (adds strike points)")
        async def warn(interaction: discord.Interaction[Any], member: discord.User,
                       reason: str) -> None:
            await run(interaction, ["warn", f"discord:{member.id}", *reason.split()])

        @mod.command(name="timeout", description="Stop a member posting for a while (max 28d)")
        @app_commands.describe(duration="e.g. 1h, 2d, 28d")
        async def timeout(interaction: discord.Interaction[Any], member: discord.User,
                          duration: str, reason: str) -> None:
            await run(interaction, ["timeout", f"discord:{member.id}", duration,
                                    *reason.split()])

        @mod.command(name="resolve", description="Decide a case")
        @app_commands.choices(outcome=[app_commands.Choice(name="uphold", value="uphold"),
                                       app_commands.Choice(name="dismiss", value="dismiss")])
        async def resolve(interaction: discord.Interaction[Any],
                          number: app_commands.Range[int, 1], outcome: str,
                          reason: str) -> None:
            await run(interaction, ["resolve", str(number), outcome, *reason.split()])

        resolve.autocomplete("number")(case_numbers)

        @mod.command(name="check", description="Score a text and show what the bot would do")
        async def check(interaction: discord.Interaction[Any], text: str) -> None:
            await run(interaction, ["check", text])

        @mod.command(name="hide", description="Delete a message (adds strike points)")
        @app_commands.describe(message_id="The message's id (Copy Message ID)")
        async def hide(interaction: discord.Interaction[Any], message_id: str,
                       reason: str = "hidden by a moderator") -> None:
            await run(interaction, ["hide", f"discord:{message_id}", *reason.split()])

        @mod.command(name="suspend", description="Propose a suspension (a second moderator "
                     "confirms)")
        @app_commands.describe(duration="e.g. 30d, 3mo, 1y, or indefinite")
        async def suspend(interaction: discord.Interaction[Any], member: discord.User,
                          duration: str, reason: str) -> None:
            await run(interaction, ["suspend", f"discord:{member.id}", duration,
                                    *reason.split()])

        @mod.command(name="confirm", description="Confirm another moderator's proposed "
                     "suspension")
        async def confirm(interaction: discord.Interaction[Any],
                          number: app_commands.Range[int, 1]) -> None:
            await run(interaction, ["confirm", str(number)])

        @mod.command(name="reinstate", description="End a suspension or expulsion")
        async def reinstate(interaction: discord.Interaction[Any], member: discord.User,
                            reason: str) -> None:
            await run(interaction, ["reinstate", f"discord:{member.id}", *reason.split()])

        @mod.command(name="pardon", description="Remove the strike points of a case")
        async def pardon(interaction: discord.Interaction[Any],
                         number: app_commands.Range[int, 1], reason: str) -> None:
            await run(interaction, ["pardon", str(number), *reason.split()])

        @mod.command(name="note", description="Add a note to a case's history")
        async def note(interaction: discord.Interaction[Any],
                       number: app_commands.Range[int, 1], text: str) -> None:
            await run(interaction, ["note", str(number), *text.split()])

        @mod.command(name="assign", description="Take a case, or give it to a moderator")
        async def assign(interaction: discord.Interaction[Any],
                         number: app_commands.Range[int, 1],
                         moderator: discord.User | None = None) -> None:
            words = ["assign", str(number)]
            if moderator is not None:
                words.append(f"discord:{moderator.id}")
            await run(interaction, words)

        @mod.command(name="link", description="Link a platform account to a member")
        @app_commands.describe(member="Name, membership number or member id",
                               account="The account's id on that platform")
        @app_commands.choices(platform=[app_commands.Choice(name=p, value=p)
                                        for p in ("discord", "slack")])
        async def link(interaction: discord.Interaction[Any], member: str, platform: str,
                       account: str) -> None:
            await run(interaction, ["link", member, platform, account])

        @mod.command(name="unlink", description="Detach a wrongly linked account")
        @app_commands.describe(account="The account's id on that platform")
        @app_commands.choices(platform=[app_commands.Choice(name=p, value=p)
                                        for p in ("discord", "slack")])
        async def unlink(interaction: discord.Interaction[Any], platform: str,
                         account: str) -> None:
            await run(interaction, ["unlink", f"{platform}:{account}"])

        @mod.command(name="policy", description="The policy's version, mode and clauses; "
                                                "reload it from its file")
        @app_commands.describe(action="reload: validate the policy file again and switch to it")
        @app_commands.choices(action=[app_commands.Choice(name="reload", value="reload")])
        async def policy(interaction: discord.Interaction[Any], action: str | None = None
                         ) -> None:
            await run(interaction, ["policy", *([action] if action else [])])

        @mod.command(name="raid", description="Raids in progress; end one (lifts its slowmode "
                                              "and timeouts)")
        @app_commands.describe(end="The raid to end", reason="Why it is over")
        async def raid(interaction: discord.Interaction[Any],
                       end: app_commands.Range[int, 1] | None = None, reason: str = ""
                       ) -> None:
            await run(interaction, ["raid"] if end is None else
                      ["raid", "end", str(end), *([reason] if reason else [])])

        confirm.autocomplete("number")(case_numbers)
        pardon.autocomplete("number")(case_numbers)
        note.autocomplete("number")(case_numbers)
        assign.autocomplete("number")(case_numbers)

        @app_commands.command(name="appeal", description="Appeal a moderation decision about you")
        @app_commands.describe(case="The case number in your notice",
                               statement="Why the decision should change")
        async def appeal(interaction: discord.Interaction[Any],
                         case: app_commands.Range[int, 1], statement: str) -> None:
            await run(interaction, ["appeal", str(case), statement])

        @appeal.autocomplete("case")
        async def own_cases(interaction: discord.Interaction[Any], current: str
                            ) -> list[app_commands.Choice[int]]:
            """The member's own cases that can still be appealed (never anyone else's)."""
            member = await self.moderator.store.member_by_account(Platform.DISCORD,
                                                                  str(interaction.user.id))
            if member is None:
                return []
            digits = "".join(c for c in current if c.isdigit())
            cases = [c for c in await self.moderator.store.member_cases(member.id)
                     if c.appeal is None and c.state is not CaseState.DISMISSED
                     and str(c.id).startswith(digits)]
            return [app_commands.Choice(name=_clip(f"Case {c.id}: {c.summary}", 100), value=c.id)
                    for c in cases[:25]]

        @app_commands.command(name="mycases",
                              description="The cases about you, and which you can appeal")
        async def mycases(interaction: discord.Interaction[Any]) -> None:
            await run(interaction, ["mycases"])

        @app_commands.context_menu(name="Check message")
        @app_commands.default_permissions(manage_messages=True)
        @app_commands.guild_only()
        async def check_message(interaction: discord.Interaction[Any],
                                message: discord.Message) -> None:
            await run(interaction, ["check", message.content or ""])

        @app_commands.context_menu(name="Report to moderators")
        @app_commands.guild_only()
        async def report(interaction: discord.Interaction[Any], message: discord.Message) -> None:
            await self.report(interaction, message)

        self.tree.add_command(mod)
        self.tree.add_command(appeal)
        self.tree.add_command(mycases)
        self.tree.add_command(check_message)
        self.tree.add_command(report)

    async def report(self, interaction: discord.Interaction[Any],
                     message: discord.Message) -> None:
        """A member reports a message: post it to the moderators' channel with a Hide button."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        if self.config.mod_channel_id is None:
            await interaction.followup.send("Reporting is not set up on this server.",
                                            ephemeral=True)
            return
        embed = discord.Embed(title="Reported message", colour=discord.Colour.orange(),
                              description=_clip(message.content or "", 4000) or None)
        embed.add_field(name="member", value=f"{message.author} (<@{message.author.id}>)")
        embed.add_field(name="channel", value=f"<#{message.channel.id}>")
        embed.add_field(name="reported by", value=f"<@{interaction.user.id}>")
        embed.add_field(name="link", value=message.jump_url, inline=False)
        view = command_view([Button("Hide", f"hide discord:{message.id} reported", "danger"),
                             Button("History", f"history discord:{message.author.id}")])
        channel = self.client.get_partial_messageable(self.config.mod_channel_id)
        with _translate("report"):
            if view is None:  # pragma: no cover - both buttons fit
                await channel.send(embed=embed)
            else:
                await channel.send(embed=embed, view=view)
        await interaction.followup.send("Thank you: the moderators have your report.",
                                        ephemeral=True)

    # -- the PlatformPort ---------------------------------------------------------------------

    async def hide(self, action: Action, /) -> None:
        """Delete the message."""
        channel = need(action.channel, "channel", platform=Platform.DISCORD)
        message = need(action.message_id, "message", platform=Platform.DISCORD)
        reason = str(action.payload.get("reason") or f"conduct clause "
                     f"{action.payload.get('clause')}")
        with _translate("hide"):
            await self.client.http.delete_message(channel, message, reason=_clip(reason, 512))

    async def notify(self, action: Action, /) -> None:
        """DM the member the notice."""
        user = need(action.user, "user", platform=Platform.DISCORD)
        text = str(action.payload.get("text") or "")
        if not text:
            raise UnsupportedAction("a notice without text", platform="discord",
                                    action="notify")
        with _translate("notify"):
            dm = await self.client.http.start_private_message(int(user))
            channel = self.client.get_partial_messageable(int(dm["id"]),
                                                          type=discord.ChannelType.private)
            for part in _chunks(text):
                await channel.send(part)

    async def escalate(self, action: Action, /) -> None:
        """Post the case to the moderators' channel with Uphold / Dismiss / Hide / Timeout."""
        if self.config.mod_channel_id is None:
            raise UnsupportedAction("DISCORD_MOD_CHANNEL_ID is not set: nowhere to escalate",
                                    platform="discord", action="escalate")
        p = action.payload
        case = p.get("case")
        clause = f"{p.get('clause') or '-'} {p.get('clause_title') or ''}".strip()
        shadow = shadow_title(p)  # shadow mode: what the bot would have done, and did not
        title = ("Shadow case" if shadow else "Case") + f" {case}: " if case is not None \
            else "Escalation: "
        embed = discord.Embed(title=_clip(title + clause, 256),
                              colour=discord.Colour.light_grey() if shadow else
                              discord.Colour.red(),
                              description=_clip(shadow + "; ".join(p.get("reasons") or []),
                                                4096) or None)
        user = action.user
        embed.add_field(name="member", value=_clip(
            f"{p.get('author_name') or user}" + (f" (<@{user}>)" if user else ""), 1024))
        embed.add_field(name="channel", value=_clip(
            f"#{p.get('channel_name') or action.channel}"
            + (f" (<#{action.channel}>)" if action.channel else ""), 1024))
        embed.add_field(name="clause", value=_clip(clause, 1024))
        embed.add_field(name="categories", value=_clip(", ".join(p.get("categories") or [])
                                                       or "-", 1024))
        embed.add_field(name="priority", value=f"p{p.get('priority', 0)}, severity "
                                               f"{p.get('severity', '-')}")
        embed.add_field(name="excerpt", value=_clip(str(p.get("excerpt") or "-"), 1024),
                        inline=False)
        buttons: list[Button] = []
        if case is not None:
            buttons += [Button("Uphold", f"resolve {case} uphold upheld from escalation",
                               "primary"),
                        Button("Dismiss", f"resolve {case} dismiss dismissed from escalation",
                               "danger")]
        if action.message_id:
            buttons.append(Button("Hide", f"hide discord:{action.message_id}"))
        if user:
            buttons.append(Button("Timeout", f"timeout discord:{user} 1d case {case} escalation"
                                  if case is not None else f"timeout discord:{user} 1d "
                                  "escalation"))
        view = command_view(buttons)
        channel = self.client.get_partial_messageable(self.config.mod_channel_id)
        with _translate("escalate"):
            if view is None:
                await channel.send(embed=embed)
            else:
                await channel.send(embed=embed, view=view)

    async def timeout(self, action: Action, /) -> None:
        """Time the member out until payload['until'] (at most 28 days from now)."""
        await self._timeout(action, kind="timeout")

    async def suspend(self, action: Action, /) -> None:
        """Discord times out for at most 28 days: a longer suspension is a 28-day timeout that
        the outbox renews a day before it runs out, until the suspension ends (a
        reinstatement cancels the renewal); the moderators' channel is told once."""
        capped = await self._timeout(action, kind="suspend")
        if capped is None:
            return
        case = action.payload.get("case")
        await self.moderator.store.enqueue(
            [replace(action, id=None, attempts=0, error=None, status=ActionStatus.PENDING,
                     payload={**action.payload, "renewal": True})],
            case_id=case if isinstance(case, int) else None, not_before=capped - _RENEW_BEFORE)
        if self.config.mod_channel_id is not None and not action.payload.get("renewal"):
            channel = self.client.get_partial_messageable(self.config.mod_channel_id)
            until = action.payload.get("until")
            note = (f"Suspension of <@{action.user}> (case {case or '-'}) is longer than "
                    f"Discord's 28-day timeout: timed out until {capped:%Y-%m-%d}, renewed "
                    f"automatically until the suspension ends "
                    f"({str(until)[:10] if until else 'indefinitely'}).")
            with contextlib.suppress(discord.HTTPException):
                await channel.send(note)

    async def _timeout(self, action: Action, *, kind: str) -> datetime | None:
        """Apply the timeout in every guild; returns the capped end when Discord's cap applied."""
        user = need(action.user, "user", platform=Platform.DISCORD)
        now = datetime.now(UTC)
        limit = now + MAX_TIMEOUT - _MARGIN
        raw = action.payload.get("until")
        until = datetime.fromisoformat(str(raw)) if raw else None
        capped = until is None or until > limit
        end = limit if until is None or until > limit else until
        if end <= now:
            return None  # already over: nothing left to enforce
        await self._set_timeout(action, user, end, kind=kind)
        return end if capped else None

    async def _set_timeout(self, action: Action, user: str, end: datetime | None, *,
                           kind: str) -> None:
        """Time the member out until `end` (None: lift it) in every guild they are in."""
        reason = _clip(str(action.payload.get("reason") or kind), 512)
        guilds = await self._guilds_for(action)
        if not guilds:
            raise UnsupportedAction("the bot is in no guild where this member could be timed "
                                    "out", platform="discord", action=kind)
        found = False
        for guild_id in guilds:
            try:
                with _translate(kind):
                    await self.client.http.edit_member(
                        guild_id, int(user), reason=reason,
                        communication_disabled_until=end.isoformat() if end else None)
                found = True
            except TargetNotFound:
                continue  # not a member of this guild
        if not found:
            raise TargetNotFound(f"member {user} is in none of the bot's guilds",
                                 platform="discord", action=kind)

    async def _guilds_for(self, action: Action) -> list[int]:
        """The servers where the action's member is acted on: its channel's, else every one.
        An outbox row may be run by a process that does not receive that server's shard: what
        is not in discord.py's cache is then asked over REST."""
        if action.channel and action.channel.isdigit():
            channel = self.client.get_channel(int(action.channel))
            guild = getattr(channel, "guild", None)
            if guild is not None:
                return [guild.id]
            if not self.runs_every_shard:
                with contextlib.suppress(TargetNotFound, PermissionDenied):
                    with _translate("find the channel's server"):
                        data = await self._fetch_channel(int(action.channel))
                    if data.get("guild_id"):
                        return [int(data["guild_id"])]
        if self.config.guild_ids:
            return sorted(self.config.guild_ids)
        if self.runs_every_shard:
            return [g.id for g in self.client.guilds]
        with _translate("list the bot's servers"):
            return [g.id async for g in self.client.fetch_guilds(limit=None)]

    async def restore(self, action: Action, /) -> None:
        """End a timeout early (its case was dismissed or pardoned); Discord ends timeouts
        that run their course by itself."""
        if not action.payload.get("lift"):
            raise UnsupportedAction("Discord timeouts end by themselves", platform="discord",
                                    action="restore")
        user = need(action.user, "user", platform=Platform.DISCORD)
        await self._set_timeout(action, user, None, kind="restore")

    async def slowmode(self, action: Action, /) -> None:
        """Set the channel's slowmode to payload['seconds'] (Discord allows 0 to 21,600)."""
        channel = need(action.channel, "channel", platform=Platform.DISCORD)
        seconds = max(0, min(int(action.payload.get("seconds") or 0), 21_600))
        with _translate("slowmode"):
            await self.client.http.edit_channel(
                int(channel), rate_limit_per_user=seconds,
                reason=_clip(str(action.payload.get("reason") or "raid"), 512))

    async def alert(self, action: Action, /) -> None:
        """Post payload['text'] to the moderators' channel."""
        if self.config.mod_channel_id is None:
            raise UnsupportedAction("DISCORD_MOD_CHANNEL_ID is not set: nowhere to alert",
                                    platform="discord", action="alert")
        with _translate("alert"):
            target = self.client.get_partial_messageable(self.config.mod_channel_id)
            for part in _chunks(str(action.payload.get("text") or "")):
                await target.send(part)

    async def post(self, action: Action, /) -> None:
        """Send payload['text'] to the channel, with payload['embeds'] (the digest) if any."""
        channel = need(action.channel, "channel", platform=Platform.DISCORD)
        text = str(action.payload.get("text") or "")
        embeds = [discord.Embed.from_dict(e) for e in action.payload.get("embeds") or []]
        with _translate("post"):
            target = self.client.get_partial_messageable(int(channel))
            if embeds:  # the renderer keeps one message within Discord's limits
                await target.send(_clip(text, 2000) or None, embeds=embeds[:10])
                return
            for part in _chunks(text):
                await target.send(part)



@contextlib.contextmanager
def _translate(action: str) -> Iterator[None]:
    """discord.py's exceptions as the core's PlatformError tree."""
    try:
        yield
    except discord.Forbidden as exc:
        raise PermissionDenied(f"Discord refused {action}: {exc.text or exc}",
                               platform="discord", action=action) from exc
    except discord.NotFound as exc:
        raise TargetNotFound(f"Discord found no target for {action}: {exc.text or exc}",
                             platform="discord", action=action) from exc
    except discord.RateLimited as exc:
        raise RateLimited(f"rate limited on {action}", platform="discord", action=action,
                          retry_after=exc.retry_after) from exc
    except discord.HTTPException as exc:
        if exc.status == 429:
            retry = exc.response.headers.get("Retry-After", "1") if exc.response else "1"
            try:
                seconds = float(retry)
            except ValueError:
                seconds = 1.0
            raise RateLimited(f"rate limited on {action}", platform="discord", action=action,
                              retry_after=seconds) from exc
        kind = Unavailable if exc.status >= 500 else PlatformError
        raise kind(f"Discord failed {action}: HTTP {exc.status} {exc.text}",
                   platform="discord", action=action) from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise Unavailable(f"could not reach Discord for {action}: {exc}",
                          platform="discord", action=action) from exc


@contextlib.asynccontextmanager
async def discord_adapter(moderator: Moderator, config: DiscordConfig, /,
                          **options: Any) -> AsyncIterator[DiscordAdapter]:
    """The adapter running in a background task; yields once it is connected and ready."""
    adapter = DiscordAdapter(moderator, config, **options)
    task = asyncio.create_task(adapter.run(), name="discord")
    ready = asyncio.create_task(adapter.ready.wait())
    try:
        done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            ready.cancel()
            await task  # raises why it stopped
        yield adapter
    finally:
        ready.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_discord(moderator: Moderator, config: DiscordConfig, /, *,
                      watch: PlatformWatch | None = None, **options: Any) -> None:
    """Serve Discord until cancelled (the contract is in the module docstring); `watch` is
    told of the adapter, which reports its connection there."""
    adapter = DiscordAdapter(moderator, config, **options)
    if watch is not None:
        watch.running(adapter)
    await adapter.run()
