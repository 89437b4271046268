"""Durations, strike decay and the ladder: pure arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.models import VerdictAction
from bot.standing import (
    LadderStep,
    StrikePolicy,
    crossed_step,
    decayed_points,
    format_duration,
    parse_duration,
)

NOW = datetime(2026, 11, 20, tzinfo=UTC)
LADDER = (LadderStep(10, None, True, "suspend?"), LadderStep(6, timedelta(days=1), True, "day"),
          LadderStep(3, timedelta(hours=1), False, "hour"))
POLICY = StrikePolicy({VerdictAction.WARN: 1}, timedelta(days=10), timedelta(days=60), LADDER)


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", timedelta(minutes=30)), ("1h", timedelta(hours=1)), ("2 days", timedelta(days=2)),
    ("1w", timedelta(weeks=1)), ("90 MIN", timedelta(minutes=90)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "0h", "1 fortnight", "-1d", "1.5h"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_indefinite_only_where_allowed() -> None:
    assert parse_duration("indefinite", allow_indefinite=True) is None
    with pytest.raises(ValueError):
        parse_duration("indefinite")


@pytest.mark.parametrize(("value", "text"), [
    (timedelta(hours=1), "1h"), (timedelta(days=2), "2d"), (timedelta(minutes=90), "90m"),
    (timedelta(weeks=2), "2w"), (None, "indefinite"),
])
def test_format_duration(value: timedelta | None, text: str) -> None:
    assert format_duration(value) == text


def test_points_halve_every_half_life_and_expire() -> None:
    strikes = [(4.0, NOW), (4.0, NOW - timedelta(days=10)), (4.0, NOW - timedelta(days=61))]
    assert decayed_points(strikes, now=NOW, policy=POLICY) == 6.0  # 4 + 2 + expired
    assert decayed_points([(2.0, NOW)], now=NOW + timedelta(days=20), policy=POLICY) == 0.5


def test_ladder_is_checked_highest_first_and_fires_once() -> None:
    assert crossed_step(2, 3, policy=POLICY) == LADDER[2]
    assert crossed_step(5, 11, policy=POLICY) == LADDER[0]  # past two steps: the highest
    assert crossed_step(3, 4, policy=POLICY) is None  # already past 3: no second timeout
    assert crossed_step(0, 2, policy=POLICY) is None
