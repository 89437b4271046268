"""Durations, strike decay and the ladder: pure arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.models import VerdictAction
from bot.standing import (
    MAX_DURATION,
    LadderStep,
    StrikePolicy,
    crossed_step,
    decayed_points,
    fired_steps,
    format_duration,
    format_until,
    parse_duration,
)

NOW = datetime(2026, 11, 20, tzinfo=UTC)
LADDER = (LadderStep(10, None, True, "suspend?"), LadderStep(6, timedelta(days=1), True, "day"),
          LadderStep(3, timedelta(hours=1), False, "hour"))
POLICY = StrikePolicy({VerdictAction.WARN: 1}, timedelta(days=10), timedelta(days=60), LADDER)


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", timedelta(minutes=30)), ("1h", timedelta(hours=1)), ("2 days", timedelta(days=2)),
    ("1w", timedelta(weeks=1)), ("90 MIN", timedelta(minutes=90)), ("2w", timedelta(weeks=2)),
    ("3mo", timedelta(days=90)), ("1 month", timedelta(days=30)), ("1y", timedelta(days=365)),
    ("2 years", timedelta(days=730)), ("3min", timedelta(minutes=3)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "0h", "1 fortnight", "-1d", "1.5h"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["3M", "12 M"])
def test_a_capital_m_is_ambiguous(text: str) -> None:
    with pytest.raises(ValueError, match=r"ambiguous: write \d+min for minutes or \d+mo"):
        parse_duration(text)


def test_minutes_are_refused_where_they_make_no_sense() -> None:
    assert parse_duration("3m") == timedelta(minutes=3)
    with pytest.raises(ValueError, match="'3m' is ambiguous: write 3min for minutes or 3mo"):
        parse_duration("3m", minutes_ok=False)
    assert parse_duration("3min", minutes_ok=False) == timedelta(minutes=3)


@pytest.mark.parametrize("text", ["101y", "999999999999d", "5000000 weeks"])
def test_absurd_lengths_are_refused_not_crashed_on(text: str) -> None:
    with pytest.raises(ValueError, match="longer than 100 years; use indefinite"):
        parse_duration(text, allow_indefinite=True)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**6), st.sampled_from(["m", "min", "h", "d", "w", "mo", "y"]),
       st.sampled_from(["", " "]))
def test_a_formatted_duration_reads_back_the_same(number: int, unit: str, gap: str) -> None:
    text = f"{number}{gap}{unit}"
    try:
        value = parse_duration(text)
    except ValueError as exc:  # only ever for being too long
        assert "longer than 100 years" in str(exc)
        return
    assert value is not None and timedelta(0) < value <= MAX_DURATION
    assert parse_duration(format_duration(value)) == value


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_any_text_is_a_duration_or_a_clear_refusal(text: str) -> None:
    try:
        value = parse_duration(text, allow_indefinite=True)
    except ValueError as exc:
        assert repr(text) in str(exc)
        return
    assert value is None or timedelta(0) < value <= MAX_DURATION


def test_end_times_are_shown_in_the_party_time_zone() -> None:
    winter = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    summer = datetime(2027, 7, 1, 14, 30, tzinfo=UTC)
    assert format_until(winter, tz="Europe/London") == "until Tue 1 Dec 2026, 14:30 GMT"
    assert format_until(summer, tz="Europe/London") == "until Thu 1 Jul 2027, 15:30 BST"
    assert format_until(None, tz="Europe/London") == "indefinitely"


def test_indefinite_only_where_allowed() -> None:
    assert parse_duration("indefinite", allow_indefinite=True) is None
    with pytest.raises(ValueError):
        parse_duration("indefinite")


@pytest.mark.parametrize(("value", "text"), [
    (timedelta(hours=1), "1h"), (timedelta(days=2), "2d"), (timedelta(minutes=90), "90m"),
    (timedelta(weeks=2), "2w"), (timedelta(days=90), "3mo"), (timedelta(days=365), "1y"),
    (timedelta(days=28), "4w"), (None, "indefinite"),
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


def test_a_step_fires_once_per_climb() -> None:
    # 3.0 decays to 2.9999 within a minute: the next breach must not fire the 3-point step again
    assert crossed_step(2.9999, 3.9999, policy=POLICY, fired={3.0}) is None
    assert crossed_step(5.5, 6.5, policy=POLICY, fired={3.0}) == LADDER[1]  # a higher step does


def test_fired_steps_last_one_half_life_and_not_when_pardoned() -> None:
    strikes = [{"points": 1, "at": NOW - timedelta(days=2), "step": 3.0, "pardoned_at": None},
               {"points": 1, "at": NOW - timedelta(days=10), "step": 6.0, "pardoned_at": None},
               {"points": 1, "at": NOW, "step": 10.0, "pardoned_at": NOW},
               {"points": 1, "at": NOW, "step": None, "pardoned_at": None}]
    assert fired_steps(strikes, now=NOW, policy=POLICY) == {3.0}
