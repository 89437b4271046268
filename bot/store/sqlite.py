"""The aiosqlite store: every SQL statement conductbot runs lives in this package."""

from __future__ import annotations

__all__ = ["Recorded", "Store", "iso", "utcnow"]

import asyncio
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from bot.errors import StoreError
from bot.models import (
    Account,
    Action,
    ActionKind,
    ActionStatus,
    Member,
    MemberStatus,
    Message,
    Platform,
    Role,
    Verdict,
)
from bot.store.migrations import MIGRATIONS, SCHEMA_VERSION


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(moment: datetime, /) -> str:
    """A sortable UTC timestamp for the database."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class Recorded:
    """What `Store.record` wrote: the verdict row and the outbox rows, or nothing (duplicate)."""

    verdict_id: int
    actions: tuple[Action, ...]


class Store:
    """Async SQLite store (WAL). One connection; transactions are serialised by a lock."""

    def __init__(self, db: aiosqlite.Connection, /, *, path: str,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self.path = path
        self.clock = clock
        self._lock = asyncio.Lock()

    @classmethod
    @asynccontextmanager
    async def open(cls, path: str | Path, /, *,
                   clock: Callable[[], datetime] = utcnow) -> AsyncIterator[Store]:
        """Open (creating and migrating as needed) the database at `path`."""
        target = str(path)
        if target != ":memory:":
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder for database {target}: {exc}") from exc
        try:
            db = await aiosqlite.connect(target, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {target}: {exc}") from exc
        try:
            db.row_factory = sqlite3.Row
            store = cls(db, path=target, clock=clock)
            await store._setup()
            yield store
        finally:
            await db.close()

    async def _setup(self) -> None:
        try:
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA foreign_keys=ON")
            await self._db.execute("PRAGMA synchronous=NORMAL")
            await self._db.execute("PRAGMA busy_timeout=5000")
            await self.migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a usable conductbot database: {exc}") from exc

    async def schema_version(self) -> int:
        """The database's PRAGMA user_version."""
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self) -> int:
        """Apply every migration newer than the database; returns the resulting version."""
        current = await self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema version {current}, newer than this "
                             f"conductbot understands ({SCHEMA_VERSION}); upgrade conductbot")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            async with self.transaction() as db:
                for statement in _statements(MIGRATIONS[version - 1]):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {version}")
        return SCHEMA_VERSION

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            else:
                await self._db.execute("COMMIT")

    # -- members ---------------------------------------------------------------------------

    async def member_for(self, platform: Platform, account_id: str, /, *,
                         display_name: str | None = None) -> Member:
        """The member behind a platform account; an unknown account becomes a member of its own."""
        member = await self._member_by_account(platform, account_id)
        if member is not None:
            return member
        async with self.transaction() as db:
            async with db.execute("SELECT member_id FROM accounts WHERE platform=? AND "
                                  "account_id=?", (platform, account_id)) as cur:
                row = await cur.fetchone()
            if row is None:
                member_id = f"m-{uuid.uuid4().hex[:12]}"
                await db.execute(
                    "INSERT INTO members (id, display_name, created_at) VALUES (?, ?, ?)",
                    (member_id, display_name or f"{platform}:{account_id}", iso(self.clock())))
                await db.execute(
                    "INSERT INTO accounts (platform, account_id, member_id, display_name) "
                    "VALUES (?, ?, ?, ?)", (platform, account_id, member_id, display_name))
        member = await self._member_by_account(platform, account_id)
        if member is None:  # pragma: no cover - the row was written just above
            raise StoreError(f"account {platform}:{account_id} vanished after insert")
        return member

    async def _member_by_account(self, platform: Platform, account_id: str) -> Member | None:
        async with self._db.execute(
            "SELECT m.* FROM accounts a JOIN members m ON m.id = a.member_id "
            "WHERE a.platform=? AND a.account_id=?", (platform, account_id)) as cur:
            row = await cur.fetchone()
        return None if row is None else await self._member(row)

    async def _member(self, row: sqlite3.Row) -> Member:
        async with self._db.execute("SELECT platform, account_id FROM accounts WHERE member_id=? "
                                    "ORDER BY platform, account_id", (row["id"],)) as cur:
            accounts = await cur.fetchall()
        return Member(
            id=row["id"],
            display_name=row["display_name"],
            status=MemberStatus(row["status"]),
            roles=frozenset(Role(r) for r in row["roles"].split(",") if r),
            accounts=tuple(Account(Platform(a[0]), a[1]) for a in accounts),
            membership_number=row["membership_number"],
            points=float(row["points"]),
        )

    async def set_member(self, member_id: str, /, *, status: MemberStatus | None = None,
                         roles: Iterable[Role] | None = None) -> None:
        """Change a member's status or roles."""
        async with self.transaction() as db:
            if status is not None:
                await db.execute("UPDATE members SET status=? WHERE id=?", (status, member_id))
            if roles is not None:
                await db.execute("UPDATE members SET roles=? WHERE id=?",
                                 (",".join(sorted(roles)), member_id))

    # -- messages and verdicts ---------------------------------------------------------------

    async def is_decided(self, message: Message, /) -> bool:
        """Whether this (platform, message id, revision) already has a verdict."""
        async with self._db.execute(
            "SELECT 1 FROM messages WHERE platform=? AND message_id=? AND revision=?",
            message.key) as cur:
            return await cur.fetchone() is not None

    async def record(self, message: Message, member: Member, verdict: Verdict,
                     actions: Sequence[Action], /) -> Recorded | None:
        """Write the message (evidence), its verdict and outbox rows in one transaction.

        Returns None, writing nothing, when the message was already recorded.
        """
        now = iso(self.clock())
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT OR IGNORE INTO messages (platform, message_id, revision, channel, "
                "channel_name, author, member_id, text, sent_at, received_at, reply_to, thread) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (message.platform, message.id, message.revision, message.channel,
                 message.channel_name, message.author, member.id, message.text,
                 iso(message.sent_at), now, message.reply_to, message.thread))
            if cur.rowcount == 0:
                return None
            message_row = cur.lastrowid
            cur = await db.execute(
                "INSERT INTO verdicts (message_row, action, severity, categories, rule_ids, "
                "clause, scores, thresholds, model, model_version, policy_version, reasons, "
                "priority, decided_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (message_row, verdict.action, int(verdict.severity),
                 json.dumps(list(verdict.categories)), json.dumps(list(verdict.rule_ids)),
                 verdict.clause, json.dumps(dict(verdict.scores)),
                 json.dumps({k: dict(v) for k, v in verdict.thresholds.items()}),
                 verdict.model, verdict.model_version, verdict.policy_version,
                 json.dumps(list(verdict.reasons)), verdict.priority, now))
            verdict_id = cur.lastrowid
            if verdict_id is None:  # pragma: no cover - sqlite always sets it after INSERT
                raise StoreError("verdict insert returned no row id")
            written = []
            for action in actions:
                cur = await db.execute(
                    "INSERT INTO outbox (verdict_id, kind, platform, channel, message_id, user_id,"
                    " payload, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (verdict_id, action.kind, action.platform, action.channel, action.message_id,
                     action.user, json.dumps(dict(action.payload)), action.status, now, now))
                written.append(replace(action, id=cur.lastrowid))
        return Recorded(verdict_id, tuple(written))

    async def summary(self) -> dict[str, dict[str, int]]:
        """Counts of verdicts per action and per category, over the whole database."""
        actions: dict[str, int] = {}
        async with self._db.execute("SELECT action, COUNT(*) FROM verdicts GROUP BY action") as c:
            for action, n in await c.fetchall():
                actions[action] = n
        categories: dict[str, int] = {}
        async with self._db.execute(
            "SELECT j.value, COUNT(*) FROM verdicts, json_each(verdicts.categories) AS j "
            "GROUP BY j.value ORDER BY COUNT(*) DESC") as c:
            for category, n in await c.fetchall():
                categories[category] = n
        return {"actions": actions, "categories": categories}

    async def verdict_for(self, message: Message, /) -> dict[str, Any] | None:
        """The stored verdict row for a message revision, as a dict."""
        async with self._db.execute(
            "SELECT v.* FROM verdicts v JOIN messages m ON m.id = v.message_row "
            "WHERE m.platform=? AND m.message_id=? AND m.revision=?", message.key) as cur:
            row = await cur.fetchone()
        return None if row is None else dict(row)

    # -- outbox ------------------------------------------------------------------------------

    async def pending_actions(self, *, platform: Platform | None = None,
                              limit: int = 100) -> list[Action]:
        """Outbox rows waiting to be executed (oldest first), skipping those told to wait."""
        sql = ("SELECT * FROM outbox WHERE status='pending' AND (not_before IS NULL OR "
               "not_before <= ?)")
        params: list[Any] = [iso(self.clock())]
        if platform is not None:
            sql += " AND platform=?"
            params.append(platform)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        async with self._db.execute(sql, params) as cur:
            rows = await cur.fetchall()
        return [_action(row) for row in rows]

    async def actions(self, *, verdict_id: int | None = None) -> list[Action]:
        """Outbox rows, all or of one verdict, in order."""
        sql, params = "SELECT * FROM outbox", ()  # type: tuple[str, tuple[int, ...]]
        if verdict_id is not None:
            sql, params = sql + " WHERE verdict_id=?", (verdict_id,)
        async with self._db.execute(sql + " ORDER BY id", params) as cur:
            return [_action(row) for row in await cur.fetchall()]

    async def mark_action(self, action_id: int, /, *, status: ActionStatus,
                          error: str | None = None, retry_at: datetime | None = None) -> None:
        """Write back an outbox row's result; `retry_at` keeps it pending until then."""
        async with self.transaction() as db:
            await db.execute(
                "UPDATE outbox SET status=?, error=?, not_before=?, attempts=attempts+1, "
                "updated_at=? WHERE id=?",
                (status, error, iso(retry_at) if retry_at else None, iso(self.clock()),
                 action_id))


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _action(row: sqlite3.Row) -> Action:
    return Action(
        kind=ActionKind(row["kind"]),
        platform=Platform(row["platform"]),
        channel=row["channel"],
        message_id=row["message_id"],
        user=row["user_id"],
        payload=json.loads(row["payload"]),
        id=row["id"],
        status=ActionStatus(row["status"]),
        attempts=row["attempts"],
        error=row["error"],
    )
