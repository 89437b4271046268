"""docs/deploy.md followed as written: every shell block marked `<!-- tested -->` runs here.

The blocks run under bash in a scratch folder that stands for the server. What cannot exist
here is stood in for, and nothing else: the paths /etc/conductbot, /var/lib/conductbot,
/var/backups/conductbot and /opt/conductbot point into the scratch folder (and the checkout);
`sudo` runs its command as you (the wrapper it calls is the real deploy/conductbot.sh);
`systemctl` records what it is asked and, for `start` of a oneshot unit of deploy/, runs that
unit's ExecStart the way systemd would (its Environment, EnvironmentFile and
WorkingDirectory); `journalctl` records only.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.store.backup import check_copy

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deploy.md"
TESTED = re.compile(r"<!-- tested -->\n```sh\n(.*?)```", re.S)

SYSTEMCTL = r'''#!PYTHON
"""systemctl stand-in: record the call; run a oneshot unit's ExecStart on `start`."""
import os, shlex, subprocess, sys
from pathlib import Path

sandbox, repo = Path(os.environ["SANDBOX"]), os.environ["REPO"]
with open(sandbox / "calls.log", "a") as log:
    log.write("systemctl " + shlex.join(sys.argv[1:]) + "\n")


def mapped(text):
    text = text.replace("/opt/conductbot/.venv/bin/python", os.environ["PYTHON"])
    text = text.replace("/opt/conductbot", repo)
    for real in ("/etc/conductbot", "/var/lib/conductbot", "/var/backups/conductbot",
                 "/var/cache/conductbot"):
        text = text.replace(real, str(sandbox) + real)
    return text


if sys.argv[1:2] == ["start"]:
    for name in sys.argv[2:]:
        path = Path(repo) / "deploy" / (name if "." in name else name + ".service")
        values = {}
        for line in path.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                values.setdefault(key, []).append(mapped(value))
        if values.get("Type") != ["oneshot"]:
            continue  # the bot itself is not started here
        env = dict(os.environ)
        for pair in values.get("Environment", []):
            key, _, value = pair.partition("=")
            env[key] = value
        for file in values.get("EnvironmentFile", []):  # a file's settings win
            for line in Path(file).read_text().splitlines():
                if "=" in line and not line.lstrip().startswith("#"):
                    key, _, value = line.strip().partition("=")
                    env[key] = value
        [command] = values["ExecStart"]
        [folder] = values["WorkingDirectory"]
        done = subprocess.run(shlex.split(command), cwd=folder, env=env)
        if done.returncode:
            sys.exit(done.returncode)
