"""The bot's Prometheus metrics: counted where things happen, rendered on request.

The core counts into a `Metrics` (the Moderator: messages, verdicts, outbox results and
platform errors; the Batcher: the scorer's batches). What the store holds (outbox and inbox
backlogs, appeals and overturns) is read at each scrape with one query and handed over with
`use_figures`; the HTTP endpoint that serves `render()` lives in `adapters/health.py`, so the
core never speaks HTTP. Each `Metrics` has a registry of its own, never the process-wide
default: several bots, and tests, in one process never share a count.
"""

from __future__ import annotations

__all__ = ["ERROR_KINDS", "PREFIX", "Metrics", "error_kind"]

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from bot.errors import (
    PermissionDenied,
    PlatformError,
    RateLimited,
    TargetNotFound,
    Unavailable,
    UnsupportedAction,
)
from bot.models import Mode, VerdictAction

if TYPE_CHECKING:
    from bot.store import StoreFigures

#: Every metric's name starts with this.
PREFIX = "conductbot_"

#: The `kind` label of a platform error, by the error's class (most specific first).
ERROR_KINDS: tuple[tuple[type[PlatformError], str], ...] = (
    (RateLimited, "rate_limited"),  # a 429
    (Unavailable, "unavailable"),  # a 5xx, a timeout, a dropped connection
    (PermissionDenied, "permission_denied"),  # a 403
    (TargetNotFound, "target_not_found"),  # a 404
    (UnsupportedAction, "unsupported"),  # the platform or its configuration cannot do it
)

#: Texts per scorer batch (the Batcher's max_batch is 32 by default).
_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)


def error_kind(exc: PlatformError, /) -> str:
    """The `kind` label for a platform error: one of ERROR_KINDS' names, else ``other``."""
    return next((kind for cls, kind in ERROR_KINDS if isinstance(exc, cls)), "other")


