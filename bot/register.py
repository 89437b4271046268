"""Read and validate the party's membership register export (CSV); pure, no database, no clock.

The register is a CSV file with a header row. Column names are matched case-insensitively;
``membership_number``, ``name`` and ``status`` must be present, the other columns of
:data:`COLUMNS` may be left out (then every row has them empty), and any other column is
refused, so that a misspelt column never silently drops data. A header problem raises
:class:`bot.errors.InputError`; a bad data row becomes a :class:`RowError` and is left out
entirely (never half a row), and reading carries on with the next row.

Conventions, chosen once here:

* ``roles`` holds several roles separated by ``;`` (a ``,`` would need quoting in CSV).
* Dates are ISO 8601. A date alone (``2026-11-20``) means 00:00 UK time (Europe/London) on that
  day; a date and time without an offset is UK local time too; ``Z`` or ``+01:00`` are honoured.
  Every time comes out timezone-aware in UTC.
* ``suspended_until`` is the moment the suspension ends; empty means indefinite.
"""

from __future__ import annotations

__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "Register",
    "RegisterRow",
    "RowError",
    "RowWarning",
    "clean_name",
    "parse_register",
    "read_register",
]

import csv
import io
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.errors import InputError
from bot.models import Account, MemberStatus, Platform, Role

#: Every column the register may have, in the order an export should list them.
COLUMNS: tuple[str, ...] = (
    "membership_number",
    "name",
    "status",
    "suspended_from",
    "suspended_until",
    "reason",
    "discord_id",
    "slack_id",
    "console_id",
    "roles",
)

#: Columns the header must contain; the others may be left out.
REQUIRED_COLUMNS: tuple[str, ...] = ("membership_number", "name", "status")

#: Separator between roles inside the ``roles`` cell.
ROLE_SEPARATOR = ";"

_UK = ZoneInfo("Europe/London")
_MEMBERSHIP_NUMBER = re.compile(r"[A-Z0-9]{4,12}")
# Discord snowflakes never start with 0; 17 digits since 2015, 20 is years away but allowed.
_DISCORD_ID = re.compile(r"[1-9][0-9]{16,19}")
_SLACK_ID = re.compile(r"[UW][A-Z0-9]{8,11}")
_CONSOLE_ID = re.compile(r"\S{1,64}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\S.*")
# Bidi overrides and isolates can make a name render as something else in a moderator's view.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_MAX_NAME = 100
_MAX_REASON = 1000
#: Invisible characters outside Unicode's format category (Cf) that are used to make a name
#: look like someone else's or look blank: combining grapheme joiner, Hangul fillers, Khmer
#: inherent vowels, braille blank.
_INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0\u2800")
#: Zero-width (non-)joiners shape Persian, Indic and emoji text: kept between such characters.
_JOINERS = frozenset("\u200c\u200d")
_TAGS = range(0xE0020, 0xE0080)  # only in a flag such as England's
_BLACK_FLAG = "\U0001f3f4"
#: Years a suspension may start or end in: beyond them a datetime overflows in arithmetic.
_YEARS = (1970, 9000)


@dataclass(frozen=True, slots=True)
class RegisterRow:
    """One valid member row of the register."""

    line: int
    membership_number: str
    name: str
    status: MemberStatus
    suspended_from: datetime | None = None
    suspended_until: datetime | None = None
    reason: str | None = None
    discord_id: str | None = None
    slack_id: str | None = None
    console_id: str | None = None
    roles: frozenset[Role] = frozenset()

    @property
    def accounts(self) -> tuple[Account, ...]:
        """The platform accounts this row links to the member (Discord, Slack, console)."""
        pairs = (
            (Platform.DISCORD, self.discord_id),
            (Platform.SLACK, self.slack_id),
            (Platform.CONSOLE, self.console_id),
        )
        return tuple(Account(platform=p, id=i) for p, i in pairs if i is not None)


@dataclass(frozen=True, slots=True)
class _RowNote:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class RowError(_RowNote):
    """A data row that was left out, with the line it started on and every problem found."""


@dataclass(frozen=True, slots=True)
class RowWarning(_RowNote):
    """A row that was kept with a cell cleaned (invisible characters removed), and what."""


@dataclass(frozen=True, slots=True)
class Register:
    """The result of reading a register: the valid rows, an error for each row left out and a
    warning for each kept row whose cells were cleaned."""

    rows: tuple[RegisterRow, ...]
    errors: tuple[RowError, ...]
    warnings: tuple[RowWarning, ...] = ()