'''

RECORDER = '''#!/bin/sh
echo "$(basename "$0") $*" >> "$SANDBOX/calls.log"
'''


def blocks() -> list[str]:
    return TESTED.findall(DOC.read_text())


def in_sandbox(text: str, sandbox: Path) -> str:
    for real in ("/etc/conductbot", "/var/lib/conductbot", "/var/backups/conductbot"):
        text = text.replace(real, f"{sandbox}{real}")
    return text


@pytest.fixture
def server(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The scratch server: its folders, the environment file, the stand-ins on PATH."""
    sandbox = tmp_path / "server"
    bin_dir = sandbox / "usr" / "local" / "bin"
    for folder in ("etc/conductbot", "var/lib/conductbot", "var/backups/conductbot",
                   "var/cache/conductbot", "usr/local/bin"):
        (sandbox / folder).mkdir(parents=True)
    db = sandbox / "var/lib/conductbot/conductbot.sqlite3"
    # As the doc says: the template, with the database and the policy set.
    (sandbox / "etc/conductbot/env").write_text(
        (ROOT / "deploy" / "env.example").read_text()
        + f"CONDUCTBOT_DB={db}\nCONDUCTBOT_POLICY={sandbox}/etc/conductbot/policy.toml\n")
    shutil.copy(ROOT / "policies" / "default.toml", sandbox / "etc/conductbot/policy.toml")
    shutil.copy(ROOT / "deploy" / "conductbot.sh", bin_dir / "conductbot")
    (bin_dir / "systemctl").write_text(SYSTEMCTL.replace("PYTHON", sys.executable, 1))
    (bin_dir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    (bin_dir / "journalctl").write_text(RECORDER)
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    me = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path),
           "SANDBOX": str(sandbox), "REPO": str(ROOT), "PYTHON": sys.executable,
           "CONDUCTBOT_HOME": str(ROOT), "CONDUCTBOT_USER": me,
           "CONDUCTBOT_ENV_FILE": str(sandbox / "etc/conductbot/env"),
           "LANG": "C.UTF-8", "COLUMNS": "200"}
    return sandbox, env


def sh(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", command], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=240)


def count(db: Path, sql: str) -> int:
    """One number from the database, on a connection closed at once (an open one would make
    `restore` refuse the database as in use, rightly)."""
    con = sqlite3.connect(db)
    try:
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


def calls(sandbox: Path) -> list[str]:
    log = sandbox / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def test_the_deploy_doc_marks_its_operations_as_tested() -> None:
    tested = blocks()
    joined = "\n".join(tested)
    for command in ("policy check", "systemctl reload conductbot", "conductbot backup",
                    "conductbot restore", "retention --dry-run", "systemctl stop conductbot"):
        assert command in joined, command
    # The marker always sits right before a block: none is dangling.
    assert len(re.findall(r"^<!-- tested -->$", DOC.read_text(), re.M)) == len(tested)


def test_the_deploy_doc_runs_as_written(server: tuple[Path, dict[str, str]]) -> None:
    sandbox, env = server
    backups = sandbox / "var/backups/conductbot"
    db = sandbox / "var/lib/conductbot/conductbot.sqlite3"
    # The state the doc's operations start from: a registered party, and a backup taken on
    # the night the restore example names.
    seed = sh(f"conductbot members import {ROOT / 'examples' / 'register.csv'} && "
              f"conductbot backup --out {backups}/conductbot-20261130T033012Z.sqlite3",
              env, sandbox)
    assert seed.returncode == 0, seed.stdout + seed.stderr
    members = count(db, "SELECT COUNT(*) FROM members")

    ran: dict[str, str] = {}
    for block in blocks():
        result = sh(in_sandbox(block, sandbox), env, sandbox)
        assert result.returncode == 0, f"{block}\n{result.stdout}\n{result.stderr}"
        ran[block] = result.stdout
        log = calls(sandbox)
        if "policy check" in block:
            assert ": OK (version" in result.stdout
            assert "systemctl reload conductbot" in log
        if "conductbot backup" in block:
            assert log[0] == "systemctl start conductbot-backup"
            made = sorted(p for p in backups.iterdir()
                          if p.name != "conductbot-20261130T033012Z.sqlite3")
            assert len(made) == 2  # by the timer's unit, then by hand
            for path in made:
                assert check_copy(path)["members"] == members
            assert result.stdout.count("backup written to") == 2
        if "conductbot restore" in block:
            assert log.index("systemctl stop conductbot") < log.index(
                "systemctl start conductbot")
            assert "restored " in result.stdout
            assert [p.name for p in db.parent.iterdir() if ".replaced-" in p.name]
            assert count(db, "SELECT COUNT(*) FROM members") == members
            assert count(db, "SELECT COUNT(*) FROM audit_log WHERE action='restore'") == 1
        if "retention --dry-run" in block:
            assert "would erase the text of 0 message(s)" in result.stdout
    assert len(ran) == len(blocks()) >= 4


def test_the_restore_example_undoes_what_came_after_the_backup(
        server: tuple[Path, dict[str, str]]) -> None:
    sandbox, env = server
    backups = sandbox / "var/backups/conductbot"
    db = sandbox / "var/lib/conductbot/conductbot.sqlite3"
    seed = sh(f"conductbot members import {ROOT / 'examples' / 'register.csv'} && "
              f"conductbot backup --out {backups}/conductbot-20261130T033012Z.sqlite3",
              env, sandbox)
    assert seed.returncode == 0, seed.stderr
    con = sqlite3.connect(db)
    con.execute("INSERT INTO members (id, display_name, created_at) VALUES "
                "('m-late', 'Joined after the backup', '2026-12-01')")
    con.commit()
    con.close()
    [restore] = [b for b in blocks() if "conductbot restore" in b]
    result = sh(in_sandbox(restore, sandbox), env, sandbox)
    assert result.returncode == 0, result.stderr
    assert count(db, "SELECT COUNT(*) FROM members WHERE id='m-late'") == 0
