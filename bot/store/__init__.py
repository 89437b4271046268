"""Storage: aiosqlite, migrations keyed by PRAGMA user_version; all SQL lives here."""

from __future__ import annotations

__all__ = ["Recorded", "Store", "iso", "utcnow"]

from bot.store.sqlite import Recorded, Store, iso, utcnow
