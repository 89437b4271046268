"""The adapter boundary: what the core asks a platform to do."""

from __future__ import annotations

__all__ = ["PlatformPort"]

from typing import Protocol

from bot.models import Action, Platform


class PlatformPort(Protocol):
    """Implemented by each adapter; raises bot.errors.PlatformError subclasses on failure.

    An action the platform cannot do raises UnsupportedAction; it never silently does nothing.
    """

    platform: Platform

    async def hide(self, action: Action, /) -> None:
        """Delete (or hide) the message the action names."""
        ...

    async def notify(self, action: Action, /) -> None:
        """Send the author the private notice in `action.payload['text']`."""
        ...

    async def escalate(self, action: Action, /) -> None:
        """Post the escalation to the moderators' channel."""
        ...

    async def timeout(self, action: Action, /) -> None:
        """Stop the member posting until `action.payload['until']`."""
        ...

    async def suspend(self, action: Action, /) -> None:
        """Keep a suspended member out of member channels until `action.payload['until']`."""
        ...

    async def restore(self, action: Action, /) -> None:
        """Undo a timeout the platform cannot time-limit itself (Slack: re-add to channels)."""
        ...

    async def post(self, action: Action, /) -> None:
        """Post `action.payload['text']` to `action.channel`."""
        ...

    async def slowmode(self, action: Action, /) -> None:
        """Let each member post in `action.channel` at most once every
        `action.payload['seconds']` seconds (0 lifts it)."""
        ...

    async def alert(self, action: Action, /) -> None:
        """Post `action.payload['text']` to the moderators' channel."""
        ...
