"""Discord adapter settings from the environment; the token is never logged or shown in repr."""

from __future__ import annotations

__all__ = ["DiscordConfig", "DiscordConfigError"]

import os
from collections.abc import Mapping
from dataclasses import dataclass

from bot.config import Secret, reveal_secrets, shown
from bot.errors import ConductError


class DiscordConfigError(ConductError):
    """A DISCORD_* variable is missing or malformed; the message names the variable."""


def _ids(env: Mapping[str, str], name: str) -> frozenset[int]:
    raw = env.get(name, "").strip()
    ids: set[int] = set()
    for part in raw.replace(";", ",").replace(" ", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or int(part) <= 0:
            raise DiscordConfigError(f"{name} must be a comma-separated list of Discord ids "
                                     f"(snowflakes), not {shown(part)}")
        ids.add(int(part))
    return frozenset(ids)


def _shard_count(env: Mapping[str, str]) -> int | None:
    raw = env.get("DISCORD_SHARD_COUNT", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) <= 0:
        raise DiscordConfigError("DISCORD_SHARD_COUNT must be a positive whole number (how many "
                                 f"gateway shards the bot runs in all), not {shown(raw)}")
    return int(raw)


def _shard_ids(env: Mapping[str, str]) -> tuple[int, ...] | None:
    raw = env.get("DISCORD_SHARD_IDS", "").strip()
    ids: set[int] = set()
    for part in raw.replace(";", ",").replace(" ", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise DiscordConfigError("DISCORD_SHARD_IDS must be a comma-separated list of shard "
                                     f"ids (0, 1, ...), not {shown(part)}")
        ids.add(int(part))
    return tuple(sorted(ids)) or None


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    if not value.startswith(tuple(f"{s}://" for s in schemes)):
        raise DiscordConfigError(f"{name} must start with {' or '.join(s + '://' for s in schemes)}"
                                 f", not {shown(value)}")
    return value.rstrip("/")


@dataclass(frozen=True, slots=True)
class DiscordConfig:
    """Everything the Discord adapter needs besides the core."""

    #: May be given as plain text; kept as a Secret (masked everywhere).
    token: Secret
    guild_ids: frozenset[int] = frozenset()
    mod_channel_id: int | None = None
    #: The moderators' log (one line per action by the bot or a moderator); None = none.
    modlog_channel_id: int | None = None
    mod_role_ids: frozenset[int] = frozenset()
    exempt_role_ids: frozenset[int] = frozenset()
    #: Channels (or thread parents) to moderate; empty means every channel the bot can read.
    watch_channel_ids: frozenset[int] = frozenset()
    #: REST base such as http://127.0.0.1:8080/api/v10 (tests, proxies); None = discord.com.
    api_base: str | None = None
    #: Gateway URL such as ws://127.0.0.1:8080/gateway; None = Discord's.
    gateway_url: str | None = None
    #: Gateway shards in all (discord.py's AutoShardedClient); None = one unsharded connection.
    shard_count: int | None = None
    #: The shards this process runs, each below shard_count; None = all of them.
    shard_ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        reveal_secrets(self, "token")
        if self.shard_count is not None and self.shard_count <= 0:
            raise DiscordConfigError("DISCORD_SHARD_COUNT must be a positive whole number, not "
                                     f"{self.shard_count}")
        if self.shard_ids is None:
            return
        if self.shard_count is None:
            raise DiscordConfigError("DISCORD_SHARD_IDS is set but DISCORD_SHARD_COUNT is not: "
                                     "set the number of shards the bot runs in all")
        if not self.shard_ids:
            raise DiscordConfigError("DISCORD_SHARD_IDS names no shard: leave it unset to run "
                                     "them all")
        wrong = sorted(i for i in set(self.shard_ids) if not 0 <= i < self.shard_count)
        if wrong:
            named = (f"shard {wrong[0]} does not" if len(wrong) == 1 else
                     f"shards {', '.join(map(str, wrong))} do not")
            raise DiscordConfigError(
                f"DISCORD_SHARD_IDS: {named} exist with DISCORD_SHARD_COUNT="
                f"{self.shard_count} (shard ids run from 0 to {self.shard_count - 1})")

    @property
    def shards(self) -> tuple[int, ...] | None:
        """The shards this process runs, in order; None when the bot is not sharded."""
        if self.shard_count is None:
            return None
        if self.shard_ids is None:
            return tuple(range(self.shard_count))
        return tuple(sorted(set(self.shard_ids)))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, /) -> DiscordConfig:
        """Read DISCORD_* variables; raise DiscordConfigError naming the bad one."""
        env = os.environ if env is None else env
        token = env.get("DISCORD_TOKEN", "").strip()
        if not token:
            raise DiscordConfigError("DISCORD_TOKEN is not set: create a bot in the Discord "
                                     "developer portal and export its token (see docs/discord.md)")
        if any(c.isspace() for c in token) or token.lower().startswith("bot "):
            raise DiscordConfigError("DISCORD_TOKEN must be the bare bot token (no spaces, no "
                                     "'Bot ' prefix)")
        channel = _ids(env, "DISCORD_MOD_CHANNEL_ID")
        if len(channel) > 1:
            raise DiscordConfigError("DISCORD_MOD_CHANNEL_ID takes one channel id")
        modlog = _ids(env, "DISCORD_MODLOG_CHANNEL_ID")
        if len(modlog) > 1:
            raise DiscordConfigError("DISCORD_MODLOG_CHANNEL_ID takes one channel id")
        return cls(
            token=Secret(token),
            guild_ids=_ids(env, "DISCORD_GUILD_IDS"),
            mod_channel_id=next(iter(channel), None),
            modlog_channel_id=next(iter(modlog), None),
            mod_role_ids=_ids(env, "DISCORD_MOD_ROLE_IDS"),
            exempt_role_ids=_ids(env, "DISCORD_EXEMPT_ROLE_IDS"),
            watch_channel_ids=_ids(env, "DISCORD_WATCH_CHANNEL_IDS"),
            api_base=_url(env, "DISCORD_API_BASE", ("http", "https")),
            gateway_url=_url(env, "DISCORD_GATEWAY_URL", ("ws", "wss")),
            shard_count=_shard_count(env),
            shard_ids=_shard_ids(env),
        )
