"""What /healthz and /metrics read from the store: its figures in one query, its write probe.

On each backend; the probe's answers to SQLite's own troubles (another connection's lock, a file
moved away) on a SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.database import Target
from bot.errors import StoreError
from bot.models import SHADOW_CASE, Action, ActionKind, ActionStatus, Message, Platform
from bot.store import QueueFigures, Store, iso

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def world(database: Target) -> AsyncIterator[tuple[Store, Clock]]:
    clock = Clock()
    async with Store.open(database, clock=clock) as store:
        yield store, clock


@pytest.fixture
async def sqlite_world(tmp_path: Path) -> AsyncIterator[tuple[Store, Clock]]:
    clock = Clock()
    async with Store.open(tmp_path / "db.sqlite3", clock=clock) as store:
        yield store, clock


def notice(platform: Platform, user: str) -> Action:
    return Action(kind=ActionKind.NOTIFY, platform=platform, user=user, payload={"text": "hi"})


async def test_figures_count_what_waits_and_since_when(world: tuple[Store, Clock]) -> None:
    store, clock = world
    figures = await store.health_figures()
    assert figures.outbox["discord"] == figures.outbox["slack"] == QueueFigures(0, 0, None)
    assert (figures.appeals, figures.appeals_granted, figures.dismissed_on_review) == (0, 0, 0)

    await store.enqueue([notice(Platform.DISCORD, "a"), notice(Platform.DISCORD, "b"),
                         notice(Platform.SLACK, "c"), notice(Platform.SLACK, "d")], case_id=None)
    clock.now = T0 + timedelta(seconds=30)
    rows = {a.user: a for a in await store.actions()}
    # a: executed; b: rate limited until T0 + 60 s; c: waits; d: told to wait until T0 + 10 s.
    assert rows["a"].id and rows["b"].id and rows["d"].id
    await store.mark_action(rows["a"].id, status=ActionStatus.DONE)
    await store.mark_action(rows["b"].id, status=ActionStatus.PENDING, error="429",
                            retry_at=T0 + timedelta(seconds=60))
    await store.mark_action(rows["d"].id, status=ActionStatus.PENDING, error="later",
                            retry_at=T0 + timedelta(seconds=10))
    await store.inbox_put(Message(platform=Platform.SLACK, id="m1", channel="C1", author="U1",
                                  text="hello", sent_at=T0))
    clock.now = T0 + timedelta(seconds=45)
    figures = await store.health_figures()
    assert figures.at == clock.now
    assert figures.outbox["discord"] == QueueFigures(0, 1, None)
    # c waited since it was queued (T0); d since its wait ended (T0 + 10 s).
    assert figures.outbox["slack"] == QueueFigures(2, 0, T0)
    assert figures.oldest_age(figures.outbox["slack"]) == 45
    assert figures.inbox["slack"] == QueueFigures(1, 0, T0 + timedelta(seconds=30))
    assert figures.oldest_age(figures.inbox["slack"]) == 15
    assert figures.inbox["discord"] == QueueFigures()

    clock.now = T0 + timedelta(seconds=90)  # b's retry is due now
    figures = await store.health_figures()
    assert figures.outbox["discord"] == QueueFigures(1, 0, T0 + timedelta(seconds=60))
    assert figures.oldest_age(figures.outbox["discord"]) == 30


async def test_figures_count_appeals_and_overturns(world: tuple[Store, Clock]) -> None:
    store, _ = world
    member = await store.member_for(Platform.SLACK, "U1")
    cases = [  # (kind, state, automatic, appeal)
        ("hide", "dismissed", 1, "I was quoting"),     # appeal granted
        ("hide", "upheld", 1, "it was a joke"),        # appeal rejected
        ("warning", "appealed", 1, "not me"),          # appeal waiting
        ("escalation", "dismissed", 1, None),          # overturned on review
        (SHADOW_CASE, "dismissed", 1, None),           # shadow mode: calibration only
        ("timeout", "dismissed", 0, None),             # a moderator's own case dismissed
        ("escalation", "upheld", 1, None),
    ]
    async with store.transaction() as db:
        for kind, state, automatic, appeal in cases:
            await db.execute("INSERT INTO cases (member_id, kind, state, summary, automatic, "
                             "opened_by, appeal, opened_at, updated_at) "
                             "VALUES (?,?,?,?,?,?,?,?,?)",
                             (member.id, kind, state, "s", automatic, "bot", appeal, iso(T0),
                              iso(T0)))
    figures = await store.health_figures()
    assert (figures.appeals, figures.appeals_granted, figures.dismissed_on_review) == (3, 1, 1)


async def test_the_write_probe_fails_quickly_while_the_database_is_locked(
        sqlite_world: tuple[Store, Clock]) -> None:
    store, _ = sqlite_world
    await store.probe_write(wait=0.2)
    with contextlib.closing(sqlite3.connect(store.path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(StoreError, match="does not take a writer: database is locked"):
            await store.probe_write(wait=0.2)
        assert loop.time() - started < 2
        other.execute("ROLLBACK")
    await store.probe_write(wait=0.2)
    # The connection's own busy timeout is back to what the bot's writes rely on.
    row = await store._read_one("PRAGMA busy_timeout")
    assert row is not None and row[0] == 5000


async def test_the_write_probe_gives_up_on_a_long_transaction_of_the_bot_itself(
        world: tuple[Store, Clock]) -> None:
    store, _ = world
    holding, release = asyncio.Event(), asyncio.Event()

    async def long_transaction() -> None:
        async with store.transaction():
            holding.set()
            await release.wait()

    task = asyncio.create_task(long_transaction())
    await holding.wait()
    with pytest.raises(StoreError, match=r"stayed busy for over 0\.1 s"):
        await store.probe_write(wait=0.1)
    release.set()
    await task
    await store.probe_write(wait=0.1)  # the lock was not taken by the timed-out wait


async def test_the_write_probe_notices_a_database_moved_away(
        sqlite_world: tuple[Store, Clock]) -> None:
    store, _ = sqlite_world
    os.rename(store.path, store.path + ".moved")
    with pytest.raises(StoreError, match="is gone"):
        await store.probe_write()
