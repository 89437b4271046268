"""The weekly digest: built from the store alone (grouped in SQL), rendered per platform and file.

`build_digest` gathers one ISO week in a time zone; the renderers are pure functions of the
`Digest`. Members appear by display name and membership number only with `show_names=True`
(otherwise by their internal id); message text appears only with `quote_evidence=True`.

Action counts are what was done: shadow-mode verdicts (recorded only) are counted apart, in
their own section. The Markdown, HTML and chat renderers share one list of titled sections with
human labels; JSON and CSV keep the machine keys.
"""

from __future__ import annotations

__all__ = [
    "Calibration",
    "ClauseCount",
    "Day",
    "Digest",
    "Figure",
    "OpenEscalation",
    "Raid",
    "Repeat",
    "SanctionedActivity",
    "assemble",
    "build_digest",
    "format_hours",
    "median_hours",
    "parse_week",
    "to_csv",
    "to_discord_embeds",
    "to_html",
    "to_json",
    "to_markdown",
    "to_slack_blocks",
    "week_bounds",
]

import base64
import csv
import html
import io
import json
import re
import statistics
import textwrap
import types
import typing
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.store.digest_queries import DigestRows

if TYPE_CHECKING:
    from bot.policy import Policy
    from bot.store import Store

ACTIONS = ("allow", "warn", "hide", "escalate")
ACTED = ("warn", "hide", "escalate")

#: How a person reads the machine keys (JSON and CSV keep the keys).
ACTION_LABELS = {"allow": "Allowed (nothing done)", "warn": "Warned", "hide": "Hidden",
                 "escalate": "Escalated to moderators"}
SHADOW_LABELS = {"warn": "Would have warned", "hide": "Would have hidden",
                 "escalate": "Would have escalated"}
CATEGORY_LABELS = {
    "toxicity": "Toxic language", "severe_toxicity": "Severe abuse", "obscene": "Obscenity",
    "threat": "Threats", "insult": "Insults",
    "identity_attack": "Attacks on a protected characteristic",
    "sexual_explicit": "Sexual content or harassment", "doxxing": "Personal details (doxxing)",
    "harassment": "Harassment", "sanctioned": "Posting while suspended or expelled",
    "spam": "Floods, spam and raids"}
PLATFORM_LABELS = {"discord": "Discord", "slack": "Slack", "console": "Console"}
ROLE_LABELS = {"mp": "MP", "councillor": "councillor", "staff": "staff"}
APPEAL_LABELS = {"granted": "Appeals granted", "rejected": "Appeals rejected",
                 "pending": "Appeals awaiting a decision"}
TREND_LABELS = {"new": "new", "up": "up", "down": "down", "same": "no change"}
#: What each `spam:KIND` rule found (bot.spam), as a moderator says it.
SPAM_LABELS = {
    "rate-channel": "Flooding a channel", "rate-overall": "Posting too fast across channels",
    "duplicate": "Repeating the same message", "campaign": "Copy-paste campaign",
    "mentions": "Mentioning too many members", "mass-mention": "Mentioning everyone",
    "pile-on": "Pile-on on a representative", "invite": "Invites to other servers",
    "shortener": "Shortened links", "denied-link": "Links to banned sites",
    "new-account-link": "Links from new accounts",
    "raid": "New accounts' posts during a raid"}
#: A raid's response (the `raids.response` column) beyond the alert every raid gets.
RAID_RESPONSE_LABELS = {"slowmode": "slowmode", "timeout": "timeouts"}


def _label(key: str, labels: dict[str, str]) -> str:
    return labels.get(key) or key.replace("_", " ").capitalize()


# -- the data -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Figure:
    """One figure this week and the week before; `label` is how a person reads `key`."""

    key: str
    this_week: float
    last_week: float
    label: str = ""

    @property
    def change(self) -> float:
        """This week minus last week."""
        return self.this_week - self.last_week

    @property
    def name(self) -> str:
        """The label, or the key where there is none."""
        return self.label or self.key


@dataclass(frozen=True, slots=True)
class ClauseCount:
    """Messages acted on under one clause of the code of conduct, by action."""

    clause: str  # the clause id; "" for verdicts that cited none
    title: str   # the clause's title in the policy; "" when the policy does not have it
    warn: int
    hide: int
    escalate: int
    last_week: int  # warned, hidden and escalated together, the week before

    @property
    def total(self) -> int:
        """Warned, hidden and escalated together."""
        return self.warn + self.hide + self.escalate

    @property
    def label(self) -> str:
        """'1.2 No discrimination or hate', as the code of conduct numbers and names it."""
        if not self.clause:
            return "No clause cited"
        return f"{self.clause} {self.title}" if self.title else f"Clause {self.clause}"


@dataclass(frozen=True, slots=True)
class Day:
    """One local day: messages seen and verdicts by action."""

    date: str
    messages: int
    allow: int
    warn: int
    hide: int
    escalate: int


@dataclass(frozen=True, slots=True)
class Repeat:
    """A member with two or more messages acted on this week that still stand."""

    member: str
    acted: int
    acted_last_week: int
    points: float
    points_last_week: float
    points_total: float
    trend: str


@dataclass(frozen=True, slots=True)
class SanctionedActivity:
    """A suspended or expelled member who kept posting."""

    member: str
    status: str
    attempted: int
    hidden: int
    escalated: int
    attempted_last_week: int


@dataclass(frozen=True, slots=True)
class OpenEscalation:
    """An escalation still open at the end of the week (or now, for a week in progress)."""

    case: int
    priority: int
    state: str
    opened_at: str
    age_hours: float
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Calibration:
    """Moderators' reviews of automatic verdicts in one category."""

    category: str
    reviewed: int
    dismissed: int
    share_dismissed: float
    reviewed_last_week: int
    share_dismissed_last_week: float | None


@dataclass(frozen=True, slots=True)
class Raid:
    """A raid that started in the week: new accounts swamping one channel."""

    raid: int
    platform: str
    channel: str  # as a person reads it: '#general (Discord)'
    started_at: str
    ended_at: str | None  # None: not ended when the digest was made
    accounts: int  # the new accounts named in the moderators' alert
    response: str  # 'alert' or what else was done: 'slowmode', 'timeout', comma-separated


