"""bot.metrics: what the core counts, under which labels, in a registry of its own."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bot.errors import (
    PermissionDenied,
    PlatformError,
    RateLimited,
    TargetNotFound,
    Unavailable,
    UnsupportedAction,
)
from bot.metrics import Metrics, error_kind


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


def test_error_kinds_name_the_platform_errors() -> None:
    assert [error_kind(e) for e in (
        RateLimited("x", retry_after=3), Unavailable("x"), PermissionDenied("x"),
        TargetNotFound("x"), UnsupportedAction("x"), PlatformError("x"))] == [
        "rate_limited", "unavailable", "permission_denied", "target_not_found", "unsupported",
        "other"]


def test_counts_under_their_labels_and_each_bot_counts_alone() -> None:
    one, other = Metrics(), Metrics()
    one.prepare(["slack"])
    one.received("slack", 2)
    one.decided("slack", action="hide", mode="enforce")
    one.executed("slack", kind="delete", outcome="retry", error=RateLimited("429"))
    one.executed("slack", kind="delete", outcome="done")
    one.scored_batch(3, seconds=0.02)
    got = samples(one)
    assert got[("conductbot_messages_received_total", frozenset({("platform", "slack")}))] == 2
    hide = frozenset({("platform", "slack"), ("action", "hide"), ("mode", "enforce")})
    warn = frozenset({("platform", "slack"), ("action", "warn"), ("mode", "enforce")})
    assert got[("conductbot_verdicts_total", hide)] == 1
    assert got[("conductbot_verdicts_total", warn)] == 0  # shown from zero by prepare()
    assert got[("conductbot_actions_total", frozenset(
        {("platform", "slack"), ("kind", "delete"), ("outcome", "retry")}))] == 1
    assert got[("conductbot_platform_errors_total", frozenset(
        {("platform", "slack"), ("kind", "rate_limited"), ("action", "delete")}))] == 1
    assert got[("conductbot_scorer_batch_size_sum", frozenset())] == 3
    assert got[("conductbot_scorer_batch_seconds_count", frozenset())] == 1
    # Before any scrape read the store, its families are there, empty.
    assert not any(name.startswith("conductbot_outbox") for name, _ in got)
    assert not any(name == "conductbot_verdicts_total" for name, _ in samples(other))


def test_openmetrics_when_the_scraper_asks_for_it() -> None:
    body, content_type = Metrics().render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
