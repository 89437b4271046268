"""The transparency report's SQL: one period's figures, grouped in the database.

No row returned carries a member, account, message or case identifier, a name or any text
members wrote: only modes, actions, platforms, clause ids, category names, case kinds and
event names, model and policy versions, counts, and the times a median is taken over.

Everything counts when it happened in the bot: a verdict when it was made (`decided_at`), a
moderator's sanction when its case was opened, an appeal or a decision when its case event
was written. Shadow-mode verdicts were recorded only, so the cases put to moderators for them
(and any case citing a shadow verdict) are left out of every case figure.
"""

from __future__ import annotations

__all__ = ["TransparencyRows", "transparency_rows"]

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.models import SHADOW_CASE
from bot.store.driver import Connection

Rows = list[tuple[Any, ...]]

#: A case that is about something done to a member: not a shadow-mode review.
_REAL_CASE = (f"c.kind != '{SHADOW_CASE}' AND NOT EXISTS (SELECT 1 FROM case_messages cm "
              "JOIN verdicts sv ON sv.id = cm.verdict_id WHERE cm.case_id = c.id "
              "AND sv.mode = 'shadow')")


@dataclass(frozen=True, slots=True)
class TransparencyRows:
    """Raw grouped rows for one period of the transparency report."""

    verdicts: Rows          # (mode, action, platform, clause, categories JSON, model,
                            #  model version, policy version, count)
    ladder_timeouts: int    # enforce verdicts whose strike points set off a timeout
    moderator_actions: Rows  # (kind, clause, count): moderators' warnings, hides, timeouts
    suspensions: Rows       # (event, after an appeal 0/1, count) on suspension cases
    escalations: Rows       # (event, opened_at, decided_at): first decisions on escalations
    appeals: Rows           # (automatic 0/1, count): appeals made
    appeal_decisions: Rows  # (automatic 0/1, event, appealed_at, decided_at)


async def _rows(db: Connection, sql: str, params: Sequence[Any]) -> Rows:
    return [tuple(r) for r in await db.execute_fetchall(sql, tuple(params))]


async def transparency_rows(db: Connection, /, *, start: str,
                            end: str) -> TransparencyRows:
    """Every grouped figure the report needs for `start` <= time < `end` (UTC timestamps)."""
    period = [start, end]
    verdicts = await _rows(
        db, "SELECT v.mode, v.action, m.platform, v.clause, v.categories, v.model, "
            "v.model_version, v.policy_version, COUNT(*) FROM verdicts v "
            "JOIN messages m ON m.id = v.message_row "
            "WHERE v.decided_at >= ? AND v.decided_at < ? GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
        period)
    # One verdict may time out a member on each linked platform: count verdicts, not rows.
    # Like every action here, a timeout counts when decided, even if an appeal lifts it later.
    timeouts = await _rows(
        db, "SELECT COUNT(DISTINCT o.verdict_id) FROM outbox o JOIN verdicts v "
            "ON v.id = o.verdict_id WHERE o.kind = 'timeout' AND v.mode = 'enforce' "
            "AND v.decided_at >= ? AND v.decided_at < ?", period)
    moderator_actions = await _rows(
        db, "SELECT c.kind, c.clause, COUNT(*) FROM cases c WHERE c.automatic = 0 "
            "AND c.kind IN ('warning', 'hide', 'timeout') "
            "AND c.opened_at >= ? AND c.opened_at < ? GROUP BY 1, 2", period)
    suspensions = await _rows(
        db, "SELECT e.event, CASE WHEN e.from_state = 'appealed' THEN 1 ELSE 0 END, COUNT(*) "
            "FROM case_events e "
            "JOIN cases c ON c.id = e.case_id WHERE c.kind = 'suspension' "
            "AND e.event IN ('opened', 'confirmed', 'dismissed') "
            "AND e.at >= ? AND e.at < ? GROUP BY 1, 2", period)
    escalations = await _rows(
        db, "SELECT e.event, c.opened_at, e.at FROM case_events e JOIN cases c "
            "ON c.id = e.case_id WHERE c.kind = 'escalation' AND c.automatic = 1 "
            "AND e.event IN ('upheld', 'dismissed') AND e.from_state IN ('open', 'assigned') "
            f"AND e.at >= ? AND e.at < ? AND {_REAL_CASE} ORDER BY e.at", period)
    appeals = await _rows(
        db, "SELECT c.automatic, COUNT(*) FROM case_events e JOIN cases c ON c.id = e.case_id "
            f"WHERE e.event = 'appealed' AND e.at >= ? AND e.at < ? AND {_REAL_CASE} "
            "GROUP BY 1", period)
    appeal_decisions = await _rows(
        db, "SELECT c.automatic, e.event, (SELECT MAX(a.at) FROM case_events a "
            "WHERE a.case_id = e.case_id AND a.event = 'appealed' AND a.id < e.id), e.at "
            "FROM case_events e JOIN cases c ON c.id = e.case_id "
            "WHERE e.event IN ('upheld', 'dismissed') AND e.from_state = 'appealed' "
            f"AND e.at >= ? AND e.at < ? AND {_REAL_CASE} ORDER BY e.at", period)
    return TransparencyRows(verdicts=verdicts, ladder_timeouts=int(timeouts[0][0]),
                            moderator_actions=moderator_actions, suspensions=suspensions,
                            escalations=escalations, appeals=appeals,
                            appeal_decisions=appeal_decisions)
