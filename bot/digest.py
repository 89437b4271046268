"""The weekly digest: built from the store alone (grouped in SQL), rendered per platform and file.

`build_digest` gathers one ISO week in a time zone; the renderers are pure functions of the
`Digest`. Members appear by display name and membership number only with `show_names=True`
(otherwise by their internal id); message text appears only with `quote_evidence=True`.
"""

from __future__ import annotations

__all__ = [
    "Calibration",
    "Day",
    "Digest",
    "Figure",
    "OpenEscalation",
    "Repeat",
    "SanctionedActivity",
    "assemble",
    "build_digest",
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
import statistics
import types
import typing
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.store.digest_queries import DigestRows

if TYPE_CHECKING:
    from bot.store import Store

ACTIONS = ("allow", "warn", "hide", "escalate")
ACTED = ("warn", "hide", "escalate")


# -- the data -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Figure:
    """One figure this week and the week before."""

    key: str
    this_week: float
    last_week: float

    @property
    def change(self) -> float:
        """This week minus last week."""
        return self.this_week - self.last_week


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
    """A member with two or more acted-on messages this week."""

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
    """An escalation still open at the end of the week."""

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
        return kind(**{f.name: _load(hints[f.name], value[f.name]) for f in fields(kind)})
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
        return date.fromisocalendar(int(year), int(number), 1)
    except ValueError as exc:
        raise ValueError(f"not an ISO week (like 2026-W47): {week!r}") from exc


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
                       quote_evidence: bool = False) -> Digest:
    """The digest of an ISO week (default: the last complete week) from the store alone."""
    monday = parse_week(week) if week else last_complete_week(now or store.clock(), tz=tz)
    bounds = week_bounds(monday, tz=tz)
    from bot.store import iso

    rows = await store.digest_rows(bounds=[iso(b) for b in bounds],
                                   quote_evidence=quote_evidence)
    return assemble(rows, monday=monday, tz=tz, show_names=show_names,
                    quote_evidence=quote_evidence)


def _figures(this: Counter[str], last: Counter[str], *, keys: Iterable[str] = ()
             ) -> tuple[Figure, ...]:
    every = set(this) | set(last) | set(keys)
    ordered = sorted(every, key=lambda k: (-this.get(k, 0), -last.get(k, 0), k))
    return tuple(Figure(k, this.get(k, 0), last.get(k, 0)) for k in ordered)


def _median_hours(pairs: Sequence[tuple[str, str]]) -> float | None:
    spans = [(datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() / 3600
             for a, b in pairs]
    return round(statistics.median(spans), 2) if spans else None


def assemble(rows: DigestRows, /, *, monday: date, tz: str, show_names: bool = False,
             quote_evidence: bool = False) -> Digest:
    """Pure: the grouped rows of a two-week window into a Digest of its second week."""
    bounds = week_bounds(monday, tz=tz)
    end = bounds[-1]
    this_days = [monday + timedelta(days=d) for d in range(7)]
    day_stats: dict[int, Counter[str]] = defaultdict(Counter)

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
    for day, channel, platform, _name, n in rows.messages:
        by_channel[1 if day >= 7 else 0][_channel(channel, platform, names)] += n

    actions: list[Counter[str]] = [Counter(), Counter()]
    categories: list[Counter[str]] = [Counter(), Counter()]
    ch_acted: list[Counter[str]] = [Counter(), Counter()]
    pf_acted: list[Counter[str]] = [Counter(), Counter()]
    for day, channel, platform, action, cats, n in rows.acted:
        wk = 1 if day >= 7 else 0
        actions[wk][action] += n
        day_stats[day][action] += n
        ch_acted[wk][_channel(channel, platform, names)] += n
        pf_acted[wk][platform] += n
        for category in json.loads(cats or "[]"):
            categories[wk][category] += n
    # Every stored message has one verdict: those not acted on were allowed.
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
        OpenEscalation(case_id, priority, state, opened_at,
                       round((end - datetime.fromisoformat(opened_at)).total_seconds() / 3600, 1),
                       tuple(evidence.get(case_id, ())) if quote_evidence else ())
        for case_id, _kind, priority, opened_at, state in rows.open_cases)

    resolved: list[list[tuple[str, str]]] = [[], []]
    for wk, opened, closed in rows.resolved:
        resolved[wk].append((opened, closed))
    appeals = [Counter[str](), Counter[str]()]
    for wk, outcome in rows.appeals:
        appeals[wk][outcome or "pending"] += 1

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

    def day_of(i: int, when: date) -> Day:
        c = day_stats.get(i, Counter())
        return Day(when.isoformat(), c["messages"], c["allow"], c["warn"], c["hide"],
                   c["escalate"])

    return Digest(
        week=_week_name(monday), tz=tz, start=monday.isoformat(),
        end=(monday + timedelta(days=6)).isoformat(), show_names=show_names,
        quote_evidence=quote_evidence,
        messages=Figure("messages", msgs[1]["messages"], msgs[0]["messages"]),
        actions=tuple(Figure(a, actions[1][a], actions[0][a]) for a in ACTIONS),
        categories=_figures(categories[1], categories[0]),
        channel_messages=_figures(by_channel[1], by_channel[0]),
        channel_actions=_figures(ch_acted[1], ch_acted[0]),
        platform_messages=_figures(by_platform[1], by_platform[0]),
        platform_actions=_figures(pf_acted[1], pf_acted[0]),
        days=tuple(day_of(7 + i, d) for i, d in enumerate(this_days)),
        days_last_week=tuple(day_of(i, d - timedelta(days=7)) for i, d in enumerate(this_days)),
        repeat_offenders=tuple(repeats),
        sanctioned=tuple(activity),
        protected=_figures(protected[1], protected[0]),
        open_escalations=escalations,
        resolved=Figure("resolved", len(resolved[1]), len(resolved[0])),
        median_resolution_hours=_median_hours(resolved[1]),
        median_resolution_hours_last_week=_median_hours(resolved[0]),
        appeals=Figure("appeals", sum(appeals[1].values()), sum(appeals[0].values())),
        appeal_outcomes=_figures(appeals[1], appeals[0]),
        calibration=tuple(calibration),
    )


