"""Store tests on each backend (a SQLite file, a PostgreSQL database): migrations, dedupe,
atomic verdict + outbox, the stale-standing check and the digest's lock across processes.
Tests of SQLite itself (WAL mode, PRAGMA user_version, a file that is no database) use a file."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.actions import plan_actions
from bot.database import Target
from bot.decide import decide
from bot.errors import StoreError
from bot.models import (
    ActionKind,
    ActionStatus,
    Message,
    Platform,
    ScoreSet,
    Standing,
    Verdict,
)
from bot.policy import Policy
from bot.store import StaleStanding, Store, standing_token
from bot.store.migrations import SCHEMA_VERSION

WHEN = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def message(mid: str = "1", *, revision: int = 0, text: str = "hello") -> Message:
    return Message(Platform.DISCORD, mid, "c1", "u1", text, WHEN, revision=revision,
                   channel_name="general")


def escalation(test_policy: Policy) -> Verdict:
    return decide(ScoreSet({"threat": 0.9}, "m", "1"), [], policy=test_policy, standing=Standing(),
                  channel="general")


async def test_new_database_is_migrated_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "db.sqlite3"
    async with Store.open(path) as store:
        assert await store.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"members", "accounts", "messages", "verdicts", "outbox"} <= tables


async def test_reopening_keeps_data_and_does_not_remigrate(database: Target,
                                                           test_policy: Policy) -> None:
    async with Store.open(database) as store:
        member = await store.member_for(Platform.SLACK, "U1", display_name="Ann")
    async with Store.open(database) as store:
        again = await store.member_for(Platform.SLACK, "U1")
        assert again.id == member.id and again.display_name == "Ann"


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this conductbot understands"):
        async with Store.open(path):
            pass


async def test_corrupt_file_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a usable conductbot database"):
        async with Store.open(path):
            pass


async def test_verdict_and_outbox_commit_together(store: Store, test_policy: Policy) -> None:
    msg = message()
    member = await store.member_for(msg.platform, msg.author)
    verdict = escalation(test_policy)
    actions = plan_actions(msg, verdict, policy=test_policy)
    recorded = await store.record(msg, member, verdict, actions)
    assert recorded is not None
    assert [a.kind for a in recorded.actions] == [ActionKind.DELETE, ActionKind.NOTIFY,
                                                  ActionKind.ESCALATE]
    stored = await store.actions(verdict_id=recorded.verdict_id)
    assert [a.id for a in stored] == [a.id for a in recorded.actions]
    assert all(a.status is ActionStatus.PENDING for a in stored)
    row = await store.verdict_for(msg)
    assert row is not None and row["action"] == "escalate" and row["clause"] == "1.3"


async def test_failure_mid_transaction_leaves_nothing(store: Store, test_policy: Policy) -> None:
    msg = message()
    member = await store.member_for(msg.platform, msg.author)
    verdict = escalation(test_policy)
    actions = plan_actions(msg, verdict, policy=test_policy)

    class Unserialisable:
        pass

    broken = [*actions[:1], type(actions[0])(kind=ActionKind.POST, platform=Platform.DISCORD,
                                              payload={"bad": Unserialisable()})]
    with pytest.raises(TypeError):
        await store.record(msg, member, verdict, broken)
    assert not await store.is_decided(msg)
    assert await store.actions() == []
    # and the same message can still be recorded afterwards
    assert await store.record(msg, member, verdict, actions) is not None


async def test_dedupe_on_platform_id_revision(store: Store, test_policy: Policy) -> None:
    msg = message()
    member = await store.member_for(msg.platform, msg.author)
    verdict = escalation(test_policy)
    assert await store.record(msg, member, verdict, []) is not None
    assert await store.is_decided(msg)
    assert await store.record(msg, member, verdict, []) is None  # delivered twice
    edited = message(revision=1, text="edited")
    assert not await store.is_decided(edited)
    assert await store.record(edited, member, verdict, []) is not None
    other_platform = Message(Platform.SLACK, "1", "c1", "u1", "hello", WHEN)
    assert not await store.is_decided(other_platform)


async def test_outbox_results_are_written_back(store: Store, test_policy: Policy) -> None:
    msg = message()
    member = await store.member_for(msg.platform, msg.author)
    verdict = escalation(test_policy)
    recorded = await store.record(msg, member, verdict, plan_actions(msg, verdict,
                                                                     policy=test_policy))
    assert recorded is not None
    first, second, third = (a.id for a in recorded.actions)
    assert first and second and third
    await store.mark_action(first, status=ActionStatus.DONE)
    await store.mark_action(second, status=ActionStatus.PENDING, error="429",
                            retry_at=datetime(2099, 1, 1, tzinfo=UTC))
    await store.mark_action(third, status=ActionStatus.UNSUPPORTED, error="no user token")
    pending = await store.pending_actions(platform=Platform.DISCORD)
    assert pending == []  # done, waiting until 2099, unsupported
    rows = {a.id: a for a in await store.actions()}
    assert rows[first].status is ActionStatus.DONE and rows[first].attempts == 1
    assert rows[second].error == "429"
    assert rows[third].status is ActionStatus.UNSUPPORTED


async def test_unknown_accounts_become_members_of_their_own(store: Store) -> None:
    a = await store.member_for(Platform.DISCORD, "42", display_name="Ann")
    b = await store.member_for(Platform.SLACK, "42", display_name="Ann")
    assert a.id != b.id  # same id on another platform is another account until linked
    assert a.accounts[0].platform is Platform.DISCORD
    assert (await store.member_for(Platform.DISCORD, "42")).id == a.id


async def test_a_platform_name_is_stored_as_it_can_safely_be_shown(store: Store) -> None:
    # A terminal escape sequence would drive a moderator's console; a zero-width space would
    # let the name pass for someone else's.
    member = await store.member_for(Platform.SLACK, "U1",
                                    display_name="\x1b[2J\x1b[31mKaren\u200b Lomax\u202e")
    assert member.display_name == "Karen Lomax"


async def test_decided_answers_for_many_messages_in_one_call(store: Store,
                                                             test_policy: Policy) -> None:
    verdict = escalation(test_policy)
    messages = [Message(Platform.DISCORD, str(i), "c1", "u1", "hello", WHEN) for i in range(1200)]
    member = await store.member_for(Platform.DISCORD, "u1")
    for m in messages[::7]:
        assert await store.record(m, member, verdict, []) is not None
    others = [Message(Platform.SLACK, "7", "c1", "u1", "hello", WHEN),
              Message(Platform.DISCORD, "7", "c1", "u1", "edited", WHEN, revision=1)]
    decided = await store.decided([*messages, *others])
    assert decided == {m.key for m in messages[::7]}  # more keys than one query holds
    assert await store.decided([]) == set()


def test_db_migrate_brings_an_old_database_up_and_check_says_what_is_pending(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    from bot.cli import main
    from bot.store.migrations import MIGRATIONS, SCHEMA_VERSION

    old = tmp_path / "old.sqlite3"
    with sqlite3.connect(old) as db:  # as an earlier conductbot left it: schema 5
        for version, migration in enumerate(MIGRATIONS[:5], start=1):
            db.executescript(migration)
            db.execute(f"PRAGMA user_version = {version}")
    assert main(["db", "migrate", "--check", "--db", str(old)]) == 1
    assert f"schema version 5 of {SCHEMA_VERSION}; {SCHEMA_VERSION - 5} migration(s) " \
        "pending" in capsys.readouterr().out
    assert main(["db", "migrate", "--db", str(old)]) == 0
    assert f"schema version 5 -> {SCHEMA_VERSION}" in capsys.readouterr().out
    assert main(["db", "migrate", "--check", "--db", str(old)]) == 0
    with sqlite3.connect(old) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        db.execute("PRAGMA user_version = 99")  # a newer conductbot's database
    assert main(["db", "migrate", "--db", str(old)]) == 2
    assert "newer than this conductbot understands" in capsys.readouterr().err
    missing = tmp_path / "typo.sqlite3"
    assert main(["db", "migrate", "--db", str(missing)]) == 2
    assert not missing.exists()  # nothing created


# -- two processes on one database ----------------------------------------------------------------


async def test_a_verdict_on_strikes_another_process_changed_is_refused(
        database: Target, test_policy: Policy) -> None:
    verdict = decide(ScoreSet({"insult": 0.8, "toxicity": 0.8}, "m", "1"), [],
                     policy=test_policy, standing=Standing(), channel="general")
    assert verdict.action == "warn"
    async with Store.open(database) as one, Store.open(database) as two:
        member = await one.member_for(Platform.DISCORD, "u1")
        token = standing_token(await one.strikes(member.id))
        # The other process warns the same member meanwhile: one strike point.
        assert await two.record(message("2"), member, verdict, [], strike=1.0) is not None
        with pytest.raises(StaleStanding):
            await one.record(message("1"), member, verdict, [], strike=1.0, standing=token)
        assert not await one.is_decided(message("1"))  # nothing written: decide again
        assert len(await one.strikes(member.id)) == 1
        assert len(await one.audit_entries(member_id=member.id)) == 1
        token = standing_token(await one.strikes(member.id))
        recorded = await one.record(message("1"), member, verdict, [], strike=1.0,
                                    standing=token)
        assert recorded is not None and await two.is_decided(message("1"))
        assert [s["points"] for s in await two.strikes(member.id)] == [1.0, 1.0]


async def test_the_digest_lock_grants_one_process_at_a_time(database: Target) -> None:
    async with Store.open(database) as one, Store.open(database) as two:
        async with one.exclusive("digest") as first:
            assert first
            async with two.exclusive("digest") as second:
                # PostgreSQL: the other process holds the lock. SQLite always grants it
                # (processes sharing a file share a host; the digest run is settled under
                # BEGIN IMMEDIATE).
                assert second == (not one.postgres)
        async with two.exclusive("digest") as after:
            assert after
        async with one.exclusive("digest") as again:  # and let go again
            assert again
