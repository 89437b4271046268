"""Storage: aiosqlite, migrations keyed by PRAGMA user_version; all SQL lives here."""

from __future__ import annotations

__all__ = ["CaseDraft", "Recorded", "Store", "iso", "utcnow"]

from bot.store.sqlite import CaseDraft, Recorded, Store, iso, utcnow
