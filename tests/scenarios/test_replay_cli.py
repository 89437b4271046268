"""`bot.py replay` end to end with the real offline scorer: bad lines skipped, nothing lost."""

from __future__ import annotations

import io
import json
import re
import sqlite3
from pathlib import Path

import pytest

from bot.cli import main

pytestmark = pytest.mark.model

GOOD = [
    {"id": "a1", "channel": "general", "author": "ann", "ts": "2026-11-20T10:00:00Z",
     "text": "Phone bank on Thursday, who is in?"},
    {"id": "a2", "channel": "general", "author": "bob", "ts": "2026-11-20T10:01:00Z",
     "text": "Her home number is 07700 900123 if anyone wants it",
     "platform": "slack"},
]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_replay_skips_bad_lines_and_keeps_stored_data(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "db.sqlite3"
    first = write(tmp_path / "first.jsonl", [json.dumps(GOOD[0])])
    assert main(["replay", str(first), "--db", str(db), "--no-progress"]) == 0
    capsys.readouterr()

    bad = [
        "{this is not json",
        json.dumps({"id": "b1", "channel": "general", "author": "x", "ts": "2026-11-20T10:00Z"}),
        json.dumps({**GOOD[0], "id": "b2", "text": ""}),
        json.dumps({**GOOD[0], "id": "b3", "text": "x" * 100_000}),
        json.dumps({**GOOD[0], "id": "b4", "platform": "teams"}),
        json.dumps({**GOOD[0], "id": "b5", "text": "ok\x00 then"}),
        json.dumps(GOOD[0]),  # already decided in the first run
        json.dumps(GOOD[1]),
    ]
    second = write(tmp_path / "second.jsonl", bad)
    assert main(["replay", str(second), "--db", str(db), "--json", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    decided = [json.loads(line) for line in out.splitlines()]
    assert [d["id"] for d in decided] == ["b5", "a1", "a2"]
    assert decided[1] == {"id": "a1", "platform": "console", "revision": 0, "duplicate": True}
    dox = decided[2]
    assert dox["action"] == "escalate" and dox["clause"] == "1.5"
    assert "doxxing:uk_phone" in dox["rule_ids"]
    assert {"severity", "categories", "scores", "policy_version"} <= set(dox)
    for expected in ("second.jsonl:1: not valid JSON", "second.jsonl:2: missing field(s): text",
                     "second.jsonl:3: message b2 has no text", "second.jsonl:4: message b3 is "
                     "100,000 characters", "second.jsonl:5: unknown platform 'teams'",
                     "second.jsonl:6: removed 1 control character"):
        assert expected in " ".join(err.split()), expected
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT message_id FROM messages ORDER BY id")]
        statuses = {r[0] for r in conn.execute("SELECT status FROM outbox")}
    assert ids == ["a1", "b5", "a2"]  # the first run's message is still there
    assert statuses == {"done"}  # the console adapter performed (recorded) every action


def test_replay_from_stdin_prints_readable_lines_and_summary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(json.dumps(g) for g in GOOD)))
    assert main(["replay", "-", "--db", str(tmp_path / "db.sqlite3")]) == 0
    out = capsys.readouterr().out
    assert "a1" in out and "allow" in out
    assert "escalate" in out and "1.5 Respect privacy" in out
    assert "summary" in out and "categories" in out


def test_a_shadow_policy_says_nothing_was_done(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    default = (Path(__file__).parents[2] / "policies" / "default.toml").read_text("utf-8")
    policy = tmp_path / "shadow.toml"
    policy.write_text('mode = "shadow"\n' + default, encoding="utf-8")
    messages = write(tmp_path / "m.jsonl", [json.dumps(g) for g in GOOD])
    args = ["--policy", str(policy), "replay", str(messages), "--no-progress"]
    assert main([*args, "--db", str(tmp_path / "a.sqlite3")]) == 0
    out = capsys.readouterr().out
    assert "escalate" in out and "shadow mode, nothing done; 1.5 Respect privacy" in out
    assert re.search(r"of which in shadow mode \(nothing done to the member\)\s*│\s*1 ", out)
    assert "1 platform action(s) recorded" in out  # the moderators' shadow case only
    assert main([*args, "--json", "--db", str(tmp_path / "b.sqlite3")]) == 0
    decided = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if line.startswith("{")]
    assert [d["mode"] for d in decided] == ["shadow", "shadow"]
    with sqlite3.connect(tmp_path / "b.sqlite3") as db:
        kinds = [k for (k,) in db.execute("SELECT kind FROM outbox")]
    assert kinds == ["escalate"]


def test_missing_file_is_a_clear_error(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "nope.jsonl"), "--db", str(tmp_path / "d")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_lines_that_cannot_be_stored_are_skipped_and_counted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Each of these used to end the whole replay with a traceback (issue 11, point 10).
    path = tmp_path / "odd.jsonl"
    good = {**GOOD[0], "id": "c1"}
    path.write_bytes(b"\n".join([
        json.dumps({**good, "id": "c0", "revision": 2**63}).encode(),
        json.dumps({**good, "id": "c2", "text": "\ud800"}).encode(),  # a JSON-escaped surrogate
        json.dumps({**good, "id": "c3", "author_name": 7}).encode(),
        json.dumps({**good, "id": "c4", "ts": "9999-12-31T23:59:59-14:00"}).encode(),
        json.dumps({**good, "id": "c5", "text": "caf\u00e9 open"}).encode().replace(
            b"\\u00e9", b"\xe9"),  # Latin-1, not UTF-8
        json.dumps(good).encode(),
    ]) + b"\n")
    assert main(["replay", str(path), "--db", str(tmp_path / "db"), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    err = " ".join(err.split())
    for expected in ("odd.jsonl:1: field 'revision' must be a non-negative integer",
                     "odd.jsonl:2: field 'text' is not valid Unicode",
                     "odd.jsonl:3: field 'author_name' must be a string",
                     "odd.jsonl:4: field 'ts' is out of range",
                     "odd.jsonl:5: replaced 1 byte(s) that are not UTF-8"):
        assert expected in err, expected
    assert "c5" in out and "c1" in out
    assert re.search(r"skipped\s*│\s*4\b", out), out
