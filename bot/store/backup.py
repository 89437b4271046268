"""Backups and restores of a conductbot database, whole files only.

A backup (`Store.backup`) is SQLite's online backup API run in one step, so the copy is one
read snapshot of the database: the bot may go on writing (WAL mode lets a reader and a writer
work at once). It goes to a hidden file beside the target, is sealed as a single
self-contained file (rollback journal, no ``-wal`` beside it), checked (``PRAGMA
integrity_check``; the schema version it records equals the source's) and only then renamed
into place: the target is either absent or a whole, verified copy.

A restore (`restore`) refuses while any process has the database open, checks the backup the
same way, keeps the replaced database (and its ``-wal`` and ``-shm``) aside instead of deleting
it, puts the copy in place with no stale write-ahead log beside it, migrates it, and re-applies
what the copy predates and the law requires: erasures recorded in the replaced database after
the backup was taken, and the retention periods.
"""

from __future__ import annotations

__all__ = ["AUDITED_FROM", "KEY_TABLES", "BackupReport", "RestoreReport", "backup_name",
           "check_copy", "check_target", "in_use", "prune", "publish", "restore", "seal",
           "staging_path"]

import asyncio
import contextlib
import os
import re
import shutil
import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.errors import StoreError
from bot.store.migrations import SCHEMA_VERSION

#: The tables whose row counts a backup or restore reports.
KEY_TABLES = ("members", "messages", "verdicts", "cases", "audit_log")
#: `backup_name` in a folder: conductbot-20261130T020000Z.sqlite3, then -2, -3, ... for more
#: in the same second.
_NAMED = re.compile(r"^conductbot-(\d{8}T\d{6}Z)(?:-(\d+))?\.sqlite3$")
#: The schema version from which the audit log exists (migration 2).
AUDITED_FROM = 2


@dataclass(frozen=True, slots=True)
class BackupReport:
    """A verified copy: where, how big, which schema, how many rows of the key tables."""

    path: Path
    size: int
    schema_version: int
    rows: Mapping[str, int]

    def line(self) -> str:
        """One line for the operator."""
        return (f"backup written to {self.path}: {_size(self.size)}, schema version "
                f"{self.schema_version}, integrity ok; {_counts(self.rows)}")


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What a restore did."""

    db: Path
    source: Path
    schema_from: int
    schema_to: int
    rows: Mapping[str, int]
    kept_aside: tuple[Path, ...] = ()
    erasures_reapplied: int = 0
    texts_erased: int = 0
    retention: Mapping[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        """What to tell the operator, one line each."""
        out = [f"restored {self.db} from {self.source} (schema version {self.schema_from}"
               + (f", migrated to {self.schema_to}" if self.schema_to != self.schema_from
                  else "") + f"): {_counts(self.rows)}"]
        if self.kept_aside:
            out.append("the replaced database is kept as "
                       + ", ".join(str(p) for p in self.kept_aside)
                       + " (delete it once the restored database is confirmed)")
        out.append(f"re-applied {self.erasures_reapplied} erasure(s) recorded after the backup "
                   f"(the text of {self.texts_erased} message(s)); retention erased the text "
                   f"of {self.retention.get('texts_erased', 0)} message(s) and "
                   f"{self.retention.get('audit_deleted', 0)} audit entries")
        out.extend(f"warning: {w}" for w in self.warnings)
        return out


#: How a row of each key table is counted in words: singular, plural.
_LABELS = {"members": ("member", "members"), "messages": ("message", "messages"),
           "verdicts": ("verdict", "verdicts"), "cases": ("case", "cases"),
           "audit_log": ("audit entry", "audit entries")}


def _counts(rows: Mapping[str, int]) -> str:
    return ", ".join(f"{n:,} {_LABELS[table][n != 1]}" for table, n in rows.items())


def _size(size: int) -> str:
    if size < 1024:
        return f"{size:,} bytes"
    scaled = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        scaled /= 1024
        if scaled < 1024 or unit == "GiB":
            break
    return f"{scaled:.1f} {unit}"


def backup_name(folder: Path, now: datetime, /) -> Path:
    """A new backup's file in `folder`: conductbot-20261130T020000Z.sqlite3, or with -2, -3,
    ... when another was made in the same second."""
    stem = f"conductbot-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    path, n = folder / f"{stem}.sqlite3", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.sqlite3"
    return path


def _age(path: Path) -> tuple[str, int]:
    found = _NAMED.match(path.name)
    assert found is not None
    return found.group(1), int(found.group(2) or 1)


def _companions(db: Path) -> list[Path]:
    return [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def check_target(target: Path, /, *, source: Path, force: bool) -> None:
    """Refuse a target that is the database itself (or its WAL), a folder, or, without
    `force`, a file that exists."""
    if target.is_dir():
        raise StoreError(f"{target} is a folder: name the backup file in it")
    if target.exists() and source.exists() and target.samefile(source):
        raise StoreError(f"{target} is the database itself: write the backup somewhere else")
    if target.resolve() in {c.resolve() for c in _companions(source)}:
        raise StoreError(f"{target} belongs to the database: write the backup somewhere else")
    if target.exists() and not force:
        raise StoreError(f"{target} exists: choose another name, or add --force to replace it")


def staging_path(target: Path, /) -> Path:
    """A hidden file beside `target` (same file system, so the final rename is atomic)."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")


