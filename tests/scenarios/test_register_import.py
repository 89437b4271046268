"""Register import into a real store, and the console route for commands (`bot.py mod`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.members import import_register
from bot.models import MemberStatus, Role
from bot.register import parse_register, read_register
from bot.store import Store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "register.csv"
HEADER = "membership_number,name,status,suspended_from,suspended_until,reason,discord_id,roles\n"


async def test_import_is_idempotent_and_reports_changes(tmp_path: Path) -> None:
    async with Store.open(tmp_path / "db.sqlite3") as store:
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


async def test_bad_rows_are_reported_and_the_rest_imported(tmp_path: Path) -> None:
    async with Store.open(tmp_path / "db.sqlite3") as store:
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


@pytest.mark.model
def test_replay_after_import_produces_cases(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "db.sqlite3")
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
    assert "Graham Pike" in shown and "suspended until 2027-02-20" in shown


def test_members_export_and_erase_commands(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "db.sqlite3")
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
