"""`bot.py db copy`: a deployment moved from SQLite to PostgreSQL (and back) keeps every row,
and the weekly digest reads the same from either."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from bot.cli import main
from bot.models import CaseState
from bot.store import CaseDraft, Store
from bot.store.copy import TABLES, table_checksum
from tests.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
DEMO_WEEK = "2026-W47"  # examples/forum.jsonl


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The database `make demo` builds: the example register, then the example forum week
    replayed with the offline scorer."""
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    assert main(["members", "import", str(ROOT / "examples" / "register.csv"),
                 "--db", str(path)]) == 0
    assert main(["replay", str(ROOT / "examples" / "forum.jsonl"), "--db", str(path),
                 "--no-progress"]) == 0
    return path


async def cli(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))


async def checksums(target: Path | str) -> dict[str, tuple[int, str]]:
    async with Store.open(target) as store, store.transaction() as db:
        return {table: await table_checksum(db, table, key) for table, key in TABLES}


async def digest(db: Path | str, fmt: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert await cli("digest", "--db", str(db), "--week", DEMO_WEEK, "--format", fmt) == 0
    return capsys.readouterr().out


async def test_the_demo_moves_to_postgresql_and_back_with_every_row_and_the_same_digest(
        demo: Path, postgres_server: PostgresServer, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = await checksums(demo)
    assert before["verdicts"][0] == 286 and before["cases"][0] > 0
    async with postgres_server.database() as url:
        capsys.readouterr()
        assert await cli("db", "copy", "--from", str(demo), "--to", url) == 0
        said = capsys.readouterr().out
        assert "every row count and checksum matches" in said
        assert re.search(r"^ +verdicts +286 rows +sha256 [0-9a-f]{16}$", said, re.M), said

        on_postgres = await checksums(url)
        # Everything but the audit log is identical; the log gained the copy's own entry.
        assert {t: v for t, v in on_postgres.items() if t != "audit_log"} == \
            {t: v for t, v in before.items() if t != "audit_log"}
        assert on_postgres["audit_log"][0] == before["audit_log"][0] + 1
        for fmt in ("md", "json", "html"):
            assert await digest(url, fmt, capsys) == await digest(demo, fmt, capsys), fmt

        # The bot goes on where the copy left off: the next case has the next number.
        async with Store.open(url) as store:
            member = (await store.find_members("mod_karen"))[0]
            case_id, _ = await store.sanction(
                member.id, draft=CaseDraft("warning", "after the move", "test",
                                           state=CaseState.UPHELD),
                actions=[], reason="test", audit_action="test")
        assert case_id == before["cases"][0] + 1

        # And back to a file: the same rows again.
        back = tmp_path / "back.sqlite3"
        assert await cli("db", "copy", "--from", url, "--to", str(back)) == 0
    returned = await checksums(back)
    assert returned["cases"][0] == before["cases"][0] + 1
    for table in ("members", "accounts", "messages", "verdicts", "strikes", "outbox"):
        assert returned[table] == before[table], table


async def test_a_target_that_holds_rows_is_refused_and_left_as_it_was(
        demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "busy.sqlite3"
    async with Store.open(target) as store:
        await store.member_for("discord", "1", display_name="someone")  # type: ignore[arg-type]
    before = await checksums(target)
    assert await cli("db", "copy", "--from", str(demo), "--to", str(target)) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "is not empty (table members has rows)" in err
    assert await checksums(target) == before


async def test_an_older_source_is_refused_with_what_to_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "old.sqlite3"
    async with Store.open(old):
        pass
    with closing(sqlite3.connect(old)) as db:
        db.execute("PRAGMA user_version = 5")
    target = tmp_path / "new.sqlite3"
    assert await cli("db", "copy", "--from", str(old), "--to", str(target)) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "schema version 5" in err and "db migrate" in err
    assert not target.exists() or await checksums(target) == await checksums(
        tmp_path / "new.sqlite3")


async def test_a_mistyped_source_or_scheme_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "t.sqlite3"
    assert await cli("db", "copy", "--from", str(tmp_path / "typo.sqlite3"),
                     "--to", str(target)) == 2
    assert "there is no database at" in " ".join(capsys.readouterr().err.split())
    assert not target.exists()
    with pytest.raises(SystemExit):
        await cli("db", "copy", "--from", "mysql://x/y", "--to", str(target))
    assert "only postgresql://... and sqlite:///... databases" in " ".join(
        capsys.readouterr().err.split())


async def test_the_checksum_sees_one_changed_value(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    async with Store.open(path) as store:
        member = await store.member_for("discord", "1", display_name="a")  # type: ignore[arg-type]
        await store.set_roles(member.id, ["moderator"], actor="test")  # type: ignore[list-item]
    first = await checksums(path)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE members SET roles='' WHERE id=?", (member.id,))
    second = await checksums(path)
    assert first["members"][0] == second["members"][0]
    assert first["members"][1] != second["members"][1]
    assert first["accounts"] == second["accounts"]


async def test_backup_and_restore_of_a_postgresql_store_point_to_its_own_tools(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://bot:hunter2@127.0.0.1:1/conductbot"  # never connected to
    assert await cli("backup", "--db", url, "--out", str(tmp_path / "b.sqlite3")) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "pg_dump" in said and "hunter2" not in said
    backup = tmp_path / "b.sqlite3"
    async with Store.open(backup):
        pass
    assert await cli("restore", str(backup), "--db", url) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "pg_restore" in said and "db copy" in said
