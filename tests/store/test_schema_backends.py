"""The two backends' schemas: PostgreSQL's migrations (translated from SQLite's) give the same
tables, columns, keys and append-only audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.database import Target
from bot.store import Store
from bot.store.copy import TABLES
from bot.store.migrations import SCHEMA_VERSION
from tests.postgres import PostgresServer


async def columns_sqlite(path: Path) -> dict[str, list[str]]:
    async with Store.open(path) as store:
        return {table: [row["name"] for row in await store._read(f"PRAGMA table_info({table})")]
                for table, _ in TABLES}


async def columns_postgres(url: str) -> dict[str, list[str]]:
    async with Store.open(url) as store:
        return {table: [row[0] for row in await store._read(
            "SELECT column_name FROM information_schema.columns WHERE table_name=? "
            "ORDER BY ordinal_position", (table,))] for table, _ in TABLES}


async def test_both_backends_have_the_same_tables_and_columns_in_order(
        tmp_path: Path, postgres_server: PostgresServer) -> None:
    sqlite = await columns_sqlite(tmp_path / "db.sqlite3")
    async with postgres_server.database() as url:
        postgres = await columns_postgres(url)
        async with Store.open(url) as store:
            assert await store.schema_version() == SCHEMA_VERSION
            tables = {r[0] for r in await store._read(
                "SELECT table_name FROM information_schema.tables WHERE table_schema='public'")}
    assert postgres == sqlite
    # Every table is one `db copy` knows (and the schema-version table on PostgreSQL).
    assert tables == {t for t, _ in TABLES} | {"conductbot_schema"}


async def test_the_audit_log_is_append_only_on_both(database: Target) -> None:
    async with Store.open(database) as store:
        await store.audit(actor="test", action="test")
        with pytest.raises(Exception, match="the audit log is append-only"):
            async with store.transaction() as db:
                await db.execute("UPDATE audit_log SET actor='someone else'")
        assert [e["actor"] for e in await store.audit_entries()] == ["test"]
