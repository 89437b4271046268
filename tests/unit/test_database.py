"""Where the store is: CONDUCTBOT_DB and --db as a SQLite path or a PostgreSQL URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import Settings
from bot.database import described, is_url, parse_target, redact


def test_a_postgresql_url_stays_a_url_and_a_path_becomes_a_path() -> None:
    assert parse_target("postgresql://bot@db.internal/conductbot") == \
        "postgresql://bot@db.internal/conductbot"
    assert parse_target(" postgres:///conductbot ") == "postgres:///conductbot"
    assert parse_target("data/x.sqlite3") == Path("data/x.sqlite3")
    assert parse_target("sqlite:///data/x.sqlite3") == Path("data/x.sqlite3")
    assert parse_target("sqlite:////var/lib/x.sqlite3") == Path("/var/lib/x.sqlite3")


@pytest.mark.parametrize(("text", "said"), [
    ("mysql://bot@db/conductbot", r"only postgresql://\.\.\. and sqlite"),
    ("postgresq://bot@db/conductbot", "only postgresql://... and sqlite:///... databases"),
    ("sqlite://data/x.sqlite3", "names no file"),
    ("sqlite:///", "names no file"),
])
def test_a_mistyped_scheme_is_refused_not_taken_for_a_file_name(text: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_target(text)


def test_the_password_never_shows() -> None:
    url = "postgresql://bot:s3cr%40t@db.internal:5432/conductbot?sslmode=require"
    assert described(url) == "postgresql://bot:***@db.internal:5432/conductbot?sslmode=require"
    assert described(Path("a/b.sqlite3")) == "a/b.sqlite3"
    with pytest.raises(ValueError) as refused:
        parse_target("mysql://bot:hunter2@db/x")
    assert "hunter2" not in str(refused.value)


def test_conductbot_db_takes_either_and_names_itself_when_wrong() -> None:
    assert Settings.from_env({"CONDUCTBOT_DB": "postgresql://bot@db/c"}).db == \
        "postgresql://bot@db/c"
    assert Settings.from_env({}).db == Path("data/conductbot.sqlite3")
    with pytest.raises(ValueError, match=r"^CONDUCTBOT_DB: .*only postgresql"):
        Settings.from_env({"CONDUCTBOT_DB": "mongodb://x/y"})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_is_a_target_or_a_clear_refusal(text: str) -> None:
    try:
        target = parse_target(text)
    except ValueError as exc:
        assert "://" in text and str(exc)
        return
    if is_url(target):
        assert isinstance(target, str) and target == text.strip()
    else:
        assert isinstance(target, Path)


@settings(max_examples=300, deadline=None)
@given(user=st.from_regex(r"[a-z]{1,8}", fullmatch=True),
       password=st.from_regex(r"[A-Za-z0-9]{4,16}", fullmatch=True),
       host=st.from_regex(r"[a-z]{1,10}(\.[a-z]{2,5})?", fullmatch=True))
def test_a_password_is_always_redacted(user: str, password: str, host: str) -> None:
    url = f"postgresql://{user}:{password}@{host}/conductbot"
    shown = redact(url)
    assert f":{password}@" not in shown and shown.startswith(f"postgresql://{user}:***@{host}")
