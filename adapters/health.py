"""`bot.py run`'s health and metrics endpoint: `/healthz` (JSON) and `/metrics` (Prometheus).

It listens on CONDUCTBOT_HEALTH_HOST:CONDUCTBOT_HEALTH_PORT (default 127.0.0.1:9464, this
machine only; off with CONDUCTBOT_HEALTH_PORT=off). Neither page carries a token, a member or
anything a member wrote.

`/healthz` answers 200 when the bot is healthy and 503 when not, with each check's state:

* each configured platform (``discord``, ``slack``) is connected: Discord's gateway is ready
  and its socket open (sharded: those of every shard this process runs); Slack's HTTP server
  listens or its Socket Mode link is up;
* ``store``: the database takes a writer now (SQLite: BEGIN IMMEDIATE; PostgreSQL: the
  store's writer lock; then ROLLBACK: nothing is written) within PROBE_WAIT seconds;
* ``scorer``: the scorer is loaded and did not fail on the last text it was given;
* ``outbox``: no due outbox row of a configured platform has waited longer than
  CONDUCTBOT_HEALTH_OUTBOX_MAX_AGE (default 300 s) since it fell due.

`/metrics` renders the core's `bot.metrics.Metrics`, with the store's figures read just before
(one query) and each platform's connection (`conductbot_platform_connected`) and restarts
(`conductbot_platform_restarts_total`).
"""

from __future__ import annotations

__all__ = ["PROBE_WAIT", "Health", "serve_health"]

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from adapters.connection import Connection, PlatformWatch
from bot.errors import StoreError
from bot.metrics import PREFIX, Metrics
from bot.scoring import Batcher
from bot.store import Store, StoreFigures

log = logging.getLogger(__name__)

#: Seconds the store's write probe waits for the database (another writer, a long transaction)
#: before /healthz calls the store unwritable.
PROBE_WAIT = 1.0


class Health:
    """The checks behind /healthz and the figures behind /metrics, for one running bot."""

    def __init__(self, *, store: Store, scorer: Batcher, metrics: Metrics,
                 platforms: Mapping[str, PlatformWatch], outbox_max_age: float,
                 probe_wait: float = PROBE_WAIT) -> None:
        self.store = store
        self.scorer = scorer
        self.metrics = metrics
        self.platforms = dict(platforms)
        self.outbox_max_age = outbox_max_age
        self.probe_wait = probe_wait
        self._platform_gauges = _PlatformCollector(self.platforms)
        metrics.registry.register(self._platform_gauges)

    async def connections(self) -> dict[str, Connection]:
        """Each configured platform's connection now."""
        return {name: await watch.connection() for name, watch in self.platforms.items()}

    async def report(self) -> tuple[bool, dict[str, Any]]:
        """Whether the bot is healthy, and the JSON body saying what each check found."""
        checks: dict[str, dict[str, Any]] = {}
        for name, connection in (await self.connections()).items():
            checks[name] = {"ok": connection.up, "state": str(connection.state),
                            "detail": connection.detail}
        try:
            await self.store.probe_write(wait=self.probe_wait)
            checks["store"] = {"ok": True, "detail": f"{self.store.path} takes a writer"}
        except StoreError as exc:
            checks["store"] = {"ok": False, "detail": str(exc)}
        scorer = self.scorer.scorer
        failing = self.scorer.failing
        checks["scorer"] = {
            "ok": failing is None, "model": scorer.name, "version": scorer.version,
            "detail": "loaded" if failing is None else
            f"loaded, but it failed on the last text it was given ({failing})"}
        checks["outbox"] = await self._outbox()
        healthy = all(check["ok"] for check in checks.values())
        return healthy, {"status": "ok" if healthy else "unhealthy", "checks": checks}

    async def _outbox(self) -> dict[str, Any]:
        try:
            figures = await self.store.health_figures(wait=self.probe_wait)
        except StoreError as exc:
            return {"ok": False, "detail": f"the outbox could not be read: {exc}"}
        queues = {name: figures.outbox.get(name) for name in self.platforms}
        ages = {name: figures.oldest_age(queue) if queue else 0.0
                for name, queue in queues.items()}
        late = sorted(name for name, age in ages.items() if age > self.outbox_max_age)
        return {
            "ok": not late, "max_age_seconds": self.outbox_max_age,
            "detail": (f"{', '.join(late)}: an action has waited over "
                       f"{self.outbox_max_age:g} s to go out" if late else
                       f"no action has waited over {self.outbox_max_age:g} s"),
            "platforms": {name: {"backlog": queue.waiting if queue else 0,
                                 "scheduled": queue.scheduled if queue else 0,
                                 "oldest_age_seconds": round(ages[name], 3)}
                          for name, queue in queues.items()}}

    async def render_metrics(self, accept: str = "", /) -> tuple[bytes, str]:
        """The core's metrics with the store's figures and the platforms' connections as of
        now, in the format `accept` (a scraper's Accept header) asks for; and its
        Content-Type."""
        self._platform_gauges.connections = await self.connections()
        try:
            figures: StoreFigures | None = await self.store.health_figures(
                wait=self.probe_wait)
        except StoreError as exc:
            log.warning("health: the store's figures could not be read for /metrics: %s", exc)
            figures = None
        self.metrics.use_figures(figures)
        return self.metrics.render(accept)

    def app(self) -> web.Application:
        """The aiohttp application serving /healthz and /metrics (GET and HEAD)."""

        async def healthz(request: web.Request) -> web.Response:
            healthy, body = await self.report()
            return web.Response(status=200 if healthy else 503,
                                text=json.dumps(body, indent=2) + "\n",
                                content_type="application/json",
                                headers={"Cache-Control": "no-store"})

        async def metrics(request: web.Request) -> web.Response:
            body, content_type = await self.render_metrics(request.headers.get("Accept", ""))
            return web.Response(body=body, headers={"Content-Type": content_type,
                                                    "Cache-Control": "no-store"})

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/metrics", metrics)
        return app