def _channel(channel: str, platform: str, names: dict[tuple[str, str], str]) -> str:
    name = names.get((channel, platform))
    shown = f"#{name}" if name else channel
    return f"{shown[:80]} ({platform})"


# -- rendering ----------------------------------------------------------------------------------

def _n(value: float | None) -> str:
    if value is None:
        return "–"
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def _delta(figure: Figure) -> str:
    change = figure.change
    return "±0" if change == 0 else f"+{_n(change)}" if change > 0 else _n(change)


def _title(d: Digest) -> str:
    return f"Weekly moderation digest {d.week} ({d.start} to {d.end}, {d.tz})"


def _rows(d: Digest) -> list[tuple[str, str, float | None, float | None]]:
    """Every figure as (section, key, this week, last week)."""
    out: list[tuple[str, str, float | None, float | None]] = []
    out.append(("messages", "total", d.messages.this_week, d.messages.last_week))
    sections: list[tuple[str, tuple[Figure, ...]]] = [
        ("actions", d.actions), ("categories", d.categories),
        ("channel_messages", d.channel_messages), ("channel_actions", d.channel_actions),
        ("platform_messages", d.platform_messages), ("platform_actions", d.platform_actions),
        ("protected_targeted", d.protected), ("appeal_outcomes", d.appeal_outcomes)]
    for name, figures in sections:
        out += [(name, f.key, f.this_week, f.last_week) for f in figures]
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
    """The digest as a JSON document."""
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


def _sections(d: Digest) -> list[tuple[str, list[str]]]:
    """The digest as titled sections of short text lines (for chat platforms)."""

    def figs(figures: Iterable[Figure]) -> list[str]:
        return [f"{f.key}: {_n(f.this_week)} ({_delta(f)})" for f in figures]

    seen = d.messages
    out: list[tuple[str, list[str]]] = [
        ("Summary", [f"Messages seen: {_n(seen.this_week)} ({_delta(seen)} on last week)",
                     *figs(d.actions)]),
        ("Categories (acted on)", figs(d.categories) or ["none"]),
        ("Channels: messages", figs(d.channel_messages) or ["none"]),
        ("Channels: acted on", figs(d.channel_actions) or ["none"]),
        ("Platforms", [f"{f.key}: {_n(f.this_week)} messages ({_delta(f)})"
                       for f in d.platform_messages]
         + [f"{f.key}: {_n(f.this_week)} acted on ({_delta(f)})" for f in d.platform_actions]
         or ["none"]),
        ("Repeat offenders", [f"{r.member}: {r.acted} acted on (last week {r.acted_last_week},"
                              f" {r.trend}), {_n(r.points)} points this week, "
                              f"{_n(r.points_total)} in all" for r in d.repeat_offenders]
         or ["none"]),
        ("Suspended and expelled members posting",
         [f"{s.member} ({s.status}): {s.attempted} attempted, {s.hidden} hidden, "
          f"{s.escalated} escalated" for s in d.sanctioned] or ["none"]),
        ("Protected persons targeted", figs(d.protected) or ["none"]),
        ("Open escalations", [f"case {e.case} (priority {e.priority}, {e.state}): open "
                              f"{_n(e.age_hours)} h" for e in d.open_escalations] or ["none"]),
        ("Cases and appeals",
         [f"Resolved: {_n(d.resolved.this_week)} ({_delta(d.resolved)}), median "
          f"{_n(d.median_resolution_hours)} h (last week "
          f"{_n(d.median_resolution_hours_last_week)} h)",
          f"Appeals: {_n(d.appeals.this_week)} ({_delta(d.appeals)})",
          *[f"appeal {f.key}: {_n(f.this_week)}" for f in d.appeal_outcomes]]),
        ("Calibration (automatic verdicts reviewed)",
         [f"{c.category}: {c.dismissed}/{c.reviewed} dismissed ({c.share_dismissed:.0%})"
          for c in d.calibration] or ["no reviews"]),
    ]
    if d.quote_evidence:
        quoted = [f"case {e.case}: " + " | ".join(e.evidence) for e in d.open_escalations
                  if e.evidence]
        if quoted:
            out.append(("Evidence (quoted)", quoted))
    return out


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


