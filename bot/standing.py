"""Pure standing arithmetic: durations, strike decay and the sanctions ladder."""

from __future__ import annotations

__all__ = [
    "ESCALATION_POINTS",
    "LadderStep",
    "StrikePolicy",
    "counted_strikes",
    "crossed_step",
    "decayed_points",
    "fired_steps",
    "format_duration",
    "format_until",
    "parse_duration",
]

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.models import VerdictAction

_DURATION = re.compile(r"^\s*(\d{1,12})\s*([a-z]+)\s*$", re.IGNORECASE)
_MINUTE, _HOUR, _DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
#: A month is 30 days and a year 365: the reply always echoes the exact end.
_UNITS = {
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), _MINUTE),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), _HOUR),
    **dict.fromkeys(("d", "day", "days"), _DAY),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 7 * _DAY),
    **dict.fromkeys(("mo", "mos", "month", "months"), 30 * _DAY),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), 365 * _DAY),
}
#: Longer than any sanction: beyond this, a suspension is 'indefinite'.
MAX_DURATION = timedelta(days=100 * 365)
INDEFINITE = ("indefinite", "indefinitely", "permanent", "forever")
#: When an automatic escalation's strike points count: once a moderator upholds the case
#: (the default: a mistaken escalation punishes nobody) or at once.
ESCALATION_POINTS = ("on_uphold", "at_once")


def parse_duration(text: str, /, *, allow_indefinite: bool = False,
                   minutes_ok: bool = True) -> timedelta | None:
    """'30m', '2h', '3 days', '2w', '3mo', '1y' -> timedelta; 'indefinite' -> None where allowed.

    'M' alone is ambiguous (minutes or months?) and refused, as is 'm' where minutes make no
    sense (`minutes_ok=False`, e.g. a suspension). Raises ValueError with a message a moderator
    can act on.
    """
    if allow_indefinite and text.strip().casefold() in INDEFINITE:
        return None
    extra = " or 'indefinite'" if allow_indefinite else ""
    match = _DURATION.match(text)
    unit = _UNITS.get(match.group(2).casefold()) if match else None
    if match is None or unit is None or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration: use a number and a unit, like 30m, 2h, "
                         f"3d, 2w, 3mo or 1y{extra}")
    number, raw = int(match.group(1)), match.group(2)
    if raw == "M" or (raw.casefold() == "m" and not minutes_ok):
        raise ValueError(f"{text!r} is ambiguous: write {number}min for minutes or {number}mo "
                         "for months")
    if number * unit.total_seconds() > MAX_DURATION.total_seconds():
        raise ValueError(f"{text!r} is longer than 100 years{'; use indefinite' if extra else ''}")
    return number * unit


def format_duration(value: timedelta | None, /) -> str:
    """The shortest readable form: '1h', '2d', '90m', '3mo', '1y', 'indefinite'."""
    if value is None:
        return "indefinite"
    minutes = int(value.total_seconds() // 60)
    for unit, size in (("y", 365 * 24 * 60), ("mo", 30 * 24 * 60), ("w", 7 * 24 * 60),
                       ("d", 24 * 60), ("h", 60)):
        if minutes % size == 0 and minutes >= size:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def format_until(until: datetime | None, /, *, tz: str) -> str:
    """'until Tue 1 Dec 2026, 14:30 GMT' in the party's time zone; 'indefinitely' for None."""
    if until is None:
        return "indefinitely"
    local = until.astimezone(ZoneInfo(tz))
    return f"until {local:%a} {local.day} {local:%b %Y, %H:%M %Z}"


@dataclass(frozen=True, slots=True)
class LadderStep:
    """When a member's points reach `points`: time them out and/or escalate for suspension."""

    points: float
    timeout: timedelta | None
    escalate: bool
    note: str


@dataclass(frozen=True, slots=True)
class StrikePolicy:
    """Points per verdict, how they decay, and the ladder (highest step first).

    `escalation_points` is one of ESCALATION_POINTS; with "on_uphold", an automatic
    escalation's points wait for a moderator, or count anyway once `unreviewed_after` has
    passed with no review (when the party sets it).
    """

    points: Mapping[VerdictAction, float]
    half_life: timedelta | None
    expire_after: timedelta | None
    ladder: tuple[LadderStep, ...]
    escalation_points: str = "on_uphold"
    unreviewed_after: timedelta | None = None


def counted_strikes(strikes: Iterable[Mapping[str, object]], /, *, now: datetime,
                    policy: StrikePolicy) -> Iterator[tuple[float, datetime]]:
    """(points, at) of the strikes that count now: reviewed ones, and those awaiting review
    for longer than the policy's `unreviewed_after`."""
    for strike in strikes:
        at = strike["at"]
        points = strike["points"]
        assert isinstance(at, datetime) and isinstance(points, int | float)
        waiting = bool(strike.get("pending"))
        if waiting and (policy.unreviewed_after is None or now - at < policy.unreviewed_after):
            continue
        yield float(points), at


def decayed_points(strikes: Iterable[tuple[float, datetime]], /, *, now: datetime,
                   policy: StrikePolicy) -> float:
    """Current total: each strike halves every half-life and vanishes after expiry."""
    total = 0.0
    for points, at in strikes:
        age = now - at
        if age < timedelta(0):
            age = timedelta(0)
        if policy.expire_after is not None and age >= policy.expire_after:
            continue
        if policy.half_life is not None:
            points *= 0.5 ** (age / policy.half_life)
        total += points
    return round(total, 4)


def crossed_step(before: float, after: float, /, *, policy: StrikePolicy,
                 fired: Collection[float] = ()) -> LadderStep | None:
    """The highest ladder step that `after` reaches and `before` did not (checked highest
    first), skipping steps in `fired`: a step fires once per climb, not again because decay
    took the points a hair below it (3.0 -> 2.9999) before the next breach."""
    for step in policy.ladder:
        if after >= step.points > before and step.points not in fired:
            return step
    return None


def fired_steps(strikes: Iterable[Mapping[str, object]], /, *, now: datetime,
                policy: StrikePolicy) -> frozenset[float]:
    """The ladder steps this climb has already fired: those recorded on unpardoned strikes
    within one half-life (else the expiry), after which the points have had time to fall and
    a new climb begins."""
    window = policy.half_life or policy.expire_after
    out: set[float] = set()
    for strike in strikes:
        step, at = strike.get("step"), strike["at"]
        assert isinstance(at, datetime)
        if isinstance(step, int | float) and not strike.get("pardoned_at") and (
                window is None or now - at < window):
            out.add(float(step))
    return frozenset(out)
