"""Scorers: detoxify, the offline MiniLM heads, and the policy's rules."""

from __future__ import annotations

__all__ = ["Batcher", "LazyScorer", "Scorer", "build_scorer"]

import logging
from collections.abc import Sequence

from bot.config import Settings
from bot.errors import ModelError
from bot.scoring.base import Batcher, Scorer

log = logging.getLogger(__name__)


def build_scorer(settings: Settings, /) -> Scorer:
    """The configured scorer: detoxify when its weights are present, else the offline heads.

    `auto` uses detoxify only when its local checkpoint and config folder exist (detoxify would
    otherwise try to download weights); `detoxify` insists and fails with a clear ModelError.
    """
    from bot.scoring.detoxify import DetoxifyScorer
    from bot.scoring.offline import OfflineScorer

    scorer: Scorer
    want_detoxify = settings.scorer == "detoxify" or (
        settings.scorer == "auto"
        and DetoxifyScorer.available(settings.detoxify_checkpoint, settings.detoxify_config))
    if want_detoxify:
        if settings.detoxify_checkpoint is None:
            raise ModelError("the detoxify scorer needs a local checkpoint",
                             hint="set CONDUCTBOT_DETOXIFY_CHECKPOINT and "
                                  "CONDUCTBOT_DETOXIFY_CONFIG (see README, 'Scorers')")
        # Only detoxify loads through transformers (1 s to import; the offline scorer never
        # does), whose "Loading weights" bar would be noise in a service's log.
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        scorer = DetoxifyScorer(model_type=settings.detoxify_model, device=settings.device,
                                checkpoint=settings.detoxify_checkpoint,
                                config_dir=settings.detoxify_config,
                                precision=settings.precision)
    else:
        if settings.scorer == "auto" and settings.detoxify_checkpoint is not None:
            log.warning("detoxify checkpoint %s or its config folder %s is missing; using the "
                        "offline scorer", settings.detoxify_checkpoint,
                        settings.detoxify_config)
        scorer = OfflineScorer(device=settings.device, precision=settings.precision)
    log.info("scorer: %s version %s (categories: %s)", scorer.name, scorer.version,
             ", ".join(scorer.categories))
    return scorer


class LazyScorer:
    """Builds the configured scorer on first use: commands that never score skip the load."""

    def __init__(self, settings: Settings, /) -> None:
        self._settings = settings
        self._scorer: Scorer | None = None

    @property
    def loaded(self) -> Scorer:
        """The real scorer, built now if it was not yet."""
        if self._scorer is None:
            self._scorer = build_scorer(self._settings)
        return self._scorer

    @property
    def name(self) -> str:
        """The real scorer's name."""
        return self.loaded.name

    @property
    def version(self) -> str:
        """The real scorer's version."""
        return self.loaded.version

    @property
    def categories(self) -> tuple[str, ...]:
        """The real scorer's categories."""
        return self.loaded.categories

    def score_batch(self, texts: Sequence[str], /) -> list[dict[str, float]]:
        """Score with the real scorer."""
        return self.loaded.score_batch(texts)
