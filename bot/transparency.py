"""The quarterly transparency report: aggregate, anonymous figures and how moderation works.

`build_report` reads one calendar quarter (in the party's time zone) from the store;
`assemble` turns the grouped rows into a `Report` (pure), and the renderers write it as
Markdown, HTML, JSON or CSV. The report holds counts only: no member, account, message or
case appears in it, and no text anyone wrote. Counts from 1 to `min_count - 1` (the policy's
`[transparency] min_count`) read "fewer than N"; a share or median computed from such a count
is withheld, and so is a further figure wherever a total and the figures beside a small count
would give it away. Suppression happens here, before rendering, so no format can show more.
"""

from __future__ import annotations

__all__ = [
    "Cell",
    "Quarter",
    "Report",
    "Row",
    "Section",
    "assemble",
    "build_report",
    "last_complete_quarter",
    "parse_quarter",
    "to_csv",
    "to_html",
    "to_json",
    "to_markdown",
    "withhold",
]

import csv
import html
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from pathlib import PurePath
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.digest import median_hours
from bot.models import Mode, VerdictAction
from bot.policy import LEVELS, Policy
from bot.store.transparency_queries import TransparencyRows

if TYPE_CHECKING:
    from bot.store import Store

#: The text of a count from 1 to min_count - 1 is "fewer than N"; of a figure withheld so
#: that such a count cannot be worked out, or computed from one, this.
WITHHELD = "withheld"
#: The text of a share or median with nothing to compute it from.
NONE = "–"


# -- quarters -----------------------------------------------------------------------------------

_QUARTER = re.compile(r"([0-9]{4})-[Qq]([0-9])")
_FIRST_YEAR, _LAST_YEAR = 1970, 9998