class Metrics:
    """conductbot's metrics in a registry of their own (see the module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.messages = Counter(
            f"{PREFIX}messages_received", "Messages handed to the pipeline to decide, by "
            "platform (a platform's redelivery dropped by the inbox is not counted)",
            ["platform"], registry=registry)
        self.verdicts = Counter(
            f"{PREFIX}verdicts", "Verdicts recorded, by platform, action (allow, warn, hide, "
            "escalate) and mode (enforce; shadow: recorded only, nothing done)",
            ["platform", "action", "mode"], registry=registry)
        self.actions = Counter(
            f"{PREFIX}actions", "Outbox rows executed on a platform, by kind (delete, notify, "
            "escalate, timeout, suspend, restore, post) and outcome (done; retry: rate limited "
            "or unavailable, tried again later; failed; unsupported; cancelled: never sent)",
            ["platform", "kind", "outcome"], registry=registry)
        self.platform_errors = Counter(
            f"{PREFIX}platform_errors", "Errors platforms answered outbox actions with, by "
            "platform, kind (rate_limited is a 429) and the action's kind",
            ["platform", "kind", "action"], registry=registry)
        self.scorer_batch_seconds = Histogram(
            f"{PREFIX}scorer_batch_seconds", "Seconds the scorer's model took per batch, in "
            "its worker thread", registry=registry)
        self.scorer_batch_size = Histogram(
            f"{PREFIX}scorer_batch_size", "Texts per scorer batch", buckets=_BATCH_SIZES,
            registry=registry)
        self.scorer_failures = Counter(
            f"{PREFIX}scorer_failures", "Texts the scorer failed on (the message is tried "
            "again from the inbox)", registry=registry)
        self.scoring_seconds = Histogram(
            f"{PREFIX}scoring_seconds", "Seconds the pipeline waited for a chunk of messages' "
            "scores and rule hits (queueing for the scorer included)", registry=registry)
        self._store = _StoreCollector()
        registry.register(self._store)

    # -- counting, from the core --------------------------------------------------------------

    def prepare(self, platforms: Iterable[str], /) -> None:
        """Show every platform's message and enforced-verdict counts from zero (a series that
        appears only at its first event hides that first event from `rate()`)."""
        for platform in platforms:
            self._store.platforms.add(platform)
            self.messages.labels(platform)
            for action in VerdictAction:
                self.verdicts.labels(platform, str(action), str(Mode.ENFORCE))

    def received(self, platform: str, /, count: int = 1) -> None:
        """`count` messages of `platform` reached the pipeline."""
        self.messages.labels(platform).inc(count)

    def decided(self, platform: str, /, *, action: str, mode: str) -> None:
        """A verdict was recorded."""
        self.verdicts.labels(platform, action, mode).inc()

    def executed(self, platform: str, /, *, kind: str, outcome: str,
                 error: PlatformError | None = None) -> None:
        """An outbox row was executed (or given up or cancelled); `error`, what the platform
        answered, counts as a platform error too."""
        self.actions.labels(platform, kind, outcome).inc()
        if error is not None:
            self.platform_errors.labels(platform, error_kind(error), kind).inc()

    def scored_batch(self, size: int, /, *, seconds: float) -> None:
        """The scorer's model scored `size` texts in one batch in `seconds`."""
        self.scorer_batch_seconds.observe(seconds)
        self.scorer_batch_size.observe(size)

    # -- reading ------------------------------------------------------------------------------

    def use_figures(self, figures: StoreFigures | None, /) -> None:
        """The store's figures the next `render()` shows (read them just before); None when
        they could not be read: their series are left out rather than shown stale."""
        self._store.figures = figures

    def render(self, accept: str = "", /) -> tuple[bytes, str]:
        """Every metric, and its Content-Type: the format a scraper's Accept header asks for
        (OpenMetrics when it says so), else the Prometheus text format 0.0.4."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


class _StoreCollector(Collector):
    """The store's figures as of the last scrape: gauges of what waits, counters of appeals."""

    def __init__(self) -> None:
        self.figures: StoreFigures | None = None
        #: Platforms shown even when nothing of theirs waits (those the bot runs); others
        #: (the console's replays) only while something does.
        self.platforms: set[str] = set()

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        return list(self._families())

    def _families(self) -> Iterator[Metric]:
        figures = self.figures
        backlog = GaugeMetricFamily(
            f"{PREFIX}outbox_backlog", "Outbox rows due now and not yet executed, by platform",
            labels=["platform"])
        scheduled = GaugeMetricFamily(
            f"{PREFIX}outbox_scheduled", "Outbox rows told to wait until later (a "
            "rate-limited retry, a timeout's end or renewal), by platform", labels=["platform"])
        oldest = GaugeMetricFamily(
            f"{PREFIX}outbox_oldest_age_seconds", "Seconds the longest-waiting due outbox row "
            "has waited since it fell due (0 when none waits), by platform",
            labels=["platform"])
        inbox = GaugeMetricFamily(
            f"{PREFIX}inbox_backlog", "Messages accepted from a platform and not yet decided "
            "(including those that failed too often and wait for an operator), by platform",
            labels=["platform"])
        inbox_oldest = GaugeMetricFamily(
            f"{PREFIX}inbox_oldest_age_seconds", "Seconds the oldest undecided message has "
            "waited since it was accepted (0 when none waits), by platform",
            labels=["platform"])
        appeals = CounterMetricFamily(
            f"{PREFIX}appeals", "Appeals members made (from the store: every process's, since "
            "the database began)")
        overturns = CounterMetricFamily(
            f"{PREFIX}overturns", "Decisions reversed (from the store): via=appeal, an appeal "
            "granted; via=review, an automatic verdict a moderator dismissed on review "
            "without an appeal (shadow-mode verdicts not counted)", labels=["via"])
        if figures is not None:
            for platform, queue in sorted(figures.outbox.items()):
                if platform in self.platforms or queue.waiting or queue.scheduled:
                    backlog.add_metric([platform], queue.waiting)
                    scheduled.add_metric([platform], queue.scheduled)
                    oldest.add_metric([platform], figures.oldest_age(queue))
            for platform, queue in sorted(figures.inbox.items()):
                if platform in self.platforms or queue.waiting:
                    inbox.add_metric([platform], queue.waiting)
                    inbox_oldest.add_metric([platform], figures.oldest_age(queue))
            appeals.add_metric([], figures.appeals)
            overturns.add_metric(["appeal"], figures.appeals_granted)
            overturns.add_metric(["review"], figures.dismissed_on_review)
        yield from (backlog, scheduled, oldest, inbox, inbox_oldest, appeals, overturns)
