"""Console adapter: JSON lines in, decisions out; offline replay and demos."""

from __future__ import annotations

__all__ = ["ConsolePort", "LineError", "parse_line", "read_messages"]

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.errors import InputError
from bot.models import Action, Message, Platform
from bot.register import display_name

#: Removed from a message's text (with a warning): C0 controls but tab and line breaks, DEL and
#: C1 controls (ESC and CSI sequences would reach the operator's terminal).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: Refused in ids (id, channel, author), which are matched exactly (names are cleaned by
#: `bot.register.display_name`, with a warning).
_ID_JUNK = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_REQUIRED = ("id", "channel", "author", "text", "ts")
_STRINGS = ("id", "channel", "author", "author_name", "text", "reply_to")
#: SQLite stores integers up to 2**63 - 1.
MAX_REVISION = 2**63 - 1
#: A message's time must fall in these years: beyond them the arithmetic on it (a
#: suspension's end, retention) leaves what a datetime can hold.
YEARS = (1970, 9000)


@dataclass(frozen=True, slots=True)
class LineError:
    """A line that could not be used, with why."""

    line: int
    message: str


def parse_line(raw: str, /, *, line: int, source: str = "<stdin>") -> tuple[Message, list[str]]:
    """One JSON line to a Message; returns it with any warnings (e.g. control characters removed).

    Raises InputError naming the source and line for anything that cannot be used.
    """
    def fail(message: str) -> InputError:
        return InputError(message, source=source, line=line)

    warnings: list[str] = []
    # Bytes that are not UTF-8 arrive as lone surrogates (the file is read with
    # errors="surrogateescape"): the message is kept, with U+FFFD for each such byte.
    raw, undecodable = _SURROGATE.subn("\ufffd", raw)
    if undecodable:
        warnings.append(f"{source}:{line}: replaced {undecodable} byte(s) that are not UTF-8")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise fail(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise fail("not valid JSON (nested too deeply to read)") from None
    except ValueError:  # an integer of more than 4300 digits
        raise fail("not valid JSON (a number too long to read)") from None
    if not isinstance(data, dict):
        raise fail(f"expected a JSON object, got {type(data).__name__}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise fail(f"missing field(s): {', '.join(missing)}")
    for key in ("id", "channel", "author", "text", "ts"):
        if not isinstance(data[key], str):
            raise fail(f"field {key!r} must be a string")
    if data.get("author_name") is not None and not isinstance(data["author_name"], str):
        raise fail("field 'author_name' must be a string")
    for key in _STRINGS:
        value = data.get(key)
        bad = _SURROGATE.search(value) if isinstance(value, str) else None
        if bad is not None:
            raise fail(f"field {key!r} is not valid Unicode: a lone surrogate "
                       f"(U+{ord(bad.group()):04X}) at character {bad.start() + 1}")
    for key in ("id", "channel", "author"):
        if not data[key].strip():
            raise fail(f"field {key!r} is empty")
        junk = _ID_JUNK.search(data[key])
        if junk is not None:
            raise fail(f"field {key!r} contains control character U+{ord(junk.group()):04X} "
                       f"at character {junk.start() + 1}")
    platform_name = data.get("platform", "console")
    try:
        platform = Platform(platform_name) if isinstance(platform_name, str) else None
    except ValueError:
        platform = None
    if platform is None:
        shown = repr(platform_name) if len(repr(platform_name)) <= 40 else \
            f"{repr(platform_name)[:40]}..."
        raise fail(f"unknown platform {shown} (known: {', '.join(p.value for p in Platform)})")
    revision = data.get("revision", 0)
    if isinstance(revision, bool) or not isinstance(revision, int) or not (
            0 <= revision <= MAX_REVISION):
        raise fail(f"field 'revision' must be a non-negative integer of at most "
                   f"{MAX_REVISION} (2^63 - 1)")
    sent_at = _time(data["ts"], fail)
    text, removed = _CONTROL.subn("", data["text"])
    if removed:
        warnings.append(f"{source}:{line}: removed {removed} control character(s) from the text")
    given = (data.get("author_name") or data["author"]).strip()
    author_name = display_name(given)
    if author_name != given:
        warnings.append(f"{source}:{line}: removed {len(given) - len(author_name)} control or "
                        "invisible character(s) from the author's name")
    reply_to = data.get("reply_to")
    return Message(
        platform=platform,
        id=data["id"],
        channel=data["channel"],
        channel_name=data["channel"],
        author=data["author"],
        author_name=author_name or data["author"],
        text=text,
        sent_at=sent_at,
        revision=revision,
        reply_to=reply_to if isinstance(reply_to, str) else None,
        raw=data,
    ), warnings


def _time(value: str, fail: Callable[[str], InputError]) -> datetime:
    """An ISO 8601 time as aware UTC, within `YEARS` (no offset: UTC)."""
    shown = repr(value) if len(value) <= 40 else f"{value[:40]!r}..."
    try:
        sent_at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"field 'ts' is not an ISO 8601 time: {shown}") from None
    if sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=UTC)
    try:
        sent_at = sent_at.astimezone(UTC)
    except OverflowError:
        sent_at = datetime.max.replace(tzinfo=UTC) if sent_at.year > 1 else \
            datetime.min.replace(tzinfo=UTC)
    if not YEARS[0] <= sent_at.year < YEARS[1]:
        raise fail(f"field 'ts' is out of range: {shown} (a message's time must fall between "
                   f"{YEARS[0]} and {YEARS[1]})")
    return sent_at


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

    async def slowmode(self, action: Action, /) -> None:
        """Record the slowmode."""
        await self._do(action)

    async def alert(self, action: Action, /) -> None:
        """Record the alert."""
        await self._do(action)

    async def post(self, action: Action, /) -> None:
        """Record the post."""
        await self._do(action)


def as_json(obj: Any) -> str:
    """Compact JSON for one output line."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