@dataclass(frozen=True, slots=True, order=True)
class Quarter:
    """A calendar quarter: Q1 is January to March."""

    year: int
    number: int

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 4 or not _FIRST_YEAR <= self.year <= _LAST_YEAR:
            raise ValueError(f"no quarter {self.year}-Q{self.number}: expected a year from "
                             f"{_FIRST_YEAR} to {_LAST_YEAR} and a quarter from 1 to 4")

    def __str__(self) -> str:
        return f"{self.year}-Q{self.number}"

    @classmethod
    def of(cls, day: date, /) -> Quarter:
        """The quarter a day falls in."""
        return cls(day.year, (day.month - 1) // 3 + 1)

    @property
    def first_day(self) -> date:
        """The quarter's first day."""
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def previous(self) -> Quarter:
        """The quarter before this one."""
        return Quarter(self.year - (self.number == 1), (self.number - 2) % 4 + 1)

    @property
    def last_day(self) -> date:
        """The quarter's last day."""
        return date.fromordinal(_first_day_after(self).toordinal() - 1)

    def bounds(self, *, tz: str) -> tuple[datetime, datetime]:
        """Local midnight starting the quarter and the one after it ends, both in `tz`."""
        zone = ZoneInfo(tz)
        return (datetime.combine(self.first_day, time(0), tzinfo=zone),
                datetime.combine(_first_day_after(self), time(0), tzinfo=zone))


def _first_day_after(quarter: Quarter) -> date:
    # Not the next Quarter's first day: 9998-Q4 is followed by a date, not by a Quarter.
    return date(quarter.year + quarter.number // 4, quarter.number % 4 * 3 + 1, 1)


def parse_quarter(text: str, /) -> Quarter:
    """A quarter written 2026-Q4 (q in any case); ValueError naming the expected form."""
    match = _QUARTER.fullmatch(text.strip())
    try:
        if match is None:
            raise ValueError
        return Quarter(int(match[1]), int(match[2]))
    except ValueError:
        raise ValueError(f"not a quarter: {text!r} (expected YEAR-QN, e.g. 2026-Q4, with N "
                         f"from 1 to 4 and the year from {_FIRST_YEAR} to {_LAST_YEAR})"
                         ) from None


def last_complete_quarter(now: datetime, /, *, tz: str) -> Quarter:
    """The last quarter that has ended, in `tz`, at `now`."""
    return Quarter.of(now.astimezone(ZoneInfo(tz)).date()).previous


# -- the data -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Cell:
    """One figure as published: `value` is None when it is suppressed or has nothing to be
    computed from; `text` is how every format shows it ("12", "fewer than 10", "withheld",
    "12.5%", "4.2 hours", "–"). Shares are fractions from 0 to 1; times are hours."""

    value: float | None
    suppressed: bool
    text: str


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a section: a stable key, what it counts, one cell per column."""

    key: str
    label: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True, slots=True)
class Section:
    """A titled table of figures."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    note: str = ""

    def row(self, key: str, /) -> Row:
        """The row with `key` (KeyError when there is none)."""
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(key)


@dataclass(frozen=True, slots=True)
class Report:
    """One quarter's transparency report (pure data, already anonymised)."""

    quarter: str
    tz: str
    start: str
    end: str
    policy_name: str
    policy_version: str
    min_count: int
    models: tuple[str, ...]
    policy_versions: tuple[str, ...]
    sections: tuple[Section, ...]
    method: tuple[str, ...]
    definitions: tuple[str, ...]

    def section(self, key: str, /) -> Section:
        """The section with `key` (KeyError when there is none)."""
        for section in self.sections:
            if section.key == key:
                return section
        raise KeyError(key)


# -- building -----------------------------------------------------------------------------------

async def build_report(store: Store, quarter: Quarter | str | None = None, /, *,
                       policy: Policy, tz: str | None = None,
                       now: datetime | None = None) -> Report:
    """The report of a quarter (default: the last complete one) from the store alone, in the
    policy's time zone unless `tz` is given."""
    from bot.store import iso

    zone = tz or policy.sanctions.timezone
    if isinstance(quarter, str):
        quarter = parse_quarter(quarter)
    if quarter is None:
        quarter = last_complete_quarter(now or store.clock(), tz=zone)
    start, end = quarter.bounds(tz=zone)
    rows = await store.transparency_rows(start=iso(start), end=iso(end))
    return assemble(rows, quarter=quarter, policy=policy, tz=zone)


def withhold(parts: Sequence[int], total: int, /, *, min_count: int
             ) -> tuple[frozenset[int], bool]:
    """Which further parts to withhold, and whether the total too, so that no part from 1 to
    `min_count - 1` (shown as "fewer than N") can be worked out from the published total and
    the parts shown. A withheld part is the smallest one still shown; the total goes only
    when no part is left to withhold. Nothing is needed when the total is itself small."""
    small = {i for i, n in enumerate(parts) if 0 < n < min_count}
    if not small or 0 < total < min_count:
        return frozenset(), False
    withheld: set[int] = set()
    while True:
        hidden = small | withheld
        rest = total - sum(n for i, n in enumerate(parts) if i not in hidden)
        if not any(_pinned(i, small, withheld, rest, min_count) for i in small):
            return frozenset(withheld), False
        shown = [i for i, n in enumerate(parts) if i not in hidden and n > 0]
        if not shown:
            return frozenset(withheld), True
        withheld.add(min(shown, key=lambda i: (parts[i], i)))


def _pinned(i: int, small: set[int], withheld: set[int], rest: int, min_count: int) -> bool:
    """Whether small part `i` has one possible value: the hidden parts add up to `rest`, a
    small one lies in [1, min_count - 1] and a withheld one in [min_count, infinity)."""
    others_low = len(small) - 1 + len(withheld) * min_count
    high = min(min_count - 1, rest - others_low)
    if withheld:  # the others can take up any excess: only the low end can pin it
        return high <= 1
    others_high = (len(small) - 1) * (min_count - 1)
    return max(1, rest - others_high) >= high


_LEVEL = {"warn": "Warned: a private notice; the message stays up",
          "hide": "Hidden: the message removed and the member told why",
          "escalate": "Hidden and escalated to a moderator"}
_CATEGORY = {"identity_attack": "identity attack", "severe_toxicity": "severe toxicity",
             "sexual_explicit": "sexually explicit", "doxxing": "personal details (doxxing)",
             "sanctioned": "posting while suspended or expelled"}
_NO_CLAUSE = "none"
#: Every fixed figure, so each has a cell even when nothing happened.
_KEYS = ("checked", "shadow.checked", "shadow.total", "auto.total", "auto.timeouts",
         "mod.total", "mod.proposed", "mod.rejected", "esc.decided", "esc.upheld",
         "esc.dismissed", "appeals.made", "appeals.bot", "appeals.moderators",
         "appeals.decided", "appeals.granted", "appeals.rejected",
         *(f"{who}.{a}" for who in ("auto", "shadow") for a in LEVELS),
         *(f"mod.{k}" for k in ("warning", "hide", "timeout", "suspension")))


def assemble(rows: TransparencyRows, /, *, quarter: Quarter, policy: Policy,
             tz: str) -> Report:
    """Pure: a quarter's grouped rows into its anonymised report, small counts suppressed."""
    floor = policy.transparency_min_count
    counts: Counter[str] = Counter(dict.fromkeys(_KEYS, 0))
    checked: Counter[str] = Counter()
    auto_platform: Counter[str] = Counter()
    auto_clause: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    models: set[str] = set()
    versions: set[str] = set()
    for mode, action, platform, clause, cats, model, model_version, version, n in rows.verdicts:
        checked[platform] += n
        models.add(f"{model} {model_version}")
        versions.add(version)
        if mode != Mode.ENFORCE:
            counts["shadow.checked"] += n
            if action != VerdictAction.ALLOW:
                counts[f"shadow.{action}"] += n
        elif action != VerdictAction.ALLOW:
            counts[f"auto.{action}"] += n
            auto_platform[platform] += n
            auto_clause[clause or _NO_CLAUSE] += n
            for category in json.loads(cats or "[]"):
                categories[category] += n
    counts["checked"] = checked.total()
    counts["auto.total"] = auto_platform.total()
    counts["shadow.total"] = sum(counts[f"shadow.{a}"] for a in _LEVEL)
    counts["auto.timeouts"] = rows.ladder_timeouts

    mod_clause: Counter[str] = Counter()
    for kind, clause, n in rows.moderator_actions:
        counts[f"mod.{kind}"] += n
        mod_clause[clause or _NO_CLAUSE] += n
    for event, after_appeal, n in rows.suspensions:
        if event == "opened":
            counts["mod.proposed"] += n
        elif event == "confirmed":
            counts["mod.suspension"] += n
            mod_clause[_NO_CLAUSE] += n
        elif not after_appeal:
            counts["mod.rejected"] += n
    moderator_kinds = ("warning", "hide", "timeout", "suspension")
    counts["mod.total"] = sum(counts[f"mod.{k}"] for k in moderator_kinds)

    for event, _opened, _decided in rows.escalations:
        counts[f"esc.{event}"] += 1
    counts["esc.decided"] = len(rows.escalations)
    for automatic, n in rows.appeals:
        counts["appeals.bot" if automatic else "appeals.moderators"] += n
    counts["appeals.made"] = counts["appeals.bot"] + counts["appeals.moderators"]
    for _automatic, event, _appealed, _decided in rows.appeal_decisions:
        counts["appeals.granted" if event == "dismissed" else "appeals.rejected"] += 1
    counts["appeals.decided"] = len(rows.appeal_decisions)

    clauses = [*policy.clauses, *sorted((set(auto_clause) | set(mod_clause))
                                        - set(policy.clauses) - {_NO_CLAUSE})]
    if auto_clause[_NO_CLAUSE] or mod_clause[_NO_CLAUSE]:
        clauses.append(_NO_CLAUSE)
    for clause in clauses:
        counts[f"clause|bot|{clause}"] = auto_clause[clause]
        counts[f"clause|mod|{clause}"] = mod_clause[clause]
    platforms = sorted(checked)
    for platform in platforms:
        counts[f"platform|checked|{platform}"] = checked[platform]
        counts[f"platform|bot|{platform}"] = auto_platform[platform]
    cats = [*policy.categories, *sorted(set(categories) - set(policy.categories))]
    for category in cats:
        counts[f"category|{category}"] = categories[category]

    groups = [
        ("auto.total", [f"auto.{a}" for a in _LEVEL]),
        ("auto.total", [f"clause|bot|{c}" for c in clauses]),
        ("auto.total", [f"platform|bot|{p}" for p in platforms]),
        ("mod.total", [f"mod.{k}" for k in moderator_kinds]),
        ("mod.total", [f"clause|mod|{c}" for c in clauses]),
        ("checked", [f"platform|checked|{p}" for p in platforms]),
        ("shadow.total", [f"shadow.{a}" for a in _LEVEL]),
        ("esc.decided", ["esc.upheld", "esc.dismissed"]),
        ("appeals.made", ["appeals.bot", "appeals.moderators"]),
        ("appeals.decided", ["appeals.granted", "appeals.rejected"]),
    ]
    cell = _cells(counts, groups, min_count=floor)

    def rate(part: str, whole: str) -> Cell:
        if not counts[whole]:
            return Cell(None, False, NONE)
        if cell[part].suppressed or cell[whole].suppressed:
            return Cell(None, True, WITHHELD)
        share = round(counts[part] / counts[whole], 4)
        return Cell(share, False, f"{share * 100:.1f}%")

    def median(pairs: Sequence[tuple[str, str]], count: str) -> Cell:
        hours = median_hours(pairs)
        if hours is None:
            return Cell(None, False, NONE)
        if cell[count].suppressed:
            return Cell(None, True, WITHHELD)
        return Cell(hours, False, f"{hours:.1f} hours")

    escalation_wait = median([(r[1], r[2]) for r in rows.escalations], "esc.decided")
    appeal_wait = median([(r[2], r[3]) for r in rows.appeal_decisions if r[2]],
                         "appeals.decided")
    overturn = rate("appeals.granted", "appeals.decided")
    name = str(quarter)

    def one(key: str, title: str, lines: Iterable[tuple[str, str, Cell]],
            note: str = "") -> Section:
        return Section(key, title, (name,), tuple(Row(k, label, (c,)) for k, label, c in lines),
                       note)

    sections = [
        one("summary", "At a glance", [
            ("messages_checked", "Messages checked by the bot", cell["checked"]),
            ("bot_actions", "Actions the bot took by itself", cell["auto.total"]),
            ("moderator_actions", "Actions moderators took", cell["mod.total"]),
            ("suspensions", "Suspensions started", cell["mod.suspension"]),
            ("appeals_made", "Appeals made", cell["appeals.made"]),
            ("overturn_rate", "Appeals granted (decision overturned), share of those decided",
             overturn),
            ("median_hours_to_decision",
             "Median time from an escalation to a moderator's decision", escalation_wait),
            ("shadow_would_have_acted",
             "Verdicts recorded in shadow mode that would have acted (nothing was done)",
             cell["shadow.total"])]),
        one("bot", "Actions the bot took by itself", [
            *((a, label, cell[f"auto.{a}"]) for a, label in _LEVEL.items()),
            ("total", "All the bot's actions", cell["auto.total"]),
            ("ladder_timeouts", "Timeouts set off by strike points (each with an action above)",
             cell["auto.timeouts"])]),
        one("moderators", "Actions moderators took", [
            ("warning", "Warnings", cell["mod.warning"]),
            ("hide", "Messages hidden", cell["mod.hide"]),
            ("timeout", "Timeouts", cell["mod.timeout"]),
            ("suspension", "Suspensions started (confirmed)", cell["mod.suspension"]),
            ("total", "All moderators' actions", cell["mod.total"]),
            ("suspensions_proposed", "Suspensions proposed", cell["mod.proposed"]),
            ("suspensions_rejected", "Suspension proposals rejected", cell["mod.rejected"])]),
        Section("clauses", "Actions by clause of the code of conduct",
                ("by the bot", "by moderators"),
                (*(Row(c, _clause_label(c, policy),
                       (cell[f"clause|bot|{c}"], cell[f"clause|mod|{c}"])) for c in clauses),
                 Row("total", "All actions", (cell["auto.total"], cell["mod.total"]))),
                "The clause each action cited. Moderators' commands cite none."),
        one("categories", "The bot's actions by category",
            [(c, _CATEGORY.get(c, c.replace("_", " ")), cell[f"category|{c}"]) for c in cats],
            "A message can fall in more than one category, so these add up to more than "
            "the actions."),
        Section("platforms", "By platform", ("messages checked", "the bot's actions"),
                (*(Row(p, p.capitalize(), (cell[f"platform|checked|{p}"],
                                           cell[f"platform|bot|{p}"])) for p in platforms),
                 Row("total", "All platforms", (cell["checked"], cell["auto.total"])))),
        one("escalations", "Escalations decided by moderators", [
            ("decided", "Escalations a moderator decided", cell["esc.decided"]),
            ("upheld", "Upheld: the bot's decision stands", cell["esc.upheld"]),
            ("dismissed", "Dismissed: the bot's decision overturned", cell["esc.dismissed"]),
            ("dismissed_share", "Share dismissed", rate("esc.dismissed", "esc.decided")),
            ("median_hours_to_decision", "Median time from escalation to decision",
             escalation_wait)]),
        one("appeals", "Appeals", [
            ("against_bot", "Appeals against the bot's actions", cell["appeals.bot"]),
            ("against_moderators", "Appeals against moderators' actions",
             cell["appeals.moderators"]),
            ("made", "All appeals made", cell["appeals.made"]),
            ("decided", "Appeals decided", cell["appeals.decided"]),
            ("granted", "Granted: the decision overturned", cell["appeals.granted"]),
            ("rejected", "Rejected: the decision stands", cell["appeals.rejected"]),
            ("overturn_rate", "Overturn rate (granted of decided)", overturn),
            ("median_hours_to_decision", "Median time from appeal to decision",
             appeal_wait)]),
    ]
    if counts["shadow.checked"] or _shadow_anywhere(policy):
        sections.append(one("shadow", "Shadow mode: recorded only, nothing done to members", [
            ("checked", "Messages checked in shadow mode", cell["shadow.checked"]),
            ("warn", "Would have warned", cell["shadow.warn"]),
            ("hide", "Would have hidden", cell["shadow.hide"]),
            ("escalate", "Would have hidden and escalated", cell["shadow.escalate"]),
            ("total", "All verdicts that would have acted", cell["shadow.total"])],
            "Shadow-mode verdicts are not actions: nothing was done to the member, who was "
            "not told."))
    first, last = quarter.first_day, quarter.last_day
    return Report(
        quarter=name, tz=tz, start=first.isoformat(), end=last.isoformat(),
        policy_name=_name(policy), policy_version=policy.version,
        min_count=floor, models=tuple(sorted(models)), policy_versions=tuple(sorted(versions)),
        sections=tuple(sections),
        method=_method(policy, models=sorted(models), versions=sorted(versions)),
        definitions=_definitions(quarter, tz=tz, min_count=floor))


def _cells(counts: Mapping[str, int], groups: Sequence[tuple[str, Sequence[str]]], *,
           min_count: int) -> dict[str, Cell]:
    """Every count as published: small ones "fewer than N", and those `withhold` picks
    in any group (a part, or its total) withheld."""
    withheld: set[str] = set()
    for total, parts in groups:
        extra, whole = withhold([counts[p] for p in parts], counts[total], min_count=min_count)
        withheld |= {parts[i] for i in extra}
        if whole:
            withheld.add(total)
    cells = {}
    for key, n in counts.items():
        if 0 < n < min_count:
            cells[key] = Cell(None, True, f"fewer than {min_count}")
        elif key in withheld:
            cells[key] = Cell(None, True, WITHHELD)
        else:
            cells[key] = Cell(n, False, f"{n:,}")
    return cells


def _clause_label(clause: str, policy: Policy) -> str:
    if clause == _NO_CLAUSE:
        return "No clause cited"
    title = policy.clause_title(clause)
    return f"{clause} {title}" if title else f"{clause} (not in the current policy)"


def _name(policy: Policy) -> str:
    # The file's name, not its path: a path can name the operator's account.
    return policy.name or PurePath(policy.file).name


def _shadow_anywhere(policy: Policy) -> bool:
    return policy.mode is Mode.SHADOW or any(c.mode is Mode.SHADOW for c in policy.channels)


# -- the method, from the policy ---------------------------------------------------------------

_DOING = {"warn": ("warns", "a private notice to the member; the message stays up"),
          "hide": ("hides", "removes the message and tells the member which clause it broke"),
          "escalate": ("escalates", "removes the message, tells the member, and puts it "
                                    "before a moderator, who decides")}
_DETECTED = {"uk_phone": "phone numbers", "email": "email addresses",
             "street_address": "home addresses"}


def _spoken(span: timedelta) -> str:
    """A duration in words: '30 days', '1 hour', '90 minutes'."""
    minutes = int(span.total_seconds() // 60)
    for unit, size in (("day", 24 * 60), ("hour", 60)):
        if minutes % size == 0 and minutes >= size:
            return _many(minutes // size, unit, f"{unit}s")
    return _many(minutes, "minute", "minutes")


def _many(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _method(policy: Policy, *, models: Sequence[str], versions: Sequence[str]
            ) -> tuple[str, ...]:
    """How moderation works, in sentences, from the policy and the quarter's verdicts."""
    lines = [
        f"Every message posted in the party's member channels is checked by the bot against "
        f"the code of conduct (\"{_name(policy)}\", now version {policy.version})"
        f": a machine-learning model scores it for {len(policy.categories)} kinds of abuse, "
        "and it is matched against "
        f"{_many(len(policy.rules), 'keyword or pattern rule', 'keyword and pattern rules')} "
        "written for clear cases. The rules see the text with look-alike letters and "
        "disguises undone; the model sees it as written."]
    if models:
        lines.append(f"This quarter's verdicts were made by the model {_join(models)}, under "
                     f"policy version {_join(versions)}.")
    else:
        lines.append("No messages were checked this quarter.")
    mode = ("enforce mode: what it decides is carried out" if policy.mode is Mode.ENFORCE
            else "shadow mode: its verdicts are recorded and nothing is done to members")
    lines.append(f"The bot runs in {mode}.")
    for channel in policy.channels:
        if channel.mode is not None and channel.mode is not policy.mode:
            where = _join([f"#{m}" for m in sorted(channel.match)])
            lines.append(f"In {where} it runs in {channel.mode} mode instead.")
    if _shadow_anywhere(policy):
        lines.append("In shadow mode nothing is done to the member, who is not told; "
                     + ("messages the bot would have hidden or escalated are shown to the "
                        "moderators, marked as such." if policy.shadow_review
                        else "the verdicts are only recorded."))
    for level in LEVELS:
        found = [f"{_CATEGORY.get(c, c.replace('_', ' '))} (clause {p.clause})"
                 for c, p in policy.categories.items()
                 if getattr(p.thresholds, level) is not None]
        parts = [f"model scores for {_join(found)}"] if found else []
        rules = [f"{r.id} ({r.clause})" for r in policy.rules if r.action == level]
        if rules:
            parts.append(f"the rules {_join(rules)}")
        protected = policy.protected
        if protected.persons and protected.action == level:
            people = _many(len(protected.persons), "person", "people")
            parts.append(f"abuse aimed at the MPs, councillors and staff the policy protects "
                         f"({people}, not named here; clause {protected.clause})")
        if policy.doxxing.detect and policy.doxxing.action == level:
            found = [_DETECTED.get(d, d) for d in sorted(policy.doxxing.detect)]
            parts.append(f"personal {_join(found)} (clause {policy.doxxing.clause})")
        by_clause: dict[str, list[str]] = {}
        for status, treatment in policy.statuses.items():
            if treatment.action == level:
                by_clause.setdefault(treatment.clause, []).append(str(status))
        parts += [f"any post by a member who is {' or '.join(statuses)} (clause {clause})"
                  for clause, statuses in by_clause.items()]
        verb, does = _DOING[level]
        lines.append(f"The bot {verb} by itself ({does}) on {'; '.join(parts)}." if parts
                     else f"The bot {verb} nothing by itself.")
    for channel in policy.channels:
        if channel.thresholds or channel.skip_rules:
            where = _join([f"#{m}" for m in sorted(channel.match)])
            has = "has levels of its own" if len(channel.match) == 1 else \
                "have levels of their own"
            why = f" ({channel.description.rstrip('.')})" if channel.description else ""
            lines.append(f"{where} {has}{why}.")
    strikes = policy.strikes
    if strikes.points:
        points = _join([f"{a} {p:g}" for a, p in strikes.points.items()])
        decay = f"; they halve every {_spoken(strikes.half_life)}" if strikes.half_life else ""
        lapse = (f" and lapse after {_spoken(strikes.expire_after)}"
                 if strikes.expire_after else "")
        lines.append(f"Each action adds strike points ({points}){decay}{lapse}.")
    for step in sorted(strikes.ladder, key=lambda s: s.points):
        steps = [f"a timeout of {_spoken(step.timeout)}, set automatically"] \
            if step.timeout else []
        if step.escalate:
            steps.append("the member's record goes to the moderators")
        lines.append(f"At {step.points:g} strike points: {', and '.join(steps) or 'nothing'}.")
    waits = "only once a moderator upholds it" if strikes.escalation_points == "on_uphold" \
        else "at once"
    if strikes.escalation_points == "on_uphold" and strikes.unreviewed_after:
        waits += f", or after {_spoken(strikes.unreviewed_after)} without a review"
    lines.append("Every escalation is reviewed by a moderator, who upholds or dismisses it; "
                 f"its strike points count {waits}. Dismissing a case undoes what it caused "
                 "and tells the member.")
    sign_off = ("a suspension one moderator proposes takes effect only when a second "
                "confirms it" if policy.sanctions.two_person_suspension
                else "a moderator's suspension takes effect at once")
    lines.append(f"Only moderators suspend members, never the bot: {sign_off}.")
    lines.append("Every action against a member opens a numbered case; the member's notice "
                 "gives the number, and the member may appeal each case once. A moderator "
                 "decides the appeal and the member is told the outcome.")
    floor = policy.transparency_min_count
    lines.append(f"Figures from 1 to {floor - 1} are shown as \"fewer than {floor}\" (the "
                 "policy's [transparency] min_count); shares and medians computed from them "
                 "are withheld, and so is another figure wherever a total and the figures "
                 "beside a small one would give it away. This report holds counts only: no "
                 "member, account or message appears in it." if floor > 1 else
                 "Every figure is shown exactly (the policy's [transparency] min_count is 1). "
                 "This report holds counts only: no member, account or message appears in it.")
    return tuple(lines)


def _day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def _definitions(quarter: Quarter, *, tz: str, min_count: int) -> tuple[str, ...]:
    return (
        f"The quarter runs from 00:00 on {_day(quarter.first_day)} to 24:00 on "
        f"{_day(quarter.last_day)}, "
        f"{tz} time. Everything counts in the quarter it happened in the bot.",
        "Messages checked: every message the bot decided in the quarter, whatever it "
        "decided, in shadow mode too.",
        "The bot's actions: its own warnings, hides and escalations in enforce mode, counted "
        "when decided. Verdicts recorded in shadow mode are not actions.",
        "Moderators' actions: the warnings, hidden messages and timeouts moderators imposed, "
        "and the suspensions that took effect, in the quarter.",
        "Escalations decided: moderators' first decisions in the quarter on the bot's "
        "escalations; time to decision runs from the escalation to that decision.",
        "Appeals made and appeals decided count in the quarter each happened, so an appeal "
        "made late in one quarter may be decided in the next. Granted means the decision was "
        "overturned; the overturn rate is granted of decided.",
        f"Small counts: from 1 to {min_count - 1} shown as \"fewer than {min_count}\"; "
        "\"withheld\": a figure not shown so that a small count cannot be worked out from "
        "it; \"–\": nothing to compute from." if min_count > 1 else
        "Small counts: none are suppressed (min_count 1); \"–\": nothing to compute from.",
    )


# -- rendering ----------------------------------------------------------------------------------

def _title(r: Report) -> str:
    return f"Transparency report {r.quarter}"


def _subtitle(r: Report) -> str:
    period = (f"{r.policy_name}: {_day(date.fromisoformat(r.start))} to "
              f"{_day(date.fromisoformat(r.end))} ({r.tz}). Counts only")
    return (f"{period}; figures from 1 to {r.min_count - 1} read \"fewer than {r.min_count}\"."
            if r.min_count > 1 else f"{period}.")


def to_json(r: Report, /) -> str:
    """The report as JSON: each cell {"value": number or null, "suppressed": bool, "text"}."""
    return json.dumps(asdict(r), ensure_ascii=False, indent=2)


def to_csv(r: Report, /) -> str:
    """One row per figure (section, row, label, column, value, suppressed, shown); the
    report's details and method come first, as rows of section "report" and "method"."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "row", "label", "column", "value", "suppressed", "shown"])
    about = [("quarter", "Quarter", r.quarter), ("start", "First day", r.start),
             ("end", "Last day", r.end), ("tz", "Time zone", r.tz),
             ("policy", "Policy", f"{r.policy_name} {r.policy_version}"),
             ("min_count", "Smallest count shown", str(r.min_count)),
             ("models", "Models", "; ".join(r.models)),
             ("policy_versions", "Policy versions", "; ".join(r.policy_versions))]
    for key, label, text in about:
        writer.writerow(["report", key, label, "", "", "", text])
    for i, line in enumerate((*r.method, *r.definitions), 1):
        writer.writerow(["method", str(i), "", "", "", "", line])
    for section in r.sections:
        for row in section.rows:
            for column, cell in zip(section.columns, row.cells, strict=True):
                value = "" if cell.value is None else str(cell.value)
                writer.writerow([section.key, row.key, row.label, column, value,
                                 str(cell.suppressed).lower(), cell.text])
    return buffer.getvalue()


def to_markdown(r: Report, /) -> str:
    """The report as Markdown."""

    def md(text: str) -> str:
        return text.replace("|", "\\|")

    out = [f"# {_title(r)}", "", _subtitle(r), ""]
    for section in r.sections:
        out += [f"## {section.title}", ""]
        if section.note:
            out += [section.note, ""]
        out.append("| | " + " | ".join(md(c) for c in section.columns) + " |")
        out.append("|---|" + "---:|" * len(section.columns))
        for row in section.rows:
            cells = [md(row.label), *(c.text for c in row.cells)]
            if row.key == "total":
                cells = [f"**{c}**" for c in cells]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    out += ["## How moderation works", "", *(f"- {md(line)}" for line in r.method), ""]
    out += ["## Definitions", "", *(f"- {md(line)}" for line in r.definitions)]
    return "\n".join(out) + "\n"


_CSS = ("body{font-family:system-ui,sans-serif;max-width:52em;margin:2em auto;padding:0 1em;"
        "color:#222;line-height:1.45}h1{margin-bottom:.2em}p.sub{color:#555;margin-top:0}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em;width:100%}"
        "th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}"
        "th.n,td.n{text-align:right;white-space:nowrap;width:9em}td.s{color:#777;font-style:italic}"
        "tr.total td{font-weight:600;border-top:2px solid #999}p.note{color:#555;"
        "font-size:.92em;margin:.2em 0}li{margin:.25em 0}")


def to_html(r: Report, /) -> str:
    """A self-contained HTML page."""
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{esc(_title(r))}</title>", f"<style>{_CSS}</style></head><body>",
             f"<h1>{esc(_title(r))}</h1>", f'<p class="sub">{esc(_subtitle(r))}</p>']
    for section in r.sections:
        parts.append(f'<h2 id="{esc(section.key)}">{esc(section.title)}</h2>')
        if section.note:
            parts.append(f'<p class="note">{esc(section.note)}</p>')
        head = "".join(f'<th class="n">{esc(c)}</th>' for c in section.columns)
        parts.append(f"<table><thead><tr><th></th>{head}</tr></thead><tbody>")
        for row in section.rows:
            css = ' class="total"' if row.key == "total" else ""
            cells = "".join(f'<td class="n{" s" if c.suppressed else ""}">{esc(c.text)}</td>'
                            for c in row.cells)
            parts.append(f"<tr{css}><td>{esc(row.label)}</td>{cells}</tr>")
        parts.append("</tbody></table>")
    for title, lines in (("How moderation works", r.method), ("Definitions", r.definitions)):
        parts.append(f"<h2>{title}</h2><ul>")
        parts += [f"<li>{esc(line)}</li>" for line in lines]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
