"""One writer discipline: concurrent deliveries never fail with "database is locked"."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.errors import StoreError
from bot.models import Message, Platform
from bot.moderator import Moderator
from bot.policy import Policy
from bot.scoring import Batcher
from bot.store import Store, driver
from tests.conftest import KeywordScorer

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TEXTS = ("see you at the branch meeting", "you idiot", "I will hurt you", "motion passed")


def _message(n: int) -> Message:
    return Message(Platform.SLACK, f"m{n}", "C1", f"U{n % 7}", TEXTS[n % len(TEXTS)],
                   START + timedelta(seconds=n), channel_name="general")


async def test_two_connections_and_another_process_writing_lose_no_delivery(
        tmp_path: Path, test_policy: Policy) -> None:
    path = tmp_path / "db.sqlite3"
    stop = threading.Event()

    def other_writer() -> None:
        # Another process's writer (the CLI, a second bot) holding short write transactions.
        with sqlite3.connect(path, timeout=5) as db:
            while not stop.is_set():
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO audit_log (at, actor, action) "
                           "VALUES ('2026-11-20', 'cli', 'test')")
                db.execute("COMMIT")
                time.sleep(0.002)

    async with Store.open(path) as one, Store.open(path) as two, \
            Batcher(KeywordScorer()) as batcher:
        writer = threading.Thread(target=other_writer)
        writer.start()
        try:
            mods = [Moderator(store=s, policy=test_policy, scorer=batcher) for s in (one, two)]
            count = 160
            results = await asyncio.gather(
                *(mods[n % 2].handle(_message(n)) for n in range(count)),
                return_exceptions=True)
        finally:
            stop.set()
            await asyncio.to_thread(writer.join)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    with sqlite3.connect(path) as db:
        decided = db.execute("SELECT COUNT(DISTINCT message_id) FROM messages").fetchone()[0]
    assert decided == count


@asynccontextmanager
async def _file_held(path: Path, seconds: float) -> AsyncIterator[None]:
    """Another process holding the whole file (a backup tool, a second bot migrating it) for
    `seconds`, from entry; the holder is joined on exit."""
    sqlite3.connect(path).close()
    held = threading.Event()

    def hold() -> None:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("BEGIN EXCLUSIVE")
            held.set()
            time.sleep(seconds)
            db.execute("COMMIT")
        finally:
            db.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        await asyncio.to_thread(held.wait)
        yield
    finally:
        await asyncio.to_thread(holder.join)


async def test_a_bot_starting_while_another_process_holds_the_file_waits_for_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's own busy handler gives up after its timeout, and not at all in some lock
    upgrades (two processes switching a new file to WAL together): the store keeps trying."""
    monkeypatch.setattr(driver, "BUSY_TIMEOUT_MS", 20)  # SQLite gives up long before the holder
    path = tmp_path / "db.sqlite3"
    async with _file_held(path, 0.6), Store.open(path) as store:
        assert await store.schema_version() > 0


async def test_a_file_held_past_the_wait_fails_with_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "BUSY_TIMEOUT_MS", 20)
    monkeypatch.setattr(driver, "BUSY_WAIT", 0.3)
    path = tmp_path / "db.sqlite3"
    async with _file_held(path, 1.5):
        with pytest.raises(StoreError, match=r"stayed locked by another process .*WAL"):
            async with Store.open(path):
                pass
