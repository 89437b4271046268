"""The two databases the store speaks: SQLite (aiosqlite, the embedded default) and PostgreSQL
(psycopg 3, for several processes or hosts on one store).

The store writes its SQL once, in the subset both understand (`?` parameters, ``ON CONFLICT
DO NOTHING``, ``RETURNING``, row values); what differs is a `Dialect` fragment (JSON, scalar
max, a case-insensitive match, row locks) or lives here (connecting, transactions, the schema
version, the DDL's types). Each process holds one connection, on which the store serialises
its reads and transactions; every write transaction holds the database's one writer lock
(SQLite's BEGIN IMMEDIATE, a PostgreSQL advisory lock), so a read-then-write inside it is as
safe across processes as within one. Outbox claims on PostgreSQL take row locks instead
(``FOR UPDATE SKIP LOCKED``), so claiming never waits behind the deciding.

Why this and not SQLAlchemy Core or two stores: the store's 140-odd statements were already
hand-written SQL, tested on a real database. SQLAlchemy's `text()` passes SQL through
untranslated (the JSON functions, TOTAL, INDEXED BY would still differ) and its expression
language would mean rewriting every statement for no behaviour gained; two implementations of
one store protocol would mean every change made twice. Here each statement is written once and
each difference is one named fragment, so what runs on either database is read in one place.
psycopg 3 over asyncpg: `?` maps onto its `%s` mechanically, it sends strings untyped (closer
to SQLite's type affinity than asyncpg's strict binding), and its binary wheel bundles libpq.
"""

from __future__ import annotations

__all__ = ["POSTGRES", "SQLITE", "Connection", "Dialect", "Driver", "connect", "postgres_ddl"]

import asyncio
import functools
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from bot.database import Target, is_url, redact
from bot.errors import StoreError

#: How long a transaction waits for another process's write lock, beyond SQLite's own
#: busy timeout, before the store gives up with a StoreError.
BUSY_WAIT = 30.0
#: SQLite's own busy timeout (milliseconds): how long one statement waits for a lock.
BUSY_TIMEOUT_MS = 5000
#: The PostgreSQL advisory lock every write transaction holds (the store's one writer), and
#: the one the weekly digest holds while it is made ("cbot" and "dgst" as numbers).
WRITER_LOCK = 0x63626F74
DIGEST_LOCK = 0x64677374


class Cursor(Protocol):
    """What the store reads from a statement: rows, and how many rows it changed."""

    @property
    def rowcount(self) -> int: ...

    async def fetchone(self) -> Any: ...

    async def fetchall(self) -> Iterable[Any]: ...


class Connection(Protocol):
    """The part of aiosqlite's connection the store uses; `_PgConnection` offers the same."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any: ...

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] = ..., /
                               ) -> Iterable[Any]: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """The SQL fragments that differ between SQLite and PostgreSQL. JSON columns are text in
    both (the store writes `json.dumps`); these read them."""

    name: str

    @property
    def postgres(self) -> bool:
        return self.name == "postgresql"

    def json_text(self, column: str, key: str) -> str:
        """A top-level member of a JSON text column, as SQL text (NULL when absent)."""
        if self.postgres:
            return f"(({column})::jsonb ->> '{key}')"
        return f"json_extract({column}, '$.{key}')"

    def json_int(self, column: str, key: str) -> str:
        """A top-level integer member of a JSON text column (a case number)."""
        if self.postgres:
            return f"((({column})::jsonb ->> '{key}')::bigint)"
        return f"json_extract({column}, '$.{key}')"

    def json_without(self, column: str, *keys: str) -> str:
        """A JSON text column with top-level `keys` removed."""
        if self.postgres:
            return f"(({column})::jsonb{''.join(f' - {k!r}' for k in keys)})::text"
        return f"json_remove({column}, {', '.join(repr(f'$.{k}') for k in keys)})"

    def json_pairs(self, first: str, second: str) -> str:
        """An aggregate: the group's (first, second) pairs as a JSON text list ('[]' for none)."""
        if self.postgres:
            return f"COALESCE(json_agg(json_build_array({first}, {second})), '[]'::json)::text"
        return f"json_group_array(json_array({first}, {second}))"

    def json_elements(self, column: str, alias: str) -> str:
        """A table `alias` of a JSON text list's elements, in its column `value` (text)."""
        if self.postgres:
            return f"jsonb_array_elements_text(({column})::jsonb) AS {alias}(value)"
        return f"json_each({column}) {alias}"

    def json_length(self, column: str) -> str:
        """The length of a JSON text list."""
        if self.postgres:
            return f"jsonb_array_length(({column})::jsonb)"
        return f"json_array_length({column})"

    def indexed_by(self, index: str) -> str:
        """SQLite's planner told which index to use (it picks badly on the digest's ranges);
        PostgreSQL's planner has statistics to choose by."""
        return "" if self.postgres else f" INDEXED BY {index}"

    @property
    def cross_join(self) -> str:
        """An inner join whose order the planner must keep (SQLite's CROSS JOIN ... ON)."""
        return "JOIN" if self.postgres else "CROSS JOIN"

    def greatest(self, *values: str) -> str:
        """The largest of several values (SQLite's scalar max)."""
        return f"{'GREATEST' if self.postgres else 'MAX'}({', '.join(values)})"

    @property
    def skip_locked(self) -> str:
        """Appended to a SELECT whose rows a transaction claims: other claimants skip them.
        SQLite has one writer at a time and no row locks: nothing to add."""
        return " FOR UPDATE SKIP LOCKED" if self.postgres else ""


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgresql")


