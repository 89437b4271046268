"""The Batcher: one bad text never fails the others in its batch (issue 11, part of point 10)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from bot.scoring.base import Batcher, scorable


class PickyScorer:
    """Fails a whole batch when any text in it contains 'boom' (as a tokenizer does on input it
    cannot encode); counts batch sizes."""

    name = "picky"
    version = "1"
    categories = ("toxicity",)

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def score_batch(self, texts: Sequence[str], /) -> list[dict[str, float]]:
        self.batches.append(list(texts))
        if any("boom" in t for t in texts):
            raise TypeError("TextEncodeInput must be Union[TextInputSequence, ...]")
        return [{"toxicity": 0.9 if "idiot" in t else 0.1} for t in texts]


async def test_one_failing_text_fails_alone(caplog: pytest.LogCaptureFixture) -> None:
    scorer = PickyScorer()
    async with Batcher(scorer, max_batch=8, max_wait=0.05) as batcher:
        results = await asyncio.gather(
            *(batcher.score(t) for t in ["hello", "you idiot", "boom", "fine"]),
            return_exceptions=True)
    assert [r if isinstance(r, BaseException) else r.values["toxicity"] for r in results][:2] \
        == [0.1, 0.9]
    assert isinstance(results[2], TypeError) and results[3].values == {"toxicity": 0.1}
    assert scorer.batches[0] == ["hello", "you idiot", "boom", "fine"]  # one batch first
    assert "scoring them one by one" in caplog.text


async def test_lone_surrogates_reach_no_scorer() -> None:
    scorer = PickyScorer()
    async with Batcher(scorer) as batcher:
        result = await batcher.score("idiot \ud800")
    assert result.values == {"toxicity": 0.9}
    assert scorer.batches == [["idiot \ufffd"]]


def test_scorable_replaces_lone_surrogates_and_joins_pairs() -> None:
    assert scorable("a\ud800b\udfff") == "a\ufffdb\ufffd"
    assert scorable("\ud83d\ude00") == "\U0001f600"
    text = "plain text"
    assert scorable(text) is text


async def test_a_batch_answered_short_is_scored_again_one_by_one(
        caplog: pytest.LogCaptureFixture) -> None:
    class Short(PickyScorer):
        def score_batch(self, texts: Sequence[str], /) -> list[dict[str, float]]:
            return super().score_batch(texts)[:1]  # drops all but the first

    with caplog.at_level(logging.WARNING):
        async with Batcher(Short(), max_wait=0.05) as batcher:
            results = await batcher.score_many(["a", "b"])
    assert [r.values for r in results] == [{"toxicity": 0.1}, {"toxicity": 0.1}]
