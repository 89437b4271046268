"""The figures `/healthz` and `/metrics` read from the store at each scrape, in one query.

No row returned carries a member, account, message or case identifier, or any text: only
platforms, counts and times.
"""

from __future__ import annotations

__all__ = ["QueueFigures", "StoreFigures", "store_figures"]

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.models import SHADOW_CASE, Platform
from bot.store.driver import Connection


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """One platform's share of the outbox or the inbox."""

    #: Rows waiting now: outbox rows due (never told to wait, or their wait is over);
    #: inbox messages accepted and not yet decided.
    waiting: int = 0
    #: Outbox rows told to wait until later (a rate-limited retry, a Slack timeout's end,
    #: a renewal); always 0 for the inbox.
    scheduled: int = 0
    #: Since when the longest-waiting row has waited: an outbox row since it fell due (created,
    #: or its retry time passed), an inbox message since it was accepted; None when none waits.
    oldest: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoreFigures:
    """What the store holds that health and metrics report, as of `at`."""

    at: datetime
    outbox: Mapping[str, QueueFigures]
    inbox: Mapping[str, QueueFigures]
    #: Appeals members made (a case is appealed at most once).
    appeals: int
    #: Appeals granted: the appealed case was dismissed.
    appeals_granted: int
    #: Automatic verdicts (not shadow-mode ones) a moderator dismissed on review, unappealed.
    dismissed_on_review: int

    def oldest_age(self, queue: QueueFigures, /) -> float:
        """Seconds the queue's longest-waiting row has waited (0 when none waits)."""
        return 0.0 if queue.oldest is None else max(0.0, (self.at - queue.oldest).total_seconds())


def _moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


async def store_figures(db: Connection, /, *, at: datetime, now: str) -> StoreFigures:
    """Outbox and inbox backlogs per platform and the appeal counts, as of `now` (`at` as the
    store writes it). The outbox part reads pending rows by the (platform, status) index; the
    case counts are one pass over the cases."""
    platforms = [str(p) for p in Platform]
    marks = ", ".join("?" * len(platforms))
    due = "(not_before IS NULL OR not_before <= ?)"
    rows = await db.execute_fetchall(
        f"SELECT 'outbox', platform, SUM(CASE WHEN {due} THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN not_before > ? THEN 1 ELSE 0 END), "
        f"MIN(CASE WHEN {due} THEN COALESCE(not_before, created_at) END) FROM outbox "
        f"WHERE platform IN ({marks}) AND status = 'pending' GROUP BY platform "
        "UNION ALL SELECT 'inbox', platform, COUNT(*), 0, MIN(received_at) FROM inbox "
        "GROUP BY platform "
        "UNION ALL SELECT 'cases', '', COUNT(appeal), "
        "SUM(CASE WHEN appeal IS NOT NULL AND state = 'dismissed' THEN 1 ELSE 0 END), "
        # The last column is the outbox's and inbox's oldest time (text): PostgreSQL unites
        # only columns of one type, so this count comes as text too.
        "CAST(SUM(CASE WHEN appeal IS NULL AND automatic = 1 AND state = 'dismissed' "
        "AND kind != ? THEN 1 ELSE 0 END) AS TEXT) FROM cases",
        (now, now, now, *platforms, SHADOW_CASE))
    # Every platform, waiting or not: a series that vanishes when its queue empties would
    # read as "no data" rather than 0.
    outbox = dict.fromkeys(platforms, QueueFigures())
    inbox = dict.fromkeys(platforms, QueueFigures())
    appeals = granted = dismissed = 0
    for part, platform, waiting, scheduled, oldest in rows:
        if part == "cases":
            appeals, granted, dismissed = int(waiting or 0), int(scheduled or 0), \
                int(oldest or 0)
            continue
        figures = QueueFigures(int(waiting or 0), int(scheduled or 0), _moment(oldest))
        (outbox if part == "outbox" else inbox)[str(platform)] = figures
    return StoreFigures(at=at, outbox=outbox, inbox=inbox, appeals=appeals,
                        appeals_granted=granted, dismissed_on_review=dismissed)
