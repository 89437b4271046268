"""The store, on SQLite or PostgreSQL (`bot.store.driver`): every SQL statement conductbot runs
lives in this package."""

from __future__ import annotations

__all__ = ["CaseDraft", "Recorded", "StaleStanding", "Store", "iso", "standing_token",
           "utcnow"]

import asyncio
import json
import os
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.actions import with_case
from bot.database import Target
from bot.errors import StoreError
from bot.models import (
    Account,
    Action,
    ActionKind,
    ActionStatus,
    Case,
    CaseState,
    Member,
    MemberStatus,
    Message,
    Platform,
    Role,
    Verdict,
)
from bot.register import display_name as shown_name
from bot.store.backup import (
    AUDITED_FROM,
    BackupReport,
    check_copy,
    check_target,
    publish,
    seal,
    staging_path,
)
from bot.store.digest_queries import DigestRows, digest_rows
from bot.store.driver import (
    DIGEST_LOCK,
    Connection,
    Dialect,
    Driver,
    SqliteDriver,
    connect,
)
from bot.store.health_queries import StoreFigures, store_figures
from bot.store.migrations import MIGRATIONS, SCHEMA_VERSION
from bot.store.transparency_queries import TransparencyRows, transparency_rows


class StaleStanding(StoreError):
    """A decision read a member's strikes that another process has changed since."""


def standing_token(strikes: Iterable[Mapping[str, Any]], /) -> tuple[Any, ...]:
    """What a member's unpardoned strikes (`Store.strikes` rows) come to, for `Store.record`
    to see whether they changed between reading them and writing the verdict."""
    return tuple((s["id"], float(s["points"]), bool(s["pending"]), s["step"]) for s in strikes)


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
    """What `Store.record` wrote: the verdict row, the outbox rows and the case, if any."""

    verdict_id: int
    actions: tuple[Action, ...]
    case_id: int | None = None


@dataclass(frozen=True, slots=True)
class CaseDraft:
    """A case to open in the same transaction as whatever caused it."""

    kind: str
    summary: str
    opened_by: str
    priority: int = 0
    clause: str | None = None
    automatic: bool = False
    state: CaseState = CaseState.OPEN
    proposal: Mapping[str, Any] | None = None


