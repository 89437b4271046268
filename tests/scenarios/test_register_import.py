"""Register import into a real store on each backend (a SQLite file, a PostgreSQL database), and
the console route for commands (`bot.py mod`)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.database import Target
from bot.members import import_register
from bot.models import MemberStatus, Role
from bot.register import parse_register, read_register
from bot.store import Store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "register.csv"
HEADER = "membership_number,name,status,suspended_from,suspended_until,reason,discord_id,roles\n"


async def test_import_is_idempotent_and_reports_changes(database: Target) -> None:
    async with Store.open(database) as store:
        first = await import_register(store, read_register(EXAMPLE), actor="test")
        assert first.errors == [] and first.counts["new"] == first.rows
        again = await import_register(store, read_register(EXAMPLE), actor="test")
        assert again.counts["unchanged"] == again.rows and again.changes == []

        changed = parse_register(HEADER + "A204518,Sarah Whitfield,suspended,2026-11-01,,"
                                          "harassment complaint upheld,,mp\n")
        report = await import_register(store, changed, actor="test")
        assert report.counts["status"] == 1
        assert "status active -> suspended" in report.changes[0]
        member = (await store.find_members("A204518"))[0]
        assert member.status is MemberStatus.SUSPENDED and member.suspended_until is None
        assert member.roles == {Role.MP}
        audit = await store.audit_entries(member_id=member.id, action="register-import")
        assert len(audit) == 2  # created, then the status change; the no-op run wrote nothing


async def test_reimport_never_silently_undoes_a_suspension_made_in_the_bot(
        database: Target) -> None:
    exported = datetime(2026, 11, 1, tzinfo=UTC)
    clock = [datetime(2026, 11, 2, tzinfo=UTC)]
    async with Store.open(database, clock=lambda: clock[0]) as store:
        await import_register(store, read_register(EXAMPLE), actor="register:a.csv",
                              exported_at=exported)
        member = (await store.find_members("A204518"))[0]
        until = datetime(2027, 2, 1, tzinfo=UTC)
        await store.set_status(member.id, status=MemberStatus.SUSPENDED, actor="Omar (m-1)",
                               reason="harassment", since=clock[0], until=until)

        # the same export again (it predates the suspension): the suspension stays
        report = await import_register(store, read_register(EXAMPLE), actor="register:a.csv",
                                       exported_at=exported)
        (conflict,) = [c for c in report.changes if "conflict" in c]
        assert "A204518 Sarah Whitfield: conflict (case 1): the register export says active; " \
               "Omar (m-1) set suspended until 2027-02-01T00:00 on 2026-11-02T00:00, after " \
               "the export; kept the bot's suspended until 2027-02-01T00:00" in conflict
        assert report.counts["conflict"] == 1 and "1 conflict(s) with the bot" in \
            report.lines()[-1]
        member = (await store.find_members("A204518"))[0]
        assert member.status is MemberStatus.SUSPENDED and member.suspended_until == until
        (case,) = await store.member_cases(member.id)
        assert case.kind == "register" and case.state.active and case.priority == 1
        # importing again reports it again but opens no second case
        again = await import_register(store, read_register(EXAMPLE), actor="register:a.csv",
                                      exported_at=exported)
        assert any("conflict (case 1)" in c for c in again.changes)
        assert len(await store.member_cases(member.id)) == 1

        # a stricter register wins over the bot's milder status, still reported
        expelled = parse_register(HEADER + "A204518,Sarah Whitfield,expelled,,,"
                                           "NEC decision,,mp\n")
        stricter = await import_register(store, expelled, actor="register:b.csv",
                                         exported_at=exported)
        assert "kept the register's expelled" in stricter.changes[0]
        member = (await store.find_members("A204518"))[0]
        assert member.status is MemberStatus.EXPELLED

        # an export made after the bot's change is the register's word: no conflict
        clock[0] = datetime(2026, 11, 3, tzinfo=UTC)
        await store.set_status(member.id, status=MemberStatus.SUSPENDED, actor="Omar (m-1)",
                               reason="reduced on appeal", since=clock[0], until=until)
        later = await import_register(store, read_register(EXAMPLE), actor="register:c.csv",
                                      exported_at=datetime(2026, 11, 4, tzinfo=UTC))
        assert not any("conflict" in c for c in later.changes)
        member = (await store.find_members("A204518"))[0]
        assert member.status is MemberStatus.ACTIVE


async def test_bad_rows_are_reported_and_the_rest_imported(database: Target) -> None:
    async with Store.open(database) as store:
        await import_register(store, read_register(EXAMPLE), actor="test")
        taken = "720024629630736300"  # mod_karen's Discord account in the example register
        register = parse_register(HEADER + f"B000001,New Person,active,,,,{taken},\n"
                                           "B000002,Okay Person,active,,,,,\n"
                                           "B000003,Bad Status,resting,,,,,\n")
        report = await import_register(store, register, actor="test")
        assert [e.line for e in report.errors] == [2, 4]
        assert "linked to member A100231" in str(report.errors[0])
        assert await store.find_members("B000001") == []  # no half row
        assert len(await store.find_members("B000002")) == 1


async def test_a_cleaned_name_is_imported_and_the_import_says_so(database: Target) -> None:
    # A zero-width space would make "Karen​Lomax" look exactly like the moderator.
    register = parse_register(HEADER + "B000009,Karen​ Lomax,active,,,,,\n")
    async with Store.open(database) as store:
        report = await import_register(store, register, actor="test")
        (member,) = await store.find_members("B000009")
    assert member.display_name == "Karen Lomax"
    (warning,) = [line for line in report.lines() if line.startswith("warning")]
    assert warning.startswith("warning line 2: ") and "U+200B" in warning


@pytest.mark.model
def test_replay_after_import_produces_cases(database: Target,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    db = str(database)
    assert main(["members", "import", str(EXAMPLE), "--db", db]) == 0
    assert "21 new" in capsys.readouterr().out
    assert main(["replay", str(ROOT / "examples" / "forum.jsonl"), "--db", db,
                 "--no-progress", "--json"]) == 0
    decided = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_id = {(d["id"], d["revision"]): d for d in decided}
    # truthseeker_77 is suspended from 20 November: later posts are escalated as such
    assert "sanctioned" in by_id[("m0231", 0)]["categories"]
    assert by_id[("m0231", 0)]["priority"] == 9  # and names a protected person

    assert main(["mod", "--db", db, "--as", "console:mod_karen", "--json", "queue"]) == 0
    queue = json.loads(capsys.readouterr().out)
    assert queue["ok"] and int(queue["title"].split()[0]) >= 20

    assert main(["mod", "--db", db, "--as", "console:kev_rawlinson", "queue"]) == 1
    assert "Only moderators" in capsys.readouterr().out

    assert main(["members", "show", "truthseeker_77", "--db", db]) == 0
    shown = capsys.readouterr().out
    assert "Graham Pike" in shown and "suspended until Sat 20 Feb 2027, 00:00 GMT" in shown


def test_members_export_and_erase_commands(database: Target, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    db = str(database)
    assert main(["members", "import", str(EXAMPLE), "--db", db]) == 0
    out = tmp_path / "pike.json"
    assert main(["members", "export", "A262905", "--db", db, "--out", str(out)]) == 0
    exported = json.loads(out.read_text(encoding="utf-8"))
    assert exported["member"]["display_name"] == "Graham Pike"
    assert exported["member"]["status"] == "suspended"
    capsys.readouterr()
    assert main(["members", "erase", "A262905", "--reason", "request", "--db", db]) == 0
    assert "would be erased; add --yes" in capsys.readouterr().out
    assert main(["members", "erase", "A262905", "--reason", "request", "--yes",
                 "--db", db]) == 0
    assert "erased the text of 0 message(s)" in capsys.readouterr().out
    assert main(["members", "export", "nobody-here", "--db", db]) == 1


def test_the_most_verbose_log_holds_no_message_text(database: Target,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """`-vv` logs the bot's own debugging, never the SQL parameters (texts, names, numbers)."""
    caplog.set_level(logging.DEBUG)
    assert main(["-vv", "members", "import", str(EXAMPLE), "--db", str(database)]) == 0
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # the verbosity is real
    assert not [r for r in caplog.records if r.name.startswith(("aiosqlite", "psycopg"))]
    assert "Karen Lomax" not in caplog.text and "INSERT" not in caplog.text


def test_paths_that_are_not_files_are_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # About file paths given for the database and the export: a SQLite file.
    db = str(tmp_path / "db.sqlite3")
    assert main(["members", "import", str(EXAMPLE), "--db", db]) == 0
    for argv, expected in (
            (["members", "show", "A262905", "--db", "-"], "the database must be a file path"),
            (["members", "show", "A262905", "--db", str(tmp_path)], "is a folder: name the "
                                                                   "database file in it"),
            (["members", "export", "A262905", "--db", db, "--out", str(tmp_path)],
             "is a folder: name a file in it")):
        with pytest.raises(SystemExit) as stopped:
            main(argv)
        assert stopped.value.code == 2
        assert expected in capsys.readouterr().err
    assert not (Path.cwd() / "-").exists()
    # '-' is standard output; a missing folder on the way is created
    assert main(["members", "export", "A262905", "--db", db, "--out", "-"]) == 0
    assert '"Graham Pike"' in capsys.readouterr().out
    nested = tmp_path / "exports" / "2026" / "pike.json"
    assert main(["members", "export", "A262905", "--db", db, "--out", str(nested)]) == 0
    assert json.loads(nested.read_text(encoding="utf-8"))["member"]["status"] == "suspended"