def seal(copy: sqlite3.Connection, /) -> None:
    """Make the fresh copy one self-contained file (no -wal beside it) and close it."""
    try:
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()


def _connect(path: Path, /, *, readonly: bool = True) -> sqlite3.Connection:
    """A plain connection for checks. Read-only suits a backup (one file, no WAL); a database
    in WAL mode is better opened read-write (nothing is written), as the last connection to
    close then folds its WAL back and removes it, where a read-only one leaves -wal and -shm
    files behind."""
    if readonly:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    return sqlite3.connect(path)


def check_copy(path: Path, /, *, schema_version: int | None = None,
               readonly: bool = True) -> dict[str, int]:
    """Open a copy read-only and check it: integrity, the schema version (equal to
    `schema_version`, or else one this conductbot can migrate from), the key tables; their
    row counts."""
    try:
        con = _connect(path, readonly=readonly)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from exc
    try:
        problems = [str(r[0]) for r in con.execute("PRAGMA integrity_check(20)")]
        if problems != ["ok"]:
            raise StoreError(f"{path} failed the integrity check: {'; '.join(problems)}")
        version = int(con.execute("PRAGMA user_version").fetchone()[0])
        if schema_version is not None and version != schema_version:
            raise StoreError(f"{path} has schema version {version}, the database "
                             f"{schema_version}: the copy is not the database")
        if version < 1:
            raise StoreError(f"{path} is not a conductbot database (schema version 0)")
        if schema_version is None and version > SCHEMA_VERSION:
            raise StoreError(f"{path} has schema version {version}, newer than this conductbot "
                             f"understands ({SCHEMA_VERSION}); restore it with the version "
                             "that made it")
        tables = {str(r[0]) for r in con.execute("SELECT name FROM sqlite_master WHERE "
                                                  "type='table'")}
        wanted = [t for t in KEY_TABLES if version >= AUDITED_FROM or t in ("members",
                                                                              "messages",
                                                                              "verdicts")]
        missing = [t for t in wanted if t not in tables]
        if missing:
            raise StoreError(f"{path} is not a conductbot database (no {', '.join(missing)} "
                             "table)")
        return {t: int(con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
                for t in wanted}
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a usable SQLite database: {exc}") from exc
    finally:
        con.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(staging: Path, target: Path, /, *, force: bool) -> None:
    """Rename the checked copy into place, durably; without `force` never over an existing
    file, even one that appeared meanwhile."""
    _fsync(staging)
    if force:
        os.replace(staging, target)
    else:
        try:
            os.link(staging, target)  # fails if target exists: no window to clobber it
        except FileExistsError:
            raise StoreError(f"{target} exists: choose another name, or add --force to "
                             "replace it") from None
        except OSError:  # a file system without hard links
            if target.exists():
                raise StoreError(f"{target} exists: choose another name, or add --force to "
                                 "replace it") from None
            os.replace(staging, target)
        else:
            staging.unlink()
    with contextlib.suppress(OSError):  # a directory cannot be fsync'd everywhere
        _fsync(target.parent)


def prune(folder: Path, /, *, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups named by `backup_name` in `folder`; the
    deleted paths. Other files are never touched."""
    named = sorted((p for p in folder.iterdir() if _NAMED.match(p.name) and p.is_file()),
                   key=_age)
    doomed = named[:-keep] if keep > 0 else named
    for path in doomed:
        path.unlink()
    return doomed


def in_use(db: Path, /) -> bool:
    """Whether another connection has the database open. In WAL mode every open connection
    holds a shared lock on the file (the last one to close folds the WAL back), so an
    exclusive lock is refused while the bot, or a command, has it open."""
    con = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        con.execute("PRAGMA locking_mode=EXCLUSIVE")
        con.execute("BEGIN EXCLUSIVE")
        con.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return True
        raise StoreError(f"cannot open {db}: {exc}") from exc
    except sqlite3.DatabaseError:
        return False  # not a database (or corrupt): nobody can be using it as one
    finally:
        con.close()


def _erasures_after(db: Path, since: str | None) -> list[dict[str, Any]]:
    """The erasures the replaced database recorded after `since` (an audit timestamp)."""
    con = _connect(db, readonly=False)
    try:
        con.row_factory = sqlite3.Row
        rows = con.execute("SELECT at, member_id, reason FROM audit_log WHERE action='erase' "
                           "AND member_id IS NOT NULL AND at > ? ORDER BY id", (since or "",))
        return [dict(r) for r in rows]
    finally:
        con.close()


def _newest_audit(path: Path) -> str | None:
    con = _connect(path)
    try:
        row = con.execute("SELECT MAX(at) FROM audit_log").fetchone()
        return str(row[0]) if row and row[0] else None
    finally:
        con.close()


def _restore_files(source: Path, db: Path, now: datetime) -> tuple[int, list[dict[str, Any]],
                                                                    tuple[Path, ...],
                                                                    list[str]]:
    """Check, set the replaced database aside, put the copy in place (blocking file work)."""
    if not source.is_file():
        raise StoreError(f"there is no backup at {source}")
    check_copy(source)
    con = _connect(source)
    try:
        schema_from = int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()
    since = _newest_audit(source) if schema_from >= AUDITED_FROM else None
    erasures: list[dict[str, Any]] = []
    warnings: list[str] = []
    kept: list[Path] = []
    if db.exists():
        if db.resolve() == source.resolve():
            raise StoreError(f"{source} is the database itself")
        if in_use(db):
            raise StoreError(f"{db} is open in another process: stop the bot first "
                             "(systemctl stop conductbot, or docker compose stop conductbot), "
                             "and wait for any backup or command to finish")
        try:
            erasures = _erasures_after(db, since)
        except sqlite3.Error as exc:
            warnings.append(f"could not read the replaced database's audit log ({exc}): "
                            "re-apply any erasure made since the backup by hand "
                            "(bot.py members erase MEMBER --reason ... --yes)")
        stamp = f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        for path in (db, *_companions(db)):
            if path.exists():
                aside = path.with_name(f"{db.name}.replaced-{stamp}{path.name[len(db.name):]}")
                os.replace(path, aside)
                kept.append(aside)
    else:
        for stale in _companions(db):  # a WAL without its database would be replayed on it
            stale.unlink(missing_ok=True)
    db.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_path(db)
    try:
        shutil.copyfile(source, staging)
        publish(staging, db, force=False)
    finally:
        staging.unlink(missing_ok=True)
    return schema_from, erasures, tuple(kept), warnings


async def restore(source: Path, db: Path, /, *, evidence: timedelta, audit: timedelta,
                  actor: str = "operator", now: datetime | None = None,
                  policy_version: str | None = None) -> RestoreReport:
    """Replace the database at `db` with the backup `source` (see the module docstring); then
    migrate it, re-apply later erasures and the retention periods `evidence` and `audit`, and
    audit the restore."""
    from bot.store.store import Store

    moment = now or datetime.now(UTC)
    try:
        schema_from, erasures, kept, warnings = await asyncio.to_thread(_restore_files, source,
                                                                        db, moment)
    except OSError as exc:
        raise StoreError(f"cannot restore {db} from {source}: {exc.strerror or exc}") from exc
    texts = reapplied = 0
    async with Store.open(db) as store:
        store.policy_version = policy_version
        for entry in erasures:
            if await store.get_member(entry["member_id"]) is None:
                continue  # a member the backup never knew: nothing of theirs came back
            texts += await store.erase_member_text(
                entry["member_id"], actor=f"{actor} (restore)",
                reason=f"re-applied after restoring {source.name}: erasure of {entry['at']}"
                       + (f" ({entry['reason']})" if entry["reason"] else ""))
            reapplied += 1
        counts = await store.apply_retention(evidence=evidence, audit=audit)
        schema_to = await store.schema_version()
        await store.audit(actor=actor, action="restore", detail={
            "backup": str(source), "schema_from": schema_from, "schema_to": schema_to,
            "kept_aside": [str(p) for p in kept], "erasures_reapplied": reapplied,
            "texts_erased": texts, "retention": counts})
    # And the restored file checks out.
    rows = await asyncio.to_thread(check_copy, db, readonly=False)
    return RestoreReport(db=db, source=source, schema_from=schema_from, schema_to=schema_to,
                         rows=rows, kept_aside=kept, erasures_reapplied=reapplied,
                         texts_erased=texts, retention=counts, warnings=tuple(warnings))