@dataclass(frozen=True, slots=True)
class Digest:
    """One ISO week's figures (pure data)."""

    week: str
    tz: str
    start: str
    end: str
    show_names: bool
    quote_evidence: bool
    messages: Figure
    actions: tuple[Figure, ...]
    categories: tuple[Figure, ...]
    channel_messages: tuple[Figure, ...]
    channel_actions: tuple[Figure, ...]
    platform_messages: tuple[Figure, ...]
    platform_actions: tuple[Figure, ...]
    days: tuple[Day, ...]
    days_last_week: tuple[Day, ...]
    repeat_offenders: tuple[Repeat, ...]
    sanctioned: tuple[SanctionedActivity, ...]
    protected: tuple[Figure, ...]
    open_escalations: tuple[OpenEscalation, ...]
    resolved: Figure
    median_resolution_hours: float | None
    median_resolution_hours_last_week: float | None
    appeals: Figure
    appeal_outcomes: tuple[Figure, ...]
    calibration: tuple[Calibration, ...]
    #: Enforced verdicts by the clause they cited (every clause of the policy, then any other).
    clauses: tuple[ClauseCount, ...] = ()
    #: Shadow-mode verdicts that would have acted, by action and by clause: nothing was done.
    shadow: tuple[Figure, ...] = ()
    shadow_clauses: tuple[ClauseCount, ...] = ()
    #: The moment (UTC) open escalations and their ages are taken at: the week's end, or the
    #: time the digest was made if that came first.
    as_of: str = ""
    in_progress: bool = False
    #: The policy the clause titles and protected persons' names were read from.
    policy_version: str = ""
    #: Floods, spam and raids: enforced verdicts by what the checks found (a message can count
    #: under several kinds), those messages, the raids started, and this week's raids.
    spam: tuple[Figure, ...] = ()
    spam_messages: Figure = Figure("spam_messages", 0, 0, "Messages acted on as spam")
    raids_started: Figure = Figure("raids", 0, 0, "Raids started")
    raids: tuple[Raid, ...] = ()
    #: The clause the spam checks cite, with its title ('' without a policy or `[spam]`).
    spam_clause: str = ""

    @property
    def has_spam(self) -> bool:
        """Whether the week had any message acted on as spam, or any raid."""
        return bool(self.spam_messages.this_week or self.raids_started.this_week)

    @property
    def has_shadow(self) -> bool:
        """Whether any verdict this week was recorded in shadow mode as acting."""
        return any(f.this_week for f in self.shadow)

    def to_json(self) -> str:
        """The digest as JSON (see `from_json`)."""
        return to_json(self)

    @classmethod
    def from_json(cls, text: str, /) -> Digest:
        """A digest back from `to_json`."""
        loaded = _load(cls, json.loads(text))
        assert isinstance(loaded, Digest)
        return loaded


