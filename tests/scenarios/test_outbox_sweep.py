"""The outbox sweep: what a stop left pending goes out at start, and a row told to wait goes
out when it falls due, not at the next interval (a real clock and a real store on each
backend)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest

from adapters.console import ConsolePort
from bot.config import Settings
from bot.database import Target
from bot.errors import RateLimited
from bot.models import Action, ActionKind, ActionStatus, Message, Platform
from bot.moderator import Moderator
from bot.policy import Policy
from bot.scoring import Batcher
from bot.store import Store
from tests.conftest import KeywordScorer

pytestmark = pytest.mark.timeout(30)
HOUR = 3600.0


@dataclass
class SlowDown(ConsolePort):
    """Refuses the first deletion with a 429 asking for `retry_after` seconds."""

    retry_after: float = 0.6
    refused: bool = False

    async def hide(self, action: Action, /) -> None:
        if not self.refused:
            self.refused = True
            raise RateLimited("slow down", platform="discord", action="delete",
                              retry_after=self.retry_after)
        await super().hide(action)


async def done_kinds(store: Store) -> list[str]:
    return sorted(str(a.kind) for a in await store.actions() if a.status is ActionStatus.DONE)


async def until(store: Store, expected: list[str], within: float) -> None:
    started = time.monotonic()
    while await done_kinds(store) != expected:
        assert time.monotonic() - started < within, await done_kinds(store)
        await asyncio.sleep(0.05)


async def test_the_sweep_runs_at_start_and_wakes_when_a_retry_falls_due(
        database: Target, test_policy: Policy) -> None:
    async with Store.open(database) as store, \
            Batcher(KeywordScorer()) as batcher:
        moderator = Moderator(store=store, policy=test_policy, scorer=batcher)
        message = Message(Platform.DISCORD, "m1", "general", "u1", "immigrants are vermin",
                          store.clock(), channel_name="general")
        assert (await moderator.handle(message)) is not None  # delete, notify, escalate
        port = SlowDown(Platform.DISCORD)
        sweep = asyncio.create_task(moderator.sweep_outbox(port, every=HOUR))
        try:
            # At start, not an hour later: the deletion is refused for 0.6 s, the escalation
            # goes, and the notice waits for its deletion.
            await until(store, ["escalate"], within=5)
            assert port.refused
            # Woken by the retry falling due, not by the hourly interval.
            await until(store, ["delete", "escalate", "notify"], within=5)
        finally:
            sweep.cancel()
            await asyncio.gather(sweep, return_exceptions=True)
        assert [a.kind for a in port.performed] == [ActionKind.ESCALATE, ActionKind.DELETE,
                                                    ActionKind.NOTIFY]


def test_the_sweep_interval_is_a_setting() -> None:
    assert Settings.from_env({}).outbox_interval == 5.0
    assert Settings.from_env({"CONDUCTBOT_OUTBOX_INTERVAL": "2.5"}).outbox_interval == 2.5
    for bad in ("0", "fast", "nan", "-1", "100000"):
        with pytest.raises(ValueError, match=r"CONDUCTBOT_OUTBOX_INTERVAL must be a number of "
                                             r"seconds from 0\.5 to 3600"):
            Settings.from_env({"CONDUCTBOT_OUTBOX_INTERVAL": bad})
