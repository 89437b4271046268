"""`bot.py backup` and `bot.py restore`: SQLite's online backup, verified, renamed into place;
a restore that refuses a database in use and re-applies the erasures a backup predates."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.errors import StoreError
from bot.models import Message, Platform
from bot.moderator import Moderator
from bot.policy import Policy
from bot.scoring import Batcher
from bot.store import Store
from bot.store.backup import backup_name, check_copy, prune, publish
from bot.store.migrations import MIGRATIONS, SCHEMA_VERSION
from tests.conftest import KeywordScorer

START = datetime.now(UTC) - timedelta(days=2)  # inside every retention period


async def _populate(store: Store, policy: Policy, *, count: int = 12, prefix: str = "m") -> None:
    async with Batcher(KeywordScorer()) as batcher:
        moderator = Moderator(store=store, policy=policy, scorer=batcher)
        for n in range(count):
            await moderator.handle(Message(
                Platform.DISCORD, f"{prefix}{n}", "C1", f"U{n % 3}",
                ("motion passed", "you idiot", "see you at the branch")[n % 3],
                START + timedelta(minutes=n), channel_name="general"))


def _rows(path: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    con = sqlite3.connect(path)
    try:
        return list(con.execute(sql, params))
    finally:
        con.close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


# -- backup ----------------------------------------------------------------------------------


async def test_a_backup_taken_while_another_connection_writes_is_whole_and_opens_as_a_store(
        tmp_path: Path, test_policy: Policy) -> None:
    db, target = tmp_path / "live.sqlite3", tmp_path / "backups" / "copy.sqlite3"
    target.parent.mkdir()
    async with Store.open(db) as store:
        await _populate(store, test_policy)
        async with store.transaction() as con:  # some bulk, so the copy is not instantaneous
            await con.executemany(
                "INSERT INTO audit_log (at, actor, action, reason) VALUES (?, 'filler', 'x', ?)",
                [(f"2026-11-20T00:00:{n:06d}", "x" * 2000) for n in range(3000)])
    writes, errors, stop = [0], [], threading.Event()
    goal, reached = [20], threading.Event()

    def writer() -> None:
        # Another process's writer: each transaction adds a member and its audit entry, so a
        # copy holding one without the other would be a torn snapshot.
        con = sqlite3.connect(db, timeout=2, isolation_level=None)
        try:
            while not stop.is_set():
                n = writes[0]
                con.execute("BEGIN IMMEDIATE")
                con.execute("INSERT INTO members (id, display_name, created_at) VALUES "
                            "(?, 'w', '2026-11-20')", (f"w-{n}",))
                con.execute("INSERT INTO audit_log (at, actor, action, member_id) VALUES "
                            "('2026-11-20', 'writer', 'writer', ?)", (f"w-{n}",))
                con.execute("COMMIT")
                writes[0] = n + 1
                if writes[0] >= goal[0]:
                    reached.set()
        except sqlite3.Error as exc:  # pragma: no cover - the failure this test looks for
            errors.append(exc)
        finally:
            con.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert await asyncio.to_thread(reached.wait, 10)
        async with Store.open(db, migrate=False) as store:
            before = writes[0]
            report = await store.backup(target)
            after = writes[0]
        goal[0] = after + 20
        reached.clear()
        assert await asyncio.to_thread(reached.wait, 10)  # and it went on writing
    finally:
        stop.set()
        await asyncio.to_thread(thread.join)
    assert errors == []  # the backup never made the writer wait past its timeout
    copied = _rows(target, "SELECT COUNT(*) FROM members WHERE id LIKE 'w-%'")[0][0]
    audited = _rows(target, "SELECT COUNT(*) FROM audit_log WHERE action='writer'")[0][0]
    assert copied == audited  # whole transactions only
    assert before <= copied <= after < writes[0]  # a snapshot taken during the backup
    assert _rows(target, "PRAGMA integrity_check") == [("ok",)]
    assert _rows(target, "PRAGMA journal_mode") == [("delete",)]  # one self-contained file
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.sqlite3"]
    assert report.schema_version == SCHEMA_VERSION
    assert report.rows["members"] == _rows(target, "SELECT COUNT(*) FROM members")[0][0]
    assert report.size == target.stat().st_size
    async with Store.open(target) as copy:
        assert await copy.schema_version() == SCHEMA_VERSION
        assert len(await copy.audit_entries(action="writer", limit=10**6)) == copied
    async with Store.open(db) as store:
        [entry] = await store.audit_entries(action="backup")
    assert entry["actor"] == "operator"
    assert json.loads(entry["detail"]) == {"file": str(target.resolve()), "bytes": report.size,
                                           "schema_version": SCHEMA_VERSION}


async def test_a_backup_waits_for_the_stores_own_transaction_and_never_copies_it(
        tmp_path: Path) -> None:
    target = tmp_path / "copy.sqlite3"
    async with Store.open(tmp_path / "live.sqlite3") as store:
        entered, release = asyncio.Event(), asyncio.Event()

        async def doomed() -> None:
            with contextlib.suppress(RuntimeError):
                async with store.transaction() as con:
                    await con.execute("INSERT INTO audit_log (at, actor, action) VALUES "
                                      "('2026-11-20', 'test', 'uncommitted')")
                    entered.set()
                    await release.wait()
                    raise RuntimeError("rolled back")

        transaction = asyncio.create_task(doomed())
        await entered.wait()
        backup = asyncio.create_task(store.backup(target))
        await asyncio.sleep(0.2)
        assert not backup.done()
        release.set()
        await transaction
        await backup
    assert _rows(target, "SELECT COUNT(*) FROM audit_log WHERE action='uncommitted'") == [(0,)]


async def test_an_existing_file_is_refused_unless_forced(tmp_path: Path,
                                                         test_policy: Policy) -> None:
    target = tmp_path / "copy.sqlite3"
    target.write_bytes(b"last week's backup")
    async with Store.open(tmp_path / "live.sqlite3") as store:
        await _populate(store, test_policy, count=3)
        with pytest.raises(StoreError, match="exists: choose another name, or add --force"):
            await store.backup(target)
        assert target.read_bytes() == b"last week's backup"
        assert _leftovers(tmp_path) == []
        report = await store.backup(target, force=True)
    assert check_copy(target)["messages"] == 3 == report.rows["messages"]


def test_a_file_appearing_before_the_rename_is_not_overwritten(tmp_path: Path) -> None:
    staging, target = tmp_path / ".copy.partial", tmp_path / "copy.sqlite3"
    staging.write_bytes(b"new")
    target.write_bytes(b"someone else's")  # created after the first check
    with pytest.raises(StoreError, match="exists"):
        publish(staging, target, force=False)
    assert target.read_bytes() == b"someone else's"


async def test_the_database_itself_is_refused_as_the_target(tmp_path: Path) -> None:
    db = tmp_path / "live.sqlite3"
    async with Store.open(db) as store:
        for target in (db, tmp_path / "live.sqlite3-wal"):
            with pytest.raises(StoreError, match="database"):
                await store.backup(target, force=True)
    async with Store.open(db) as store:
        assert await store.schema_version() == SCHEMA_VERSION


def test_backup_of_a_missing_database_is_exit_2_and_creates_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backup", "--db", str(tmp_path / "nope.sqlite3"),
                 "--out", str(tmp_path / "backups" / "copy.sqlite3")])
    assert code == 2
    assert "there is no database at" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_backup_refuses_standard_output(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["backup", "--db", str(tmp_path / "x.sqlite3"), "--out", "-"])
    assert info.value.code == 2


def test_backup_command_prints_what_it_wrote_and_keeps_the_newest(
        tmp_path: Path, test_policy: Policy, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "live.sqlite3"

    async def fill() -> None:
        async with Store.open(db) as store:
            await _populate(store, test_policy)

    asyncio.run(fill())
    folder = tmp_path / "backups"
    folder.mkdir()
    for day in (1, 2, 3):
        (folder / f"conductbot-2026010{day}T000000Z.sqlite3").write_bytes(b"old")
    (folder / "notes.txt").write_text("not a backup")
    assert main(["backup", "--db", str(db), "--out", f"{folder}/", "--keep", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    [made] = [p for p in folder.iterdir() if p.suffix == ".sqlite3"
              and not p.name.startswith("conductbot-202601")]
    assert out[0].startswith(f"backup written to {made}: ")
    assert f"schema version {SCHEMA_VERSION}, integrity ok; " in out[0]
    assert "12 messages, 12 verdicts" in out[0]
    assert out[1:] == [f"deleted the older backup {folder / n}" for n in
                       ("conductbot-20260101T000000Z.sqlite3",
                        "conductbot-20260102T000000Z.sqlite3")]
    assert sorted(p.name for p in folder.iterdir()) == [
        "conductbot-20260103T000000Z.sqlite3", made.name, "notes.txt"]
    # A named file: refused the second time, replaced with --force.
    named = tmp_path / "more" / "copy.sqlite3"
    assert main(["backup", "--db", str(db), "--out", str(named)]) == 0
    assert main(["backup", "--db", str(db), "--out", str(named)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["backup", "--db", str(db), "--out", str(named), "--force"]) == 0
    assert main(["backup", "--db", str(db), "--out", str(named), "--keep", "3"]) == 2


def test_backups_in_the_same_second_get_their_own_names_and_age_in_order(
        tmp_path: Path) -> None:
    moment = datetime(2026, 11, 30, 3, 30, 12, tzinfo=UTC)
    names = []
    for _ in range(3):
        path = backup_name(tmp_path, moment)
        path.write_bytes(b"x")
        names.append(path.name)
    assert names == ["conductbot-20261130T033012Z.sqlite3",
                     "conductbot-20261130T033012Z-2.sqlite3",
                     "conductbot-20261130T033012Z-3.sqlite3"]
    backup_name(tmp_path, moment + timedelta(seconds=1)).write_bytes(b"x")
    deleted = prune(tmp_path, keep=2)
    assert [p.name for p in deleted] == names[:2]


def _old_database(path: Path, version: int) -> None:
    con = sqlite3.connect(path)
    try:
        for script in MIGRATIONS[:version]:
            con.executescript(script)
        con.execute(f"PRAGMA user_version = {version}")
        con.commit()
    finally:
        con.close()


def test_a_backup_copies_an_older_database_as_it_is(tmp_path: Path) -> None:
    # The backup before an upgrade must not be what migrates the database.
    db, target = tmp_path / "old.sqlite3", tmp_path / "copy.sqlite3"
    _old_database(db, SCHEMA_VERSION - 1)
    assert main(["backup", "--db", str(db), "--out", str(target)]) == 0
    assert _rows(db, "PRAGMA user_version") == [(SCHEMA_VERSION - 1,)]
    assert _rows(target, "PRAGMA user_version") == [(SCHEMA_VERSION - 1,)]


# -- restore ---------------------------------------------------------------------------------


async def test_restore_refuses_a_database_in_use_and_changes_nothing(
        tmp_path: Path, test_policy: Policy) -> None:
    db, backup = tmp_path / "live.sqlite3", tmp_path / "copy.sqlite3"
    async with Store.open(db) as store:
        await store.backup(backup)
        await _populate(store, test_policy, count=2)  # the bot, still running
        code = await asyncio.to_thread(main, ["restore", str(backup), "--db", str(db)])
        assert code == 2
        assert len(await store.audit_entries(action="restore")) == 0
    assert not await asyncio.to_thread(lambda: [p for p in tmp_path.iterdir()
                                                if "replaced" in p.name])
    assert _rows(db, "SELECT COUNT(*) FROM messages") == [(2,)]


def test_restore_puts_the_backup_in_place_and_applies_later_erasures_again(
        tmp_path: Path, test_policy: Policy, capsys: pytest.CaptureFixture[str]) -> None:
    db, backup = tmp_path / "live.sqlite3", tmp_path / "copy.sqlite3"

    async def before_and_after() -> str:
        async with Store.open(db) as store:
            await _populate(store, test_policy)
            await store.backup(backup)
            erased = await store.find_members("discord:U1")
            await store.erase_member_text(erased[0].id, actor="operator", reason="request 17")
            await _populate(store, test_policy, count=2, prefix="late")  # lost by the restore
            return erased[0].id

    erased_id = asyncio.run(before_and_after())
    assert _rows(backup, "SELECT COUNT(*) FROM messages WHERE member_id=? AND text IS NOT "
                 "NULL", erased_id) == [(4,)]
    capsys.readouterr()
    assert main(["restore", str(backup), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"restored {db} from {backup} (schema version {SCHEMA_VERSION}): " in out
    assert "re-applied 1 erasure(s) recorded after the backup (the text of 4 message(s))" in out
    assert _rows(db, "SELECT COUNT(*) FROM messages WHERE member_id=? AND text IS NOT NULL",
                 erased_id) == [(0,)]
    assert _rows(db, "SELECT COUNT(*) FROM messages WHERE message_id LIKE 'late%'") == [(0,)]
    assert _rows(db, "SELECT actor FROM audit_log WHERE action='erase' ORDER BY id") == [
        ("operator (restore)",)]
    [(detail,)] = _rows(db, "SELECT detail FROM audit_log WHERE action='restore'")
    assert json.loads(detail)["erasures_reapplied"] == 1
    [aside] = [p for p in tmp_path.iterdir() if ".replaced-" in p.name]
    assert aside.name.startswith("live.sqlite3.replaced-")
    assert f"the replaced database is kept as {aside}" in out
    assert _rows(aside, "SELECT COUNT(*) FROM messages WHERE message_id LIKE 'late%'") == [(2,)]
    assert not (tmp_path / "live.sqlite3-wal").exists()


def test_restore_onto_a_missing_database_drops_a_stale_wal(
        tmp_path: Path, test_policy: Policy) -> None:
    db, backup = tmp_path / "data" / "conductbot.sqlite3", tmp_path / "copy.sqlite3"
    source = tmp_path / "source.sqlite3"

    async def make() -> None:
        async with Store.open(source) as store:
            await _populate(store, test_policy, count=5)
            await store.backup(backup)

    asyncio.run(make())
    db.parent.mkdir()
    Path(f"{db}-wal").write_bytes(b"left over from a lost disk" * 100)
    assert main(["restore", str(backup), "--db", str(db)]) == 0
    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert _rows(db, "SELECT COUNT(*) FROM messages") == [(5,)]


@pytest.mark.parametrize("damage", ["corrupt", "newer", "missing"])
def test_restore_refuses_a_bad_backup_before_touching_the_database(
        tmp_path: Path, test_policy: Policy, damage: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    db, backup = tmp_path / "live.sqlite3", tmp_path / "copy.sqlite3"

    async def make() -> None:
        async with Store.open(db) as store:
            await _populate(store, test_policy, count=3)
            await store.backup(backup)

    asyncio.run(make())
    if damage == "corrupt":
        data = bytearray(backup.read_bytes())
        data[4096:8192] = b"\xff" * 4096
        backup.write_bytes(bytes(data))
    elif damage == "newer":
        con = sqlite3.connect(backup)
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        con.close()
    else:
        backup.unlink()
    before = db.read_bytes()
    assert main(["restore", str(backup), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert {"corrupt": "not a usable SQLite database", "newer": "newer than this conductbot",
            "missing": "there is no backup"}[damage] in " ".join(err.split())
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["live.sqlite3"] + ([] if damage == "missing" else ["copy.sqlite3"]))
