"""`bot.py run`: the composition root that starts every configured adapter around one core."""

from __future__ import annotations

__all__ = ["configured_platforms", "run", "supervise"]

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any

from adapters.connection import PlatformWatch
from adapters.health import Health, serve_health
from bot.config import Settings
from bot.errors import ConductError, Unavailable
from bot.metrics import Metrics
from bot.moderator import Moderator
from bot.policy import load_policy
from bot.scoring import Batcher, build_scorer
from bot.store import Store

log = logging.getLogger(__name__)

#: The first wait before a platform that dropped or failed is started again; it doubles up to
#: RECONNECT_MAX.
RECONNECT_FIRST = 2.0
RECONNECT_MAX = 300.0


def configured_platforms(env: Mapping[str, str] | None = None, /) -> list[str]:
    """The platforms whose credentials the environment provides."""
    env = os.environ if env is None else env
    return [name for name, var in (("discord", "DISCORD_TOKEN"), ("slack", "SLACK_BOT_TOKEN"))
            if env.get(var, "").strip()]


async def run(settings: Settings, /, *, only: Sequence[str] = ()) -> None:
    """Moderate live until SIGTERM or SIGINT (or cancellation): one store, one scorer, every
    configured adapter (or those in `only`: one process per platform on a shared database),
    each supervised on its own; raises only when every platform refused."""
    configured = configured_platforms()
    platforms = [p for p in configured if p in only] if only else configured
    if not platforms:
        missing = ", ".join(sorted(set(only) - set(configured)))
        raise ConductError(
            f"{missing} is not configured: set its token" if only else
            "no platform is configured: set DISCORD_TOKEN (see docs/discord.md) and/or "
            "SLACK_BOT_TOKEN (see docs/slack.md)")
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
    # A digest post goes out through the outbox of its platform's process, whichever process
    # queued it (each week is queued once: `Store.record_digest_run`).
    unserved = {str(p) for p in digest_schedule.targets} - set(configured)
    if unserved:
        raise ConductError(f"the digest is set to post to {', '.join(sorted(unserved))}, which "
                           "is not configured: set its token or drop CONDUCTBOT_DIGEST_"
                           f"{sorted(unserved)[0].upper()}_CHANNEL")
    policy = load_policy(settings.policy)
    scorer = build_scorer(settings)
    # One registry for the whole bot: the core counts into it, /metrics renders it.
    metrics = Metrics()
    metrics.prepare(platforms)
    async with Store.open(settings.db) as store, Batcher(scorer, metrics=metrics) as batcher:
        moderator = Moderator(store=store, policy=policy, scorer=batcher, metrics=metrics)
        watches = {name: PlatformWatch(name) for name in platforms}
        log.info("starting %s with policy %s (%s, %s) and database %s; outbox sweep every "
                 "%g s", ", ".join(platforms), policy.version, policy.mode, settings.policy,
                 store.path, settings.outbox_interval)
        starters: dict[str, Callable[[], Awaitable[None]]] = {}
        if discord_config is not None:
            from adapters.discord.adapter import run_discord

            starters["discord"] = partial(run_discord, moderator, discord_config,
                                          outbox_interval=settings.outbox_interval,
                                          watch=watches["discord"])
        if slack_config is not None:
            from adapters.slack.adapter import run_slack

            starters["slack"] = partial(run_slack, moderator, slack_config,
                                        outbox_interval=settings.outbox_interval,
                                        watch=watches["slack"])
        digests = DigestScheduler(store, digest_schedule,
                                  policy=lambda: moderator.policy)
        if digest_schedule.targets:
            await digests.start()
        health = Health(store=store, scorer=batcher, metrics=metrics, platforms=watches,
                        outbox_max_age=settings.health_outbox_max_age)
        endpoint: contextlib.AbstractAsyncContextManager[int | None] = (
            contextlib.nullcontext() if settings.health_port is None else
            serve_health(health, host=settings.health_host, port=settings.health_port))
        try:
            async with endpoint:
                refused = await _serve(starters, watches=watches, reload=partial(
                    moderator.reload_policy, actor="operator (SIGHUP)"))
        finally:
            digests.stop()
    if refused:
        # Every platform refused to start: the first one's reason, in one line (exit 2).
        raise refused[0]
    log.info("stopped: every accepted message was decided or is kept for the next start")


async def _serve(starters: Mapping[str, Callable[[], Awaitable[None]]], *,
                 reload: Callable[[], Awaitable[object]] | None = None,
                 watches: Mapping[str, PlatformWatch] | None = None) -> list[ConductError]:
    """Run each platform under its own supervisor until SIGTERM or SIGINT (then cancel them,
    which closes their connections and finishes the work they accepted) or until every one
    has stopped for good; the errors that stopped them. SIGHUP runs `reload` (the policy's);
    each supervisor reports to the platform's watch in `watches` (for /healthz)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[None]] = set()

    async def reload_logged() -> None:
        assert reload is not None
        with contextlib.suppress(ConductError):  # logged and audited where it was refused
            await reload()

    def hangup() -> None:
        task = asyncio.create_task(reload_logged(), name="policy reload")
        reloads.add(task)  # a reference until done, so it is not collected mid-run
        task.add_done_callback(reloads.discard)

    signals = (signal.SIGTERM, signal.SIGINT) + ((signal.SIGHUP,) if reload else ())
    for signum in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(signum, hangup if signum == signal.SIGHUP else stop.set)
    tasks = [asyncio.create_task(supervise(name, start, watch=(watches or {}).get(name)),
                                 name=name)
             for name, start in starters.items()]
    waiter = asyncio.create_task(stop.wait())
    try:
        running: set[asyncio.Future[Any]] = {*tasks}
        while running and not stop.is_set():
            await asyncio.wait({waiter, *running}, return_when=asyncio.FIRST_COMPLETED)
            running = {t for t in running if not t.done()}
        if stop.is_set():
            log.info("stopping: closing connections and finishing accepted messages")
    finally:
        waiter.cancel()
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for task in list(reloads):  # before the store closes under it
            task.cancel()
        await asyncio.gather(*reloads, return_exceptions=True)
        for signum in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
    refused = [r for r in results if isinstance(r, ConductError)]
    return refused if len(refused) == len(tasks) else []


async def supervise(name: str, start: Callable[[], Awaitable[None]], /, *,
                    watch: PlatformWatch | None = None) -> ConductError | None:
    """Keep one platform running: reconnect with a doubling wait after an outage or an
    unexpected failure; stop (returning the error, logged in one line) when the platform
    refuses for good, e.g. its token; the other platforms go on either way. `watch` hears
    of each wait and of the stop."""
    pause = RECONNECT_FIRST
    while True:
        try:
            await start()
            log.warning("%s: the connection ended; reconnecting in %.0f s", name, pause)
            why = "the connection ended"
        except Unavailable as exc:
            log.warning("%s: %s; reconnecting in %.0f s", name, exc, pause)
            why = str(exc)
        except ConductError as exc:
            log.error("%s stopped: %s", name, exc)
            if watch is not None:
                watch.stopped(str(exc))
            return exc
        except Exception as exc:
            log.exception("%s failed; restarting in %.0f s", name, pause)
            why = f"it failed ({type(exc).__name__}; see the log)"
        if watch is not None:
            watch.retrying(why, after=pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, RECONNECT_MAX)
