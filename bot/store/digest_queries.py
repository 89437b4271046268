"""The weekly digest's SQL: aggregations over a two-week window, grouped in the database.

Every query takes the window as day boundaries (UTC timestamps, one more than the days), so
local days in any time zone, daylight saving included, are bucketed exactly by the database.
Figures follow the week the message was sent in (a replayed week keeps its own week), not the
time it was decided. Two shapes keep them fast on millions of rows:

- messages are counted from the covering index `messages_digest` alone;
- acted-on verdicts (warn, hide, escalate; a minority) are read through `verdicts_acted`
  (action, message_row), limited to the window's range of message rows, and joined to their
  message by row id. Every stored message has exactly one verdict (`Store.record` writes both
  in one transaction), so the number allowed is the messages less those acted on.

Shadow-mode verdicts (`mode = 'shadow'`) were recorded only, nothing was done to the member:
they come back in `acted` with their mode, so that the digest can count them apart, and are
left out of every per-member and per-person figure. Verdicts a moderator later cleared (their
case dismissed or their strike pardoned, whenever that happened) are counted per member in
`cleared`, so that repeat offenders are counted net of them.

Floods, spam and raids (`bot.spam`): enforced verdicts citing a `spam:KIND` rule come back
per kind in `spam` and as messages in `spam_messages`; the raids that started in the window,
from the `raids` table, in `raids`.
"""

from __future__ import annotations

__all__ = ["DigestRows", "digest_rows", "strike_points"]

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.models import SHADOW_CASE
from bot.store.driver import Connection, Dialect

Rows = list[tuple[Any, ...]]
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class DigestRows:
    """Raw grouped rows for the digest; `day` indexes the window's days, `week` is 0 or 1."""

    messages: Rows            # (day, channel, platform, channel name, count)
    # (day, channel, platform, action, categories JSON, clause, mode, count)
    acted: Rows
    acted_members: Rows       # (week, member_id, action, sanctioned 0/1, count); enforced only
    protected: Rows           # (week, rule id, count); enforced escalations only
    points: Rows              # (member_id, points last week, this week, total at the end)
    members: Rows             # (member_id, display_name, membership_number, status)
    open_cases: Rows          # (case id, kind, priority, opened_at, state) open at `as_of`
    resolved: Rows            # (week, opened_at, resolved_at)
    appeals: Rows             # (week, appeal_outcome)
    calibration: Rows         # (week, category, outcome, count)
    evidence: Rows            # (case id, text) - only when quoting evidence
    # (week, member_id, count): enforced verdicts of repeat-offender candidates whose case was
    # dismissed or whose strike was pardoned
    cleared: Rows
    spam: Rows = field(default_factory=list)           # (week, spam rule id, count); enforced
    spam_messages: Rows = field(default_factory=list)  # (week, count): messages of `spam`
    # (week, raid id, platform, channel, channel name, started_at, ended_at, new accounts,
    # response) of the raids that started in the window
    raids: Rows = field(default_factory=list)