# -- the drivers --------------------------------------------------------------------------------


class Driver(Protocol):
    """One connection to one database, and what differs in running it."""

    dialect: Dialect
    #: Where the database is, fit for messages (a path, or a URL without its password).
    name: str

    @property
    def conn(self) -> Connection: ...

    async def setup(self, *, migrate: bool) -> None: ...

    async def begin(self, *, exclusive: bool) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    async def schema_version(self) -> int: ...

    async def set_schema_version(self, version: int) -> None: ...

    def migration(self, script: str) -> list[str]: ...

    async def checkpoint(self) -> None: ...

    async def close(self) -> None: ...

    async def probe_write(self, *, wait: float) -> None: ...

    async def try_lock(self, key: int) -> bool: ...

    async def unlock(self, key: int) -> None: ...

    def errors(self) -> tuple[type[BaseException], ...]: ...


class SqliteDriver:
    """aiosqlite on a file in WAL mode; BEGIN IMMEDIATE takes the database's write lock."""

    dialect = SQLITE

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self.conn = conn
        self.name = path

    @classmethod
    async def open(cls, path: str) -> SqliteDriver:
        if path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder for database {path}: {exc}") from exc
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        return cls(conn, path)

    async def setup(self, *, migrate: bool) -> None:
        # First: switching to WAL waits for another process's transaction (several starting
        # together on a new file). SQLite answers "locked" at once, without its busy handler,
        # when another process is switching too: so the switch is also retried.
        await self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if migrate:
            await self._while_locked("PRAGMA journal_mode=WAL", "switching to WAL")
        await self.conn.execute("PRAGMA foreign_keys=ON")
        await self.conn.execute("PRAGMA synchronous=NORMAL")
        # Erased text is overwritten on disk, not left in free pages (UK GDPR erasure).
        await self.conn.execute("PRAGMA secure_delete=ON")

    async def begin(self, *, exclusive: bool) -> None:
        """BEGIN IMMEDIATE (SQLite has no other kind of writer), waiting while another process
        holds the write lock."""
        await self._while_locked("BEGIN IMMEDIATE", "a write")

    async def _while_locked(self, sql: str, what: str) -> None:
        """Run `sql`, retrying with backoff (beyond SQLite's busy timeout) while another
        process holds the lock it needs; StoreError after BUSY_WAIT seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_WAIT
        pause = 0.05
        while True:
            try:
                await self.conn.execute(sql)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if loop.time() >= deadline:
                    raise StoreError(f"{self.name} stayed locked by another process for "
                                     f"{BUSY_WAIT:.0f} s ({what}): {exc}") from exc
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)

    async def commit(self) -> None:
        await self.conn.execute("COMMIT")

    async def rollback(self) -> None:
        await self.conn.execute("ROLLBACK")

    async def schema_version(self) -> int:
        rows = list(await self.conn.execute_fetchall("PRAGMA user_version"))
        return int(rows[0][0]) if rows else 0

    async def set_schema_version(self, version: int) -> None:
        await self.conn.execute(f"PRAGMA user_version = {int(version)}")

    def migration(self, script: str) -> list[str]:
        return sqlite_statements(script)

    async def checkpoint(self) -> None:
        await self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def close(self) -> None:
        await self.conn.close()

    async def probe_write(self, *, wait: float) -> None:
        if self.name != ":memory:" and not await asyncio.to_thread(Path(self.name).exists):
            raise StoreError(f"{self.name} is gone (deleted or moved while the bot runs)")
        await self.conn.execute(f"PRAGMA busy_timeout={max(1, int(wait * 1000))}")
        try:
            await self.conn.execute("BEGIN IMMEDIATE")
            await self.conn.execute("ROLLBACK")
        finally:
            await self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    async def try_lock(self, key: int) -> bool:
        """Always granted: what needs it (the digest) is settled under BEGIN IMMEDIATE, and
        processes sharing a SQLite file share a host, where a second build is cheap."""
        return True

    async def unlock(self, key: int) -> None:
        return None

    def errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)


class _PgRow:
    """A PostgreSQL row read as sqlite3.Row is: by position, by column name, `dict(row)`."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = tuple(values)

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))!r})"


