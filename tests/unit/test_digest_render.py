"""The digest's renderers: pure functions of a Digest built from synthetic grouped rows."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.digest import (
    Digest,
    _appeal_key,
    _plots,
    assemble,
    format_hours,
    to_csv,
    to_discord_embeds,
    to_html,
    to_json,
    to_markdown,
    to_slack_blocks,
)
from bot.policy import Policy
from bot.store.digest_queries import DigestRows

MONDAY = date(2026, 11, 16)
WEEK_END = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Monday 00:00 in London (GMT)
CLAUSE_OF = {"insult": "1.1", "toxicity": "1.1", "threat": "1.3"}


#: Floods, spam and raids as the store groups them: (week, rule, count), (week, messages) and
#: the raids started in the window.
SPAM = [(1, "spam:rate-channel", 9), (1, "spam:campaign", 4), (1, "spam:raid", 19),
        (0, "spam:rate-channel", 2), (0, "spam:invite", 1)]
SPAM_MESSAGES = [(1, 30), (0, 3)]
RAIDS = [(0, 1, "discord", "C009", "general", "2026-11-12T20:00:00.000000+00:00",
          "2026-11-12T21:00:00.000000+00:00", 11, "slowmode,timeout"),
         (1, 2, "discord", "C001", None, "2026-11-20T21:15:00.000000+00:00", None, 11,
          "slowmode,timeout"),
         (1, 3, "slack", "C777", "results",
          "2026-11-21T09:30:00.000000+00:00", "2026-11-21T10:00:00.000000+00:00", 12, "alert")]


def rows(*, channels: int = 4, members: int = 6, shadow: int = 0, spam: bool = True
         ) -> DigestRows:
    """Grouped rows as the store returns them, for a two-week window; `shadow` adds that many
    shadow-mode escalations (clause 1.3) on each day of this week; `spam` the floods, spam
    and raids above."""
    messages = [(day, f"C{c:03d}", "discord" if c % 2 else "slack",
                 f"a-rather-long-channel-name-{c:03d}", 10 + day + c)
                for day in range(14) for c in range(channels)]
    acted = [(day, "C000", "slack", action, cats, CLAUSE_OF[json.loads(cats)[0]], "enforce", n)
             for day in range(14)
             for action, cats, n in (("warn", '["insult"]', 3 + day % 3),
                                     ("hide", '["toxicity", "insult"]', 2),
                                     ("escalate", '["threat"]', 1))]
    acted += [(7 * wk, f"C{c:03d}", "discord" if c % 2 else "slack", "warn", "[]", None,
               "enforce", 2 + wk) for wk in (0, 1) for c in range(1, channels)]
    acted += [(day, "C001", "discord", "escalate", '["threat"]', "1.3", "shadow", shadow)
              for day in range(7, 14) if shadow]
    acted_members = [(wk, f"m{m}", "hide", 0, 1 + m % 3 + wk) for wk in (0, 1)
                     for m in range(members)]
    acted_members += [(1, "m1", "hide", 1, 3), (1, "m1", "escalate", 1, 1), (0, "m1", "hide", 1, 1)]
    return DigestRows(
        messages=messages, acted=acted, acted_members=acted_members,
        protected=[(1, "protected:adler", 2), (0, "protected:cllr-b", 1)],
        points=[(f"m{m}", 1.0, 2.0, 4.5) for m in range(members)],
        members=[(f"m{m}", f"Member <{m}>", f"N{m:05d}", "suspended" if m == 1 else "active")
                 for m in range(members)],
        open_cases=[(7, "escalation", 3, "2026-11-20T10:00:00.000000+00:00", "open")],
        resolved=[(1, "2026-11-17T10:00:00+00:00", "2026-11-17T14:00:00+00:00")],
        appeals=[(1, "upheld"), (1, None)],
        calibration=[(1, "threat", "dismissed", 1), (1, "threat", "upheld", 3)],
        evidence=[(7, "quoted <b>evidence</b>")],
        cleared=[], spam=SPAM if spam else [], spam_messages=SPAM_MESSAGES if spam else [],
        raids=RAIDS if spam else [])


def digest(**kw: Any) -> Digest:
    return assemble(rows(**kw), monday=MONDAY, tz="Europe/London")


def test_assemble_counts() -> None:
    d = digest()
    warn = (sum(3 + x % 3 for x in range(7, 14)) + 3 * 3, sum(3 + x % 3 for x in range(7)) + 3 * 2)
    messages = d.messages
    assert {f.key: (f.this_week, f.last_week) for f in d.actions} == {
        "allow": (messages.this_week - warn[0] - 14 - 7, messages.last_week - warn[1] - 14 - 7),
        "warn": warn, "hide": (14, 14), "escalate": (7, 7)}
    assert sum(x.allow + x.warn + x.hide + x.escalate for x in d.days) == messages.this_week
    assert d.categories[0].key == "insult" and d.categories[0].this_week == (
        sum(3 + x % 3 for x in range(7, 14)) + 14)
    assert d.repeat_offenders[0].member == "m1"  # ids, not names, by default
    assert (d.repeat_offenders[0].points, d.repeat_offenders[0].points_last_week) == (2, 1)
    assert d.sanctioned[0].attempted == 4 and d.sanctioned[0].hidden == 3
    assert d.sanctioned[0].status == "suspended"
    assert d.calibration[0].share_dismissed == 0.25
    assert d.open_escalations[0].evidence == ()
    assert d.median_resolution_hours == 4


def test_json_round_trips(test_policy: Policy) -> None:
    d = assemble(rows(shadow=1), monday=MONDAY, tz="Europe/London", show_names=True,
                 quote_evidence=True, policy=test_policy, now=WEEK_END - timedelta(hours=1))
    assert d.shadow_clauses and d.clauses and d.in_progress
    assert Digest.from_json(to_json(d)) == d
    # A digest saved before clauses, shadow mode and labels still loads.
    old = json.loads(to_json(d))
    for key in ("clauses", "shadow", "shadow_clauses", "as_of", "in_progress",
                "policy_version"):
        del old[key]
    del old["messages"]["label"]
    assert Digest.from_json(json.dumps(old)).messages == replace(d.messages, label="")
    assert json.loads(d.to_json())["open_escalations"][0]["evidence"] == [
        "quoted <b>evidence</b>"]


def test_csv_parses_one_row_per_figure() -> None:
    d = digest()
    table = list(csv.reader(io.StringIO(to_csv(d))))
    assert table[0] == ["section", "key", "this_week", "last_week", "change"]
    assert all(len(r) == 5 for r in table)
    as_dict = {(r[0], r[1]): r[2:] for r in table[1:]}
    warn = d.actions[1]
    assert as_dict[("actions", "warn")] == [str(int(warn.this_week)), str(int(warn.last_week)),
                                            str(int(warn.change))]
    assert as_dict[("messages", "total")][0] == str(int(d.messages.this_week))


def test_markdown_has_every_section() -> None:
    text = to_markdown(digest())
    for heading in ("# Weekly moderation digest 2026-W47", "## Channels",
                    "## Repeat offenders", "## Protected persons targeted", "adler",
                    "## Calibration"):
        assert heading in text


class _Parser(HTMLParser):
    """Checks nesting; collects images, headings, table headers and the text a reader sees."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.stack: list[str] = []
        self.external: list[str] = []
        self.headings: dict[str, list[str]] = {"h1": [], "h2": []}
        self.visible: list[str] = []
        self.rows: dict[str, list[list[str]]] = {}  # h2 title -> its tables' rows

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "img":
            self.images.append(found.get("src") or "")
        if tag in ("script", "link") or (found.get("src") or "").startswith("http"):
            self.external.append(tag)
        if tag in self.headings:
            self.headings[tag].append("")
        if tag == "tr" and self.headings["h2"]:
            self.rows.setdefault(self.headings["h2"][-1], []).append([])
        if tag in ("td", "th") and self.headings["h2"]:
            self.rows[self.headings["h2"][-1]][-1].append("")
        if tag not in ("meta", "img", "br", "!doctype"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (self.stack[-3:], tag)
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if {"style", "title"} & set(self.stack):
            return
        self.visible.append(data)
        for tag in ("h1", "h2"):
            if tag in self.stack:
                self.headings[tag][-1] += data
        if {"td", "th"} & set(self.stack) and self.headings["h2"]:
            self.rows[self.headings["h2"][-1]][-1][-1] += data


def _parsed(page: str) -> _Parser:
    parser = _Parser()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    return parser


def _markdown_headings(text: str) -> list[str]:
    return [line[3:] for line in text.splitlines() if line.startswith("## ")]


#: Machine keys: snake_case words (the CSV's section names, model categories).
_MACHINE_KEY = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")


def test_html_has_every_markdown_section_with_clause_titles_and_human_labels(
        test_policy: Policy) -> None:
    d = assemble(rows(shadow=2), monday=MONDAY, tz="Europe/London", policy=test_policy,
                 quote_evidence=True)
    page, markdown = to_html(d), to_markdown(d)
    parsed = _parsed(page)
    sections = _markdown_headings(markdown)
    assert len(sections) >= 15 and "Shadow mode: would have acted" in sections
    assert "Floods, spam and raids" in sections
    assert parsed.headings["h2"] == sections  # every section, in the same order
    assert parsed.headings["h1"] == [markdown.splitlines()[0].removeprefix("# ")]
    visible = " ".join(" ".join(parsed.visible).split())
    for clause in test_policy.clauses.values():
        assert f"{clause.id} {clause.title}" in visible
        assert f"{clause.id} {clause.title}" in markdown
    clauses = {row[0]: row[1:] for row in parsed.rows["By clause of the code of conduct"]}
    spam = {row[0]: row[1:] for row in parsed.rows["Floods, spam and raids"]}
    assert spam["Messages acted on as spam"] == ["30", "3", "+27"]
    assert spam["Flooding a channel"] == ["9", "2", "+7"]
    assert spam["Invites to other servers"] == ["0", "1", "-1"]
    assert spam["2"][:5] == ["#a-rather-long-channel-name-001 (Discord)",
                             "Fri 20 Nov 2026 21:15", "11", "alert, slowmode and timeouts",
                             "not ended"]
    assert clauses["1.3 No threats or incitement"][:4] == ["0", "0", "7", "7"]  # enforced only
    assert clauses["No clause cited"][0] == str(3 * 3)  # the uncategorised warnings
    assert "Rachel Adler (MP)" in visible and "Insults" in visible
    assert _MACHINE_KEY.findall(visible) == []
    assert _MACHINE_KEY.findall(markdown) == []
    for key in ("repeat_offender_points", "sanctioned_hidden", "escalate", "warn", "hide",
                "allow", "toxicity", "insult"):
        assert re.search(rf"\b{key}\b", visible) is None, key


def test_shadow_verdicts_are_counted_apart_and_only_shown_when_there_are_some(
        test_policy: Policy) -> None:
    plain = assemble(rows(), monday=MONDAY, tz="Europe/London", policy=test_policy)
    shadow = assemble(rows(shadow=2), monday=MONDAY, tz="Europe/London", policy=test_policy)
    # Nothing was done about shadow verdicts: the action counts do not move...
    assert shadow.actions[1:] == plain.actions[1:] and shadow.clauses == plain.clauses
    assert shadow.categories == plain.categories and shadow.days[0].escalate == 1
    # ...the messages count as allowed, and the section says what would have happened.
    assert shadow.actions[0].this_week == plain.actions[0].this_week
    assert [(f.key, f.this_week) for f in shadow.shadow] == [
        ("warn", 0), ("hide", 0), ("escalate", 14)]
    assert [(c.clause, c.escalate) for c in shadow.shadow_clauses] == [("1.3", 14)]
    title = "Shadow mode: would have acted"
    assert title not in to_markdown(plain) and title not in to_html(plain)
    assert title in to_markdown(shadow) and f">{title}</h2>" in to_html(shadow)
    assert "| 1.3 No threats or incitement | 0 | 0 | 14 | 14 |" in to_markdown(shadow)
    for posts in (to_discord_embeds(shadow), to_slack_blocks(shadow)):
        assert title in json.dumps(posts) and "Would have escalated: 14" in json.dumps(posts)
    assert title not in json.dumps(to_discord_embeds(plain))
    assert json.loads(to_json(shadow))["shadow"][2] == {
        "key": "escalate", "this_week": 14, "last_week": 0, "label": "Would have escalated"}


def test_open_case_ages_run_to_the_week_end_or_now_whichever_is_earlier() -> None:
    opened = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    current = assemble(rows(), monday=MONDAY, tz="Europe/London",
                       now=opened + timedelta(minutes=10))
    (case,) = current.open_escalations
    assert case.age_hours == pytest.approx(10 / 60, abs=0.01) and current.in_progress
    text = to_markdown(current)
    assert "open for 10 minutes" not in text  # the table says it in its own column
    assert "| 7 | 3 | open | Fri 20 Nov 2026 10:00 | 10 minutes |" in text
    assert "This week is not over: its figures run to Fri 20 Nov 2026 10:10" in text
    assert "case 7 (priority 3, open): open for 10 minutes" in json.dumps(
        to_slack_blocks(current))
    later = assemble(rows(), monday=MONDAY, tz="Europe/London", now=WEEK_END + timedelta(7))
    assert later.open_escalations[0].age_hours == (WEEK_END - opened).total_seconds() / 3600
    assert not later.in_progress and "not over" not in to_markdown(later)
    assert "| 2 days 14 hours |" in to_markdown(later)


def test_repeat_offenders_are_net_of_dismissed_and_pardoned_verdicts() -> None:
    base = rows()
    gross = {r.member: r.acted for r in assemble(base, monday=MONDAY,
                                                  tz="Europe/London").repeat_offenders}
    assert gross["m0"] == 2 and gross["m1"] == 7
    net = assemble(replace(base, cleared=[(1, "m0", 1), (1, "m1", 2), (0, "m1", 1)]),
                   monday=MONDAY, tz="Europe/London")
    assert {r.member: (r.acted, r.acted_last_week) for r in net.repeat_offenders} == {
        **{m: (n, 1 + int(m[1:]) % 3) for m, n in gross.items() if m not in ("m0", "m1")},
        "m1": (5, 2)}
    # The suspended member's posts still count as posts: clearing is about offences.
    assert net.sanctioned[0].attempted == 4


def test_charts_have_axis_titles_integer_ticks_and_a_linear_scale_from_zero() -> None:
    small = assemble(replace(rows(), acted=[a for a in rows().acted if a[3] == "escalate"]),
                     monday=MONDAY, tz="Europe/London")
    plots = _plots(small)
    assert [name for name, _caption, _fig in plots] == ["trend", "days", "clauses",
                                                        "categories"]
    for name, _caption, fig in plots:
        fig.canvas.draw()
        (ax, *_) = fig.axes
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title(), name
        assert ax.get_xscale() == ax.get_yscale() == "linear", name
        counts = ax.xaxis if name in ("clauses", "categories") else ax.yaxis
        ticks = [t for t in counts.get_majorticklocs()
                 if min(counts.get_view_interval()) <= t <= max(counts.get_view_interval())]
        assert ticks[0] == 0 and all(float(t).is_integer() for t in ticks), (name, ticks)
    empty = assemble(DigestRows([], [], [], [], [], [], [], [], [], [], [], []),
                     monday=MONDAY, tz="Europe/London")
    assert _plots(empty) == []  # an empty week draws no empty charts
    assert "<img" not in to_html(empty) and "None this week." in to_html(empty)


def test_durations_read_as_a_person_says_them() -> None:
    assert format_hours(10 / 60) == "10 minutes"
    assert format_hours(1) == "1 hour"
    assert format_hours(5 + 20 / 60) == "5 hours 20 minutes"
    assert format_hours(148) == "6 days 4 hours"
    assert format_hours(None) == "–"


@settings(max_examples=60, deadline=None)
@given(reason=st.text(max_size=40))
def test_appeal_outcomes_group_by_decision_not_by_reason(reason: str) -> None:
    assert _appeal_key(f"appeal granted: {reason}") == "granted"
    assert _appeal_key(f"appeal rejected: {reason}") == "rejected"
    assert _appeal_key(None) == "pending"


def test_html_is_self_contained_with_png_charts() -> None:
    d = assemble(rows(), monday=MONDAY, tz="Europe/London", show_names=True,
                 quote_evidence=True)
    page = to_html(d)
    parser = _Parser()
    parser.feed(page)
    parser.close()
    assert parser.stack == [] and parser.external == []
    assert len(parser.images) == 4  # trend, per day, clauses, categories
    assert all(src.startswith("data:image/png;base64,iVBOR") for src in parser.images)
    assert "Member &lt;2&gt;" in page and "<b>evidence" not in page


def _discord_ok(messages: list[list[dict[str, Any]]]) -> None:
    for embeds in messages:
        assert 1 <= len(embeds) <= 10
        total = 0
        for embed in embeds:
            assert len(embed["title"]) <= 256 and len(embed.get("description", "")) <= 4096
            assert len(embed["fields"]) <= 25
            total += len(embed["title"]) + len(embed.get("description", ""))
            for f in embed["fields"]:
                assert 0 < len(f["name"]) <= 256 and 0 < len(f["value"]) <= 1024
                total += len(f["name"]) + len(f["value"])
        assert total <= 6000


def _slack_ok(messages: list[list[dict[str, Any]]]) -> None:
    for blocks in messages:
        assert 1 <= len(blocks) <= 50
        for block in blocks:
            limit = 150 if block["type"] == "header" else 3000
            assert 0 < len(block["text"]["text"]) <= limit


@pytest.mark.parametrize("channels", [4, 200, 1500])
def test_chat_renderers_stay_within_limits_and_split(channels: int) -> None:
    d = digest(channels=channels, members=channels)
    discord, slack = to_discord_embeds(d), to_slack_blocks(d)
    _discord_ok(discord)
    _slack_ok(slack)
    # Nothing is truncated: every channel and every repeat offender appears somewhere.
    values = "\n".join(f["value"] for m in discord for e in m for f in e["fields"])
    texts = "\n".join(b["text"]["text"] for m in slack for b in m)
    for figure in d.channel_messages:
        assert f"{figure.name}: {int(figure.this_week)} messages" in values
        assert f"{figure.name}: {int(figure.this_week)} messages" in texts
    for figure in d.channel_actions:
        assert f"{int(figure.this_week)} acted on" in values
    for r in d.repeat_offenders:
        assert f"{r.member}: {r.acted} acted on" in values
        assert f"{r.member}: {r.acted} acted on" in texts
    assert (len(discord) > 1) == (channels >= 200)
    assert (len(slack) > 1) == (channels >= 1500)


def test_slack_escapes_control_characters() -> None:
    d = assemble(rows(), monday=MONDAY, tz="Europe/London", show_names=True)
    text = json.dumps(to_slack_blocks(d))
    assert "Member &lt;2&gt;" in text and "Member <2>" not in text


@settings(max_examples=80, deadline=None)
@given(day=st.dates(), text=st.text(max_size=12))
def test_a_week_parses_back_to_its_monday_or_is_refused_cleanly(day: date, text: str) -> None:
    from bot.digest import parse_week, week_bounds

    year, number, _ = day.isocalendar()
    expected = day - timedelta(days=day.weekday())
    try:
        monday = parse_week(f"{year}-W{number:02d}")
    except ValueError as exc:
        assert not 1970 <= year <= 9998, exc
    else:
        assert monday == expected
        assert len(week_bounds(monday, tz="Europe/London")) == 15  # no overflow at the edges
    for typed in (text, f"{day.year}-W{text}"):
        try:
            parse_week(typed)
        except ValueError:
            pass  # anything else (OverflowError, TypeError) fails the test


def test_floods_spam_and_raids_are_shown_only_for_a_week_that_had_some(
        test_policy: Policy) -> None:
    d = assemble(rows(), monday=MONDAY, tz="Europe/London", policy=test_policy)
    none = assemble(rows(spam=False), monday=MONDAY, tz="Europe/London")
    only_last = assemble(replace(rows(), spam=[r for r in SPAM if r[0] == 0],
                                 spam_messages=[(0, 3)], raids=RAIDS[:1]),
                         monday=MONDAY, tz="Europe/London")
    raid_only = assemble(replace(rows(), spam=[], spam_messages=[], raids=RAIDS[1:2]),
                         monday=MONDAY, tz="Europe/London")
    assert [(f.key, f.this_week, f.last_week) for f in d.spam] == [
        ("raid", 19, 0), ("rate-channel", 9, 2), ("campaign", 4, 0), ("invite", 0, 1)]
    assert (d.spam_messages.this_week, d.spam_messages.last_week) == (30, 3)
    assert (d.raids_started.this_week, d.raids_started.last_week) == (2, 1)
    assert [(r.raid, r.channel, r.accounts, r.ended_at) for r in d.raids] == [
        (2, "#a-rather-long-channel-name-001 (Discord)", 11, None),
        (3, "#results (Slack)", 12, "2026-11-21T10:00:00.000000+00:00")]
    title = "Floods, spam and raids"
    for week in (none, only_last):
        assert not week.has_spam
        assert f"## {title}" not in to_markdown(week) and f">{title}</h2>" not in to_html(week)
        assert title not in json.dumps([to_discord_embeds(week), to_slack_blocks(week)])
        assert not any(r[0] in ("spam", "raids") for r in csv.reader(io.StringIO(
            to_csv(week))))
    assert raid_only.has_spam and f"## {title}" in to_markdown(raid_only)
    markdown = to_markdown(d)
    assert f"## {title}" in markdown and f">{title}</h2>" in to_html(d)
    assert "clause 1.7" not in markdown  # the test policy has no [spam] section
    assert "| Copy-paste campaign | 4 | 0 | +4 |" in markdown
    assert "| 3 | #results (Slack) | Sat 21 Nov 2026 09:30 | 12 | alert only | " \
        "Sat 21 Nov 2026 10:00 |" in markdown
    for posts in (to_discord_embeds(d), to_slack_blocks(d)):
        text = json.dumps(posts, ensure_ascii=False)
        assert "Messages acted on as spam: 30 (+27)" in text
        assert "New accounts' posts during a raid: 19 (+19)" in text
        assert "Raids started: 2 (+1)" in text
        assert "Raid 2 in #a-rather-long-channel-name-001 (Discord), Fri 20 Nov 2026 21:15: " \
            "11 new accounts; alert, slowmode and timeouts; ended: not ended" in text
    table = {(r[0], r[1]): r[2:] for r in csv.reader(io.StringIO(to_csv(d)))}
    assert table[("spam", "campaign")] == ["4", "0", "4"]
    assert table[("spam_messages", "total")] == ["30", "3", "27"]
    assert table[("raids", "started")] == ["2", "1", "1"]
    assert table[("raid_new_accounts", "raid 3")] == ["12", "", ""]
    assert Digest.from_json(to_json(d)) == d
    assert json.loads(to_json(d))["spam"][0] == {
        "key": "raid", "this_week": 19, "last_week": 0,
        "label": "New accounts' posts during a raid"}
