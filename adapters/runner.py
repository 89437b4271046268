"""`bot.py run`: the composition root that starts every configured adapter around one core."""

from __future__ import annotations

__all__ = ["configured_platforms", "run"]

import asyncio
import logging
import os
from collections.abc import Mapping

from bot.config import Settings
from bot.errors import ConductError
from bot.moderator import Moderator
from bot.policy import load_policy
from bot.scoring import Batcher, build_scorer
from bot.store import Store

log = logging.getLogger(__name__)


def configured_platforms(env: Mapping[str, str] | None = None, /) -> list[str]:
    """The platforms whose credentials the environment provides."""
    env = os.environ if env is None else env
    return [name for name, var in (("discord", "DISCORD_TOKEN"), ("slack", "SLACK_BOT_TOKEN"))
            if env.get(var, "").strip()]


async def run(settings: Settings, /) -> None:
    """Moderate live until cancelled: one store, one scorer, every configured adapter."""
    platforms = configured_platforms()
    if not platforms:
        raise ConductError("no platform is configured: set DISCORD_TOKEN (see docs/discord.md) "
                           "and/or SLACK_BOT_TOKEN (see docs/slack.md)")
    # Validate every setting of every platform before connecting to any.
    discord_config = slack_config = None
    if "discord" in platforms:
        from adapters.discord.config import DiscordConfig

        discord_config = DiscordConfig.from_env()
    if "slack" in platforms:
        from adapters.slack.config import SlackConfig

        slack_config = SlackConfig.from_env()
    from bot.schedule import DigestSchedule, DigestScheduler

    digest_schedule = DigestSchedule.from_env()
    unserved = {str(p) for p in digest_schedule.targets} - set(platforms)
    if unserved:
        raise ConductError(f"the digest is set to post to {', '.join(sorted(unserved))}, which "
                           "is not configured: set its token or drop CONDUCTBOT_DIGEST_"
                           f"{sorted(unserved)[0].upper()}_CHANNEL")
    policy = load_policy(settings.policy)
    scorer = build_scorer(settings)
    async with Store.open(settings.db) as store, Batcher(scorer) as batcher:
        moderator = Moderator(store=store, policy=policy, scorer=batcher)
        log.info("starting %s with policy %s and database %s", ", ".join(platforms),
                 policy.version, settings.db)
        digests = DigestScheduler(store, digest_schedule)
        if digest_schedule.targets:
            await digests.start()
        try:
            async with asyncio.TaskGroup() as group:
                if discord_config is not None:
                    from adapters.discord.adapter import run_discord

                    group.create_task(run_discord(moderator, discord_config), name="discord")
                if slack_config is not None:
                    from adapters.slack.adapter import run_slack

                    group.create_task(run_slack(moderator, slack_config), name="slack")
        except ExceptionGroup as group:
            # A platform that cannot start (a missing moderators' channel, a refused token)
            # stops the others; its error is the one line the operator needs, not a trace.
            refused = group.subgroup(lambda e: isinstance(e, ConductError))
            if refused is None:
                raise
            first: BaseException = refused
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        finally:
            digests.stop()