def _pg_rows(cursor: Any) -> Any:
    """psycopg row factory making `_PgRow`s."""
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return functools.partial(_PgRow, index)


@functools.lru_cache(maxsize=2048)
def to_pyformat(sql: str) -> str:
    """The store's `?` parameters as psycopg's `%s` (a literal % doubled); a `?` inside a
    quoted literal stays."""
    out: list[str] = []
    quoted = False
    for char in sql:
        if char == "'":
            quoted = not quoted
        if char == "%":
            out.append("%%")
        elif char == "?" and not quoted:
            out.append("%s")
        else:
            out.append(char)
    return "".join(out)


class _PgStatement:
    """`conn.execute(...)`, awaited (the cursor) or used as `async with` (closed after)."""

    def __init__(self, conn: Any, sql: str, params: Sequence[Any]) -> None:
        self._run = self._execute(conn, sql, params)
        self._cursor: Any = None

    @staticmethod
    async def _execute(conn: Any, sql: str, params: Sequence[Any]) -> Any:
        cursor = conn.cursor(row_factory=_pg_rows)
        await cursor.execute(to_pyformat(sql), tuple(params))
        return cursor

    def __await__(self) -> Any:
        return self._run.__await__()

    async def __aenter__(self) -> Any:
        self._cursor = await self._run
        return self._cursor

    async def __aexit__(self, *exc: object) -> None:
        await self._cursor.close()


class _PgConnection:
    """A psycopg connection behind the aiosqlite calls the store makes."""

    def __init__(self, conn: Any) -> None:
        self.raw = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> _PgStatement:
        return _PgStatement(self.raw, sql, parameters)

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> None:
        async with self.raw.cursor() as cursor:
            await cursor.executemany(to_pyformat(sql), [tuple(p) for p in parameters])

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] = (), /
                               ) -> list[_PgRow]:
        async with self.execute(sql, parameters) as cursor:
            return list(await cursor.fetchall())


