"""Importing the membership register into the store, one row per transaction."""

from __future__ import annotations

__all__ = ["ImportReport", "import_register"]

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from bot.errors import StoreError
from bot.register import Register, RowError, RowWarning
from bot.store import Store


@dataclass(slots=True)
class ImportReport:
    """What an import changed, and the rows it refused."""

    rows: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    changes: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    #: Rows kept with a cell cleaned (invisible characters removed from a name, ...).
    warnings: list[RowWarning] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A human-readable report."""
        summary = (f"{self.rows} row(s): {self.counts['new']} new, {self.counts['updated']} "
                   f"updated, {self.counts['status']} status change(s), {self.counts['link']} "
                   f"account link(s), {self.counts['conflict']} conflict(s) with the bot, "
                   f"{self.counts['unchanged']} unchanged, {len(self.errors)} refused")
        return [*(f"warning {w}" for w in self.warnings), *self.changes,
                *(f"refused {e}" for e in self.errors), summary]


async def import_register(store: Store, register: Register, /, *, actor: str,
                          exported_at: datetime | None = None) -> ImportReport:
    """Create or update a member per valid row; idempotent: a second run changes nothing.

    A status a moderator set in the bot after `exported_at` (None: ever) is not overridden:
    the stricter stays, and the conflict is reported and opened as a case.
    """
    report = ImportReport(rows=len(register.rows) + len(register.errors),
                          errors=list(register.errors), warnings=list(register.warnings))
    for row in register.rows:
        try:
            changes = await store.import_member(
                membership_number=row.membership_number, name=row.name, status=row.status,
                roles=row.roles, reason=row.reason, suspended_from=row.suspended_from,
                suspended_until=row.suspended_until,
                accounts=[(a.platform, a.id) for a in row.accounts], actor=actor,
                exported_at=exported_at)
        except StoreError as exc:
            report.errors.append(RowError(row.line, str(exc)))
            continue
        if not changes:
            report.counts["unchanged"] += 1
            continue
        for change in changes:
            key = change.split()[0]
            report.counts[{"linked": "link"}.get(key, key)] += 1
        report.changes.append(f"line {row.line}: {row.membership_number} {row.name}: "
                              f"{', '.join(changes)}")
    report.errors.sort(key=lambda e: e.line)
    return report
