"""Scorers: detoxify, the offline MiniLM heads, and the policy's rules."""

from __future__ import annotations

__all__ = ["Batcher", "Scorer", "build_scorer"]

import logging

from bot.config import Settings
from bot.errors import ModelError
from bot.scoring.base import Batcher, Scorer

log = logging.getLogger(__name__)


def build_scorer(settings: Settings, /) -> Scorer:
    """The configured scorer: detoxify when its weights are present, else the offline heads.

    `auto` uses detoxify only when a local checkpoint is configured and exists (detoxify would
    otherwise try to download weights); `detoxify` insists and fails with a clear ModelError.
    """
    from transformers.utils import logging as hf_logging

    from bot.scoring.offline import OfflineScorer

    # transformers 5 draws a "Loading weights" bar on every load: noise in a service's log.
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    scorer: Scorer
    want_detoxify = settings.scorer == "detoxify" or (
        settings.scorer == "auto" and settings.detoxify_checkpoint is not None
        and settings.detoxify_checkpoint.exists())
    if want_detoxify:
        from bot.scoring.detoxify import DetoxifyScorer

        if settings.detoxify_checkpoint is None:
            raise ModelError("the detoxify scorer needs a local checkpoint",
                             hint="set CONDUCTBOT_DETOXIFY_CHECKPOINT and "
                                  "CONDUCTBOT_DETOXIFY_CONFIG (see README, 'Scorers')")
        scorer = DetoxifyScorer(model_type=settings.detoxify_model, device=settings.device,
                                checkpoint=settings.detoxify_checkpoint,
                                config_dir=settings.detoxify_config)
    else:
        if settings.scorer == "auto" and settings.detoxify_checkpoint is not None:
            log.warning("detoxify checkpoint %s not found; using the offline scorer",
                        settings.detoxify_checkpoint)
        scorer = OfflineScorer(device=settings.device)
    log.info("scorer: %s version %s (categories: %s)", scorer.name, scorer.version,
             ", ".join(scorer.categories))
    return scorer
