"""`bot.py db copy`: every row of one store into another, empty one, verified.

Moving a deployment from SQLite to PostgreSQL (or back, or between servers) copies each table
in an order that satisfies its foreign keys, in pages by primary key, inside one transaction
on each side: the source is read under its writer lock (a consistent snapshot that no process
changes meanwhile) and the target is filled in one transaction that is committed only once
every table's row count and checksum match the source's. A copy that fails or does not match
leaves the target as it was. Row ids are kept (cases keep their numbers, outbox rows their
ids); on PostgreSQL each identity column then continues after the largest id copied.
"""

from __future__ import annotations

__all__ = ["TABLES", "CopyReport", "TableCopy", "copy_database", "table_checksum"]

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.database import Target
from bot.errors import StoreError
from bot.store.driver import Connection
from bot.store.migrations import SCHEMA_VERSION
from bot.store.store import Store, iso

#: Every table of the schema with its primary key, parents before children.
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("members", ("id",)),
    ("accounts", ("platform", "account_id")),
    ("messages", ("id",)),
    ("verdicts", ("id",)),
    ("outbox", ("id",)),
    ("cases", ("id",)),
    ("case_messages", ("case_id", "message_row")),
    ("case_events", ("id",)),
    ("strikes", ("id",)),
    ("audit_log", ("id",)),
    ("reviews", ("id",)),
    ("digest_runs", ("week",)),
    ("inbox", ("id",)),
    ("modlog_cursors", ("platform",)),
    ("spam_events", ("id",)),
    ("raids", ("id",)),
)
#: Rows read and written at a time.
PAGE = 1000


@dataclass(frozen=True, slots=True)
class TableCopy:
    """One table's copy: rows in the source and in the target, and their checksums."""

    table: str
    rows: int
    copied: int
    checksum: str
    target_checksum: str

    @property
    def matches(self) -> bool:
        return self.rows == self.copied and self.checksum == self.target_checksum


@dataclass(frozen=True, slots=True)
class CopyReport:
    source: str
    target: str
    schema_version: int
    tables: tuple[TableCopy, ...]

    def lines(self) -> list[str]:
        width = max(len(t.table) for t in self.tables)
        total = sum(t.rows for t in self.tables)
        return [f"copied {self.source} -> {self.target} (schema version "
                f"{self.schema_version}): {total} rows in {len(self.tables)} tables, "
                "every row count and checksum matches",
                *(f"  {t.table:<{width}}  {t.rows:>9} rows  sha256 {t.checksum[:16]}"
                  for t in self.tables)]


def _page_sql(table: str, key: Sequence[str], *, after: bool) -> str:
    columns = ", ".join(key)
    where = f" WHERE ({columns}) > ({', '.join('?' * len(key))})" if after else ""
    return f"SELECT * FROM {table}{where} ORDER BY {columns} LIMIT {PAGE}"


async def _pages(db: Connection, table: str, key: Sequence[str]) -> Any:
    """The table's rows in primary-key order, a page at a time (keyset pagination)."""
    last: tuple[Any, ...] | None = None
    while True:
        rows = list(await db.execute_fetchall(_page_sql(table, key, after=last is not None),
                                              last or ()))
        if not rows:
            return
        yield rows
        last = tuple(rows[-1][k] for k in key)


async def table_checksum(db: Connection, table: str, key: Sequence[str]) -> tuple[int, str]:
    """(rows, SHA-256) of a table: every row's columns by name, in primary-key order."""
    digest = hashlib.sha256()
    count = 0
    async for rows in _pages(db, table, key):
        for row in rows:
            # Both databases hand a stored value back as the same Python value (text, int, a
            # double as float, NULL as None): JSON of the columns by name compares them.
            record = {k: row[k] for k in row.keys()}
            digest.update(json.dumps(record, sort_keys=True).encode())
            digest.update(b"\n")
            count += 1
    return count, digest.hexdigest()


async def copy_database(source: Target, target: Target) -> CopyReport:
    """Copy every row of `source` into `target` (created and migrated if need be), verified.

    StoreError, with the target unchanged, when the source's schema is not this
    conductbot's (migrate it first), when the target holds any row, or when a table's count
    or checksum in the target differs from the source's.
    """
    if str(source) == str(target):
        raise StoreError("--from and --to are the same database")
    async with Store.open(source, migrate=False) as src:
        version = await src.schema_version()
        if version != SCHEMA_VERSION:
            raise StoreError(f"{src.path} has schema version {version}; this conductbot copies "
                             f"version {SCHEMA_VERSION}: run `bot.py db migrate --db "
                             f"{src.path}` first" if version < SCHEMA_VERSION else
                             f"{src.path} has schema version {version}, newer than this "
                             f"conductbot understands ({SCHEMA_VERSION}); upgrade conductbot")
        async with Store.open(target) as dst, src.transaction() as read, \
                dst.transaction() as write:
            for table, _ in TABLES:
                async with write.execute(f"SELECT 1 FROM {table} LIMIT 1") as cur:
                    if await cur.fetchone() is not None:
                        raise StoreError(f"{dst.path} is not empty (table {table} has rows): "
                                         "db copy fills an empty database only")
            copies = []
            for table, key in TABLES:
                async for rows in _pages(read, table, key):
                    columns = rows[0].keys()
                    await write.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) "
                        f"VALUES ({', '.join('?' * len(columns))})",
                        [tuple(row) for row in rows])
                if dst.postgres and key == ("id",):
                    # The next id the database gives continues after the copied ones.
                    async with write.execute("SELECT pg_get_serial_sequence(?, 'id')",
                                             (table,)) as cur:
                        sequence = (await cur.fetchone())[0]
                    if sequence is not None:
                        await write.execute(f"SELECT setval(?, COALESCE(MAX(id), 0) + 1, "
                                            f"false) FROM {table}", (sequence,))
                rows_in, checksum = await table_checksum(read, table, key)
                rows_out, copied_checksum = await table_checksum(write, table, key)
                copies.append(TableCopy(table, rows_in, rows_out, checksum, copied_checksum))
            wrong = [c for c in copies if not c.matches]
            if wrong:  # raising rolls the target back: it stays empty
                raise StoreError("the copy does not match its source, nothing was kept: " +
                                 "; ".join(f"{c.table}: {c.rows} rows -> {c.copied}"
                                           f"{'' if c.rows != c.copied else ', checksum differs'}"
                                           for c in wrong))
            await dst._audit(write, iso(dst.clock()), actor="operator", action="db:copy",
                             detail={"from": src.path,
                                     "rows": {c.table: c.rows for c in copies}})
        return CopyReport(source=src.path, target=dst.path, schema_version=version,
                          tables=tuple(copies))
