"""Pure standing arithmetic: durations, strike decay and the sanctions ladder."""

from __future__ import annotations

__all__ = [
    "ESCALATION_POINTS",
    "LadderStep",
    "StrikePolicy",
    "counted_strikes",
    "crossed_step",
    "decayed_points",
    "format_duration",
    "parse_duration",
]

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.models import VerdictAction

_DURATION = re.compile(r"^\s*(\d+)\s*(m|min|mins|minutes?|h|hrs?|hours?|d|days?|w|weeks?)\s*$",
                       re.IGNORECASE)
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1),
          "w": timedelta(weeks=1)}
INDEFINITE = ("indefinite", "indefinitely", "permanent", "forever")
#: When an automatic escalation's strike points count: once a moderator upholds the case
#: (the default: a mistaken escalation punishes nobody) or at once.
ESCALATION_POINTS = ("on_uphold", "at_once")


def parse_duration(text: str, /, *, allow_indefinite: bool = False) -> timedelta | None:
    """'90m', '1h', '2 days', '1w' -> timedelta; 'indefinite' -> None where allowed.

    Raises ValueError with a message a moderator can act on.
    """
    if allow_indefinite and text.strip().casefold() in INDEFINITE:
        return None
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        extra = " or 'indefinite'" if allow_indefinite else ""
        raise ValueError(f"{text!r} is not a duration: use a number and a unit, like 30m, 1h, "
                         f"2d or 1w{extra}")
    unit = match.group(2)[0].casefold()
    return int(match.group(1)) * _UNITS[unit]


def format_duration(value: timedelta | None, /) -> str:
    """The shortest readable form: '1h', '2d', '90m', 'indefinite'."""
    if value is None:
        return "indefinite"
    minutes = int(value.total_seconds() // 60)
    for unit, size in (("w", 7 * 24 * 60), ("d", 24 * 60), ("h", 60)):
        if minutes % size == 0 and minutes >= size:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


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


def crossed_step(before: float, after: float, /, *, policy: StrikePolicy) -> LadderStep | None:
    """The highest ladder step that `after` reaches and `before` did not (checked highest first)."""
    for step in policy.ladder:
        if after >= step.points > before:
            return step
    return None