class PostgresDriver:
    """psycopg 3 on a server, autocommit with explicit transactions: READ COMMITTED, and every
    writer but an outbox claim holds the store's writer lock (an advisory lock), so each
    statement of a transaction sees everything committed before it began."""

    dialect = POSTGRES

    def __init__(self, conn: Any, url: str) -> None:
        self.raw = conn
        self.conn = _PgConnection(conn)
        self.name = redact(url)
        #: Whether this connection holds the writer lock (during a transaction).
        self._writer = False

    @classmethod
    async def open(cls, url: str) -> PostgresDriver:
        import psycopg  # a PostgreSQL deployment's dependency, imported when used

        try:
            conn = await psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=10, application_name="conductbot")
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {redact(url)}: "
                             f"{str(exc).strip() or type(exc).__name__}") from exc
        return cls(conn, url)

    async def setup(self, *, migrate: bool) -> None:
        await self.conn.execute("SET TIME ZONE 'UTC'")
        # Waiting this long for a lock is a fault to report, not a hang.
        await self.conn.execute(f"SET lock_timeout = '{int(BUSY_WAIT * 1000)}ms'")

    async def begin(self, *, exclusive: bool) -> None:
        """The writer lock first (a session lock, waited for up to lock_timeout), then BEGIN:
        a transaction begun while waiting would keep the catalog as it was before the last
        writer's commit (its DDL unseen: a migration applied twice)."""
        if exclusive:
            await self.conn.execute("SELECT pg_advisory_lock(?)", (WRITER_LOCK,))
        self._writer = exclusive
        try:
            await self.conn.execute("BEGIN")
        except BaseException:
            await self._release()
            raise

    async def commit(self) -> None:
        try:
            await self.conn.execute("COMMIT")
        finally:
            await self._release()

    async def rollback(self) -> None:
        try:
            await self.conn.execute("ROLLBACK")
        finally:
            await self._release()

    async def _release(self) -> None:
        if self._writer:
            self._writer = False
            await self.conn.execute("SELECT pg_advisory_unlock(?)", (WRITER_LOCK,))

    async def schema_version(self) -> int:
        rows = await self.conn.execute_fetchall(
            "SELECT to_regclass('conductbot_schema') IS NOT NULL")
        if not rows[0][0]:
            return 0
        rows = await self.conn.execute_fetchall("SELECT MAX(version) FROM conductbot_schema")
        return int(rows[0][0] or 0)

    async def set_schema_version(self, version: int) -> None:
        """Inside a migration's transaction, under the writer lock."""
        await self.conn.execute("CREATE TABLE IF NOT EXISTS conductbot_schema ("
                                "version INTEGER NOT NULL)")
        await self.conn.execute("DELETE FROM conductbot_schema")
        await self.conn.execute("INSERT INTO conductbot_schema (version) VALUES (?)",
                                (int(version),))

    def migration(self, script: str) -> list[str]:
        return postgres_ddl(script)

    async def checkpoint(self) -> None:
        # Outside any transaction (VACUUM cannot run in one): the store's serial lock is held.
        await self.conn.execute("VACUUM messages, outbox, inbox")

    async def close(self) -> None:
        await self.raw.close()

    async def probe_write(self, *, wait: float) -> None:
        """BEGIN, take the writer lock within `wait`, ROLLBACK: nothing written."""
        await self.conn.execute("BEGIN")
        try:
            await self.conn.execute(f"SET LOCAL lock_timeout = '{max(1, int(wait * 1000))}ms'")
            await self.conn.execute("SELECT pg_advisory_xact_lock(?)", (WRITER_LOCK,))
            await self.conn.execute("CREATE TEMP TABLE conductbot_probe (x INTEGER) "
                                    "ON COMMIT DROP")
        finally:
            await self.conn.execute("ROLLBACK")

    async def try_lock(self, key: int) -> bool:
        """A session advisory lock, if no other process holds it: whether it was granted."""
        rows = await self.conn.execute_fetchall("SELECT pg_try_advisory_lock(?)", (key,))
        return bool(rows[0][0])

    async def unlock(self, key: int) -> None:
        await self.conn.execute("SELECT pg_advisory_unlock(?)", (key,))

    def errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.Error,)


async def connect(target: Target) -> Driver:
    """A driver for a database target (see `parse_target`)."""
    if is_url(target):
        return await PostgresDriver.open(str(target))
    return await SqliteDriver.open(str(target))


# -- the migrations' statements ------------------------------------------------------------


def sqlite_statements(script: str) -> list[str]:
    """A migration's statements; a trigger's body keeps its inner semicolons."""
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                statements.append(buffer.strip())
            buffer = ""
    return statements


_PG_TYPES = (
    # A SQLite rowid alias is an identity column; copies keep their ids (BY DEFAULT).
    (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    # SQLite's INTEGER is 64-bit; REAL is a double.
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    # Text compares byte by byte, as SQLite's BINARY collation does, whatever the server's
    # locale: timestamps, ids and names sort and match the same on both.
    (re.compile(r"\bTEXT\b"), 'TEXT COLLATE "C"'),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    # An index on a JSON member: the expression the store's queries use (`json_int`).
    (re.compile(r"json_extract\((\w+), '\$\.(\w+)'\)"),
     lambda m: POSTGRES.json_int(m[1], m[2])),
)

#: SQLite statements with no mechanical PostgreSQL counterpart, by the statement's start.
_PG_STATEMENTS = {
    "CREATE TRIGGER audit_log_no_update": [
        "CREATE FUNCTION conductbot_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION conductbot_append_only()",
    ],
}


def postgres_ddl(script: str) -> list[str]:
    """A SQLite migration's statements for PostgreSQL: the same tables, columns, keys and
    indexes, with PostgreSQL's types (and its trigger syntax)."""
    statements: list[str] = []
    for statement in sqlite_statements(script):
        start = " ".join(statement.split()[:3])
        if start in _PG_STATEMENTS:
            statements += _PG_STATEMENTS[start]
            continue
        for pattern, replacement in _PG_TYPES:
            statement = pattern.sub(replacement, statement)
        statements.append(statement.rstrip(";"))
    return statements
