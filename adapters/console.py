"""Console adapter: JSON lines in, decisions out; offline replay and demos."""

from __future__ import annotations

__all__ = ["ConsolePort", "LineError", "parse_line", "read_messages"]

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.errors import InputError
from bot.models import Action, Message, Platform

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_REQUIRED = ("id", "channel", "author", "text", "ts")


@dataclass(frozen=True, slots=True)
class LineError:
    """A line that could not be used, with why."""

    line: int
    message: str


def parse_line(raw: str, /, *, line: int, source: str = "<stdin>") -> tuple[Message, list[str]]:
    """One JSON line to a Message; returns it with any warnings (e.g. control characters removed).

    Raises InputError naming the source and line for anything that cannot be used.
    """
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg} at column {exc.colno})", source=source,
                         line=line) from exc
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object, got {type(data).__name__}", source=source,
                         line=line)
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise InputError(f"missing field(s): {', '.join(missing)}", source=source, line=line)
    for key in ("id", "channel", "author", "text", "ts"):
        if not isinstance(data[key], str):
            raise InputError(f"field {key!r} must be a string", source=source, line=line)
    platform_name = data.get("platform", "console")
    try:
        platform = Platform(platform_name)
    except ValueError:
        raise InputError(f"unknown platform {platform_name!r} (known: "
                         f"{', '.join(p.value for p in Platform)})", source=source,
                         line=line) from None
    revision = data.get("revision", 0)
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
        raise InputError("field 'revision' must be a non-negative integer", source=source,
                         line=line)
    try:
        sent_at = datetime.fromisoformat(data["ts"].replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"field 'ts' is not an ISO 8601 time: {data['ts']!r}", source=source,
                         line=line) from None
    if sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=UTC)
    warnings: list[str] = []
    text, removed = _CONTROL.subn("", data["text"])
    if removed:
        warnings.append(f"{source}:{line}: removed {removed} control character(s) from the text")
    for key in ("id", "channel", "author"):
        if not data[key].strip():
            raise InputError(f"field {key!r} is empty", source=source, line=line)
    reply_to = data.get("reply_to")
    return Message(
        platform=platform,
        id=data["id"],
        channel=data["channel"],
        channel_name=data["channel"],
        author=data["author"],
        author_name=data.get("author_name") or data["author"],
        text=text,
        sent_at=sent_at,
        revision=revision,
        reply_to=reply_to if isinstance(reply_to, str) else None,
        raw=data,
    ), warnings


def read_messages(lines: Iterable[str], /, *, source: str
                  ) -> Iterator[tuple[int, Message | LineError, list[str]]]:
    """Parse JSON lines, yielding (line number, message or error, warnings); blank lines skipped."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            message, warnings = parse_line(raw, line=number, source=source)
        except InputError as exc:
            yield number, LineError(number, str(exc)), []
            continue
        yield number, message, warnings


@dataclass(slots=True)
class ConsolePort:
    """A platform that performs nothing remotely: it records what it was asked to do."""

    platform: Platform
    performed: list[Action] = field(default_factory=list)

    async def _do(self, action: Action) -> None:
        self.performed.append(action)

    async def hide(self, action: Action, /) -> None:
        """Record the deletion."""
        await self._do(action)

    async def notify(self, action: Action, /) -> None:
        """Record the notice."""
        await self._do(action)

    async def escalate(self, action: Action, /) -> None:
        """Record the escalation."""
        await self._do(action)

    async def timeout(self, action: Action, /) -> None:
        """Record the timeout."""
        await self._do(action)

    async def suspend(self, action: Action, /) -> None:
        """Record the suspension."""
        await self._do(action)

    async def restore(self, action: Action, /) -> None:
        """Record the restoration."""
        await self._do(action)

    async def post(self, action: Action, /) -> None:
        """Record the post."""
        await self._do(action)


def as_json(obj: Any) -> str:
    """Compact JSON for one output line."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