def _load(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(kind, type) and is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        # A field missing from older JSON takes its default.
        return kind(**{f.name: _load(hints[f.name], value[f.name]) for f in fields(kind)
                       if f.name in value})
    origin = typing.get_origin(kind)
    if origin is tuple:
        inner = typing.get_args(kind)[0]
        return tuple(_load(inner, v) for v in value)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return _load(options[0], value)
    if kind is float:
        return float(value)
    return value


# -- weeks --------------------------------------------------------------------------------------

def parse_week(week: str, /) -> date:
    """The Monday of an ISO week written 2026-W47; ValueError otherwise."""
    try:
        year, _, number = week.strip().upper().partition("-W")
        if not 1970 <= int(year) <= 9998:  # the week before and time zones stay in range
            raise ValueError("year out of range")
        return date.fromisocalendar(int(year), int(number), 1)
    except ValueError as exc:
        raise ValueError(f"not an ISO week (like 2026-W47) from 1970 to 9998: {week!r}") \
            from exc


def _week_name(monday: date) -> str:
    year, number, _ = monday.isocalendar()
    return f"{year}-W{number:02d}"


def week_bounds(monday: date, /, *, tz: str) -> list[datetime]:
    """15 UTC day boundaries: the week before `monday`'s week and that week, local midnights."""
    zone = ZoneInfo(tz)
    first = monday - timedelta(days=7)
    return [datetime.combine(first + timedelta(days=d), time(0), tzinfo=zone).astimezone(UTC)
            for d in range(15)]


def last_complete_week(now: datetime, /, *, tz: str) -> date:
    """The Monday of the last week that has ended, in `tz`, at `now`."""
    today = now.astimezone(ZoneInfo(tz)).date()
    return today - timedelta(days=today.weekday() + 7)


# -- building -----------------------------------------------------------------------------------

async def build_digest(store: Store, week: str | None = None, /, *, tz: str = "Europe/London",
                       now: datetime | None = None, show_names: bool = False,
                       quote_evidence: bool = False, policy: Policy | None = None) -> Digest:
    """The digest of an ISO week (default: the last complete week) from the store alone.

    `now` defaults to the store's clock; a week still in progress is measured up to it.
    `policy` supplies clause titles and protected persons' names (ids only without it).
    """
    now = now or store.clock()
    monday = parse_week(week) if week else last_complete_week(now, tz=tz)
    bounds = week_bounds(monday, tz=tz)
    from bot.store import iso

    rows = await store.digest_rows(bounds=[iso(b) for b in bounds],
                                   quote_evidence=quote_evidence,
                                   as_of=iso(min(bounds[-1], now)))
    return assemble(rows, monday=monday, tz=tz, show_names=show_names,
                    quote_evidence=quote_evidence, now=now, policy=policy)


def _figures(this: Counter[str], last: Counter[str], *, keys: Iterable[str] = (),
             label: Callable[[str], str] | None = None) -> tuple[Figure, ...]:
    every = set(this) | set(last) | set(keys)
    ordered = sorted(every, key=lambda k: (-this.get(k, 0), -last.get(k, 0), k))
    return tuple(Figure(k, this.get(k, 0), last.get(k, 0), label(k) if label else "")
                 for k in ordered)


def median_hours(pairs: Sequence[tuple[str, str]]) -> float | None:
    """The median hours from start to end over (start, end) ISO timestamps; None for none."""
    spans = [(datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() / 3600
             for a, b in pairs]
    return round(statistics.median(spans), 2) if spans else None


def _clause_order(clause: str) -> tuple[int, tuple[tuple[int, str], ...]]:
    """Clauses in the code's own order (1.2 before 1.10); none cited last."""
    parts = tuple((int(p), "") if p.isdigit() else (0, p) for p in clause.split("."))
    return (0 if clause else 1, parts)


def _clauses(counts: Sequence[Counter[tuple[str, str]]], titles: dict[str, str], *,
             every: Iterable[str] = ()) -> tuple[ClauseCount, ...]:
    """Per-clause counts (this week `counts[1]`, last week `counts[0]`) by (clause, action)."""
    keys = {c for c, _ in counts[1]} | {c for c, _ in counts[0]} | set(every)
    return tuple(
        ClauseCount(c, titles.get(c, ""), counts[1][(c, "warn")], counts[1][(c, "hide")],
                    counts[1][(c, "escalate")], sum(counts[0][(c, a)] for a in ACTED))
        for c in sorted(keys, key=_clause_order))


def _appeal_key(outcome: str | None) -> str:
    """granted, rejected or pending: a stored outcome carries the moderator's reason."""
    if not outcome:
        return "pending"
    head = outcome.split(":", 1)[0].strip().casefold()
    return head.removeprefix("appeal ").strip() or "pending"


def assemble(rows: DigestRows, /, *, monday: date, tz: str, show_names: bool = False,
             quote_evidence: bool = False, now: datetime | None = None,
             policy: Policy | None = None) -> Digest:
    """Pure: the grouped rows of a two-week window into a Digest of its second week.

    `now` is when the digest is made: open escalations' ages run to the week's end or to
    `now`, whichever is earlier (default: the week's end).
    """
    bounds = week_bounds(monday, tz=tz)
    end = bounds[-1]
    as_of = end if now is None else min(end, now)
    this_days = [monday + timedelta(days=d) for d in range(7)]
    day_stats: dict[int, Counter[str]] = defaultdict(Counter)
    titles = {c.id: c.title for c in policy.clauses.values()} if policy else {}
    persons = {p.id: f"{p.name} ({_label(str(p.role), ROLE_LABELS)})"
               for p in policy.protected.persons} if policy else {}

    msgs: list[Counter[str]] = [Counter(), Counter()]
    by_channel: list[Counter[str]] = [Counter(), Counter()]
    by_platform: list[Counter[str]] = [Counter(), Counter()]
    names: dict[tuple[str, str], str] = {}
    for day, channel, platform, name, n in rows.messages:
        wk = 1 if day >= 7 else 0
        msgs[wk]["messages"] += n
        if name:
            names[(channel, platform)] = name
        by_platform[wk][platform] += n
        day_stats[day]["messages"] += n
    channel_labels: dict[str, str] = {}
    for day, channel, platform, _name, n in rows.messages:
        key = _channel(channel, platform, names)
        channel_labels[key] = _channel(channel, platform, names, human=True)
        by_channel[1 if day >= 7 else 0][key] += n

    actions: list[Counter[str]] = [Counter(), Counter()]
    categories: list[Counter[str]] = [Counter(), Counter()]
    ch_acted: list[Counter[str]] = [Counter(), Counter()]
    pf_acted: list[Counter[str]] = [Counter(), Counter()]
    by_clause: list[Counter[tuple[str, str]]] = [Counter(), Counter()]
    shadow: list[Counter[str]] = [Counter(), Counter()]
    shadow_clause: list[Counter[tuple[str, str]]] = [Counter(), Counter()]
    for day, channel, platform, action, cats, clause, mode, n in rows.acted:
        wk = 1 if day >= 7 else 0
        if mode == "shadow":
            # Recorded only: the member was not warned, hidden or escalated.
            shadow[wk][action] += n
            shadow_clause[wk][(clause or "", action)] += n
            continue
        actions[wk][action] += n
        day_stats[day][action] += n
        key = _channel(channel, platform, names)
        channel_labels.setdefault(key, _channel(channel, platform, names, human=True))
        ch_acted[wk][key] += n
        pf_acted[wk][platform] += n
        by_clause[wk][(clause or "", action)] += n
        for category in json.loads(cats or "[]"):
            categories[wk][category] += n
    # Every stored message has one verdict: those not acted on were allowed (shadow-mode
    # verdicts included: nothing was done about them either).
    for wk in (0, 1):
        actions[wk]["allow"] = msgs[wk]["messages"] - sum(actions[wk].values())
    for stats in day_stats.values():
        stats["allow"] = stats["messages"] - sum(stats[a] for a in ACTED)

    people = {r[0]: r for r in rows.members}

    def label(member_id: str) -> str:
        row = people.get(member_id)
        if not show_names or row is None:
            return member_id
        return f"{row[1]} ({row[2]})" if row[2] else str(row[1])

    acted_by: list[Counter[str]] = [Counter(), Counter()]
    sanctioned: dict[str, Counter[str]] = defaultdict(Counter)
    for wk, member_id, action, is_sanctioned, n in rows.acted_members:
        acted_by[wk][member_id] += n
        if is_sanctioned:
            sanctioned[member_id]["attempted" if wk else "last"] += n
            if wk:
                sanctioned[member_id][action] += n
    # A dismissed case or a pardoned strike is not an offence: repeat offenders are net of them.
    for wk, member_id, n in rows.cleared:
        acted_by[wk][member_id] -= n
    points = {r[0]: (float(r[1]), float(r[2]), float(r[3])) for r in rows.points}
    repeats = []
    for member_id, n in acted_by[1].items():
        if n < 2:
            continue
        before = acted_by[0].get(member_id, 0)
        trend = "new" if before == 0 else "up" if n > before else "down" if n < before else "same"
        last_pts, this_pts, total = points.get(member_id, (0.0, 0.0, 0.0))
        repeats.append(Repeat(label(member_id), n, before, this_pts, last_pts, round(total, 2),
                              trend))
    repeats.sort(key=lambda r: (-r.acted, -r.points, r.member))

    activity = []
    for member_id, c in sanctioned.items():
        if not c["attempted"]:
            continue
        row = people.get(member_id)
        activity.append(SanctionedActivity(label(member_id), str(row[3]) if row else "unknown",
                                           c["attempted"], c["hide"], c["escalate"], c["last"]))
    activity.sort(key=lambda a: (-a.attempted, a.member))

    protected: list[Counter[str]] = [Counter(), Counter()]
    for wk, rule, n in rows.protected:
        protected[wk][rule.removeprefix("protected:")] += n

    evidence: dict[int, list[str]] = defaultdict(list)
    for case_id, text in rows.evidence:
        evidence[case_id].append(text)
    escalations = tuple(
        OpenEscalation(
            case_id, priority, state, opened_at,
            round(max(0.0, (as_of - datetime.fromisoformat(opened_at)).total_seconds()) / 3600,
                  2),
            tuple(evidence.get(case_id, ())) if quote_evidence else ())
        for case_id, _kind, priority, opened_at, state in rows.open_cases)

    resolved: list[list[tuple[str, str]]] = [[], []]
    for wk, opened, closed in rows.resolved:
        resolved[wk].append((opened, closed))
    appeals = [Counter[str](), Counter[str]()]
    for wk, outcome in rows.appeals:
        appeals[wk][_appeal_key(outcome)] += 1

    reviews: list[dict[str, Counter[str]]] = [defaultdict(Counter), defaultdict(Counter)]
    for wk, category, outcome, n in rows.calibration:
        reviews[wk][category][outcome] += n
    calibration = []
    for category in sorted(set(reviews[1]) | set(reviews[0])):
        now_c, then_c = reviews[1].get(category, Counter()), reviews[0].get(category, Counter())
        seen, seen_before = sum(now_c.values()), sum(then_c.values())
        calibration.append(Calibration(
            category, seen, now_c["dismissed"],
            round(now_c["dismissed"] / seen, 4) if seen else 0.0, seen_before,
            round(then_c["dismissed"] / seen_before, 4) if seen_before else None))

    spam: list[Counter[str]] = [Counter(), Counter()]
    for wk, rule, n in rows.spam:
        spam[wk][rule.removeprefix("spam:")] += n
    spam_messages = [0, 0]
    for wk, n in rows.spam_messages:
        spam_messages[wk] += n
    raids_started = [0, 0]
    raids = []
    for wk, raid_id, platform, channel, name, started, ended, accounts, response in rows.raids:
        raids_started[wk] += 1
        if wk:
            named = {(channel, platform): name} if name else names
            raids.append(Raid(raid_id, platform, _channel(channel, platform, named, human=True),
                              started, ended, int(accounts or 0), response))
    spam_clause = ""
    if policy is not None and policy.spam is not None:
        spam_clause = f"{policy.spam.clause} {titles.get(policy.spam.clause, '')}".strip()

    def channel_label(key: str) -> str:
        return channel_labels.get(key, key)

    def day_of(i: int, when: date) -> Day:
        c = day_stats.get(i, Counter())
        return Day(when.isoformat(), c["messages"], c["allow"], c["warn"], c["hide"],
                   c["escalate"])

    return Digest(
        week=_week_name(monday), tz=tz, start=monday.isoformat(),
        end=(monday + timedelta(days=6)).isoformat(), show_names=show_names,
        quote_evidence=quote_evidence,
        messages=Figure("messages", msgs[1]["messages"], msgs[0]["messages"], "Messages seen"),
        actions=tuple(Figure(a, actions[1][a], actions[0][a], ACTION_LABELS[a])
                      for a in ACTIONS),
        categories=_figures(categories[1], categories[0],
                            label=lambda k: _label(k, CATEGORY_LABELS)),
        channel_messages=_figures(by_channel[1], by_channel[0], label=channel_label),
        channel_actions=_figures(ch_acted[1], ch_acted[0], label=channel_label),
        platform_messages=_figures(by_platform[1], by_platform[0],
                                   label=lambda k: _label(k, PLATFORM_LABELS)),
        platform_actions=_figures(pf_acted[1], pf_acted[0],
                                  label=lambda k: _label(k, PLATFORM_LABELS)),
        days=tuple(day_of(7 + i, d) for i, d in enumerate(this_days)),
        days_last_week=tuple(day_of(i, d - timedelta(days=7)) for i, d in enumerate(this_days)),
        repeat_offenders=tuple(repeats),
        sanctioned=tuple(activity),
        protected=_figures(protected[1], protected[0],
                           label=lambda k: persons.get(k, k)),
        open_escalations=escalations,
        resolved=Figure("resolved", len(resolved[1]), len(resolved[0]), "Cases resolved"),
        median_resolution_hours=median_hours(resolved[1]),
        median_resolution_hours_last_week=median_hours(resolved[0]),
        appeals=Figure("appeals", sum(appeals[1].values()), sum(appeals[0].values()),
                       "Appeals made"),
        appeal_outcomes=_figures(appeals[1], appeals[0],
                                 label=lambda k: _label(k, APPEAL_LABELS)),
        calibration=tuple(calibration),
        clauses=_clauses(by_clause, titles, every=titles),
        shadow=tuple(Figure(a, shadow[1][a], shadow[0][a], SHADOW_LABELS[a]) for a in ACTED),
        shadow_clauses=_clauses(shadow_clause, titles),
        as_of=as_of.astimezone(UTC).isoformat(),
        in_progress=as_of < end,
        policy_version=policy.version if policy else "",
        spam=_figures(spam[1], spam[0], label=lambda k: _label(k, SPAM_LABELS)),
        spam_messages=Figure("spam_messages", spam_messages[1], spam_messages[0],
                             "Messages acted on as spam"),
        raids_started=Figure("raids", raids_started[1], raids_started[0], "Raids started"),
        raids=tuple(raids),
        spam_clause=spam_clause,
    )


def _channel(channel: str, platform: str, names: dict[tuple[str, str], str], *,
             human: bool = False) -> str:
    name = names.get((channel, platform))
    shown = f"#{name}" if name else channel
    where = _label(platform, PLATFORM_LABELS) if human else platform
    return f"{shown[:80]} ({where})"


# -- rendering ----------------------------------------------------------------------------------

def _n(value: float | None) -> str:
    if value is None:
        return "–"
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def _delta(figure: Figure) -> str:
    change = figure.change
    return "±0" if change == 0 else f"+{_n(change)}" if change > 0 else _n(change)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def format_hours(hours: float | None, /) -> str:
    """A span of hours as a person says it: '10 minutes', '5 hours 20 minutes', '6 days 4 hours'."""
    if hours is None:
        return "–"
    minutes = max(0, round(hours * 60))
    if minutes < 60:
        return _plural(minutes, "minute")
    if minutes < 48 * 60:
        h, m = divmod(minutes, 60)
        return _plural(h, "hour") + (f" {_plural(m, 'minute')}" if m else "")
    d, h = divmod(round(minutes / 60), 24)
    return _plural(d, "day") + (f" {_plural(h, 'hour')}" if h else "")


def _points(value: float) -> str:
    return f"{_n(value)} point" + ("" if value == 1 else "s")


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _day(iso_date: str) -> str:
    """'Mon 16 Nov' for 2026-11-16."""
    when = date.fromisoformat(iso_date)
    return f"{when:%a} {when.day} {when:%b}"


def _moment(stamp: str, tz: str) -> str:
    """'Wed 2 Dec 2026 15:14' in the digest's time zone."""
    when = datetime.fromisoformat(stamp).astimezone(ZoneInfo(tz))
    return f"{when:%a} {when.day} {when:%b %Y %H:%M}"


def _span(d: Digest) -> str:
    """'16 to 22 November 2026', '30 November to 6 December 2026' or across a new year."""
    first, last = date.fromisoformat(d.start), date.fromisoformat(d.end)
    if first.year != last.year:
        return f"{first.day} {first:%B %Y} to {last.day} {last:%B %Y}"
    if first.month != last.month:
        return f"{first.day} {first:%B} to {last.day} {last:%B %Y}"
    return f"{first.day} to {last.day} {last:%B %Y}"


def _title(d: Digest) -> str:
    return f"Weekly moderation digest {d.week}: {_span(d)} ({d.tz})"


def _rows(d: Digest) -> list[tuple[str, str, float | None, float | None]]:
    """Every figure as (section, key, this week, last week)."""
    out: list[tuple[str, str, float | None, float | None]] = []
    out.append(("messages", "total", d.messages.this_week, d.messages.last_week))
    sections: list[tuple[str, tuple[Figure, ...]]] = [
        ("actions", d.actions), ("categories", d.categories),
        ("channel_messages", d.channel_messages), ("channel_actions", d.channel_actions),
        ("platform_messages", d.platform_messages), ("platform_actions", d.platform_actions),
        ("protected_targeted", d.protected), ("appeal_outcomes", d.appeal_outcomes),
        ("shadow_actions", d.shadow)]
    for name, figures in sections:
        out += [(name, f.key, f.this_week, f.last_week) for f in figures]
    for section, counts in (("clause", d.clauses), ("shadow_clause", d.shadow_clauses)):
        for count in counts:
            out.append((section, count.clause, count.total, count.last_week))
            out += [(f"{section}_{a}", count.clause, getattr(count, a), None) for a in ACTED]
    for this, last in zip(d.days, d.days_last_week, strict=True):
        for action in ("messages", *ACTIONS):
            out.append((f"daily_{action}", this.date, getattr(this, action),
                        getattr(last, action)))
    for r in d.repeat_offenders:
        out.append(("repeat_offender_acted", r.member, r.acted, r.acted_last_week))
        out.append(("repeat_offender_points", r.member, r.points, r.points_last_week))
    for s in d.sanctioned:
        out.append(("sanctioned_attempted", s.member, s.attempted, s.attempted_last_week))
        out.append(("sanctioned_hidden", s.member, s.hidden, None))
        out.append(("sanctioned_escalated", s.member, s.escalated, None))
    for e in d.open_escalations:
        out.append(("open_escalation_age_hours", f"case {e.case}", e.age_hours, None))
    if d.has_spam:
        out.append(("spam_messages", "total", d.spam_messages.this_week,
                    d.spam_messages.last_week))
        out += [("spam", f.key, f.this_week, f.last_week) for f in d.spam]
        out.append(("raids", "started", d.raids_started.this_week, d.raids_started.last_week))
        out += [("raid_new_accounts", f"raid {r.raid}", r.accounts, None) for r in d.raids]
    out.append(("cases", "resolved", d.resolved.this_week, d.resolved.last_week))
    out.append(("cases", "median_resolution_hours", d.median_resolution_hours,
                d.median_resolution_hours_last_week))
    out.append(("appeals", "total", d.appeals.this_week, d.appeals.last_week))
    for c in d.calibration:
        out.append(("calibration_reviewed", c.category, c.reviewed, c.reviewed_last_week))
        out.append(("calibration_share_dismissed", c.category, c.share_dismissed,
                    c.share_dismissed_last_week))
    return out


def to_json(d: Digest, /) -> str:
    """The digest as a JSON document (machine keys; `label` fields say them for people)."""
    return json.dumps(asdict(d), ensure_ascii=False, indent=2)


def to_csv(d: Digest, /) -> str:
    """One row per figure: section, key, this week, last week, change."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "key", "this_week", "last_week", "change"])
    for section, key, this, last in _rows(d):
        change = "" if this is None or last is None else _n(this - last)
        writer.writerow([section, key, "" if this is None else _n(this),
                         "" if last is None else _n(last), change])
    return buffer.getvalue()


# -- the shared document: titled sections of paragraphs, tables and charts ----------------------

@dataclass(frozen=True, slots=True)
class _Table:
    """A table; columns after the first are numbers (right-aligned) unless `text` names them."""

    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: str = "None this week."
    text: frozenset[int] = frozenset({0})


@dataclass(frozen=True, slots=True)
class _Chart:
    """A chart drawn only in HTML (see `_charts`)."""

    name: str


@dataclass(frozen=True, slots=True)
class _List:
    """A bulleted list (quoted evidence)."""

    items: tuple[str, ...]


_Block = str | _Table | _Chart | _List


@dataclass(frozen=True, slots=True)
class _Section:
    """One section of the digest in every format; `chat` is its lines for Discord and Slack
    (empty: not posted there)."""

    title: str
    blocks: tuple[_Block, ...]
    chat: tuple[str, ...] = ()


def _figure_rows(figures: Iterable[Figure]) -> tuple[tuple[str, ...], ...]:
    return tuple((f.name, _n(f.this_week), _n(f.last_week), _delta(f)) for f in figures)


def _figure_lines(figures: Iterable[Figure]) -> tuple[str, ...]:
    return tuple(f"{f.name}: {_n(f.this_week)} ({_delta(f)})" for f in figures)


def _merged(messages: Sequence[Figure], acted: Sequence[Figure]
            ) -> list[tuple[str, Figure, Figure]]:
    """(label, messages, acted on) per key, busiest first."""
    by_key = {f.key: f for f in acted}
    out = [(f.name, f, by_key.pop(f.key, Figure(f.key, 0, 0))) for f in messages]
    out += [(f.name, Figure(f.key, 0, 0), f) for f in by_key.values()]
    return out


def _clause_rows(counts: Iterable[ClauseCount], *, last: bool = True
                 ) -> tuple[tuple[str, ...], ...]:
    rows = []
    for c in counts:
        row = [c.label, str(c.warn), str(c.hide), str(c.escalate), str(c.total)]
        if last:
            row += [str(c.last_week), _delta(Figure(c.clause, c.total, c.last_week))]
        rows.append(tuple(row))
    return tuple(rows)


def _document(d: Digest) -> tuple[list[str], list[_Section]]:
    """The digest as an introduction and titled sections with human labels."""
    members = "by display name and membership number" if d.show_names else \
        "by internal id (names only when asked for)"
    intro = [f"Members are shown {members}. Message text is "
             + ("quoted for open escalations." if d.quote_evidence else "not shown.")]
    if d.in_progress and d.as_of:
        intro.insert(0, f"This week is not over: its figures run to "
                        f"{_moment(d.as_of, d.tz)}, against the whole of last week.")
    seen = d.messages
    out: list[_Section] = []

    summary: list[_Block] = [
        _Table(("Figure", "This week", "Last week", "Change"),
               _figure_rows([seen, *d.actions])), _Chart("trend")]
    if d.has_shadow:
        summary.insert(1, f"In shadow mode a further {_n(sum(f.this_week for f in d.shadow))} "
                          "messages would have been acted on; nothing was done about them "
                          "(see “Shadow mode: would have acted”).")
    out.append(_Section("Summary", tuple(summary), (
        f"Messages seen: {_n(seen.this_week)} ({_delta(seen)} on last week)",
        *_figure_lines(d.actions))))

    cited = "by the clause of the code of conduct each verdict cited"
    source = f" (clause titles from policy {d.policy_version})" if d.policy_version else ""
    out.append(_Section("By clause of the code of conduct", (
        f"Messages warned, hidden or escalated, {cited}{source}.",
        _Table(("Clause", "Warned", "Hidden", "Escalated", "Total", "Last week", "Change"),
               _clause_rows(d.clauses)),
        _Chart("clauses")), tuple(
        f"{c.label}: {c.total} ({c.warn} warned, {c.hide} hidden, {c.escalate} escalated; "
        f"{_delta(Figure(c.clause, c.total, c.last_week))})" for c in d.clauses
        if c.total or c.last_week) or ("none",)))

    if d.has_shadow:
        out.append(_Section("Shadow mode: would have acted", (
            "Verdicts recorded in shadow mode only: nothing was done to these members, no "
            "notice and no strike, and they are counted in no other section (their messages "
            "count as allowed).",
            _Table(("Action", "This week", "Last week", "Change"), _figure_rows(d.shadow)),
            _Table(("Clause", "Would have warned", "Would have hidden",
                    "Would have escalated", "Total"),
                   _clause_rows([c for c in d.shadow_clauses if c.total], last=False))),
            (*_figure_lines(d.shadow),
             *(f"{c.label}: {c.total}" for c in d.shadow_clauses if c.total))))

    out.append(_Section("Categories acted on", (
        "What the verdicts found; a message can be in more than one category.",
        _Table(("Category", "This week", "Last week", "Change"), _figure_rows(d.categories)),
        _Chart("categories")), _figure_lines(d.categories) or ("none",)))

    for title, head, merged in (
            ("Channels", "Channel", _merged(d.channel_messages, d.channel_actions)),
            ("Platforms", "Platform", _merged(d.platform_messages, d.platform_actions))):
        out.append(_Section(title, (_Table(
            (head, "Messages", "Messages last week", "Acted on", "Acted on last week"),
            tuple((name, _n(m.this_week), _n(m.last_week), _n(a.this_week), _n(a.last_week))
                  for name, m, a in merged)),), tuple(
            f"{name}: {_n(m.this_week)} messages ({_delta(m)}), {_n(a.this_week)} acted on "
            f"({_delta(a)})" for name, m, a in merged) or ("none",)))

    out.append(_Section("Per day", (
        _Table(("Day", "Messages", "Allowed", "Warned", "Hidden", "Escalated"),
               tuple((_day(x.date), str(x.messages), str(x.allow), str(x.warn), str(x.hide),
                      str(x.escalate)) for x in d.days)), _Chart("days")),
        tuple(f"{_day(x.date)}: {x.messages} messages, {x.warn} warned, {x.hide} hidden, "
              f"{x.escalate} escalated" for x in d.days)))

    out.append(_Section("Repeat offenders", (
        "Members with two or more messages acted on this week, not counting any whose case "
        "was dismissed or whose strike was pardoned. Points are strike points still standing; "
        "an escalation's points count once a moderator upholds it.",
        _Table(("Member", "Acted on", "Last week", "Trend", "Points this week",
                "Points last week", "Points in all"),
               tuple((r.member, str(r.acted), str(r.acted_last_week),
                      _label(r.trend, TREND_LABELS), _n(r.points), _n(r.points_last_week),
                      _n(r.points_total)) for r in d.repeat_offenders),
               text=frozenset({0, 3}))),
        tuple(f"{r.member}: {r.acted} acted on (last week {r.acted_last_week}, "
              f"{_label(r.trend, TREND_LABELS)}), {_points(r.points)} this week, "
              f"{_n(r.points_total)} in all" for r in d.repeat_offenders) or ("none",)))

    out.append(_Section("Suspended and expelled members posting", (
        _Table(("Member", "Status", "Posts", "Hidden", "Escalated", "Posts last week"),
               tuple((s.member, s.status, str(s.attempted), str(s.hidden), str(s.escalated),
                      str(s.attempted_last_week)) for s in d.sanctioned),
               text=frozenset({0, 1})),),
        tuple(f"{s.member} ({s.status}): {s.attempted} posts, {s.hidden} hidden, "
              f"{s.escalated} escalated" for s in d.sanctioned) or ("none",)))

    out.append(_Section("Protected persons targeted", (
        "Escalated messages that named an MP, councillor or member of staff with abuse aimed "
        "at them.",
        _Table(("Person", "This week", "Last week", "Change"), _figure_rows(d.protected))),
        _figure_lines(d.protected) or ("none",)))

    if d.has_spam:
        out.append(_spam_section(d))

    if d.in_progress and d.as_of:
        at = f"{_moment(d.as_of, d.tz)}, when this digest was made"
    else:
        at = "the end of the week" + (f" ({_moment(d.as_of, d.tz)})" if d.as_of else "")
    out.append(_Section("Open escalations", (
        f"Escalations still open at {at}, highest priority first; each has been open for the "
        "time shown up to then.",
        _Table(("Case", "Priority", "State", "Opened", "Open for"),
               tuple((str(e.case), str(e.priority), e.state, _moment(e.opened_at, d.tz),
                      format_hours(e.age_hours)) for e in d.open_escalations),
               empty="None.", text=frozenset({2, 3, 4}))),
        tuple(f"case {e.case} (priority {e.priority}, {e.state}): open for "
              f"{format_hours(e.age_hours)}" for e in d.open_escalations) or ("none",)))

    median = (d.median_resolution_hours, d.median_resolution_hours_last_week)
    out.append(_Section("Cases and appeals", (
        _Table(("Figure", "This week", "Last week", "Change"), (
            *_figure_rows([d.resolved]),
            ("Median time to resolve a case", format_hours(median[0]),
             format_hours(median[1]), ""),
            *_figure_rows([d.appeals, *d.appeal_outcomes]))),), (
        f"Resolved: {_n(d.resolved.this_week)} ({_delta(d.resolved)}), median time "
        f"{format_hours(median[0])} (last week {format_hours(median[1])})",
        f"Appeals: {_n(d.appeals.this_week)} ({_delta(d.appeals)})",
        *(f"{f.name}: {_n(f.this_week)}" for f in d.appeal_outcomes))))

    out.append(_Section("Calibration (automatic verdicts reviewed)", (
        "Of the automatic verdicts a moderator reviewed, the share dismissed, per category: a "
        "high share means the bot acts too readily there.",
        _Table(("Category", "Reviewed", "Dismissed", "Share dismissed", "Reviewed last week",
                "Share dismissed last week"),
               tuple((_label(c.category, CATEGORY_LABELS), str(c.reviewed), str(c.dismissed),
                      _share(c.share_dismissed), str(c.reviewed_last_week),
                      _share(c.share_dismissed_last_week)) for c in d.calibration),
               empty="No reviews this week.")),
        tuple(f"{_label(c.category, CATEGORY_LABELS)}: {c.dismissed} of {c.reviewed} "
              f"dismissed ({c.share_dismissed:.0%})" for c in d.calibration)
        or ("no reviews",)))

    if d.quote_evidence:
        quoted = tuple(f"Case {e.case}: " + " | ".join(e.evidence)
                       for e in d.open_escalations if e.evidence)
        if quoted:
            out.append(_Section("Evidence (quoted)", (_List(quoted),), quoted))

    out.append(_Section("About these figures", (
        "Messages and verdicts count in the week the message was sent (a replayed week stays "
        "in its week); cases, appeals and reviews in the week they happened. Allowed means "
        "nothing was done: the messages not warned, hidden or escalated. Dismissals and "
        "pardons are taken into account whenever they were made, so a digest made again "
        "later can show fewer repeat offenders.",)))
    return intro, out


def _raid_response(response: str) -> str:
    """'alert only', or the alert and what else a raid's response did."""
    done = [RAID_RESPONSE_LABELS.get(part, part) for part in response.split(",")
            if part and part != "alert"]
    return "alert, " + " and ".join(done) if done else "alert only"


def _spam_section(d: Digest) -> _Section:
    """Floods, spam and raids: what the checks found, this week and last, and the raids."""
    clause = f" (clause {d.spam_clause})" if d.spam_clause else ""
    raids = d.raids_started

    def ended(r: Raid) -> str:
        return _moment(r.ended_at, d.tz) if r.ended_at else "not ended"

    return _Section("Floods, spam and raids", (
        f"Messages warned, hidden or escalated by the flood, spam and raid checks{clause}, "
        "by what the checks found; a message can count under more than one.",
        _Table(("Found", "This week", "Last week", "Change"),
               _figure_rows([d.spam_messages, *d.spam])),
        f"Raids (more new accounts posting in one channel within minutes than the policy "
        f"allows; the moderators are alerted once for each): {_n(raids.this_week)} started "
        f"this week, {_n(raids.last_week)} last week.",
        _Table(("Raid", "Channel", "Started", "New accounts", "Response", "Ended"),
               tuple((str(r.raid), r.channel, _moment(r.started_at, d.tz), str(r.accounts),
                      _raid_response(r.response), ended(r)) for r in d.raids),
               empty="No raid this week.", text=frozenset({1, 2, 4, 5}))),
        (f"{d.spam_messages.name}: {_n(d.spam_messages.this_week)} "
         f"({_delta(d.spam_messages)})", *_figure_lines(d.spam),
         f"{raids.name}: {_n(raids.this_week)} ({_delta(raids)})",
         *(f"Raid {r.raid} in {r.channel}, {_moment(r.started_at, d.tz)}: {r.accounts} new "
           f"accounts; {_raid_response(r.response)}; ended: {ended(r)}" for r in d.raids)))


def _sections(d: Digest) -> list[tuple[str, list[str]]]:
    """The digest as titled sections of short text lines (for chat platforms)."""
    return [(s.title, list(s.chat)) for s in _document(d)[1] if s.chat]


def _chunks(lines: Sequence[str], limit: int) -> list[str]:
    """Join lines into texts of at most `limit` characters; a longer line is split."""
    out: list[str] = []
    current = ""
    for line in lines:
        while len(line) > limit:
            if current:
                out.append(current)
                current = ""
            out.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            out.append(current)
            current = line
        else:
            current = candidate
    if current:
        out.append(current)
    return out


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def to_markdown(d: Digest, /) -> str:
    """The digest as Markdown: the same sections as the HTML, without the charts."""
    intro, sections = _document(d)
    out = [f"# {_title(d)}", ""]
    for line in intro:
        out += [line, ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, str):
                out += [block, ""]
            elif isinstance(block, _List):
                out += [*(f"- {_md_cell(item)}" for item in block.items), ""]
            elif isinstance(block, _Table):
                if not block.rows:
                    out += [block.empty, ""]
                    continue
                align = ["---" if i in block.text else "---:" for i in range(len(block.head))]
                out += ["| " + " | ".join(_md_cell(h) for h in block.head) + " |",
                        "|" + "|".join(align) + "|",
                        *("| " + " | ".join(_md_cell(c) for c in row) + " |"
                          for row in block.rows), ""]
    return "\n".join(out).rstrip("\n") + "\n"


# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)
_D_TITLE, _D_DESC, _D_FIELDS, _D_NAME, _D_VALUE, _D_TOTAL, _D_EMBEDS = (
    256, 4096, 25, 256, 1024, 6000, 10)


def to_discord_embeds(d: Digest, /) -> list[list[dict[str, Any]]]:
    """Discord messages (each a list of embeds) within Discord's limits; long digests split."""
    fields_: list[tuple[str, str]] = []
    for title, lines in _sections(d):
        for i, chunk in enumerate(_chunks(lines, _D_VALUE)):
            name = title if i == 0 else f"{title} (continued)"
            fields_.append((name[:_D_NAME], chunk))
    title = _title(d)[:_D_TITLE]
    messages: list[list[dict[str, Any]]] = []
    embeds: list[dict[str, Any]] = []
    size = 0

    def new_embed(heading: str) -> dict[str, Any]:
        nonlocal size, embeds
        if len(embeds) >= _D_EMBEDS or size + len(heading) > _D_TOTAL:
            messages.append(embeds)
            embeds, size = [], 0
        embed: dict[str, Any] = {"title": heading, "color": 0x5865F2, "fields": []}
        embeds.append(embed)
        size += len(heading)
        return embed

    embed = new_embed(title)
    for name, value in fields_:
        cost = len(name) + len(value)
        if len(embed["fields"]) >= _D_FIELDS or size + cost > _D_TOTAL:
            heading = f"{title} (continued)"[:_D_TITLE]
            if size + cost + len(heading) > _D_TOTAL:
                messages.append(embeds)
                embeds, size = [], 0
            embed = new_embed(heading)
        embed["fields"].append({"name": name, "value": value, "inline": False})
        size += cost
    messages.append(embeds)
    return messages


_S_BLOCKS, _S_TEXT, _S_HEADER = 50, 3000, 150


def to_slack_blocks(d: Digest, /) -> list[list[dict[str, Any]]]:
    """Slack messages (each a list of Block Kit blocks) within Slack's limits; split if long."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _title(d)[:_S_HEADER]}}]
    for title, lines in _sections(d):
        escaped = [_slack_escape(line) for line in lines]
        for i, chunk in enumerate(_chunks([f"*{_slack_escape(title)}*", *escaped], _S_TEXT)):
            del i
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
    return [blocks[i:i + _S_BLOCKS] for i in range(0, len(blocks), _S_BLOCKS)]


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


#: Okabe-Ito colours: told apart with the common colour-vision deficiencies, and in print.
_COLOURS = {"warn": "#E69F00", "hide": "#0072B2", "escalate": "#D55E00",
            "this": "#0072B2", "last": "#A0A0A0", "messages": "#0072B2", "acted": "#D55E00"}


def _charts(d: Digest) -> dict[str, tuple[str, str]]:
    """name -> (caption, base64 PNG) of each chart `_plots` draws."""
    from matplotlib import pyplot as plt

    charts: dict[str, tuple[str, str]] = {}
    for name, caption, fig in _plots(d):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        charts[name] = (caption, base64.b64encode(buffer.getvalue()).decode("ascii"))
    return charts


def _plots(d: Digest) -> list[tuple[str, str, Any]]:
    """(name, caption, matplotlib figure): the two-week trend, actions per day, clauses and
    categories.

    Counts are drawn on a linear axis from zero with integer ticks and axis titles; a chart
    with nothing to show is left out (its table already says "none")."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    plots: list[tuple[str, str, Any]] = []

    def save(name: str, fig: Any, ax: Any, caption: str, *, horizontal: bool = False) -> None:
        counts = ax.xaxis if horizontal else ax.yaxis
        counts.set_major_locator(MaxNLocator(integer=True))
        top = (ax.get_xlim() if horizontal else ax.get_ylim())[1]
        (ax.set_xlim if horizontal else ax.set_ylim)(0, max(top, 1))
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x" if horizontal else "y", color="#e5e5e5", linewidth=0.8)
        ax.set_axisbelow(True)
        plots.append((name, caption, fig))

    both = [*d.days_last_week, *d.days]
    if any(b.messages for b in both):
        fig, ax = plt.subplots(figsize=(8, 3.2))
        x = list(range(len(both)))
        ax.axvspan(-0.5, 6.5, color="#f0f0f0", zorder=0, label="Last week")
        ax.plot(x, [b.messages for b in both], marker="o", color=_COLOURS["messages"],
                label="Messages seen")
        ax.plot(x, [b.warn + b.hide + b.escalate for b in both], marker="o",
                color=_COLOURS["acted"], label="Acted on")
        ax.set_xlim(-0.5, len(both) - 0.5)
        ax.set_xticks(x, [_day(b.date) for b in both], rotation=45, ha="right")
        ax.set_xlabel("Day")
        ax.set_ylabel("Messages")
        ax.set_title("Messages seen and acted on, last week and this week")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        save("trend", fig, ax, "Messages seen and acted on (warned, hidden or escalated) "
                               "each day over the two weeks; last week is shaded.")

    if any(x.warn + x.hide + x.escalate for x in d.days):
        fig, ax = plt.subplots(figsize=(8, 3.2))
        days = [_day(x.date).replace(" ", "\n", 1) for x in d.days]  # 'Mon' over '16 Nov'
        bottom = [0] * len(d.days)
        for action in ACTED:
            values = [getattr(x, action) for x in d.days]
            ax.bar(days, values, bottom=bottom, label=ACTION_LABELS[action],
                   color=_COLOURS[action])
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_xlabel("Day")
        ax.set_ylabel("Messages acted on")
        ax.set_title("Actions per day")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        save("days", fig, ax, "Messages warned, hidden and escalated each day this week.")

    def bars(name: str, labels: list[str], this: list[float], last: list[float], *,
             title: str, axis: str, caption: str) -> None:
        fig, ax = plt.subplots(figsize=(8, max(2.2, 0.42 * len(labels) + 1.2)))
        at = list(range(len(labels)))[::-1]
        ax.barh([i + 0.2 for i in at], this, height=0.4, label="This week",
                color=_COLOURS["this"])
        ax.barh([i - 0.2 for i in at], last, height=0.4, label="Last week",
                color=_COLOURS["last"])
        ax.set_yticks(at, [textwrap.fill(label, 34) for label in labels])
        ax.set_xlabel("Messages acted on")
        ax.set_ylabel(axis)
        ax.set_title(title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        save(name, fig, ax, caption, horizontal=True)

    shown = [c for c in d.clauses if c.total or c.last_week]
    if shown:
        bars("clauses", [c.label for c in shown], [c.total for c in shown],
             [c.last_week for c in shown], title="Messages acted on by clause", axis="Clause",
             caption="Messages warned, hidden or escalated under each clause of the code of "
                     "conduct, this week and last.")
    cats = d.categories[:15]
    if cats:
        bars("categories", [c.name for c in cats], [c.this_week for c in cats],
             [c.last_week for c in cats], title="Categories acted on", axis="Category",
             caption="Categories of the messages acted on, this week and last"
                     + (" (the 15 largest)." if len(d.categories) > 15 else "."))
    return plots


_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:#1b1b1b;max-width:62em;margin:1.5em auto;padding:0 1.2em}
h1{font-size:1.55em;line-height:1.25;margin:0 0 .4em}
h2{font-size:1.2em;margin:2em 0 .5em;padding-bottom:.2em;border-bottom:2px solid #d8dce3}
p{margin:.4em 0 .8em;max-width:48em}
.banner{background:#fff6dc;border-left:4px solid #d99a00;padding:.5em .9em}
nav{background:#f5f7fa;padding:.5em 1em;border-radius:4px}
nav ol{columns:2;margin:.3em 0;padding-left:1.4em}
table{border-collapse:collapse;margin:.4em 0 1em;font-variant-numeric:tabular-nums}
th,td{padding:4px 12px;border-bottom:1px solid #e4e7ec;vertical-align:top;text-align:left}
th{background:#eef1f5;font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right}
tbody tr:nth-child(even){background:#fafbfc}
figure{margin:.6em 0 1.4em}
figure img{max-width:100%;height:auto}
figcaption{color:#555;font-size:.9em}
footer{margin-top:2em;color:#666;font-size:.9em}
@media print{nav{display:none}h2{break-after:avoid}figure,tr{break-inside:avoid}}
"""


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.casefold()).strip("-")


def to_html(d: Digest, /) -> str:
    """A self-contained HTML page: the Markdown's sections as tables, with PNG charts."""
    esc = html.escape
    intro, sections = _document(d)
    charts = _charts(d)
    parts = ["<!DOCTYPE html>", '<html lang="en-GB"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{esc(_title(d))}</title>", f"<style>{_CSS.strip()}</style>",
             "</head><body>", f"<h1>{esc(_title(d))}</h1>"]
    for i, line in enumerate(intro):
        banner = ' class="banner"' if i == 0 and d.in_progress else ""
        parts.append(f"<p{banner}>{esc(line)}</p>")
    parts.append('<nav aria-label="Contents"><ol>')
    parts += [f'<li><a href="#{_slug(s.title)}">{esc(s.title)}</a></li>' for s in sections]
    parts.append("</ol></nav>")
    for section in sections:
        parts.append(f'<section id="{_slug(section.title)}"><h2>{esc(section.title)}</h2>')
        for block in section.blocks:
            if isinstance(block, str):
                parts.append(f"<p>{esc(block)}</p>")
            elif isinstance(block, _List):
                parts.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in block.items)
                             + "</ul>")
            elif isinstance(block, _Chart):
                if block.name not in charts:
                    continue
                caption, png = charts[block.name]
                parts.append(f'<figure><img src="data:image/png;base64,{png}" '
                             f'alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption>'
                             "</figure>")
            elif not block.rows:
                parts.append(f"<p>{esc(block.empty)}</p>")
            else:
                def cell(tag: str, i: int, text: str, table: _Table = block) -> str:
                    kind = "" if i in table.text else ' class="n"'
                    return f"<{tag}{kind}>{esc(text)}</{tag}>"
                parts.append("<table><thead><tr>"
                             + "".join(cell("th", i, h) for i, h in enumerate(block.head))
                             + "</tr></thead><tbody>")
                parts += ["<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row))
                          + "</tr>" for row in block.rows]
                parts.append("</tbody></table>")
        parts.append("</section>")
    made = f" Made {_moment(d.as_of, d.tz)}." if d.in_progress and d.as_of else ""
    parts.append(f"<footer>conductbot weekly digest {esc(d.week)}, {esc(d.tz)}.{esc(made)}"
                 "</footer></body></html>")
    return "\n".join(parts) + "\n"
