"""The weekly digest's schedule: fires weekly, posts each week once, catches up after downtime."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.database import Target
from bot.digest import build_digest, to_discord_embeds, to_slack_blocks
from bot.errors import ConductError
from bot.models import ActionKind, Message, Platform
from bot.moderator import Moderator
from bot.policy import Policy
from bot.schedule import DigestSchedule, DigestScheduler, digest_actions
from bot.scoring import Batcher
from bot.store import Store
from tests.conftest import KeywordScorer

LONDON = ZoneInfo("Europe/London")
TARGETS = {Platform.DISCORD: "900000000000000010", Platform.SLACK: "CDIGEST01"}


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def world(database: Target, test_policy: Policy):  # type: ignore[no-untyped-def]
    clock = Clock(datetime(2026, 11, 18, 12, 0, tzinfo=UTC))  # Wednesday of 2026-W47
    async with Store.open(database, clock=clock) as store, \
            Batcher(KeywordScorer()) as batcher:
        moderator = Moderator(store=store, policy=test_policy, scorer=batcher)
        for i, text in enumerate(["hello all", "you idiot", "immigrants are vermin"]):
            await moderator.handle(Message(Platform.DISCORD, f"m{i}", "general", f"u{i}", text,
                                           clock.now, channel_name="general"))
        yield store, clock


def test_schedule_settings_from_the_environment() -> None:
    schedule = DigestSchedule.from_env({"CONDUCTBOT_DIGEST_DISCORD_CHANNEL": "123",
                                        "CONDUCTBOT_DIGEST_DAY": "Friday",
                                        "CONDUCTBOT_DIGEST_TIME": "17:30"})
    assert schedule.targets == {Platform.DISCORD: "123"}
    assert (schedule.day, schedule.time, schedule.tz) == ("fri", "17:30", "Europe/London")
    for bad, message in (({"CONDUCTBOT_DIGEST_DAY": "someday"}, "must be a weekday"),
                         ({"CONDUCTBOT_DIGEST_TIME": "25:00"}, "must be HH:MM"),
                         ({"CONDUCTBOT_DIGEST_TZ": "Mars/Olympus"}, "unknown time zone")):
        with pytest.raises(ConductError, match=message):
            DigestSchedule.from_env(bad)


def test_the_trigger_fires_once_a_week_at_local_time() -> None:
    trigger = DigestSchedule(targets=TARGETS, day="mon", time="08:00").trigger()
    first = trigger.get_next_fire_time(None, datetime(2026, 11, 18, 12, 0, tzinfo=UTC))
    assert first == datetime(2026, 11, 23, 8, 0, tzinfo=LONDON)
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
    assert second - first == timedelta(days=7)
    summer = trigger.get_next_fire_time(None, datetime(2026, 6, 3, tzinfo=UTC))
    assert summer is not None and summer.utcoffset() == timedelta(hours=1)  # 08:00 BST


async def test_each_week_is_posted_once_and_a_missed_week_on_restart(  # type: ignore[no-untyped-def]
        world, test_policy: Policy) -> None:
    store, clock = world
    policy = test_policy
    scheduler = DigestScheduler(store, DigestSchedule(targets=TARGETS), policy=lambda: policy)
    clock.now = datetime(2026, 11, 23, 8, 0, tzinfo=LONDON)  # Monday after W47
    assert await scheduler.run_due() == "2026-W47"
    posts = [a for a in await store.actions() if a.kind is ActionKind.POST]
    digest = await build_digest(store, "2026-W47", policy=policy)
    assert len(posts) == len(to_discord_embeds(digest)) + len(to_slack_blocks(digest))
    # The posts cite clauses by number and title, as the policy in force names them.
    assert "1.2 No discrimination or hate: 1" in json.dumps([a.payload for a in posts])
    assert {(a.platform, a.channel) for a in posts} == set(TARGETS.items())
    discord_post = next(a for a in posts if a.platform is Platform.DISCORD)
    assert discord_post.payload["embeds"] and discord_post.payload["digest_week"] == "2026-W47"

    assert await scheduler.run_due() is None  # fired again (or a restart): not posted twice
    clock.now += timedelta(hours=5)
    assert await scheduler.run_due() is None

    # the bot was down over the next Monday: at start it makes the missed week, once
    clock.now = datetime(2026, 12, 2, 10, 0, tzinfo=LONDON)
    restarted = DigestScheduler(store, DigestSchedule(targets=TARGETS))
    assert await restarted.run_due() == "2026-W48"
    assert await restarted.run_due() is None
    weeks = {a.payload["digest_week"] for a in await store.actions()
             if a.kind is ActionKind.POST}
    assert weeks == {"2026-W47", "2026-W48"}


async def test_digest_actions_split_per_platform_message(world) -> None:  # type: ignore[no-untyped-def]
    store, _ = world
    digest = await build_digest(store, "2026-W47")
    actions = digest_actions(digest, TARGETS)
    slack = [a for a in actions if a.platform is Platform.SLACK]
    assert [a.payload["blocks"] for a in slack] == to_slack_blocks(digest)
    assert all(a.payload["text"].startswith("Weekly moderation digest 2026-W47") for a in actions)