class _TaskLock:
    """An asyncio lock the task holding it may take again (a read inside a transaction)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None

    @asynccontextmanager
    async def hold(self, *, wait: float | None = None) -> AsyncIterator[None]:
        """Hold the lock; with `wait`, TimeoutError when it is not free within `wait` s."""
        me = asyncio.current_task()
        if me is not None and self._owner is me:
            yield
            return
        # A timeout cancels only the wait: Lock.acquire takes nothing when cancelled.
        async with asyncio.timeout(wait):
            await self._lock.acquire()
        try:
            self._owner = me
            yield
        finally:
            self._owner = None
            self._lock.release()


#: How long a process's claim on an outbox row lasts: longer than any one platform call takes,
#: short enough that another process takes over soon after this one dies.
OUTBOX_LEASE = timedelta(minutes=2)
#: How long the spam checks remember a message (`spam_events`): longer than any window a
#: policy may set (`[spam]` windows are at most a day).
SPAM_MEMORY = timedelta(days=1)


class Store:
    """The async store over one database connection (`bot.store.driver`: SQLite by default,
    PostgreSQL by URL), with one writer discipline: every read and every transaction of this
    process is serialised by one lock, so no read ever holds a snapshot while a transaction
    starts (the cause of SQLite's "database is locked" with no wait); transactions hold the
    database's writer lock, waiting for another process's with backoff."""

    def __init__(self, driver: Driver, /, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._driver = driver
        self._db = driver.conn
        self.dialect = driver.dialect
        #: Where the database is, fit for messages: a path, or a URL without its password.
        self.path = driver.name
        self._members = _members_sql(self.dialect)
        self.clock = clock
        self._serial = _TaskLock()
        #: Recorded with every audit entry that does not name its own policy version.
        self.policy_version: str | None = None
        #: Who this process is when it claims outbox rows (several may share the database).
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @classmethod
    @asynccontextmanager
    async def open(cls, target: Target, /, *, clock: Callable[[], datetime] = utcnow,
                   migrate: bool = True) -> AsyncIterator[Store]:
        """Open (creating and migrating as needed) the database at `target`: a SQLite file's
        path, or a postgresql:// URL. With ``migrate=False`` as found, schema and journal mode
        untouched (a backup copies it as it is, even one an older or newer conductbot made)."""
        driver = await connect(target)
        try:
            store = cls(driver, clock=clock)
            await store._setup(migrate=migrate)
            yield store
        finally:
            await driver.close()

    @property
    def postgres(self) -> bool:
        """Whether the store is on PostgreSQL (several hosts may share it)."""
        return self.dialect.postgres

    async def _setup(self, *, migrate: bool = True) -> None:
        try:
            await self._driver.setup(migrate=migrate)
            if migrate:
                await self.migrate()
            else:  # still fail here, not later, on a file that is no database
                await self.schema_version()
        except self._driver.errors() as exc:
            raise StoreError(f"{self.path} is not a usable conductbot database: {exc}") from exc

    async def checkpoint(self) -> None:
        """After an erasure or retention, and before a backup: on SQLite, fold the write-ahead
        log into the database file and empty it (no erased text stays behind in the WAL); on
        PostgreSQL, vacuum the tables that held text, so the erased row versions are removed
        now rather than whenever autovacuum comes."""
        async with self._serial.hold():
            await self._driver.checkpoint()

    async def backup(self, target: str | Path, /, *, force: bool = False,
                     actor: str = "operator") -> BackupReport:
        """Copy the database into `target` with SQLite's online backup API, safe while other
        connections write: one step, so one read snapshot; written beside `target`, checked
        (integrity, schema version) and renamed into place; refused over an existing file
        unless `force`. Audited (from schema version 2, which has the audit log)."""
        if not isinstance(self._driver, SqliteDriver):
            raise StoreError("bot.py backup copies a SQLite file; back a PostgreSQL store up "
                             "with the server's own tools (pg_dump, or continuous archiving)")
        target = Path(target)
        check_target(target, source=Path(self.path), force=force)
        staging = staging_path(target)
        try:
            copy = await asyncio.to_thread(sqlite3.connect, staging, check_same_thread=False)
            try:
                # Under the lock: never in the middle of one of this connection's own
                # transactions. SQLite answers the backup "busy" until that transaction ends,
                # which it could not while the backup holds the connection: a hang.
                async with self._serial.hold():
                    version = await self.schema_version()
                    await self._driver.conn.backup(copy)
            finally:
                await asyncio.to_thread(seal, copy)
            rows = await asyncio.to_thread(check_copy, staging, schema_version=version)
            size = staging.stat().st_size
            await asyncio.to_thread(publish, staging, target, force=force)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot back {self.path} up to {target}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
        finally:
            staging.unlink(missing_ok=True)
        if version >= AUDITED_FROM:
            # Backups hold members' words beyond the reach of erasure and retention: the
            # compliance unit must be able to see that, when and where one was made.
            await self.audit(actor=actor, action="backup", detail={
                "file": str(target.resolve()), "bytes": size, "schema_version": version})
        return BackupReport(path=target, size=size, schema_version=version, rows=rows)

    async def schema_version(self) -> int:
        """The database's schema version (SQLite: PRAGMA user_version; PostgreSQL: the
        conductbot_schema table)."""
        async with self._serial.hold():
            return await self._driver.schema_version()

    async def migrate(self) -> int:
        """Apply every migration newer than the database; returns the resulting version."""
        current = await self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema version {current}, newer than this "
                             f"conductbot understands ({SCHEMA_VERSION}); upgrade conductbot")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            async with self.transaction() as db:
                # Under the writer lock: another process starting at the same moment may
                # have applied it while this one waited for the lock.
                if await self._driver.schema_version() >= version:
                    continue
                for statement in self._driver.migration(MIGRATIONS[version - 1]):
                    await db.execute(statement)
                await self._driver.set_schema_version(version)
        return SCHEMA_VERSION

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[Connection]:
        """The connection, for reads, never while a transaction of another task is open."""
        async with self._serial.hold():
            yield self._db

    async def _read(self, sql: str, params: Sequence[Any] = (), /) -> list[Any]:
        """Every row a query returns, read between transactions (one trip to the
        connection's thread, where execute, fetch and close would be three)."""
        async with self._reading() as db:
            return list(await db.execute_fetchall(sql, params))

    async def _read_one(self, sql: str, params: Sequence[Any] = (), /) -> Any:
        """A query's first row (callers look rows up by key), read between transactions."""
        rows = await self._read(sql, params)
        return rows[0] if rows else None

    @asynccontextmanager
    async def transaction(self, *, exclusive: bool = True) -> AsyncIterator[Connection]:
        """A transaction holding the database's writer lock, rolled back on any error. Not
        `exclusive`: without PostgreSQL's writer lock, for a transaction that takes row locks
        itself (SQLite has only the one kind)."""
        async with self._serial.hold():
            await self._driver.begin(exclusive=exclusive)
            try:
                yield self._db
            except BaseException:
                await self._driver.rollback()
                raise
            else:
                await self._driver.commit()

    @asynccontextmanager
    async def exclusive(self, job: str, /) -> AsyncIterator[bool]:
        """Whether this process may run `job` now (the weekly digest): on PostgreSQL a session
        advisory lock no other process holds, granted or refused at once."""
        key = {"digest": DIGEST_LOCK}[job]
        async with self._serial.hold():  # only to take it: other tasks go on meanwhile
            granted = await self._driver.try_lock(key)
        try:
            yield granted
        finally:
            if granted:
                async with self._serial.hold():
                    await self._driver.unlock(key)

    # -- members ---------------------------------------------------------------------------

    async def member_for(self, platform: Platform, account_id: str, /, *,
                         display_name: str | None = None) -> Member:
        """The member behind a platform account; an unknown account becomes a member of its own.
        A display name from a platform is stored as the bot shows it (`display_name`)."""
        display_name = shown_name(display_name) if display_name else None
        member = await self.member_by_account(platform, account_id)
        if member is not None:
            if display_name:
                await self._remember_handle(platform, account_id, display_name)
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
        member = await self.member_by_account(platform, account_id)
        if member is None:  # pragma: no cover - the row was written just above
            raise StoreError(f"account {platform}:{account_id} vanished after insert")
        return member

    async def _remember_handle(self, platform: Platform, account_id: str, name: str) -> None:
        # Moderators look members up by the handle they see on the platform.
        row = await self._read_one("SELECT display_name FROM accounts WHERE platform=? AND "
                                   "account_id=?", (platform, account_id))
        if row is not None and row[0] != name:
            async with self.transaction() as db:
                await db.execute("UPDATE accounts SET display_name=? WHERE platform=? AND "
                                 "account_id=?", (name, platform, account_id))

    async def member_by_account(self, platform: Platform, account_id: str, /
                                ) -> Member | None:
        """The member an account is linked to; None for an account never seen (nothing is
        created)."""
        row = await self._read_one(
            f"{self._members} WHERE m.id = (SELECT member_id FROM accounts WHERE platform=? AND "
            "account_id=?)", (platform, account_id))
        return None if row is None else _member(row)

    # -- messages and verdicts ---------------------------------------------------------------

    async def is_decided(self, message: Message, /) -> bool:
        """Whether this (platform, message id, revision) already has a verdict."""
        return bool(await self.decided([message]))

    async def decided(self, messages: Sequence[Message], /) -> set[tuple[str, str, int]]:
        """The keys (`Message.key`) of those messages that already have a verdict, in one
        query per few hundred messages."""
        found: set[tuple[str, str, int]] = set()
        for start in range(0, len(messages), _KEYS_PER_QUERY):
            keys = [m.key for m in messages[start:start + _KEYS_PER_QUERY]]
            rows = await self._read(
                "SELECT platform, message_id, revision FROM messages WHERE "
                f"(platform, message_id, revision) IN (VALUES {','.join(['(?,?,?)'] * len(keys))})",
                [part for key in keys for part in key])
            found.update((str(r[0]), str(r[1]), int(r[2])) for r in rows)
        return found

    async def record(self, message: Message, member: Member, verdict: Verdict,
                     actions: Sequence[Action], /, *, strike: float = 0.0,
                     strike_pending: bool = False, step: float | None = None,
                     case: CaseDraft | None = None,
                     spam_events: Sequence[tuple[str, str]] = (),
                     standing: tuple[Any, ...] | None = None) -> Recorded | None:
        """Write the message (evidence), verdict, case, strike, outbox rows and audit entry.

        All in one transaction; returns None, writing nothing, when the message was already
        recorded. Escalation rows carry the case number assigned here. A pending strike
        counts only once its case is upheld (``update_case(confirm_strikes=True)``).
        `standing` (`standing_token` of the strikes the decision read): StaleStanding,
        writing nothing, when the member's strikes changed since (another process).
        """
        now = iso(self.clock())
        async with self.transaction() as db:
            message_row = await _insert(
                db, "INSERT INTO messages (platform, message_id, revision, channel, "
                "channel_name, author, member_id, text, sent_at, received_at, reply_to, thread) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (message.platform, message.id, message.revision, message.channel,
                 message.channel_name, message.author, member.id, message.text,
                 iso(message.sent_at), now, message.reply_to, message.thread))
            if message_row is None:
                return None
            if standing is not None and standing != await self._standing(db, member.id):
                # Another process gave this member strikes (or took them) since `standing`
                # was read: the ladder step would be wrong. Nothing written; decide again.
                raise StaleStanding(member.id)
            verdict_id = await _insert(db,
                "INSERT INTO verdicts (message_row, action, severity, categories, rule_ids, "
                "clause, scores, thresholds, model, model_version, policy_version, reasons, "
                "priority, decided_at, mode) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (message_row, verdict.action, int(verdict.severity),
                 json.dumps(list(verdict.categories)), json.dumps(list(verdict.rule_ids)),
                 verdict.clause, json.dumps(dict(verdict.scores)),
                 json.dumps({k: dict(v) for k, v in verdict.thresholds.items()}),
                 verdict.model, verdict.model_version, verdict.policy_version,
                 json.dumps(list(verdict.reasons)), verdict.priority, now, verdict.mode))
            if spam_events:  # what this message counts towards (bot.spam)
                await db.executemany(
                    "INSERT INTO spam_events (kind, key, member_id, at) VALUES (?,?,?,?)",
                    [(kind, key, member.id, iso(message.sent_at)) for kind, key in spam_events])
            case_id = None
            if case is not None:
                case_id = await self._open_case(db, member.id, case, now)
                await db.execute("INSERT INTO case_messages (case_id, message_row, verdict_id) "
                                 "VALUES (?,?,?)", (case_id, message_row, verdict_id))
            if strike:
                await db.execute(
                    "INSERT INTO strikes (member_id, case_id, verdict_id, points, reason, at, "
                    "pending, step) VALUES (?,?,?,?,?,?,?,?)",
                    (member.id, case_id, verdict_id, strike,
                     f"{verdict.action} under clause {verdict.clause}", now,
                     int(strike_pending), step))
            written = await self._outbox(db, actions, now, verdict_id=verdict_id,
                                         case_id=case_id)
            await self._audit(db, now, actor="bot", action=f"verdict:{verdict.action}",
                              member_id=member.id, case_id=case_id,
                              reason="; ".join(verdict.reasons) or None,
                              policy_version=verdict.policy_version,
                              model_version=f"{verdict.model} {verdict.model_version}",
                              detail={"message": f"{message.platform}:{message.id}",
                                      "channel": message.channel_name or message.channel,
                                      "mode": str(verdict.mode),
                                      "revision": message.revision, "strike": strike,
                                      "strike_pending": strike_pending,
                                      "rule_ids": list(verdict.rule_ids)})
        assert verdict_id is not None
        return Recorded(verdict_id, tuple(written), case_id)

    async def _outbox(self, db: Connection, actions: Sequence[Action], now: str, *,
                      verdict_id: int | None, case_id: int | None,
                      not_before: datetime | None = None) -> list[Action]:
        written = []
        for action in actions:
            if case_id is not None:
                action = with_case(action, case_id)
            payload = dict(action.payload)
            row_id = await _insert(
                db, "INSERT INTO outbox (verdict_id, kind, platform, channel, message_id, "
                "user_id, payload, status, not_before, created_at, updated_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (verdict_id, action.kind, action.platform, action.channel, action.message_id,
                 action.user, json.dumps(payload), action.status,
                 iso(not_before) if not_before else None, now, now))
            written.append(replace(action, id=row_id, payload=payload))
        return written

    async def verdict_for(self, message: Message, /) -> dict[str, Any] | None:
        """The stored verdict row for a message revision, as a dict."""
        row = await self._read_one(
            "SELECT v.* FROM verdicts v JOIN messages m ON m.id = v.message_row "
            "WHERE m.platform=? AND m.message_id=? AND m.revision=?", message.key)
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
        rows = await self._read(sql, params)
        return [_action(row) for row in rows]

    async def claim_actions(self, platform: Platform, /, *, limit: int = 100,
                            lease: timedelta = OUTBOX_LEASE) -> list[Action]:
        """Claim the platform's due outbox rows for this process (oldest first) and return
        them: rows another process holds are skipped until its lease runs out (a process
        that died mid-run), so each action is executed by one process. The claim ends when
        the row's result is written (`mark_action`) or it is let go (`release_action`)."""
        now = self.clock()
        claimable = ("SELECT id FROM outbox WHERE status='pending' AND platform=? AND "
                     "(not_before IS NULL OR not_before <= ?) AND "
                     "(claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT ?")
        params = (platform, iso(now), iso(now), limit)
        # Most runs (one after every event) find nothing: a read, not a transaction.
        if not await self._read(claimable, params):
            return []
        # SQLite: BEGIN IMMEDIATE holds the database's one write lock, so no other process
        # claims between the select and the update. PostgreSQL: the selected rows are locked,
        # and rows another process is claiming right now are skipped, not waited for.
        async with self.transaction(exclusive=False) as db, db.execute(
                "UPDATE outbox SET claimed_by=?, claimed_until=? WHERE id IN ("
                f"{claimable}{self.dialect.skip_locked}) RETURNING *",
                (self.owner, iso(now + lease), *params)) as cur:
            rows = list(await cur.fetchall())
        return sorted((_action(row) for row in rows), key=lambda a: a.id or 0)

    async def release_action(self, action_id: int, /) -> None:
        """Let go of a claimed row without a result (it must wait for another to finish)."""
        async with self.transaction() as db:
            await db.execute("UPDATE outbox SET claimed_by=NULL, claimed_until=NULL "
                             "WHERE id=? AND claimed_by=?", (action_id, self.owner))

    async def next_due(self, platform: Platform, /) -> datetime | None:
        """When the platform's earliest pending row that was told to wait becomes due (a
        rate-limited retry, a Slack timeout's end); None when no row waits."""
        rows = await self._read("SELECT MIN(not_before) FROM outbox WHERE status='pending' "
                                "AND platform=? AND not_before IS NOT NULL", (platform,))
        due = rows[0][0] if rows else None
        return datetime.fromisoformat(due) if due else None

    async def actions(self, *, verdict_id: int | None = None,
                      case_id: int | None = None) -> list[Action]:
        """Outbox rows, all or of one verdict or one case, in order."""
        sql, params = "SELECT * FROM outbox", ()  # type: tuple[str, tuple[int, ...]]
        if verdict_id is not None:
            sql, params = sql + " WHERE verdict_id=?", (verdict_id,)
        elif case_id is not None:
            sql, params = sql + f" WHERE {self.dialect.json_int('payload', 'case')}=?", \
                (case_id,)
        return [_action(row) for row in await self._read(sql + " ORDER BY id", params)]

    async def note_progress(self, action_id: int, /, **done: Any) -> None:
        """Merge `done` into an outbox row's payload: the parts of an action already carried
        out, so that a retry does not repeat them (a Slack notice's ephemeral part)."""
        async with self.transaction() as db:
            async with db.execute("SELECT payload FROM outbox WHERE id=?", (action_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise StoreError(f"there is no outbox row {action_id}")
            await db.execute("UPDATE outbox SET payload=?, updated_at=? WHERE id=?",
                             (json.dumps(json.loads(row[0]) | done), iso(self.clock()),
                              action_id))

    async def mark_action(self, action_id: int, /, *, status: ActionStatus,
                          error: str | None = None, retry_at: datetime | None = None) -> None:
        """Write back an outbox row's result (audited); `retry_at` keeps it pending until then."""
        now = iso(self.clock())
        async with self.transaction() as db:
            await db.execute(
                "UPDATE outbox SET status=?, error=?, not_before=?, attempts=attempts+1, "
                "updated_at=?, claimed_by=NULL, claimed_until=NULL WHERE id=?",
                (status, error, iso(retry_at) if retry_at else None, now, action_id))
            if status is not ActionStatus.PENDING:
                async with db.execute(
                    "SELECT o.kind, o.platform, o.message_id, o.user_id, o.verdict_id, "
                    f"{self.dialect.json_int('o.payload', 'case')} AS case_id, m.member_id "
                    "FROM outbox o "
                    "LEFT JOIN verdicts v ON v.id=o.verdict_id "
                    "LEFT JOIN messages m ON m.id=v.message_row WHERE o.id=?",
                    (action_id,)) as cur:
                    row = await cur.fetchone()
                if row is not None:
                    await self._audit(db, now, actor="bot",
                                      action=f"platform:{row['kind']}:{status}",
                                      member_id=row["member_id"], case_id=row["case_id"],
                                      reason=error, detail={
                                          "platform": row["platform"], "user": row["user_id"],
                                          "message": row["message_id"], "outbox": action_id})

    # -- members, standing -------------------------------------------------------------------

    async def get_member(self, member_id: str, /) -> Member | None:
        """A member by internal id."""
        row = await self._read_one(f"{self._members} WHERE m.id=?", (member_id,))
        return None if row is None else _member(row)

    async def moderator_accounts(self, platform: Platform, /) -> list[str]:
        """The accounts on `platform` of moderators in good standing (to reach them directly)."""
        return [r[0] for r in await self._read(
                "SELECT a.account_id FROM accounts a JOIN members m ON m.id=a.member_id "
                "WHERE a.platform=? AND m.status='active' AND (',' || m.roles || ',') LIKE "
                "'%,moderator,%' ORDER BY a.account_id", (platform,))]

    async def find_members(self, ref: str, /) -> list[Member]:
        """Members matching an internal id, membership number, PLATFORM:ACCOUNT or a name."""
        ref = ref.strip()
        queries: list[tuple[str, tuple[str, ...]]] = [
            (f"{self._members} WHERE m.id=?", (ref,)),
            (f"{self._members} WHERE m.membership_number=?", (ref.upper(),)),
        ]
        platform, _, account = ref.partition(":")
        if account and platform in {p.value for p in Platform}:
            queries.append((f"{self._members} WHERE m.id = (SELECT member_id FROM accounts WHERE "
                            "platform=? AND account_id=?)", (platform, account)))
        queries.append((f"{self._members} WHERE lower(m.display_name)=lower(?) ORDER BY m.id",
                        (ref,)))
        queries.append((f"{self._members} WHERE m.id IN (SELECT member_id FROM accounts WHERE "
                        "lower(display_name)=lower(?)) ORDER BY m.id", (ref.lstrip("@"),)))
        for sql, params in queries:
            rows = await self._read(sql, params)
            if rows:
                return [_member(r) for r in rows]
        return []

    async def strikes(self, member_id: str, /, *, include_pardoned: bool = False
                      ) -> list[dict[str, Any]]:
        """A member's strikes, oldest first."""
        sql = "SELECT * FROM strikes WHERE member_id=?"
        if not include_pardoned:
            sql += " AND pardoned_at IS NULL"
        rows = [dict(r) for r in await self._read(sql + " ORDER BY at, id", (member_id,))]
        for row in rows:
            row["at"] = _dt(row["at"])
        return rows

    async def _standing(self, db: Connection, member_id: str, /) -> tuple[Any, ...]:
        """`standing_token` of the member's strikes as they are now, inside a transaction."""
        rows = await db.execute_fetchall("SELECT id, points, pending, step FROM strikes WHERE "
                                         "member_id=? AND pardoned_at IS NULL ORDER BY at, id",
                                         (member_id,))
        return standing_token(dict(r) for r in rows)

    async def set_status(self, member_id: str, /, *, status: MemberStatus, actor: str,
                         reason: str | None, since: datetime | None = None,
                         until: datetime | None = None, case_id: int | None = None,
                         actions: Sequence[Action] = (),
                         cancel: Iterable[ActionKind] = ()) -> None:
        """Change a member's status (suspension dates only for suspended), with an audit entry,
        in one transaction with `actions` queued and the member's pending outbox rows of the
        `cancel` kinds cancelled (a reinstated member's suspension renewals)."""
        now = iso(self.clock())
        suspended = status is MemberStatus.SUSPENDED
        async with self.transaction() as db:
            await db.execute(
                "UPDATE members SET status=?, status_reason=?, suspended_from=?, "
                "suspended_until=?, updated_at=? WHERE id=?",
                (status, reason, iso(since) if suspended and since else None,
                 iso(until) if suspended and until else None, now, member_id))
            for kind in cancel:
                await db.execute(
                    "UPDATE outbox SET status=?, error=?, updated_at=? WHERE status='pending' "
                    "AND kind=? AND EXISTS (SELECT 1 FROM accounts a WHERE a.member_id=? AND "
                    "a.platform=outbox.platform AND a.account_id=outbox.user_id)",
                    (ActionStatus.CANCELLED, f"status {status}: {reason}", now, kind,
                     member_id))
            await self._outbox(db, actions, now, verdict_id=None, case_id=case_id)
            await self._audit(db, now, actor=actor, action=f"status:{status}",
                              member_id=member_id, case_id=case_id, reason=reason,
                              detail={"until": iso(until) if until else None})

    async def set_roles(self, member_id: str, /, roles: Iterable[Role], *, actor: str) -> None:
        """Replace a member's roles, with an audit entry."""
        now = iso(self.clock())
        joined = ",".join(sorted(roles))
        async with self.transaction() as db:
            await db.execute("UPDATE members SET roles=?, updated_at=? WHERE id=?",
                             (joined, now, member_id))
            await self._audit(db, now, actor=actor, action="roles", member_id=member_id,
                              detail={"roles": joined})

    async def unlink_account(self, platform: Platform, account_id: str, /, *, actor: str
                             ) -> str:
        """Detach an account from its member (a wrong link); returns that member's id. The
        account's messages and cases stay with the member; the account, next seen, is a member
        of its own until linked again."""
        now = iso(self.clock())
        async with self.transaction() as db:
            async with db.execute("SELECT member_id FROM accounts WHERE platform=? AND "
                                  "account_id=?", (platform, account_id)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise StoreError(f"{platform}:{account_id} is not linked to any member")
            await db.execute("DELETE FROM accounts WHERE platform=? AND account_id=?",
                             (platform, account_id))
            await self._audit(db, now, actor=actor, action="unlink", member_id=row[0],
                              detail={"account": f"{platform}:{account_id}"})
        return str(row[0])

    async def link_account(self, member_id: str, platform: Platform, account_id: str, /, *,
                           actor: str) -> str | None:
        """Link an account to a member; an account that was a member of its own is merged in.

        Returns the id of the member merged away (history moves with it), or None. Raises
        StoreError when the account belongs to another registered member.
        """
        now = iso(self.clock())
        async with self.transaction() as db:
            async with db.execute("SELECT member_id FROM accounts WHERE platform=? AND "
                                  "account_id=?", (platform, account_id)) as cur:
                row = await cur.fetchone()
            merged: str | None = None
            if row is None:
                await db.execute("INSERT INTO accounts (platform, account_id, member_id) "
                                 "VALUES (?,?,?)", (platform, account_id, member_id))
            elif row[0] == member_id:
                return None
            else:
                other = row[0]
                async with db.execute(
                    "SELECT membership_number, (SELECT COUNT(*) FROM accounts WHERE "
                    "member_id=?) FROM members WHERE id=?", (other, other)) as cur:
                    number, n_accounts = await cur.fetchone() or (None, 0)
                if number is not None or n_accounts > 1:
                    raise StoreError(f"{platform}:{account_id} is already linked to another "
                                     f"member ({other}); unlink it there first")
                await _merge_member(db, into=member_id, other=other)
                merged = other
            await self._audit(db, now, actor=actor, action="link", member_id=member_id,
                              detail={"account": f"{platform}:{account_id}",
                                      "merged_member": merged})
        return merged

    async def import_member(self, *, membership_number: str, name: str, status: MemberStatus,
                            roles: Iterable[Role], reason: str | None,
                            suspended_from: datetime | None, suspended_until: datetime | None,
                            accounts: Sequence[tuple[Platform, str]], actor: str,
                            exported_at: datetime | None = None) -> list[str]:
        """Create or update one register row in one transaction; returns what changed.

        Accounts already linked to another registered member are refused (StoreError) and the
        whole row is left unimported. A status a moderator set in the bot after the register
        was exported (`exported_at`; None: at any time) is never silently overridden: the
        stricter of the two stays, the conflict is reported ("conflict ...") and a case is
        opened for a moderator (once while it is open).
        """
        now = iso(self.clock())
        changes: list[str] = []
        joined = ",".join(sorted(roles))
        async with self.transaction() as db:
            async with db.execute("SELECT * FROM members WHERE membership_number=?",
                                  (membership_number,)) as cur:
                row = await cur.fetchone()
            if row is None:
                member_id = f"m-{uuid.uuid4().hex[:12]}"
                await db.execute(
                    "INSERT INTO members (id, display_name, membership_number, created_at) "
                    "VALUES (?,?,?,?)", (member_id, name, membership_number, now))
                changes.append("new")
                old: dict[str, Any] = {"status": "active", "roles": "", "display_name": name,
                                       "suspended_until": None, "status_reason": None}
            else:
                member_id = row["id"]
                old = dict(row)
            wanted = {"display_name": name, "status": status.value, "roles": joined,
                      "status_reason": reason,
                      "suspended_from": iso(suspended_from) if suspended_from else None,
                      "suspended_until": iso(suspended_until) if suspended_until else None}
            if row is not None:
                conflict = await self._register_conflict(db, member_id, old, wanted, now,
                                                         exported_at=exported_at, actor=actor)
                if conflict is not None:
                    note, keep_bots = conflict
                    changes.append(note)
                    if keep_bots:
                        wanted.update({k: old.get(k) for k in _STATUS_FIELDS})
            differs = [k for k, v in wanted.items() if old.get(k) != v]
            if differs:
                await db.execute(
                    "UPDATE members SET display_name=?, status=?, roles=?, status_reason=?, "
                    "suspended_from=?, suspended_until=?, updated_at=? WHERE id=?",
                    (*wanted.values(), now, member_id))
                if row is not None:
                    changes.append("updated")
                if old.get("status") != status.value and row is not None:
                    changes.append(f"status {old.get('status')} -> {status.value}")
            for platform, account_id in accounts:
                async with db.execute("SELECT a.member_id, m.membership_number FROM accounts a "
                                      "JOIN members m ON m.id=a.member_id WHERE a.platform=? "
                                      "AND a.account_id=?", (platform, account_id)) as cur:
                    linked = await cur.fetchone()
                if linked is None:
                    await db.execute("INSERT INTO accounts (platform, account_id, member_id) "
                                     "VALUES (?,?,?)", (platform, account_id, member_id))
                    changes.append(f"linked {platform}:{account_id}")
                elif linked[0] != member_id:
                    if linked[1] is not None:
                        raise StoreError(f"{platform}:{account_id} is linked to member "
                                         f"{linked[1]}")
                    await _merge_member(db, into=member_id, other=linked[0])
                    changes.append(f"linked {platform}:{account_id} (merged its history)")
            if changes:
                await self._audit(db, now, actor=actor, action="register-import",
                                  member_id=member_id, reason=reason,
                                  detail={"changes": changes})
        return changes

    async def _register_conflict(self, db: Connection, member_id: str,
                                 old: Mapping[str, Any], wanted: Mapping[str, Any], now: str, *,
                                 exported_at: datetime | None, actor: str
                                 ) -> tuple[str, bool] | None:
        """A register row against a status a moderator set after the export, if they differ:
        (what to report, whether the bot's status stays). The stricter status stays; a case is
        opened unless one about this conflict is still open."""
        if all(old.get(k) == wanted[k] for k in ("status", "suspended_until")):
            return None
        async with db.execute(
                "SELECT at, actor FROM audit_log WHERE member_id=? AND action LIKE 'status:%' "
                "ORDER BY id DESC LIMIT 1", (member_id,)) as cur:
            last = await cur.fetchone()
        # The bot's own status changes (a suspension ending on time) follow the register's
        # dates; a register import is the register itself.
        if last is None or last["actor"] == "bot" or last["actor"].startswith("register:") \
                or (exported_at is not None and last["at"] <= iso(exported_at)):
            return None
        bots, registers = MemberStatus(old["status"]), MemberStatus(wanted["status"])
        keep_bots = (bots.strictness, _until_key(old.get("suspended_until"))) >= (
            registers.strictness, _until_key(wanted["suspended_until"]))

        def said(status: MemberStatus, until: str | None) -> str:
            return f"{status} until {until[:16]}" if until else str(status)

        bot_said = said(bots, old.get("suspended_until"))
        register_said = said(registers, wanted["suspended_until"])
        kept = f"kept the bot's {bot_said}" if keep_bots else f"kept the register's {register_said}"
        summary = (f"register conflict: the register export says {register_said}; "
                   f"{last['actor']} set {bot_said} on {last['at'][:16]}, after the export; "
                   f"{kept}")
        async with db.execute("SELECT id FROM cases WHERE member_id=? AND kind='register' "
                              "AND state IN ('open', 'assigned')", (member_id,)) as cur:
            open_case = await cur.fetchone()
        case_id = open_case[0] if open_case else await self._open_case(
            db, member_id, CaseDraft("register", summary, actor, priority=1), now)
        await self._audit(db, now, actor=actor, action="register-conflict",
                          member_id=member_id, case_id=case_id, reason=summary)
        return f"conflict (case {case_id}): {summary.removeprefix('register conflict: ')}", \
            keep_bots

    # -- cases --------------------------------------------------------------------------------

    async def _open_case(self, db: Connection, member_id: str, draft: CaseDraft,
                         now: str) -> int:
        case_id = await _insert(
            db, "INSERT INTO cases (member_id, kind, state, priority, clause, summary, "
            "automatic, opened_by, proposal, opened_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (member_id, draft.kind, draft.state, draft.priority, draft.clause, draft.summary,
             int(draft.automatic), draft.opened_by,
             json.dumps(dict(draft.proposal)) if draft.proposal else None, now, now))
        assert case_id is not None
        await db.execute("INSERT INTO case_events (case_id, at, actor, event, to_state, detail) "
                         "VALUES (?,?,?,?,?,?)", (case_id, now, draft.opened_by, "opened",
                                                  draft.state, draft.summary))
        return case_id

    async def sanction(self, member_id: str, /, *, draft: CaseDraft, actions: Sequence[Action],
                       strike: float = 0.0, step: float | None = None, reason: str,
                       audit_action: str,
                       message_rows: Sequence[int] = ()) -> tuple[int, list[Action]]:
        """Open a case for a moderator's sanction with its strike, outbox rows and audit entry."""
        now = iso(self.clock())
        async with self.transaction() as db:
            case_id = await self._open_case(db, member_id, draft, now)
            for row in message_rows:
                await db.execute("INSERT INTO case_messages (case_id, message_row) "
                                 "VALUES (?,?) ON CONFLICT DO NOTHING", (case_id, row))
            if strike:
                await db.execute("INSERT INTO strikes (member_id, case_id, points, reason, at, "
                                 "step) VALUES (?,?,?,?,?,?)",
                                 (member_id, case_id, strike, reason, now, step))
            written = await self._outbox(db, actions, now, verdict_id=None, case_id=case_id)
            await self._audit(db, now, actor=draft.opened_by, action=audit_action,
                              member_id=member_id, case_id=case_id, reason=reason,
                              detail={"strike": strike, "kind": draft.kind})
        return case_id, written

    async def enqueue(self, actions: Sequence[Action], /, *, case_id: int | None,
                      not_before: datetime | None = None) -> list[Action]:
        """Add outbox rows (for a case, when given) in one transaction; `not_before` delays
        them (e.g. the end of a timeout the platform cannot time-limit itself)."""
        async with self.transaction() as db:
            return await self._outbox(db, actions, iso(self.clock()), verdict_id=None,
                                      case_id=case_id, not_before=not_before)

    # -- floods, spam and raids (bot.spam) -------------------------------------------------

    async def spam_counts(self, member_id: str, /, *, at: datetime, channel: str,
                          fingerprint: str | None, targets: Sequence[str],
                          platform: Platform, channel_id: str,
                          windows: Mapping[str, float]) -> dict[str, Any]:
        """Counts before `at` within each window (seconds, by check: channel, overall,
        duplicates, pile_on, raid), in one query: this member's posts in `channel` and
        everywhere, their posts of `fingerprint` and other accounts', other accounts naming
        the most-named of `targets`, other new accounts posting in `channel`; the channel's
        raid in progress; when the member first posted (None: never)."""
        def since(check: str) -> str:
            return iso(at - timedelta(seconds=windows.get(check, 0.0)))

        now = iso(at)
        marks = ",".join("?" * len(targets)) or "NULL"
        ended = "COALESCE((SELECT MAX(ended_at) FROM raids WHERE platform=? AND channel=?), '')"
        sql = (
            "SELECT "
            "(SELECT COUNT(*) FROM spam_events WHERE member_id=? AND kind='post' AND key=? "
            " AND at>? AND at<=?),"
            "(SELECT COUNT(*) FROM spam_events WHERE member_id=? AND kind='post' "
            " AND at>? AND at<=?),"
            "(SELECT COUNT(*) FROM spam_events WHERE member_id=? AND kind='fp' AND key=? "
            " AND at>? AND at<=?),"
            "(SELECT COUNT(DISTINCT member_id) FROM spam_events WHERE kind='fp' AND key=? "
            " AND at>? AND at<=? AND member_id!=?),"
            "(SELECT MAX(n) FROM (SELECT COUNT(DISTINCT member_id) AS n FROM spam_events "
            f" WHERE kind='target' AND key IN ({marks}) AND at>? AND at<=? AND member_id!=? "
            " GROUP BY key) AS per_target),"  # an alias PostgreSQL before 16 requires
            # A raid a moderator ended is over: its newcomers do not start the next one.
            "(SELECT COUNT(DISTINCT member_id) FROM spam_events WHERE kind='new' AND key=? "
            f" AND at>{self.dialect.greatest('?', ended)} AND at<=? AND member_id!=?),"
            "(SELECT id FROM raids WHERE platform=? AND channel=? AND ended_at IS NULL "
            " ORDER BY id DESC LIMIT 1),"
            "(SELECT MIN(sent_at) FROM messages WHERE member_id=?),"
            "(SELECT MIN(sent_at) FROM messages)")
        params = [member_id, channel, since("channel"), now,
                  member_id, since("overall"), now,
                  member_id, fingerprint, since("duplicates"), now,
                  fingerprint, since("duplicates"), now, member_id,
                  *targets, since("pile_on"), now, member_id,
                  channel, since("raid"), platform, channel_id, now, member_id,
                  platform, channel_id, member_id]
        row = (await self._read(sql, params))[0]
        return {"channel_posts": row[0], "all_posts": row[1], "same_text_mine": row[2],
                "same_text_others": row[3], "pile_on": row[4] or 0, "new_in_channel": row[5],
                "raid": row[6],
                "first_seen": datetime.fromisoformat(row[7]) if row[7] else None,
                "history_start": datetime.fromisoformat(row[8]) if row[8] else None}

    async def spam_struck(self, member_id: str, /, *, since: datetime) -> bool:
        """Whether a verdict that was only spam gave the member strike points since `since`."""
        return await self._read_one(
            "SELECT 1 FROM strikes s JOIN verdicts v ON v.id = s.verdict_id WHERE "
            "s.member_id=? AND s.at>=? AND v.categories='[\"spam\"]' LIMIT 1",
            (member_id, iso(since))) is not None

    async def protected_accounts(self, platform: Platform, accounts: Sequence[str], /,
                                 *, roles: Iterable[str]) -> list[str]:
        """Which of `accounts` belong to members holding one of `roles`."""
        if not accounts:
            return []
        wanted = set(roles)
        rows = await self._read(
            "SELECT a.account_id, m.roles FROM accounts a JOIN members m ON m.id = a.member_id "
            f"WHERE a.platform=? AND a.account_id IN ({','.join('?' * len(accounts))})",
            (platform, *accounts))
        return [r["account_id"] for r in rows
                if wanted & set(filter(None, (r["roles"] or "").split(",")))]

    async def start_raid(self, *, platform: Platform, channel: str, channel_name: str | None,
                         key: str, at: datetime, since: datetime,
                         plan: Callable[[int, list[tuple[str, str]]], list[Action]]
                         ) -> tuple[int, list[Action]] | None:
        """Open a raid in a channel (None when one is already open) with the new accounts that
        posted there since `since` (`key` is the channel's spam-events key), and queue what
        `plan(raid id, [(member label, platform account)])` says to do, in one transaction;
        audited. The raid records which of slowmode and timeouts its response used."""
        async with self.transaction() as db:
            async with db.execute("SELECT 1 FROM raids WHERE platform=? AND channel=? AND "
                                  "ended_at IS NULL", (platform, channel)) as cur:
                if await cur.fetchone() is not None:
                    return None
            # One row per member (their account on the platform: the first, should they
            # have linked several), in the order they first posted.
            async with db.execute(
                    "SELECT e.member_id, m.display_name, m.membership_number, "
                    "MIN(a.account_id) AS account_id "
                    "FROM spam_events e JOIN members m ON m.id = e.member_id "
                    "JOIN accounts a ON a.member_id = e.member_id AND a.platform = ? "
                    "WHERE e.kind='new' AND e.key=? AND e.at>=? AND e.at<=? "
                    "GROUP BY e.member_id, m.display_name, m.membership_number "
                    "ORDER BY MIN(e.at)",
                    (platform, key, iso(since), iso(at))) as cur:
                rows = await cur.fetchall()
            accounts = [(f"{r['display_name']} ({r['member_id']})", r["account_id"])
                        for r in rows]
            now = iso(self.clock())
            raid_id = await _insert(
                db, "INSERT INTO raids (platform, channel, channel_name, started_at, accounts, "
                "response) VALUES (?,?,?,?,?,'alert')",
                (platform, channel, channel_name, iso(at), json.dumps(accounts)))
            assert raid_id is not None
            actions = plan(raid_id, accounts)
            used = sorted({str(a.kind) for a in actions} & {ActionKind.SLOWMODE.value,
                                                            ActionKind.TIMEOUT.value})
            await db.execute("UPDATE raids SET response=? WHERE id=?",
                             (",".join(used) or "alert", raid_id))
            written = await self._outbox(db, actions, now, verdict_id=None, case_id=None)
            await self._audit(db, now, actor="bot", action="raid:start",
                              reason=f"{len(accounts)} new accounts in "
                                     f"#{channel_name or channel}",
                              detail={"raid": raid_id, "platform": str(platform),
                                      "channel": channel, "accounts": len(accounts)})
        return raid_id, written

    async def join_raid(self, raid_id: int, account: tuple[str, str], /, *,
                        actions: Sequence[Action]) -> bool:
        """Add an account to a raid in progress (a new account posting there while it lasts)
        and queue `actions` for it, once; False when it was already in the raid."""
        async with self.transaction() as db:
            async with db.execute("SELECT accounts FROM raids WHERE id=? AND ended_at IS NULL",
                                  (raid_id,)) as cur:
                row = await cur.fetchone()
            accounts = [tuple(a) for a in json.loads(row[0])] if row else []
            if row is None or any(a[1] == account[1] for a in accounts):
                return False
            await db.execute("UPDATE raids SET accounts=? WHERE id=?",
                             (json.dumps([*accounts, account]), raid_id))
            await self._outbox(db, actions, iso(self.clock()), verdict_id=None, case_id=None)
        return True

    async def raids(self, *, active: bool = True) -> list[dict[str, Any]]:
        """Raids, newest first (only those still on with `active`)."""
        sql = "SELECT * FROM raids" + (" WHERE ended_at IS NULL" if active else "")
        rows = await self._read(sql + " ORDER BY id DESC", ())
        return [dict(r) | {"accounts": json.loads(r["accounts"])} for r in rows]

    async def end_raid(self, raid_id: int, /, *, actor: str, reason: str,
                       undo: Callable[[dict[str, Any]], list[Action]]) -> dict[str, Any]:
        """End a raid and queue what `undo(raid)` says (lifting slowmode and timeouts), in one
        transaction; audited. StoreError when there is no such raid or it has ended."""
        async with self.transaction() as db:
            async with db.execute("SELECT * FROM raids WHERE id=?", (raid_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise StoreError(f"there is no raid {raid_id}")
            if row["ended_at"] is not None:
                raise StoreError(f"raid {raid_id} ended at {row['ended_at'][:16]} "
                                 f"({row['ended_by']})")
            now = iso(self.clock())
            raid = dict(row) | {"accounts": json.loads(row["accounts"])}
            await db.execute("UPDATE raids SET ended_at=?, ended_by=? WHERE id=?",
                             (now, actor, raid_id))
            await self._outbox(db, undo(raid), now, verdict_id=None, case_id=None)
            await self._audit(db, now, actor=actor, action="raid:end", reason=reason,
                              detail={"raid": raid_id})
        return raid

    async def queue_modlog(self, platform: Platform, channel: str, /, *, since: datetime,
                           render: Callable[[list[dict[str, Any]]], list[str]],
                           limit: int = 500, size: int = 1900) -> int:
        """Move the audit log's new entries into the platform's moderators' log: `render`
        turns them (oldest first, each with its member's display name as `member`) into
        lines, posted to `channel` through the outbox in messages of at most `size`
        characters; the platform's cursor advances in the same transaction, so no entry is
        logged twice or skipped. The first time, the log starts at `since` (when the bot
        started: turning the log on does not replay the past). The number of lines queued."""
        async with self.transaction() as db:
            await db.execute("INSERT INTO modlog_cursors (platform, last_id) SELECT "
                             "?, COALESCE(MAX(id), 0) FROM audit_log WHERE at < ? "
                             "ON CONFLICT DO NOTHING", (platform, iso(since)))
            async with db.execute(
                    "SELECT a.*, m.display_name AS member FROM audit_log a LEFT JOIN members m "
                    "ON m.id = a.member_id WHERE a.id > (SELECT last_id FROM modlog_cursors "
                    "WHERE platform=?) ORDER BY a.id LIMIT ?", (platform, limit)) as cur:
                entries = [dict(r) for r in await cur.fetchall()]
            if not entries:
                return 0
            lines = render(entries)
            texts: list[str] = []
            for line in lines:
                line = line[:size]
                if texts and len(texts[-1]) + 1 + len(line) <= size:
                    texts[-1] += "\n" + line
                else:
                    texts.append(line)
            await self._outbox(db, [Action(kind=ActionKind.POST, platform=platform,
                                           channel=channel, payload={"text": text,
                                                                     "modlog": True})
                                    for text in texts], iso(self.clock()), verdict_id=None,
                               case_id=None)
            await db.execute("UPDATE modlog_cursors SET last_id=? WHERE platform=?",
                             (entries[-1]["id"], platform))
        return len(lines)

    async def get_case(self, case_id: int, /) -> Case | None:
        """One case."""
        row = await self._read_one("SELECT * FROM cases WHERE id=?", (case_id,))
        return None if row is None else _case(row)

    async def case_ids(self, *, prefix: str = "", limit: int = 25) -> list[int]:
        """Case numbers starting with `prefix`, newest first (for autocomplete)."""
        return [r[0] for r in await self._read(
            "SELECT id FROM cases WHERE CAST(id AS TEXT) LIKE ? ORDER BY id DESC LIMIT ?",
            (f"{prefix}%", limit))]

    async def member_cases(self, member_id: str, /) -> list[Case]:
        """A member's cases, newest first."""
        rows = await self._read("SELECT * FROM cases WHERE member_id=? ORDER BY id DESC",
                                (member_id,))
        return [_case(r) for r in rows]

    async def case_events(self, case_id: int, /) -> list[dict[str, Any]]:
        """A case's history, oldest first."""
        rows = await self._read("SELECT * FROM case_events WHERE case_id=? ORDER BY id",
                                (case_id,))
        return [dict(r) for r in rows]

    async def case_evidence(self, case_id: int, /) -> list[dict[str, Any]]:
        """The messages of a case with their verdicts (text kept until retention erases it)."""
        return [dict(r) for r in await self._read(
            "SELECT m.platform, m.message_id, m.revision, m.channel, m.channel_name, m.text, "
            "m.sent_at, v.id AS verdict_id, v.action, v.categories, v.clause, v.automatic, "
            "v.reasons, v.scores, v.rule_ids, v.model, v.model_version, v.policy_version "
            "FROM case_messages cm JOIN messages m ON m.id=cm.message_row "
            "LEFT JOIN (SELECT *, 1 AS automatic FROM verdicts) v ON v.message_row=m.id "
            "WHERE cm.case_id=? ORDER BY m.sent_at", (case_id,))]

    async def queue(self, *, limit: int = 50, offset: int = 0, assignee: str | None = None,
                    unassigned: bool = False, clause: str | None = None,
                    channel: str | None = None, platform: Platform | None = None
                    ) -> tuple[list[Case], int]:
        """Cases waiting for a moderator, highest priority first, then oldest: one page of
        them and how many match in all. Filters: assigned to `assignee`, `unassigned`, citing
        `clause`, with a message in `channel` (id or name) or on `platform`."""
        where = ["c.state IN ('open', 'assigned', 'appealed')"]
        params: list[Any] = []
        if assignee is not None:
            where.append("c.assignee=?")
            params.append(assignee)
        if unassigned:
            where.append("c.assignee IS NULL")
        if clause is not None:
            where.append("c.clause=?")
            params.append(clause)
        if channel is not None or platform is not None:
            where.append("EXISTS (SELECT 1 FROM case_messages cm JOIN messages m ON "
                         "m.id=cm.message_row WHERE cm.case_id=c.id"
                         + (" AND (m.channel=? OR lower(m.channel_name)=lower(?))"
                            if channel is not None else "")
                         + (" AND m.platform=?" if platform is not None else "") + ")")
            params += [channel, channel.lstrip("#")] if channel is not None else []
            params += [platform] if platform is not None else []
        sql = f"FROM cases c WHERE {' AND '.join(where)}"
        total = (await self._read_one(f"SELECT COUNT(*) {sql}", params) or (0,))[0]
        return [_case(r) for r in await self._read(
                f"SELECT c.* {sql} ORDER BY c.priority DESC, c.opened_at, c.id LIMIT ? OFFSET ?",
                (*params, limit, offset))], int(total)

    async def update_case(self, case_id: int, /, *, actor: str, event: str,
                          state: CaseState | None = None, detail: str | None = None,
                          assignee: str | None = None, resolution: str | None = None,
                          appeal: str | None = None, appeal_outcome: str | None = None,
                          review: str | None = None, pardon: str | None = None,
                          confirm_strikes: bool = False, step: float | None = None,
                          actions: Sequence[Action] = (),
                          audit_action: str | None = None) -> Case:
        """Change a case and write its history event and audit entry in one transaction.

        `review` ('upheld' or 'dismissed') records moderators' view of the automatic verdicts
        in the case, for calibration; `confirm_strikes` makes the case's pending strikes count
        (recording the ladder `step` they fired); `pardon` removes the case's strikes with that
        reason and lifts the timeouts the case caused; `actions` are queued for the case.
        """
        now = iso(self.clock())
        async with self.transaction() as db:
            async with db.execute("SELECT * FROM cases WHERE id=?", (case_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise StoreError(f"there is no case {case_id}")
            before = _case(row)
            sets = {"updated_at": now}
            if state is not None:
                sets["state"] = state
                if not state.active:
                    sets["resolved_at"] = now
            for key, value in (("assignee", assignee), ("resolution", resolution),
                               ("appeal", appeal), ("appeal_outcome", appeal_outcome)):
                if value is not None:
                    sets[key] = value
            await db.execute(f"UPDATE cases SET {', '.join(f'{k}=?' for k in sets)} WHERE id=?",
                             (*sets.values(), case_id))
            await db.execute(
                "INSERT INTO case_events (case_id, at, actor, event, from_state, to_state, "
                "detail) VALUES (?,?,?,?,?,?,?)",
                (case_id, now, actor, event, before.state, state or before.state, detail))
            if review is not None:
                async with db.execute(
                    "SELECT v.id, v.categories FROM case_messages cm JOIN verdicts v "
                    "ON v.id=cm.verdict_id WHERE cm.case_id=?", (case_id,)) as cur:
                    for verdict_id, categories in await cur.fetchall():
                        await db.execute(
                            "INSERT INTO reviews (verdict_id, case_id, outcome, moderator, "
                            "categories, at) VALUES (?,?,?,?,?,?)",
                            (verdict_id, case_id, review, actor, categories, now))
            if confirm_strikes:
                await db.execute("UPDATE strikes SET pending=0, step=COALESCE(?, step) "
                                 "WHERE case_id=? AND pending=1", (step, case_id))
            lifted = 0
            if pardon is not None:
                await db.execute("UPDATE strikes SET pardoned_at=?, pardon_reason=? "
                                 "WHERE case_id=? AND pardoned_at IS NULL",
                                 (now, pardon, case_id))
                lifted = await self._lift_timeouts(db, case_id, now, reason=pardon)
            await self._outbox(db, actions, now, verdict_id=None, case_id=case_id)
            await self._audit(db, now, actor=actor, action=audit_action or f"case:{event}",
                              member_id=before.member_id, case_id=case_id, reason=detail,
                              detail={"from": before.state, "to": state or before.state,
                                      "timeouts_lifted": lifted,
                                      "actions": [a.kind for a in actions]})
            async with db.execute("SELECT * FROM cases WHERE id=?", (case_id,)) as cur:
                after = await cur.fetchone()
        assert after is not None
        return _case(after)

    async def _lift_timeouts(self, db: Connection, case_id: int, now: str, *,
                             reason: str) -> int:
        """Undo the timeouts a case caused; how many members' accounts it frees.

        A timeout still waiting in the outbox is cancelled; a restore already waiting for the
        timeout's end (Slack) is brought forward to now; a timeout the platform applied with no
        restore waiting (Discord) gets one, which ends it early.
        """
        async with db.execute(
                "SELECT * FROM outbox WHERE kind IN ('timeout', 'restore') "
                f"AND {self.dialect.json_int('payload', 'case')}=? ORDER BY id",
                (case_id,)) as cur:
            rows = await cur.fetchall()
        lifted = 0
        restoring = {(r["platform"], r["user_id"]) for r in rows if r["kind"] == "restore"}
        for row in rows:
            if row["kind"] == "timeout" and row["status"] == ActionStatus.PENDING:
                await db.execute("UPDATE outbox SET status=?, error=?, updated_at=? WHERE id=?",
                                 (ActionStatus.CANCELLED, f"case {case_id}: {reason}", now,
                                  row["id"]))
                lifted += 1
            elif row["kind"] == "restore" and row["status"] == ActionStatus.PENDING:
                await db.execute("UPDATE outbox SET not_before=?, updated_at=? WHERE id=?",
                                 (now, now, row["id"]))
                lifted += 1
            elif row["kind"] == "timeout" and row["status"] == ActionStatus.DONE and (
                    row["platform"], row["user_id"]) not in restoring:
                restore = Action(kind=ActionKind.RESTORE, platform=Platform(row["platform"]),
                                 channel=row["channel"], user=row["user_id"],
                                 payload={"reason": f"timeout lifted: {reason}", "lift": True})
                await self._outbox(db, [restore], now, verdict_id=None, case_id=case_id)
                restoring.add((row["platform"], row["user_id"]))
                lifted += 1
        return lifted

    async def reviews(self) -> list[dict[str, Any]]:
        """Moderators' reviews of automatic verdicts (upheld or dismissed), oldest first."""
        return [dict(r) for r in await self._read("SELECT * FROM reviews ORDER BY id")]

    # -- audit ----------------------------------------------------------------------------------

    async def _audit(self, db: Connection, now: str, *, actor: str, action: str,
                     member_id: str | None = None, case_id: int | None = None,
                     reason: str | None = None, policy_version: str | None = None,
                     model_version: str | None = None,
                     detail: Mapping[str, Any] | None = None) -> None:
        await db.execute(
            "INSERT INTO audit_log (at, actor, action, member_id, case_id, reason, "
            "policy_version, model_version, detail) VALUES (?,?,?,?,?,?,?,?,?)",
            (now, actor, action, member_id, case_id, reason,
             policy_version or self.policy_version, model_version,
             json.dumps(dict(detail)) if detail else None))

    async def audit(self, *, actor: str, action: str, member_id: str | None = None,
                    case_id: int | None = None, reason: str | None = None,
                    policy_version: str | None = None,
                    detail: Mapping[str, Any] | None = None) -> None:
        """Append one entry to the audit log (it is never updated)."""
        async with self.transaction() as db:
            await self._audit(db, iso(self.clock()), actor=actor, action=action,
                              member_id=member_id, case_id=case_id, reason=reason,
                              policy_version=policy_version, detail=detail)

    async def audit_entries(self, *, member_id: str | None = None, action: str | None = None,
                            limit: int = 100) -> list[dict[str, Any]]:
        """Audit entries, newest first."""
        sql, params = "SELECT * FROM audit_log WHERE 1=1", []  # type: tuple[str, list[Any]]
        if member_id is not None:
            sql, params = sql + " AND member_id=?", [*params, member_id]
        if action is not None:
            sql, params = sql + " AND action LIKE ?", [*params, f"{action}%"]
        rows = await self._read(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
        return [dict(r) for r in rows]

    async def apply_retention(self, *, evidence: timedelta, audit: timedelta,
                              dry_run: bool = False) -> dict[str, int]:
        """The retention job: erase message text older than `evidence`, audit entries older
        than `audit`, and the spam checks' events older than any window can reach (a day).
        Verdicts, cases and their history stay; the job audits itself."""
        now = self.clock()
        evidence_cut, audit_cut = iso(now - evidence), iso(now - audit)
        spam_cut = iso(now - SPAM_MEMORY)
        async with self.transaction() as db:
            async with db.execute("SELECT COUNT(*) FROM spam_events WHERE at < ?",
                                  (spam_cut,)) as cur:
                events = (await cur.fetchone() or (0,))[0]
            async with db.execute("SELECT COUNT(*) FROM messages WHERE text IS NOT NULL AND "
                                  "sent_at < ?", (evidence_cut,)) as cur:
                texts = (await cur.fetchone() or (0,))[0]
            async with db.execute("SELECT COUNT(*) FROM audit_log WHERE at < ?",
                                  (audit_cut,)) as cur:
                entries = (await cur.fetchone() or (0,))[0]
            if not dry_run:
                await _scrub_copies(db, self.dialect, "sent_at < ?", (evidence_cut,),
                                    now=iso(now))
                await db.execute("UPDATE messages SET text=NULL WHERE text IS NOT NULL AND "
                                 "sent_at < ?", (evidence_cut,))
                await db.execute("DELETE FROM audit_log WHERE at < ?", (audit_cut,))
                await db.execute("DELETE FROM spam_events WHERE at < ?", (spam_cut,))
                await self._audit(db, iso(now), actor="retention", action="retention",
                                  detail={"texts_erased": texts, "audit_deleted": entries,
                                          "spam_events_deleted": events,
                                          "evidence_before": evidence_cut,
                                          "audit_before": audit_cut})
        if not dry_run:
            await self.checkpoint()
        return {"texts_erased": texts, "audit_deleted": entries, "spam_events_deleted": events}

    async def digest_ran(self, week: str, /) -> bool:
        """Whether the digest of `week` was already made."""
        return await self._read_one("SELECT 1 FROM digest_runs WHERE week=?", (week,)) is not None

    async def record_digest_run(self, week: str, actions: Sequence[Action], /) -> bool:
        """Queue a week's digest posts and mark the week done, atomically; False if it was."""
        now = iso(self.clock())
        async with self.transaction() as db:
            cur = await db.execute("INSERT INTO digest_runs (week, ran_at, posted) "
                                   "VALUES (?,?,?) ON CONFLICT DO NOTHING", (week, now,
                                   json.dumps(sorted({str(a.platform) for a in actions}))))
            if cur.rowcount == 0:
                return False
            await self._outbox(db, actions, now, verdict_id=None, case_id=None)
            await self._audit(db, now, actor="bot", action="digest",
                              detail={"week": week, "posts": len(actions)})
        return True

    async def member_export(self, member_id: str, /) -> dict[str, Any]:
        """Everything held about one member (a UK GDPR subject access request), as JSON data."""
        member = await self.get_member(member_id)
        if member is None:
            raise StoreError(f"there is no member {member_id}")

        async def rows(sql: str, *params: Any) -> list[dict[str, Any]]:
            return [dict(r) for r in await self._read(sql, params)]

        cases = await rows("SELECT * FROM cases WHERE member_id=? ORDER BY id", member_id)
        for case in cases:
            case["history"] = await self.case_events(case["id"])
        return {
            "member": {"id": member.id, "display_name": member.display_name,
                       "membership_number": member.membership_number,
                       "status": member.status, "status_reason": member.status_reason,
                       "suspended_from": iso(member.suspended_from)
                       if member.suspended_from else None,
                       "suspended_until": iso(member.suspended_until)
                       if member.suspended_until else None,
                       "roles": sorted(member.roles),
                       "accounts": [f"{a.platform}:{a.id}" for a in member.accounts]},
            "messages": await rows(
                "SELECT m.platform, m.message_id, m.revision, m.channel, m.channel_name, "
                "m.text, m.sent_at, v.action, v.categories, v.rule_ids, v.clause, "
                "v.policy_version, v.model, v.model_version FROM messages m "
                "LEFT JOIN verdicts v ON v.message_row=m.id WHERE m.member_id=? "
                "ORDER BY m.sent_at, m.revision", member_id),
            "strikes": await rows("SELECT * FROM strikes WHERE member_id=? ORDER BY at",
                                  member_id),
            "cases": cases,
            # Every platform action about the member: notices (quoting their words),
            # escalation excerpts, deletions, timeouts.
            "outbox": await rows(
                "SELECT id, kind, platform, channel, message_id, user_id, payload, status, "
                "error, created_at, updated_at FROM outbox o WHERE EXISTS (SELECT 1 FROM "
                "messages m WHERE m.member_id=? AND m.platform=o.platform AND "
                "m.message_id=o.message_id) OR EXISTS (SELECT 1 FROM accounts a WHERE "
                "a.member_id=? AND a.platform=o.platform AND a.account_id=o.user_id) OR "
                f"{self.dialect.json_int('o.payload', 'case')} IN (SELECT id FROM cases "
                "WHERE member_id=?) "
                "ORDER BY id", member_id, member_id, member_id),
            "audit": await rows("SELECT * FROM audit_log WHERE member_id=? ORDER BY id",
                                member_id),
        }

    async def erase_member_text(self, member_id: str, /, *, actor: str, reason: str) -> int:
        """Erase the text of every message of one member (an erasure request), audited, with
        every copy of it: the notices quoting it and the escalation excerpts in the outbox.

        Verdicts, cases and the audit trail stay: the compliance unit may need the record of
        what was decided even when the words themselves must go.
        """
        now = iso(self.clock())
        async with self.transaction() as db:
            await _scrub_copies(db, self.dialect, "member_id=?", (member_id,), now=now)
            # Messages still waiting to be decided are dropped with the rest of the text.
            await db.execute("DELETE FROM inbox WHERE (platform, "
                             f"{self.dialect.json_text('message', 'author')}) IN (SELECT "
                             "platform, account_id FROM accounts WHERE member_id=?)",
                             (member_id,))
            cur = await db.execute("UPDATE messages SET text=NULL WHERE member_id=? AND "
                                   "text IS NOT NULL", (member_id,))
            erased = int(cur.rowcount)
            await self._audit(db, now, actor=actor, action="erase", member_id=member_id,
                              reason=reason, detail={"texts_erased": erased})
        await self.checkpoint()
        return erased

    # -- the durable inbox ------------------------------------------------------------------------

    async def inbox_put(self, message: Message, /) -> int | None:
        """Keep a delivered message until it is decided; its inbox id, or None when this
        revision is already waiting or already decided (a redelivery)."""
        async with self.transaction() as db:
            async with db.execute("SELECT 1 FROM messages WHERE platform=? AND message_id=? "
                                  "AND revision=?", message.key) as cur:
                if await cur.fetchone() is not None:
                    return None
            return await _insert(
                db, "INSERT INTO inbox (platform, message_id, revision, message, received_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (*message.key, _message_json(message), iso(self.clock())))

    async def inbox_waiting(self, platform: Platform, /, *, max_attempts: int,
                            limit: int = 500, received_before: datetime | None = None
                            ) -> list[tuple[int, Message]]:
        """Messages accepted but not yet decided, oldest first (those that failed
        `max_attempts` times stay for the operator and are not returned); with
        `received_before`, only those accepted before then."""
        before = iso(received_before) if received_before else "9999"
        rows = await self._read("SELECT id, message FROM inbox WHERE platform=? AND attempts<? "
                                "AND received_at<? ORDER BY id LIMIT ?",
                                (platform, max_attempts, before, limit))
        return [(row["id"], _message_from(row["message"])) for row in rows]

    async def inbox_done(self, entry_id: int, /) -> None:
        """The message is decided (or refused for good): it leaves the inbox."""
        async with self.transaction() as db:
            await db.execute("DELETE FROM inbox WHERE id=?", (entry_id,))

    async def inbox_failed(self, entry_id: int, /, *, reason: str) -> int:
        """Deciding it failed this time; the number of attempts so far."""
        async with self.transaction() as db:
            await db.execute("UPDATE inbox SET attempts=attempts+1, last_error=? WHERE id=?",
                             (reason, entry_id))
            async with db.execute("SELECT attempts FROM inbox WHERE id=?", (entry_id,)) as cur:
                row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def latest_decided(self, platform: Platform, /) -> dict[str, int]:
        """Each channel's newest decided message id, for platforms whose ids are numbers that
        grow with time (Discord's snowflakes): where a catch-up after a stop starts."""
        rows = await self._read("SELECT channel, MAX(CAST(message_id AS BIGINT)) FROM messages "
                                "WHERE platform=? GROUP BY channel", (platform,))
        return {row[0]: int(row[1]) for row in rows if row[1] is not None}

    async def message_row(self, platform: Platform, message_id: str, /) -> dict[str, Any] | None:
        """The latest stored revision of a message."""
        row = await self._read_one(
            "SELECT * FROM messages WHERE platform=? AND message_id=? ORDER BY revision DESC "
            "LIMIT 1", (platform, message_id))
        return None if row is None else dict(row)

    # -- health and metrics ---------------------------------------------------------------------

    async def probe_write(self, *, wait: float = 1.0) -> None:
        """Check, within about `wait` seconds, that the database takes a writer now: BEGIN
        IMMEDIATE then ROLLBACK (nothing written). StoreError saying why when it does not: the
        file is gone, read-only, or locked by another process or a long transaction."""
        try:
            async with self._serial.hold(wait=wait):
                await self._driver.probe_write(wait=wait)
        except TimeoutError as exc:
            raise StoreError(f"{self.path}: the bot's own connection stayed busy for over "
                             f"{wait:g} s") from exc
        except self._driver.errors() as exc:
            raise StoreError(f"{self.path} does not take a writer: {exc}") from exc

    async def health_figures(self, *, wait: float | None = None) -> StoreFigures:
        """Outbox and inbox backlogs per platform and the appeal counts, in one query; with
        `wait`, StoreError when the connection stays busy longer than that."""
        now = self.clock()
        try:
            async with self._serial.hold(wait=wait):
                return await store_figures(self._db, at=now, now=iso(now))
        except TimeoutError as exc:
            raise StoreError(f"{self.path}: the bot's own connection stayed busy for over "
                             f"{wait:g} s") from exc
        except self._driver.errors() as exc:
            raise StoreError(f"{self.path} could not be read: {exc}") from exc

    # -- backtest ---------------------------------------------------------------------------------

    async def backtest_counts(self, *, start: datetime | None = None,
                              end: datetime | None = None) -> tuple[int, int]:
        """Decided messages sent in [start, end) (None: open): how many still hold their text,
        and how many had it erased."""
        where, params = _sent_between(start, end)
        row = await self._read_one(
            "SELECT COUNT(m.text), COUNT(*) - COUNT(m.text) FROM messages m JOIN verdicts v "
            f"ON v.message_row = m.id WHERE {where}", params)
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def backtest_messages(self, *, start: datetime | None = None,
                                end: datetime | None = None,
                                after: tuple[str, int] | None = None,
                                limit: int = 500) -> list[dict[str, Any]]:
        """A page of decided messages sent in [start, end) whose text is still held, in the
        order they were sent, after `after` (the last page's final `(sent_at, row)`): each
        message's columns with its row id (`row`), its stored verdict's `action`, `clause`,
        `policy_version`, `model` and `model_version`, and the latest moderator `review` of
        that verdict ('upheld', 'dismissed' or None)."""
        where, params = _sent_between(start, end)
        if after is not None:
            where += " AND (m.sent_at, m.id) > (?, ?)"
            params += list(after)
        rows = await self._read(
            "SELECT m.id AS row, m.platform, m.message_id, m.revision, m.channel, "
            "m.channel_name, m.author, m.member_id, m.text, m.sent_at, m.reply_to, m.thread, "
            "v.action, v.clause, v.policy_version, v.model, v.model_version, v.rule_ids, "
            "(SELECT r.outcome FROM reviews r WHERE r.verdict_id = v.id ORDER BY r.id DESC "
            "LIMIT 1) AS review FROM messages m JOIN verdicts v ON v.message_row = m.id "
            f"WHERE m.text IS NOT NULL AND {where} ORDER BY m.sent_at, m.id LIMIT ?",
            (*params, limit))
        return [dict(row) for row in rows]

    # -- weekly digest --------------------------------------------------------------------------

    async def digest_rows(self, *, bounds: Sequence[str], quote_evidence: bool = False,
                          as_of: str | None = None) -> DigestRows:
        """The weekly digest's grouped figures for the window of day boundaries `bounds`;
        escalations open at `as_of` (default the window's end)."""
        async with self._reading() as db:
            return await digest_rows(db, self.dialect, bounds=bounds,
                                     quote_evidence=quote_evidence, as_of=as_of)

    # -- transparency report --------------------------------------------------------------------

    async def transparency_rows(self, *, start: str, end: str) -> TransparencyRows:
        """The transparency report's grouped, anonymous figures for `start` .. `end`."""
        async with self._reading() as db:
            return await transparency_rows(db, start=start, end=end)


_STATUS_FIELDS = ("status", "status_reason", "suspended_from", "suspended_until")


async def _scrub_copies(db: Connection, dialect: Dialect, where: str,
                        params: Sequence[Any], *, now: str) -> None:
    """Remove the copies of message text held outside `messages` for the messages matching
    `where` (a condition on the messages table, alias m): the outbox payloads that quote
    them (a notice's text, an escalation's excerpt)."""
    await db.execute(
        f"UPDATE outbox SET payload={dialect.json_without('payload', 'text', 'excerpt')}, "
        f"updated_at=? WHERE ({dialect.json_text('payload', 'text')} IS NOT NULL OR "
        f"{dialect.json_text('payload', 'excerpt')} IS NOT NULL) AND EXISTS (SELECT 1 FROM "
        "messages m WHERE m.platform=outbox.platform AND m.message_id=outbox.message_id AND "
        f"m.{where})", (now, *params))


def _sent_between(start: datetime | None, end: datetime | None) -> tuple[str, list[Any]]:
    """A condition on messages (alias m) sent in [start, end), either end open, with its
    parameters."""
    where, params = ["1=1"], []
    if start is not None:
        where.append("m.sent_at >= ?")
        params.append(iso(start))
    if end is not None:
        where.append("m.sent_at < ?")
        params.append(iso(end))
    return " AND ".join(where), params


def _until_key(until: str | None) -> str:
    """Orders suspension ends: later is stricter, and no end (indefinite) strictest."""
    return until or "9999"


async def _insert(db: Connection, sql: str, params: Sequence[Any], /) -> int | None:
    """Run an INSERT and return the new row's id; None when ON CONFLICT DO NOTHING skipped it.
    One trip to the database's thread (aiosqlite's execute_fetchall), not three."""
    rows = list(await db.execute_fetchall(f"{sql} RETURNING id", params))
    return int(rows[0][0]) if rows else None


def _action(row: Any) -> Action:
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


#: Message keys one `decided` query holds: 3 parameters each, under the 999 SQLite allowed
#: before 3.32 (32,766 since).
_KEYS_PER_QUERY = 300

def _members_sql(dialect: Dialect) -> str:
    """A member row with its accounts as a JSON list of [platform, account id]: one trip,
    not two."""
    return (f"SELECT m.*, (SELECT {dialect.json_pairs('platform', 'account_id')} FROM "
            "accounts WHERE member_id = m.id) AS account_list FROM members m")


def _member(row: Any) -> Member:
    """A member from a `_members_sql` row (accounts sorted by platform, then account id)."""
    return Member(
        id=row["id"],
        display_name=row["display_name"],
        status=MemberStatus(row["status"]),
        roles=frozenset(Role(r) for r in row["roles"].split(",") if r),
        accounts=tuple(Account(Platform(platform), account)
                       for platform, account in sorted(json.loads(row["account_list"]))),
        membership_number=row["membership_number"],
        status_reason=row["status_reason"],
        suspended_from=_dt(row["suspended_from"]),
        suspended_until=_dt(row["suspended_until"]),
    )


async def _merge_member(db: Connection, *, into: str, other: str) -> None:
    """Move an unregistered member's accounts and history to `into`, then drop the husk."""
    # The audit log keeps the old id (it is never updated); the link entry names the merge.
    for table in ("accounts", "messages", "strikes", "cases"):
        await db.execute(f"UPDATE {table} SET member_id=? WHERE member_id=?", (into, other))
    await db.execute("DELETE FROM members WHERE id=?", (other,))


def _message_json(message: Message) -> str:
    return json.dumps({
        "platform": str(message.platform), "id": message.id, "channel": message.channel,
        "author": message.author, "text": message.text, "sent_at": iso(message.sent_at),
        "revision": message.revision, "channel_name": message.channel_name,
        "reply_to": message.reply_to, "thread": message.thread,
        "author_name": message.author_name})


def _message_from(text: str) -> Message:
    data = json.loads(text)
    return Message(Platform(data.pop("platform")), sent_at=datetime.fromisoformat(
        data.pop("sent_at")), **data)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _case(row: Any) -> Case:
    return Case(
        id=row["id"],
        member_id=row["member_id"],
        kind=row["kind"],
        state=CaseState(row["state"]),
        priority=row["priority"],
        clause=row["clause"],
        summary=row["summary"],
        automatic=bool(row["automatic"]),
        opened_by=row["opened_by"],
        opened_at=datetime.fromisoformat(row["opened_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        assignee=row["assignee"],
        proposal=json.loads(row["proposal"]) if row["proposal"] else None,
        appeal=row["appeal"],
        appeal_outcome=row["appeal_outcome"],
        resolution=row["resolution"],
        resolved_at=_dt(row["resolved_at"]),
    )