def _bucket(column: str, bounds: Sequence[str], *, weeks: bool = False) -> tuple[str, list[str]]:
    """A CASE expression mapping `column` to its day (or week) index, with its parameters."""
    edges = [bounds[len(bounds) // 2]] if weeks else list(bounds[1:-1])
    arms = " ".join(f"WHEN {column} < ? THEN {i}" for i in range(len(edges)))
    return f"(CASE {arms} ELSE {len(edges)} END)", edges


async def _all(db: Connection, sql: str, params: Sequence[Any]) -> Rows:
    async with db.execute(sql, tuple(params)) as cur:
        return [tuple(r) for r in await cur.fetchall()]


async def _chunked(db: Connection, sql: str, keys: Sequence[Any], *,
                   before: Sequence[Any] = ()) -> Rows:
    """Run `sql` (with `{marks}` for an IN list, after the `before` parameters) over `keys`."""
    out: Rows = []
    for i in range(0, len(keys), _CHUNK):
        chunk = list(keys[i:i + _CHUNK])
        out += await _all(db, sql.format(marks=",".join("?" * len(chunk))), [*before, *chunk])
    return out


async def digest_rows(db: Connection, dialect: Dialect, /, *, bounds: Sequence[str],
                      quote_evidence: bool = False, as_of: str | None = None) -> DigestRows:
    """Every grouped figure the digest needs for the window `bounds[0]` .. `bounds[-1]`.

    `as_of` (default the window's end) is the moment open escalations are taken at: for a
    week still in progress, now.
    """
    start, end = bounds[0], bounds[-1]
    as_of = as_of or end
    d = dialect
    verdicts = f"verdicts v{d.indexed_by('verdicts_acted')} {d.cross_join} messages m"
    day_m, p_day = _bucket("sent_at", bounds)
    messages = await _all(
        db, f"SELECT {day_m}, channel, platform, channel_name, COUNT(*), MIN(id), MAX(id) "
            f"FROM messages{d.indexed_by('messages_digest')} WHERE sent_at >= ? AND sent_at < ? "
            "GROUP BY 1, 2, 3, 4", [*p_day, start, end])
    lo = min((r[5] for r in messages), default=0)
    hi = max((r[6] for r in messages), default=-1)
    acted_from = (f"FROM {verdicts} "
                  "ON m.id = v.message_row WHERE v.action IN ('warn', 'hide', 'escalate') "
                  "AND v.message_row BETWEEN ? AND ? AND m.sent_at >= ? AND m.sent_at < ?")
    window = [lo, hi, start, end]
    day_a, _ = _bucket("m.sent_at", bounds)
    week_a, p_week = _bucket("m.sent_at", bounds, weeks=True)
    acted = await _all(
        db, f"SELECT {day_a}, m.channel, m.platform, v.action, v.categories, v.clause, v.mode, "
            f"COUNT(*) {acted_from} GROUP BY 1, 2, 3, 4, 5, 6, 7", [*p_day, *window])
    acted_members = await _all(
        db, f"SELECT {week_a}, m.member_id, v.action, "
            "CASE WHEN v.categories LIKE '%\"sanctioned\"%' THEN 1 ELSE 0 END, COUNT(*) "
            f"{acted_from} AND v.mode = 'enforce' AND m.member_id IS NOT NULL "
            "GROUP BY 1, 2, 3, 4", [*p_week, *window])
    protected = await _all(
        db, f"SELECT {week_a}, j.value, COUNT(*) FROM {verdicts} "
            f"ON m.id = v.message_row, {d.json_elements('v.rule_ids', 'j')} "
            "WHERE v.action = 'escalate' AND v.mode = 'enforce' "
            "AND v.message_row BETWEEN ? AND ? "
            "AND m.sent_at >= ? AND m.sent_at < ? AND v.rule_ids LIKE '%protected:%' "
            "AND j.value LIKE 'protected:%' GROUP BY 1, 2", [*p_week, *window])
    # A message with several spam findings counts once under each kind, and once in all.
    spam_from = f"FROM {verdicts} ON m.id = v.message_row"
    spam_where = ("v.action IN ('warn', 'hide', 'escalate') AND v.mode = 'enforce' "
                  "AND v.message_row BETWEEN ? AND ? AND m.sent_at >= ? AND m.sent_at < ? "
                  "AND v.rule_ids LIKE '%\"spam:%'")
    spam = await _all(
        db, f"SELECT {week_a}, j.value, COUNT(*) {spam_from}, "
            f"{d.json_elements('v.rule_ids', 'j')} "
            f"WHERE {spam_where} AND j.value LIKE 'spam:%' GROUP BY 1, 2", [*p_week, *window])
    spam_messages = await _all(
        db, f"SELECT {week_a}, COUNT(*) {spam_from} WHERE {spam_where} GROUP BY 1",
        [*p_week, *window])
    week_s, p_s = _bucket("started_at", bounds, weeks=True)
    raids = await _all(
        db, f"SELECT {week_s}, id, platform, channel, channel_name, started_at, ended_at, "
            f"{d.json_length('accounts')}, response FROM raids "
            "WHERE started_at >= ? AND started_at < ? ORDER BY started_at, id",
        [*p_s, start, end])
    per_member: dict[str, int] = {}
    for week, member_id, _action, _sanctioned, n in acted_members:
        if week == 1:
            per_member[member_id] = per_member.get(member_id, 0) + n
    # Clearing only lowers a count, so members with two or more before it are the candidates.
    candidates = sorted(m for m, n in per_member.items() if n >= 2)
    cleared = await _cleared(db, candidates, bounds=bounds, join=d.cross_join)
    net = dict(per_member)
    for week, member_id, n in cleared:
        if week == 1:
            net[member_id] -= n
    repeat = [m for m in candidates if net[m] >= 2]
    points = await strike_points(db, repeat, bounds=bounds)
    people = sorted(set(repeat) | {r[1] for r in acted_members if r[3]})
    members = await _chunked(
        db, "SELECT id, display_name, membership_number, status FROM members "
            "WHERE id IN ({marks})", people)
    open_cases = await _all(
        db, "SELECT id, kind, priority, opened_at, state FROM cases WHERE kind = 'escalation' "
            "AND opened_at < ? AND (resolved_at IS NULL OR resolved_at >= ?) "
            "ORDER BY priority DESC, opened_at, id", [as_of, as_of])
    week_r, p_r = _bucket("resolved_at", bounds, weeks=True)
    # A shadow case's review is calibration (below), not a case about a member resolved.
    resolved = await _all(db, f"SELECT {week_r}, opened_at, resolved_at FROM cases "
                              "WHERE resolved_at >= ? AND resolved_at < ? AND kind != ?",
                          [*p_r, start, end, SHADOW_CASE])
    week_e, p_e = _bucket("e.at", bounds, weeks=True)
    appeals = await _all(
        db, f"SELECT {week_e}, c.appeal_outcome FROM case_events e JOIN cases c ON c.id = "
            "e.case_id WHERE e.at >= ? AND e.at < ? AND e.event = 'appealed'",
        [*p_e, start, end])
    week_c, p_c = _bucket("r.at", bounds, weeks=True)
    calibration = await _all(
        db, f"SELECT {week_c}, j.value, r.outcome, COUNT(*) FROM reviews r, "
            f"{d.json_elements('r.categories', 'j')} WHERE r.at >= ? AND r.at < ? "
            "GROUP BY 1, 2, 3",
        [*p_c, start, end])
    evidence: Rows = []
    if quote_evidence and open_cases:
        evidence = await _chunked(
            db, "SELECT cm.case_id, m.text FROM case_messages cm JOIN messages m ON "
                "m.id = cm.message_row WHERE cm.case_id IN ({marks}) AND m.text IS NOT NULL "
                "ORDER BY cm.case_id, m.sent_at", [r[0] for r in open_cases])
    return DigestRows(messages=[r[:5] for r in messages], acted=acted,
                      acted_members=acted_members, protected=protected, points=points,
                      members=members, open_cases=open_cases, resolved=resolved,
                      appeals=appeals, calibration=calibration, evidence=evidence,
                      cleared=cleared, spam=spam, spam_messages=spam_messages, raids=raids)


async def _cleared(db: Connection, members: Sequence[str], /, *,
                   bounds: Sequence[str], join: str) -> Rows:
    """(week, member, count) of `members`' enforced verdicts in the window that a moderator
    cleared: the verdict's case was dismissed or its strike pardoned.

    Found from the members' own strikes and cases (indexed by member), not by scanning every
    strike and case ever recorded.
    """
    week, p_week = _bucket("m.sent_at", bounds, weeks=True)
    out: Rows = []
    for i in range(0, len(members), _CHUNK):
        chunk = list(members[i:i + _CHUNK])
        marks = ",".join("?" * len(chunk))
        out += await _all(
            db, f"SELECT {week}, m.member_id, COUNT(*) FROM verdicts v {join} messages m "
                "ON m.id = v.message_row WHERE v.id IN ("
                f"SELECT verdict_id FROM strikes WHERE member_id IN ({marks}) "
                "AND pardoned_at IS NOT NULL AND verdict_id IS NOT NULL "
                "UNION SELECT cm.verdict_id FROM cases c JOIN case_messages cm "
                f"ON cm.case_id = c.id WHERE c.member_id IN ({marks}) "
                "AND c.state = 'dismissed' AND cm.verdict_id IS NOT NULL) "
                "AND v.action IN ('warn', 'hide', 'escalate') AND v.mode = 'enforce' "
                "AND m.sent_at >= ? AND m.sent_at < ? GROUP BY 1, 2",
            [*p_week, *chunk, *chunk, bounds[0], bounds[-1]])
    return out


async def strike_points(db: Connection, members: Sequence[str], /, *,
                        bounds: Sequence[str]) -> Rows:
    """(member, points last week, this week, total up to the window's end), net of pardons.

    A strike counts in the week of the message that earned it (its own time otherwise); an
    escalation's points awaiting a moderator's review do not count yet, and a pardoned strike
    (a pardon, or its case dismissed) counts in no week, whenever the pardon came: the digest
    shows what still stands against the member.
    """
    start, mid, end = bounds[0], bounds[len(bounds) // 2], bounds[-1]
    return await _chunked(
        db, "SELECT member_id, "
            "COALESCE(SUM(CASE WHEN t >= ? AND t < ? THEN points END), 0.0), "
            "COALESCE(SUM(CASE WHEN t >= ? AND t < ? THEN points END), 0.0), "
            "COALESCE(SUM(CASE WHEN t < ? THEN points END), 0.0) FROM (SELECT s.member_id, "
            "s.points, "
            "COALESCE(m.sent_at, s.at) AS t FROM strikes s "
            "LEFT JOIN verdicts v ON v.id = s.verdict_id "
            "LEFT JOIN messages m ON m.id = v.message_row WHERE s.pending = 0 AND "
            "s.pardoned_at IS NULL AND s.member_id IN ({marks})) AS counted "
            "GROUP BY member_id", members, before=[start, mid, mid, end, end])
