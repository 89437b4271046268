"""The transparency report's pure parts: quarters, small-count suppression, assembly and
rendering from hand-made rows (the store's side is tests/store/test_transparency_store.py)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.policy import Policy
from bot.store.transparency_queries import TransparencyRows
from bot.transparency import (
    Cell,
    Quarter,
    Report,
    assemble,
    last_complete_quarter,
    parse_quarter,
    to_csv,
    to_html,
    to_json,
    to_markdown,
    withhold,
)

Q4 = Quarter(2026, 4)


# -- quarters -----------------------------------------------------------------------------------

@settings(max_examples=50)
@given(st.integers(1970, 9998), st.integers(1, 4), st.sampled_from(["q", "Q"]),
       st.sampled_from(["", " ", "\t"]))
def test_a_quarter_round_trips_through_its_name(year: int, number: int, q: str,
                                                space: str) -> None:
    quarter = parse_quarter(f"{space}{year}-{q}{number}{space}")
    assert quarter == Quarter(year, number)
    assert parse_quarter(str(quarter)) == quarter
    assert str(quarter) == f"{year}-Q{number}"


@settings(max_examples=50)
@given(st.dates(date(1970, 1, 1), date(9998, 12, 31)))
def test_every_day_falls_in_exactly_its_quarter(day: date) -> None:
    quarter = Quarter.of(day)
    assert quarter.first_day <= day <= quarter.last_day
    assert quarter.first_day.month in (1, 4, 7, 10) and quarter.first_day.day == 1
    # quarters tile the calendar: the day before one starts is the last of the one before
    if quarter != Quarter(1970, 1):
        assert quarter.previous.last_day == quarter.first_day - timedelta(days=1)
    start, end = quarter.bounds(tz="Europe/London")
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo("Europe/London"))
    assert start <= noon < end


@settings(max_examples=50)
@given(st.text(max_size=12))
def test_any_text_is_a_quarter_or_a_clear_error(text: str) -> None:
    try:
        quarter = parse_quarter(text)
    except ValueError as exc:
        assert "expected YEAR-QN, e.g. 2026-Q4" in str(exc) and repr(text) in str(exc)
    else:
        assert str(quarter) == text.strip().upper()


@pytest.mark.parametrize("text", ["2026-Q5", "2026-Q0", "Q4", "2026Q4", "26-Q4", "2026-Q44",
                                  "2026-W47", "٢٠٢٦-Q4", "1969-Q4", "9999-Q4", ""])
def test_a_bad_quarter_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected YEAR-QN, e\.g\. 2026-Q4"):
        parse_quarter(text)


def test_quarter_bounds_are_local_midnights() -> None:
    start, end = Q4.bounds(tz="Europe/London")
    # 1 October is summer time (BST), 1 January winter time (GMT)
    assert start.astimezone(UTC) == datetime(2026, 9, 30, 23, 0, tzinfo=UTC)
    assert end.astimezone(UTC) == datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
    assert Quarter(2026, 2).bounds(tz="UTC")[0] == datetime(2026, 4, 1, tzinfo=UTC)
    assert (Q4.first_day, Q4.last_day) == (date(2026, 10, 1), date(2026, 12, 31))
    assert Quarter(2026, 1).previous == Quarter(2025, 4)


def test_last_complete_quarter_depends_on_the_zone() -> None:
    # 00:30 BST on 1 July is still 30 June in UTC: Q2 has ended in London, not in UTC.
    now = datetime(2026, 6, 30, 23, 30, tzinfo=UTC)
    assert last_complete_quarter(now, tz="Europe/London") == Quarter(2026, 2)
    assert last_complete_quarter(now, tz="UTC") == Quarter(2026, 1)


# -- suppression --------------------------------------------------------------------------------

def _possible(i: int, parts: list[int], total: int | None, hidden: dict[int, str],
              floor: int) -> set[int]:
    """What a reader can tell part `i` might be, by trying every value (no interval sums)."""
    span = max(total or 0, sum(parts)) + floor
    ranges = {j: range(1, floor) if how == "small" else range(floor, span + 1)
              for j, how in hidden.items()}
    if total is None:
        return set(ranges[i])
    rest = total - sum(n for j, n in enumerate(parts) if j not in hidden)
    sums = {0}
    for j in hidden:
        if j != i:
            sums = {s + v for s in sums for v in ranges[j] if s + v <= rest}
    return {v for v in ranges[i] if rest - v in sums}


@settings(max_examples=50)
@given(st.lists(st.integers(0, 14), min_size=1, max_size=4), st.integers(3, 8))
def test_no_small_count_can_be_worked_out_from_what_is_shown(parts: list[int],
                                                             floor: int) -> None:
    total = sum(parts)
    extra, whole = withhold(parts, total, min_count=floor)
    small = {i for i, n in enumerate(parts) if 0 < n < floor}
    assert not extra & small and all(parts[i] >= floor for i in extra)
    if not small or 0 < total < floor:
        assert (extra, whole) == (frozenset(), False)
        return
    hidden = {i: "small" for i in small} | {i: "withheld" for i in extra}
    for i in small:
        assert len(_possible(i, parts, None if whole else total, hidden, floor)) > 1, i


def test_withholding_picks_the_smallest_figure_that_protects() -> None:
    # 18 warnings and no hides would give 7 escalations away: the warnings are withheld.
    assert withhold([18, 0, 7], 25, min_count=10) == (frozenset({0}), False)
    # withholding 10 is not enough (41 - 30 = 11 = 10 + 1): 30 goes too
    assert withhold([10, 1, 30], 41, min_count=10) == (frozenset({0, 2}), False)
    # two parts of 9 in 18 can only be 9 each, and nothing else is left: the total goes
    assert withhold([9, 9], 18, min_count=10) == (frozenset(), True)
    assert withhold([8, 9], 17, min_count=10) == (frozenset(), False)
    assert withhold([12, 30], 42, min_count=10) == (frozenset(), False)


# -- assembly and rendering ---------------------------------------------------------------------

def _rows(*, warn: int = 40, escalate: int = 3, shadow: int = 0, granted: int = 2,
          rejected: int = 20, clause: str | None = "1.1") -> TransparencyRows:
    verdicts = [("enforce", "allow", "discord", None, "[]", "m", "2", "p-1", 500),
                ("enforce", "warn", "discord", clause, '["insult", "toxicity"]', "m", "2",
                 "p-1", warn),
                ("enforce", "hide", "discord", "1.2", '["identity_attack"]', "m", "2", "p-1", 5),
                ("enforce", "escalate", "slack", "1.3", '["threat"]', "m", "3", "p-2",
                 escalate)]
    if shadow:
        verdicts.append(("shadow", "hide", "discord", "1.2", '["identity_attack"]', "m", "3",
                         "p-2", shadow))
    at = "2026-11-02T10:00:00.000000+00:00"
    later = "2026-11-02T14:00:00.000000+00:00"
    return TransparencyRows(
        verdicts=verdicts, ladder_timeouts=4,
        moderator_actions=[("warning", None, 12), ("hide", None, 2)],
        suspensions=[("opened", 0, 2), ("confirmed", 0, 1), ("dismissed", 0, 1),
                     ("dismissed", 1, 5)],
        escalations=[("upheld", at, later)] * 11 + [("dismissed", at, later)],
        appeals=[(1, 20), (0, 2)],
        appeal_decisions=[(1, "dismissed", at, later)] * granted
        + [(1, "upheld", at, later)] * rejected)


def _cells(report: Report) -> dict[str, Cell]:
    return {f"{s.key}.{r.key}" + (f".{i}" if i else ""): c for s in report.sections
            for r in s.rows for i, c in enumerate(r.cells)}


def test_small_counts_read_fewer_than_the_threshold(test_policy: Policy) -> None:
    report = assemble(_rows(), quarter=Q4, policy=test_policy, tz="Europe/London")
    got = _cells(report)
    assert got["summary.messages_checked"] == Cell(548, False, "548")
    assert got["bot.warn"] == Cell(40, False, "40")
    assert got["bot.hide"] == got["bot.escalate"] == Cell(None, True, "fewer than 10")
    assert got["bot.total"] == Cell(48, False, "48")
    assert got["moderators.timeout"] == Cell(0, False, "0")  # zero is no small count
    # 12 warnings, 2 hides and 1 suspension: the total (15) tells only that the hides and the
    # suspensions add up to 3, so the warnings can stay
    assert got["moderators.hide"] == got["moderators.suspension"] == Cell(None, True,
                                                                         "fewer than 10")
    assert got["moderators.warning"] == Cell(12, False, "12")
    assert got["moderators.total"] == Cell(15, False, "15")
    assert got["appeals.granted"].text == "fewer than 10"
    assert got["appeals.overturn_rate"] == Cell(None, True, "withheld")
    assert got["escalations.median_hours_to_decision"] == Cell(4.0, False, "4.0 hours")
    # 11 upheld and 1 dismissed of 12: 11 would give the 1 away, so it is withheld, and so is
    # the share computed from them
    assert got["escalations.upheld"] == Cell(None, True, "withheld")
    assert got["escalations.dismissed_share"] == Cell(None, True, "withheld")


def test_the_threshold_comes_from_the_policy(test_policy: Policy) -> None:
    policy = replace(test_policy, transparency_min_count=2)
    got = _cells(assemble(_rows(), quarter=Q4, policy=policy, tz="UTC"))
    assert got["bot.escalate"] == Cell(3, False, "3")
    assert got["appeals.overturn_rate"] == Cell(0.0909, False, "9.1%")
    assert got["summary.overturn_rate"] == got["appeals.overturn_rate"]


def test_shadow_verdicts_are_counted_apart_from_actions(test_policy: Policy) -> None:
    without = _cells(assemble(_rows(), quarter=Q4, policy=test_policy, tz="UTC"))
    report = assemble(_rows(shadow=30), quarter=Q4, policy=test_policy, tz="UTC")
    got = _cells(report)
    for key in ("bot.total", "bot.hide", "clauses.1.2", "categories.identity_attack",
                "platforms.discord.1"):
        assert got[key] == without[key], key
    assert got["summary.messages_checked"].value == 548 + 30
    assert got["shadow.hide"] == Cell(30, False, "30")
    assert got["summary.shadow_would_have_acted"] == Cell(30, False, "30")
    assert "shadow" not in {s.key for s in assemble(_rows(), quarter=Q4, policy=test_policy,
                                                    tz="UTC").sections}


def test_clauses_are_named_from_the_policy(test_policy: Policy) -> None:
    report = assemble(_rows(clause="9.9"), quarter=Q4, policy=test_policy, tz="UTC")
    clauses = report.section("clauses")
    assert clauses.row("1.3").label == "1.3 No threats or incitement"
    assert clauses.row("9.9").label == "9.9 (not in the current policy)"
    assert clauses.row("none").label == "No clause cited"
    assert clauses.row("none").cells[1].value == 12 + 2 + 1  # warnings, hides, suspension
    assert report.models == ("m 2", "m 3") and report.policy_versions == ("p-1", "p-2")


def test_every_format_shows_the_same_suppressed_figures(test_policy: Policy) -> None:
    report = assemble(_rows(), quarter=Q4, policy=test_policy, tz="Europe/London")
    markdown = to_markdown(report)
    assert markdown.startswith("# Transparency report 2026-Q4\n")
    assert "| Hidden and escalated to a moderator | fewer than 10 |" in markdown
    assert "| **All the bot's actions** | **48** |" in markdown
    page = to_html(report)
    assert '<td class="n s">fewer than 10</td>' in page and "<h2>Definitions</h2>" in page
    data = json.loads(to_json(report))
    bot = next(s for s in data["sections"] if s["key"] == "bot")
    escalate = next(r for r in bot["rows"] if r["key"] == "escalate")
    assert escalate["cells"] == [{"value": None, "suppressed": True, "text": "fewer than 10"}]
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    row = next(r for r in rows if (r["section"], r["row"]) == ("bot", "escalate"))
    assert (row["value"], row["suppressed"], row["shown"]) == ("", "true", "fewer than 10")
    row = next(r for r in rows if (r["section"], r["row"]) == ("bot", "warn"))
    assert (row["value"], row["suppressed"], row["shown"]) == ("40", "false", "40")
    assert {r["value"] for r in rows if r["row"] in ("escalate", "hide")} == {""}
