"""The core stays platform-agnostic: nothing under bot/ imports a platform library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parents[2]
BANNED = {"discord", "slack_bolt", "slack_sdk"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_imports_no_platform_library() -> None:
    files = sorted((ROOT / "bot").rglob("*.py"))
    assert len(files) > 10
    offenders = {str(f.relative_to(ROOT)): imported_roots(f) & BANNED for f in files}
    assert {f: bad for f, bad in offenders.items() if bad} == {}


def test_missing_model_is_a_clear_error_not_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CONDUCTBOT_DETOXIFY_CHECKPOINT", str(tmp_path / "toxic.ckpt"))
    assert main(["--scorer", "detoxify", "score", "hello"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"checkpoint not found ({tmp_path / 'toxic.ckpt'})" in err
    assert "Download the checkpoint" in err


def test_bad_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CONDUCTBOT_SCORER", "magic")
    assert main(["score", "hello"]) == 2
    assert "CONDUCTBOT_SCORER must be one of auto, offline, detoxify" in capsys.readouterr().err


def test_run_without_any_platform_configured_says_what_to_set(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert main(["run"]) == 2
    assert "set DISCORD_TOKEN" in " ".join(capsys.readouterr().err.split())


def test_run_refuses_a_malformed_setting_before_connecting(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "abc.def.ghi")
    monkeypatch.setenv("DISCORD_GUILD_IDS", "not-a-number")
    assert main(["run"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "DISCORD_GUILD_IDS must be a comma-separated list" in err
    assert "abc.def.ghi" not in err  # the token is never shown


def test_run_refuses_a_digest_target_on_an_unconfigured_platform(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "abc.def.ghi")
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.setenv("CONDUCTBOT_DIGEST_SLACK_CHANNEL", "CDIGEST01")
    assert main(["run"]) == 2
    assert "the digest is set to post to slack" in " ".join(capsys.readouterr().err.split())
