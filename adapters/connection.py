"""Whether each platform is connected: what an adapter says of itself, and what its supervisor
in `bot.py run` knows when no adapter is running (retrying after an outage, stopped for good).

`/healthz` and the `conductbot_platform_connected` gauge read it (adapters/health.py).
"""

from __future__ import annotations

__all__ = ["Connectable", "Connection", "ConnectionState", "PlatformWatch"]

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar


class ConnectionState(StrEnum):
    """Where a platform's connection stands."""

    STARTING = "starting"  # logging in, checking the configuration, connecting
    CONNECTED = "connected"  # Discord: gateway ready; Slack: serving HTTP or Socket Mode up
    RECONNECTING = "reconnecting"  # dropped; the client library or the supervisor retries
    STOPPED = "stopped"  # refused for good (a revoked token): an operator must act


@dataclass(frozen=True, slots=True)
class Connection:
    """A platform's connection state and a line saying more (never a token or a message)."""

    state: ConnectionState
    detail: str = ""

    @property
    def up(self) -> bool:
        """Whether the platform is connected."""
        return self.state is ConnectionState.CONNECTED


class Connectable(Protocol):
    """An adapter that can say whether it is connected (DiscordAdapter, SlackAdapter)."""

    async def connection(self) -> Connection:
        """The adapter's connection now."""
        ...


_A = TypeVar("_A", bound=Connectable)


class PlatformWatch:
    """One platform as `bot.py run` supervises it: its running adapter's own account of its
    connection, or, between runs, what the supervisor knows (and how often it restarted it)."""

    def __init__(self, platform: str, /) -> None:
        self.platform = platform
        #: How many times the supervisor started the platform again after it ended or failed.
        self.restarts = 0
        self._adapter: Connectable | None = None
        self._between = Connection(ConnectionState.STARTING, "not started yet")

    def running(self, adapter: _A, /) -> _A:
        """`adapter` is the platform's adapter from now on (it reports its own connection)."""
        self._adapter = adapter
        return adapter

    def retrying(self, reason: str, /, *, after: float) -> None:
        """The adapter ended or failed; the supervisor starts another after `after` s."""
        self._adapter = None
        self.restarts += 1
        self._between = Connection(ConnectionState.RECONNECTING,
                                   f"{reason}; starting again in {after:.0f} s")

    def stopped(self, reason: str, /) -> None:
        """The platform refused for good; the supervisor gave up on it."""
        self._adapter = None
        self._between = Connection(ConnectionState.STOPPED, reason)

    async def connection(self) -> Connection:
        """The platform's connection now."""
        if self._adapter is None:
            return self._between
        return await self._adapter.connection()