def to_markdown(d: Digest, /) -> str:
    """The digest as Markdown."""

    def table(head: str, figures: Iterable[Figure]) -> list[str]:
        rows = [f"| {f.key.replace('|', '/')} | {_n(f.this_week)} | {_n(f.last_week)} | "
                f"{_delta(f)} |" for f in figures]
        if not rows:
            return ["_none_", ""]
        return [f"| {head} | this week | last week | change |", "|---|---:|---:|---:|",
                *rows, ""]

    out = [f"# {_title(d)}", ""]
    out += ["## Messages and actions", "", *table("", [d.messages, *d.actions])]
    out += ["## Categories (acted on)", "", *table("category", d.categories)]
    out += ["## Channels: messages", "", *table("channel", d.channel_messages)]
    out += ["## Channels: acted on", "", *table("channel", d.channel_actions)]
    out += ["## Platforms: messages", "", *table("platform", d.platform_messages)]
    out += ["## Platforms: acted on", "", *table("platform", d.platform_actions)]
    out += ["## Per day", "", "| day | messages | allow | warn | hide | escalate |",
            "|---|---:|---:|---:|---:|---:|"]
    out += [f"| {x.date} | {x.messages} | {x.allow} | {x.warn} | {x.hide} | {x.escalate} |"
            for x in d.days]
    for title, lines in _sections(d)[5:]:
        out += ["", f"## {title}", ""]
        out += [f"- {line}" for line in lines]
    return "\n".join(out) + "\n"


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


def _charts(d: Digest) -> list[tuple[str, str]]:
    """(caption, base64 PNG) for actions per day, categories and the two-week trend."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    charts: list[tuple[str, str]] = []

    def save(fig: Any, caption: str) -> None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        plt.close(fig)
        charts.append((caption, base64.b64encode(buffer.getvalue()).decode("ascii")))

    days = [x.date[5:] for x in d.days]
    fig, ax = plt.subplots(figsize=(7, 3))
    bottom = [0] * len(d.days)
    for action in ACTED:
        values = [getattr(x, action) for x in d.days]
        ax.bar(days, values, bottom=bottom, label=action)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_title("Actions per day")
    ax.legend()
    save(fig, "Actions per day (warn, hide, escalate)")

    cats = d.categories[:15]
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.35 * len(cats) + 1)))
    labels = [c.key for c in cats][::-1]
    ax.barh([i + 0.2 for i in range(len(cats))], [c.this_week for c in cats][::-1], height=0.4,
            label="this week")
    ax.barh([i - 0.2 for i in range(len(cats))], [c.last_week for c in cats][::-1], height=0.4,
            label="last week")
    ax.set_yticks(range(len(cats)), labels)
    ax.set_title("Categories acted on")
    ax.legend()
    save(fig, "Categories acted on, this week and last")

    both = [*d.days_last_week, *d.days]
    fig, ax = plt.subplots(figsize=(7, 3))
    x = [b.date[5:] for b in both]
    ax.plot(x, [b.messages for b in both], marker="o", label="messages")
    ax.plot(x, [b.warn + b.hide + b.escalate for b in both], marker="o", label="acted on")
    ax.set_yscale("symlog")
    ax.tick_params(axis="x", labelrotation=60)
    ax.set_title("Two-week trend")
    ax.legend()
    save(fig, "Trend over the last two weeks")
    return charts


def to_html(d: Digest, /) -> str:
    """A self-contained HTML page: tables and charts as embedded PNG images."""
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{esc(_title(d))}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
             "td.n{text-align:right}</style></head><body>", f"<h1>{esc(_title(d))}</h1>"]
    for caption, png in _charts(d):
        parts.append(f'<figure><img src="data:image/png;base64,{png}" alt="{esc(caption)}">'
                     f"<figcaption>{esc(caption)}</figcaption></figure>")
    parts += ["<h2>All figures</h2>", "<table><thead><tr><th>section</th><th>key</th>"
              "<th>this week</th><th>last week</th></tr></thead><tbody>"]
    for section, key, this, last in _rows(d):
        parts.append(f"<tr><td>{esc(section)}</td><td>{esc(key)}</td>"
                     f'<td class="n">{_n(this)}</td><td class="n">{_n(last)}</td></tr>')
    parts.append("</tbody></table>")
    if d.quote_evidence:
        for title, lines in _sections(d)[-1:]:
            if title.startswith("Evidence"):
                parts.append(f"<h2>{esc(title)}</h2><ul>")
                parts += [f"<li>{esc(line)}</li>" for line in lines]
                parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