@contextlib.asynccontextmanager
async def serve_health(health: Health, /, *, host: str, port: int) -> AsyncIterator[int | None]:
    """Serve /healthz and /metrics on host:port until the block exits; yields the port bound,
    or None when it cannot listen there (said in one log line: moderation goes on without)."""
    # No access log: a scrape every few seconds would bury the bot's own lines.
    runner = web.AppRunner(health.app(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            log.error("health: cannot listen on %s:%s (%s); /healthz and /metrics are off. Set "
                      "CONDUCTBOT_HEALTH_PORT to a free port (or off)", host, port,
                      exc.strerror or exc)
            yield None
            return
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound = int(sockets[0].getsockname()[1]) if sockets else port
        shown = f"[{host}]" if ":" in host else host
        log.info("health: /healthz and /metrics on http://%s:%s", shown, bound)
        yield bound
    finally:
        await runner.cleanup()


class _PlatformCollector(Collector):
    """Each platform's connection as of the last /metrics, and its supervisor's restarts."""

    def __init__(self, platforms: Mapping[str, PlatformWatch]) -> None:
        self.platforms = platforms
        self.connections: dict[str, Connection] = {}

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        return list(self._families())

    def _families(self) -> Iterator[Metric]:
        connected = GaugeMetricFamily(
            f"{PREFIX}platform_connected", "1 while the platform is connected (Discord: gateway "
            "ready; Slack: serving HTTP or Socket Mode up), else 0", labels=["platform"])
        restarts = CounterMetricFamily(
            f"{PREFIX}platform_restarts", "Times the platform's supervisor started it again "
            "after its connection ended or failed", labels=["platform"])
        for name, watch in sorted(self.platforms.items()):
            connection = self.connections.get(name)
            connected.add_metric([name], 1.0 if connection is not None and connection.up
                                 else 0.0)
            restarts.add_metric([name], watch.restarts)
        yield from (connected, restarts)
