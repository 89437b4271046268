"""Storage: SQLite (aiosqlite) or PostgreSQL (psycopg), one schema and its migrations; all SQL
lives here."""

from __future__ import annotations

__all__ = ["CaseDraft", "QueueFigures", "Recorded", "StaleStanding", "Store", "StoreFigures",
           "iso", "standing_token", "utcnow"]

from bot.store.health_queries import QueueFigures, StoreFigures
from bot.store.store import (
    CaseDraft,
    Recorded,
    StaleStanding,
    Store,
    iso,
    standing_token,
    utcnow,
)
