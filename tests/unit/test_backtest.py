"""The backtest's pure parts: comparing re-decided messages, rendering, windows, standing."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from bot.backtest import (
    CSV_COLUMNS,
    Redecided,
    Window,
    compare,
    standing_at,
    to_csv,
    to_json,
    to_markdown,
    window_for,
)
from bot.decide import decide
from bot.models import (
    MODEL_CATEGORIES,
    Member,
    MemberStatus,
    Message,
    Platform,
    Role,
    ScoreSet,
    Standing,
    Verdict,
    VerdictAction,
)
from bot.policy import Policy

T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
#: Scores that reach each action under policies/default.toml (threat: warn 0.65, hide 0.85,
#: escalate 0.98; toxicity: warn 0.75, clause 1.1).
LEVELS = {"allow": {}, "warn": {"toxicity": 0.8}, "hide": {"threat": 0.9},
          "escalate": {"threat": 0.99}}


def verdict(policy: Policy, action: str) -> Verdict:
    scores = ScoreSet({**dict.fromkeys(MODEL_CATEGORIES, 0.0), **LEVELS[action]}, "m", "1")
    v = decide(scores, [], policy=policy, standing=Standing(), channel="general")
    assert v.action == action
    return v


def item(policy: Policy, n: int, old: str, new: str, *, member: str = "m-a",
         review: str | None = None, text: str | None = None,
         stored: str | None = None) -> Redecided:
    message = Message(Platform.CONSOLE, f"x{n}", "general", "someone",
                      text or f"message number {n}", T0 + timedelta(minutes=n))
    return Redecided(message, member, verdict(policy, old), verdict(policy, new),
                     VerdictAction(stored or old), review=review)


def test_counts_direction_clauses_members_and_agreement(policy: Policy) -> None:
    decided = [
        item(policy, 1, "allow", "allow", member="m-quiet"),
        item(policy, 2, "allow", "warn", member="m-new"),
        item(policy, 3, "warn", "hide", member="m-a", review="upheld"),
        item(policy, 4, "escalate", "warn", member="m-b", review="dismissed"),
        item(policy, 5, "hide", "hide", member="m-c", review="upheld"),
        item(policy, 6, "warn", "allow", member="m-gone", review="dismissed", stored="hide"),
    ]
    b = compare(decided, window=Window("test"), active=policy, candidate=policy,
                scorer="m 1", skipped_erased=2, members={"m-new": "Nina New (A1)"})
    assert (b.redecided, b.skipped_erased, b.changed, b.harsher, b.milder) == (6, 2, 4, 2, 2)
    assert b.clause_changed == 0
    assert b.differ_from_stored == 1
    assert b.matrix["allow"] == {"allow": 1, "warn": 1, "hide": 0, "escalate": 0}
    assert b.matrix["warn"]["hide"] == 1 and b.matrix["warn"]["allow"] == 1
    assert b.matrix["escalate"]["warn"] == 1 and b.matrix["hide"]["hide"] == 1
    assert {a.action: (a.old, a.new) for a in b.actions} == {
        "allow": (2, 2), "warn": (2, 2), "hide": (1, 2), "escalate": (1, 0)}
    # Clause 1.1 (toxicity) is cited by warnings; 1.3 (threat) by hides and escalations.
    assert [(c.clause, c.title, c.old, c.new) for c in b.clauses] == [
        ("1.1", "Treat others with respect", 2, 2), ("1.3", "No threats or incitement", 2, 2)]
    assert b.newly_affected == ("Nina New (A1)",)
    assert b.no_longer_affected == ("m-gone",)
    r = b.reviews
    assert (r.reviewed, r.upheld, r.dismissed) == (4, 2, 2)
    assert (r.active.agree, r.active.acts_on_upheld, r.active.allows_dismissed) == (2, 2, 0)
    assert (r.candidate.agree, r.candidate.acts_on_upheld,
            r.candidate.allows_dismissed) == (3, 2, 1)
    assert r.active.share == 0.5 and r.candidate.share == 0.75
    assert [(c.message_id, c.old, c.new) for c in b.changes] == [
        ("x2", "allow", "warn"), ("x3", "warn", "hide"), ("x4", "escalate", "warn"),
        ("x6", "warn", "allow")]
    assert b.changes[1].reasons == ("threat 0.90 reached hide (0.85)",)
    assert b.changes[1].old_reasons == ("toxicity 0.80 reached warn (0.75)",)


def test_the_same_action_under_another_clause_is_counted(policy: Policy) -> None:
    old = verdict(policy, "warn")  # toxicity: clause 1.1
    scores = ScoreSet({**dict.fromkeys(MODEL_CATEGORIES, 0.0), "threat": 0.7}, "m", "1")
    new = decide(scores, [], policy=policy, standing=Standing(), channel="general")
    assert (new.action, new.clause) == ("warn", "1.3")
    message = Message(Platform.CONSOLE, "x1", "general", "someone", "text", T0)
    b = compare([Redecided(message, "m-a", old, new, VerdictAction.WARN)],
                window=Window("test"), active=policy, candidate=policy, scorer="m 1")
    assert (b.changed, b.clause_changed) == (0, 1)
    assert [(c.clause, c.old, c.new) for c in b.clauses] == [("1.1", 1, 0), ("1.3", 0, 1)]
    assert "0 decision(s), 0 harsher and 0 milder under the candidate; 1 more keep their " \
        "action but cite another clause" in to_markdown(b)


def test_no_reviews_and_no_changes(policy: Policy) -> None:
    b = compare([item(policy, 1, "warn", "warn")], window=Window("test"), active=policy,
                candidate=policy, scorer="m 1")
    assert b.changed == 0 and b.sample == () and b.reviews.reviewed == 0
    assert b.reviews.active.share is None
    md = to_markdown(b)
    assert "No re-decided message has a reviewed verdict." in md
    assert "## Changed decisions (0 of 0)" in md


def test_the_sample_is_spread_over_the_changes_in_time_order(policy: Policy) -> None:
    decided = [item(policy, n, "allow", "warn") for n in range(30, 0, -1)]
    b = compare(decided, window=Window("test"), active=policy, candidate=policy,
                scorer="m 1", sample=20)
    assert b.changed == 30 and len(b.changes) == 30
    ids = [c.message_id for c in b.sample]
    assert len(ids) == 20 == len(set(ids))
    assert ids[0] == "x1"  # the earliest, whatever order they came in
    times = [c.sent_at for c in b.sample]
    assert times == sorted(times)
    assert ids[-1] in {"x29", "x30"}  # spread to the end, not the first twenty
    none = compare(decided, window=Window("test"), active=policy, candidate=policy,
                   scorer="m 1", sample=0)
    assert none.sample == () and none.changed == 30


def test_renderings_parse_and_say_the_same(policy: Policy) -> None:
    text = "You are a | pipe\nand a \"quote\", on two lines " + "long " * 60
    decided = [item(policy, 1, "allow", "warn", text=text, review="dismissed"),
               item(policy, 2, "hide", "escalate"), item(policy, 3, "warn", "warn")]
    b = compare(decided, window=Window("2026-W47 (Europe/London)", T0, T0 + timedelta(7)),
                active=policy, candidate=policy, scorer="m 1")
    assert "- Window: 2026-W47 (Europe/London), 2026-11-16 09:00 to 2026-11-23 09:00 UTC" \
        in to_markdown(b)

    data = json.loads(to_json(b))
    assert data["changed"] == 2 and data["redecided"] == 3
    assert data["matrix"]["hide"]["escalate"] == 1
    assert data["reviews"]["candidate"]["agree"] == 0
    assert data["start"] == T0.isoformat() and "changes" not in data
    assert [s["message_id"] for s in data["sample"]] == ["x1", "x2"]

    rows = list(csv.DictReader(io.StringIO(to_csv(b))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["message_id"], r["active_action"], r["candidate_action"]) for r in rows] == [
        ("x1", "allow", "warn"), ("x2", "hide", "escalate")]
    assert rows[0]["excerpt"].startswith('You are a | pipe and a "quote", on two lines')
    assert rows[0]["excerpt"].endswith("…") and len(rows[0]["excerpt"]) == 160
    assert rows[0]["review"] == "dismissed"

    md = to_markdown(b)
    assert "| allow | 0 | 1 | 0 | 0 | 1 |" in md  # the one the active policy allows, warned
    assert "| total | 0 | 2 | 0 | 1 | 3 |" in md
    assert "| escalate | 0 | 1 | +1 |" in md
    assert "1. **allow → warn** `console:x1` in #general, 2026-11-16 09:01 UTC" in md
    assert "   > You are a | pipe and a" in md  # one line: the quote cannot break the list
    assert "0/1 (0%)" in md  # the candidate warns on the message the moderators dismissed


def test_member_status_and_suspension_window() -> None:
    start, end = T0, T0 + timedelta(days=30)
    member = Member("m-1", "Graham", status=MemberStatus.SUSPENDED,
                    roles=frozenset({Role.COUNCILLOR}), suspended_from=start,
                    suspended_until=end)
    assert standing_at(member, start - timedelta(seconds=1)).status is MemberStatus.ACTIVE
    assert standing_at(member, start).status is MemberStatus.SUSPENDED
    assert standing_at(member, end - timedelta(seconds=1)).status is MemberStatus.SUSPENDED
    assert standing_at(member, end).status is MemberStatus.ACTIVE
    assert standing_at(member, start).roles == {Role.COUNCILLOR}
    indefinite = Member("m-2", "Derek", status=MemberStatus.EXPELLED)
    assert standing_at(indefinite, T0).status is MemberStatus.EXPELLED
    assert standing_at(None, T0) == Standing()


def test_windows() -> None:
    week = window_for(week=" 2026-w47 ", tz="Europe/London")
    assert week.label == "2026-W47 (Europe/London)"
    assert (week.start, week.end) == (datetime(2026, 11, 16, tzinfo=UTC),
                                      datetime(2026, 11, 23, tzinfo=UTC))
    since = window_for(since=datetime(2026, 11, 20))  # no zone: UTC
    assert since.start == datetime(2026, 11, 20, tzinfo=UTC) and since.end is None
    assert window_for() == Window("every stored message")
    for bad, says in ((dict(week="2026-W99"), "not an ISO week"),
                      (dict(week="2026-W01", tz="Mars/Olympus"), "unknown time zone"),
                      (dict(week="0001-W01"), "from 1970 to 9998"),
                      (dict(week="2026-W01", since=T0), "not both")):
        with pytest.raises(ValueError, match=says):
            window_for(**bad)


@hsettings(max_examples=60, deadline=None)
@given(st.dates(min_value=date(1971, 1, 1), max_value=date(8999, 12, 31)),
       st.sampled_from(["Europe/London", "UTC", "America/New_York", "Pacific/Kiritimati"]))
def test_any_week_is_its_seven_local_days(day: date, tz: str) -> None:
    year, number, _ = day.isocalendar()
    window = window_for(week=f"{year}-W{number}", tz=tz)
    assert window.start is not None and window.end is not None
    local = window.start.astimezone(ZoneInfo(tz))
    assert local.date() == day - timedelta(days=day.weekday()) and local.hour == 0
    assert timedelta(hours=166) <= window.end - window.start <= timedelta(hours=170)
    assert window.label == f"{year}-W{number:02d} ({tz})"


@hsettings(max_examples=200, deadline=None)
@given(st.text(max_size=20))
def test_any_week_text_is_a_window_or_a_value_error(text: str) -> None:
    try:
        window = window_for(week=text)
    except ValueError:
        return
    assert window.start is not None and window.end is not None and window.start < window.end
