"""The weekly digest on schedule (APScheduler 3): once a week, caught up after downtime."""

from __future__ import annotations

__all__ = ["DigestSchedule", "DigestScheduler", "digest_actions"]

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.digest import build_digest, last_complete_week, to_discord_embeds, to_slack_blocks
from bot.errors import ConductError
from bot.models import Action, ActionKind, Platform
from bot.store import Store

if TYPE_CHECKING:
    from bot.policy import Policy

log = logging.getLogger(__name__)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    """When the digest is posted and where."""

    targets: Mapping[Platform, str]
    day: str = "mon"
    time: str = "08:00"
    tz: str = "Europe/London"
    show_names: bool = False
    quote_evidence: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, /) -> DigestSchedule:
        """CONDUCTBOT_DIGEST_* variables; a clear error names a bad one."""
        env = os.environ if env is None else env
        targets = {platform: channel for platform, var in (
            (Platform.DISCORD, "CONDUCTBOT_DIGEST_DISCORD_CHANNEL"),
            (Platform.SLACK, "CONDUCTBOT_DIGEST_SLACK_CHANNEL"))
            if (channel := env.get(var, "").strip())}
        day = env.get("CONDUCTBOT_DIGEST_DAY", "mon").strip().casefold()[:3]
        if day not in DAYS:
            raise ConductError(f"CONDUCTBOT_DIGEST_DAY must be a weekday (mon ... sun), "
                               f"not {env.get('CONDUCTBOT_DIGEST_DAY')!r}")
        when = env.get("CONDUCTBOT_DIGEST_TIME", "08:00").strip()
        if not _TIME.match(when):
            raise ConductError(f"CONDUCTBOT_DIGEST_TIME must be HH:MM, not {when!r}")
        tz = env.get("CONDUCTBOT_DIGEST_TZ", "Europe/London").strip()
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConductError(f"CONDUCTBOT_DIGEST_TZ: unknown time zone {tz!r}") from None
        flag = {"1", "true", "yes", "on"}
        return cls(targets=targets, day=day, time=when, tz=tz,
                   show_names=env.get("CONDUCTBOT_DIGEST_SHOW_NAMES", "").casefold() in flag,
                   quote_evidence=env.get("CONDUCTBOT_DIGEST_QUOTE_EVIDENCE", "").casefold()
                   in flag)

    def trigger(self) -> CronTrigger:
        """Weekly at the configured day and time, in the configured zone."""
        hour, minute = (int(x) for x in self.time.split(":"))
        return CronTrigger(day_of_week=self.day, hour=hour, minute=minute,
                           timezone=ZoneInfo(self.tz))


def digest_actions(digest: Any, targets: Mapping[Platform, str], /) -> list[Action]:
    """One outbox POST per platform message (a long digest is several messages)."""
    actions: list[Action] = []
    title = f"Weekly moderation digest {digest.week}"
    for platform, channel in targets.items():
        if platform is Platform.DISCORD:
            parts: list[dict[str, Any]] = [{"embeds": m} for m in to_discord_embeds(digest)]
        elif platform is Platform.SLACK:
            parts = [{"blocks": m} for m in to_slack_blocks(digest)]
        else:
            continue
        for index, part in enumerate(parts, start=1):
            text = title + (f" ({index}/{len(parts)})" if len(parts) > 1 else "")
            actions.append(Action(kind=ActionKind.POST, platform=platform, channel=channel,
                                  payload={"text": text, "digest_week": digest.week, **part}))
    return actions


class DigestScheduler:
    """Runs the weekly job; each week is posted at most once, a missed week at next start."""

    def __init__(self, store: Store, schedule: DigestSchedule, /, *,
                 policy: Callable[[], Policy] | None = None) -> None:
        self.store = store
        self.schedule = schedule
        # Called at each run, so a policy reloaded since start names the clauses.
        self.policy = policy
        self.scheduler = AsyncIOScheduler(timezone=ZoneInfo(schedule.tz))

    async def run_due(self, now: datetime | None = None, /) -> str | None:
        """Post the last complete week unless it was posted; returns the week posted, or None."""
        now = now or self.store.clock()
        monday = last_complete_week(now, tz=self.schedule.tz)
        week = f"{monday.isocalendar().year}-W{monday.isocalendar().week:02d}"
        # Several processes share the store (one per platform, a standby): the one holding
        # the digest's lock makes it; the others let it be. Each week is queued once anyway.
        async with self.store.exclusive("digest") as mine:
            if not mine:
                log.info("digest %s: another process is making it", week)
                return None
            if await self.store.digest_ran(week):
                return None
            digest = await build_digest(self.store, week, tz=self.schedule.tz,
                                        show_names=self.schedule.show_names,
                                        quote_evidence=self.schedule.quote_evidence, now=now,
                                        policy=self.policy() if self.policy else None)
            actions = digest_actions(digest, self.schedule.targets)
            if not await self.store.record_digest_run(week, actions):
                return None  # another run got there first
        log.info("digest %s queued for %s", week,
                 ", ".join(str(p) for p in self.schedule.targets) or "no platform")
        return week

    async def start(self) -> None:
        """Catch up on a missed week now, then fire weekly."""
        await self.run_due()
        self.scheduler.add_job(self.run_due, self.schedule.trigger(), id="weekly-digest",
                               misfire_grace_time=6 * 3600, coalesce=True,
                               replace_existing=True)
        self.scheduler.start()

    def stop(self) -> None:
        """Stop firing."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
