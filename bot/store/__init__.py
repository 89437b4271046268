"""Storage: aiosqlite, migrations keyed by PRAGMA user_version; all SQL lives here."""

from __future__ import annotations

__all__ = ["CaseDraft", "QueueFigures", "Recorded", "Store", "StoreFigures", "iso", "utcnow"]

from bot.store.health_queries import QueueFigures, StoreFigures
from bot.store.sqlite import CaseDraft, Recorded, Store, iso, utcnow