def read_register(path: Path, /) -> Register:
    """Read a register CSV file (UTF-8, a byte-order mark is tolerated) and validate it."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(f"cannot read the register: {reason}", source=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            f"the register is not UTF-8 (byte {exc.start}): export it as 'CSV UTF-8'",
            source=str(path),
        ) from exc
    return parse_register(text, source=str(path))


def parse_register(text: str, /, *, source: str = "<register>") -> Register:
    """Validate register CSV text; raise InputError for a bad header, collect row errors."""
    text = text.removeprefix("\ufeff")
    # newline="" keeps line endings for csv, which then counts physical lines in line_num.
    reader = csv.reader(io.StringIO(text, newline=""))
    records = _records(reader)
    header = next(records, None)
    if header is None:
        raise InputError("the register is empty: expected a header row", source=source, line=1)
    header_line, _, header_cells = header
    if isinstance(header_cells, str):
        raise InputError(
            f"the header row cannot be read as CSV: {header_cells}", source=source, line=header_line
        )
    columns = _check_header(header_cells, source=source, line=header_line)

    rows: list[RegisterRow] = []
    errors: list[RowError] = []
    warnings: list[RowWarning] = []
    seen: dict[str, dict[str, int]] = {
        "membership_number": {},
        "discord_id": {},
        "slack_id": {},
        "console_id": {},
    }
    for line, end, cells in records:
        if isinstance(cells, str):
            errors.append(RowError(line, f"the row cannot be read as CSV: {cells}"))
            continue
        notes: list[str] = []
        row_or_error = _parse_row(line, end, cells, columns, seen, notes)
        if isinstance(row_or_error, RowError):
            errors.append(row_or_error)
        else:
            rows.append(row_or_error)
            warnings.extend(RowWarning(line, note) for note in notes)
    return Register(rows=tuple(rows), errors=tuple(errors), warnings=tuple(warnings))


def _records(reader: Iterator[list[str]]) -> Iterator[tuple[int, int, list[str] | str]]:
    """Non-blank records with their first and last line; a record csv refuses is its error."""
    line_num = 0
    while True:
        start = line_num + 1
        try:
            cells: list[str] | str = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            cells = str(exc)
        end = max(int(getattr(reader, "line_num", start)), start)
        if isinstance(cells, str) and end <= line_num:  # no progress: stop rather than spin
            yield start, start, cells
            return
        line_num = end
        if isinstance(cells, str) or any(cell.strip() for cell in cells):
            yield start, end, cells


def _check_header(cells: list[str], *, source: str, line: int) -> list[str]:
    """Map each header cell to a known column; raise InputError naming every problem."""
    names = [cell.strip().lower() for cell in cells]
    problems: list[str] = []
    unknown = [n for n in names if n and n not in COLUMNS]
    blank = [str(i + 1) for i, n in enumerate(names) if not n]
    duplicated = sorted({n for n in names if n and names.count(n) > 1})
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    if unknown:
        problems.append(
            f"unknown column(s): {', '.join(repr(n) for n in unknown)}"
            f" (known columns: {', '.join(COLUMNS)})"
        )
    if duplicated:
        problems.append(f"column(s) given twice: {', '.join(duplicated)}")
    if blank:
        problems.append(f"header cell(s) {', '.join(blank)} have no column name")
    if problems:
        raise InputError("header: " + "; ".join(problems), source=source, line=line)
    return names


def _parse_row(
    line: int,
    end: int,
    cells: list[str],
    columns: list[str],
    seen: dict[str, dict[str, int]],
    notes: list[str],
) -> RegisterRow | RowError:
    """Validate one data row; every problem in it goes into one RowError, and each cell
    cleaned of invisible characters into `notes`."""
    problems: list[str] = []
    extra = [c for c in cells[len(columns) :] if c.strip()]
    if extra:
        problems.append(
            f"{len(cells)} cells but the header has {len(columns)} columns"
            " (an unquoted comma inside a cell?)"
        )
    # Rows shorter than the header read their missing trailing cells as empty (some
    # spreadsheet exports drop trailing empty cells).
    raw: dict[str, str] = {c: "" for c in COLUMNS}
    for name, cell in zip(columns, cells, strict=False):
        raw[name] = cell.strip()

    for name in COLUMNS:
        bad = _control_character(raw[name])
        if bad is None:
            continue
        problem = f"column {name}: contains control character U+{ord(bad):04X}"
        if bad in "\r\n":
            # Usually a '"' never closed: the cell swallowed the lines after it.
            problem += f" (a line break: this row runs from line {line} to line {end};"
            problem += " is a '\"' not closed?)"
        problems.append(problem)
    if problems:
        return RowError(line, "; ".join(problems))
    # A name or reason is what the officer sees: invisible characters (which could make a
    # name look identical to a moderator's) are removed, and the row kept with a warning.
    # In an id they are refused: an id must be typed exactly as it is.
    for name in ("name", "reason"):
        cleaned, removed = clean_name(raw[name])
        if removed:
            notes.append(f"column {name}: removed invisible character(s) {_described(removed)};"
                         f" it reads {cleaned!r}")
            if not cleaned:
                problems.append(f"column {name}: holds only invisible characters "
                                f"{_described(removed)}")
            raw[name] = cleaned
    for name in ("membership_number", "discord_id", "slack_id", "console_id"):
        hidden = [ch for ch in raw[name] if _invisible(ch)]
        if hidden:
            problems.append(f"column {name}: contains invisible character(s) "
                            f"{_described(hidden)}; an id must be typed exactly")
    if problems:
        return RowError(line, "; ".join(problems))

    number = raw["membership_number"].upper()
    if not number:
        problems.append("column membership_number: required but empty")
    elif not _MEMBERSHIP_NUMBER.fullmatch(number):
        problems.append(
            f"column membership_number: {raw['membership_number']!r} is not a membership number"
            " (4-12 letters and digits)"
        )

    name = raw["name"]
    if not name:
        problems.append("column name: required but empty")
    elif len(name) > _MAX_NAME:
        problems.append(f"column name: longer than {_MAX_NAME} characters")

    status: MemberStatus | None = None
    if not raw["status"]:
        problems.append("column status: required but empty")
    else:
        try:
            status = MemberStatus(raw["status"].lower())
        except ValueError:
            problems.append(
                f"column status: {raw['status']!r} is not a status"
                f" (one of {', '.join(s.value for s in MemberStatus)})"
            )

    since = _time(raw, "suspended_from", problems)
    until = _time(raw, "suspended_until", problems)
    if since is not None and until is not None and until <= since:
        problems.append(
            f"column suspended_until: {raw['suspended_until']!r} is not after"
            f" suspended_from {raw['suspended_from']!r}"
        )
    if status is not None and status is not MemberStatus.SUSPENDED:
        if raw["suspended_until"]:
            problems.append(
                f"column suspended_until: given but status is {status.value}"
                " (only a suspended member has a suspension end; clear it or set status suspended)"
            )
        # An expelled member may keep the date their suspension began (it led to the expulsion).
        if raw["suspended_from"] and status is not MemberStatus.EXPELLED:
            problems.append(
                f"column suspended_from: given but status is {status.value}"
                " (clear it or set status suspended)"
            )

    reason = raw["reason"] or None
    if reason is not None and len(reason) > _MAX_REASON:
        problems.append(f"column reason: longer than {_MAX_REASON} characters")

    discord_id = _account(
        raw, "discord_id", _DISCORD_ID, "is not a Discord user id (17-20 digits)", problems
    )
    slack_id = _account(
        raw,
        "slack_id",
        _SLACK_ID,
        "is not a Slack user id (U or W, then 8-11 capital letters or digits)",
        problems,
    )
    console_id = _account(
        raw,
        "console_id",
        _CONSOLE_ID,
        "is not a console handle (1-64 characters, no spaces)",
        problems,
    )
    roles = _roles(raw["roles"], problems)

    # Duplicates are checked against every earlier row that had a readable value, even one left
    # out for another reason: two rows claiming one member or one account is a conflict either way.
    keys = {
        "membership_number": number if _MEMBERSHIP_NUMBER.fullmatch(number) else None,
        "discord_id": discord_id,
        "slack_id": slack_id,
        "console_id": console_id,
    }
    for column, value in keys.items():
        if value is None:
            continue
        earlier = seen[column].get(value)
        if earlier is None:
            seen[column][value] = line
        else:
            problems.append(f"column {column}: {value!r} already appears on line {earlier}")

    if problems or status is None:
        return RowError(line, "; ".join(problems))
    return RegisterRow(
        line=line,
        membership_number=number,
        name=name,
        status=status,
        suspended_from=since,
        suspended_until=until,
        reason=reason,
        discord_id=discord_id,
        slack_id=slack_id,
        console_id=console_id,
        roles=roles,
    )


def _invisible(ch: str) -> bool:
    return ch in _INVISIBLE or (unicodedata.category(ch) == "Cf" and ch not in _BIDI_CONTROLS)


def _joins(ch: str) -> bool:
    """A character a zero-width (non-)joiner may shape: a letter, mark or symbol beyond Latin
    (Persian, Devanagari, emoji...)."""
    return bool(ch) and ord(ch) >= 0x0370 and unicodedata.category(ch)[0] in "LMS"


_UNSHOWABLE = re.compile(
    "\x1b\\[[0-?]*[ -/]*[@-~]"  # a terminal control sequence (colours, clear screen, ...)
    "|\x1b\\][^\x07\x1b]*(?:\x07|\x1b\\\\)?"  # an operating system command (window title)
    "|[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def display_name(value: str, /) -> str:
    """A name from a platform as the bot shows it: without control characters, terminal escape
    sequences, bidi overrides or invisible characters (so it can neither drive a terminal nor
    pass for someone else's name)."""
    return clean_name(_UNSHOWABLE.sub("", value))[0].strip()


def clean_name(value: str, /) -> tuple[str, list[str]]:
    """`value` without invisible characters (stripped), and the characters removed.

    Zero-width joiners and non-joiners stay between letters of the scripts that need them
    (Persian, Indic) and inside emoji; tag characters stay in a flag. Bidi controls are not
    removed here: the caller refuses them (they reorder what is shown).
    """
    kept: list[str] = []
    removed: list[str] = []
    for i, ch in enumerate(value):
        if not _invisible(ch):
            kept.append(ch)
            continue
        before = value[i - 1] if i else ""
        after = value[i + 1] if i + 1 < len(value) else ""
        if (ch in _JOINERS and _joins(before) and _joins(after)) or (
                ord(ch) in _TAGS and before and (before == _BLACK_FLAG or ord(before) in _TAGS)):
            kept.append(ch)
        else:
            removed.append(ch)
    return "".join(kept).strip(), removed


def _described(chars: list[str]) -> str:
    """'U+200B ZERO WIDTH SPACE (x2)' for each distinct character."""
    counts: dict[str, int] = {}
    for ch in chars:
        counts[ch] = counts.get(ch, 0) + 1
    return ", ".join(f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')}"
                     + (f" (x{n})" if n > 1 else "") for ch, n in counts.items())


def _control_character(value: str) -> str | None:
    """The first control (or bidi override) character in a cell, if any."""
    for ch in value:
        if ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or ch in _BIDI_CONTROLS:
            return ch
    return None


def _time(raw: Mapping[str, str], column: str, problems: list[str]) -> datetime | None:
    """Parse an ISO date or datetime cell into aware UTC; a bare date is 00:00 UK time."""
    value = raw[column]
    if not value:
        return None
    try:
        if _DATE.fullmatch(value):
            day = date.fromisoformat(value)
            local = datetime(day.year, day.month, day.day, tzinfo=_UK)
        elif _DATETIME.fullmatch(value):
            parsed = datetime.fromisoformat(value)
            local = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=_UK)
        else:
            raise ValueError(value)
    except ValueError:
        problems.append(
            f"column {column}: {value!r} is not an ISO date or date and time"
            " (e.g. 2026-11-20 or 2026-11-20T09:30:00Z)"
        )
        return None
    try:
        utc = local.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last datetime
        utc = None
    if utc is None or not _YEARS[0] <= utc.year < _YEARS[1]:
        problems.append(f"column {column}: {value!r} is out of range (years {_YEARS[0]} to "
                        f"{_YEARS[1]})")
        return None
    return utc


def _account(
    raw: Mapping[str, str],
    column: str,
    pattern: re.Pattern[str],
    what: str,
    problems: list[str],
) -> str | None:
    """Validate an optional account id cell."""
    value = raw[column]
    if not value:
        return None
    if not pattern.fullmatch(value):
        problems.append(f"column {column}: {value!r} {what}")
        return None
    return value


def _roles(value: str, problems: list[str]) -> frozenset[Role]:
    """Parse the ``;``-separated roles cell; unknown roles are problems."""
    roles: set[Role] = set()
    for item in value.split(ROLE_SEPARATOR):
        item = item.strip()
        if not item:
            continue
        try:
            roles.add(Role(item.lower()))
        except ValueError:
            hint = f"; separate roles with '{ROLE_SEPARATOR}'" if "," in item else ""
            problems.append(
                f"column roles: {item!r} is not a role"
                f" (one of {', '.join(r.value for r in Role)}{hint})"
            )
    return frozenset(roles)
