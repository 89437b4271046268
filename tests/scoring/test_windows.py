"""Scoring units and length batches: every text is scored whole or in windows, and batches
cover every unit once within their limits (property-based, with the shipped tokenizer)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.scoring.encoder import FastTokenizer
from bot.scoring.offline import DEFAULT_MODEL_DIR
from bot.scoring.windows import length_batches, pad_batch, text_windows, token_units

WORDS = ("the", "motion", "councillor", "vote", "branch", "unbelievable", "🔪", "naïve", "x",
         "antidisestablishmentarianism", "123", "!!", "don't")


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return FastTokenizer(DEFAULT_MODEL_DIR)


texts = st.lists(st.lists(st.sampled_from(WORDS), max_size=60).map(" ".join), max_size=8)


@settings(max_examples=40, deadline=None)
@given(texts=texts, max_tokens=st.integers(8, 40))
def test_each_text_is_one_unit_when_it_fits_else_its_windows(tokenizer: Any, texts: list[str],
                                                             max_tokens: int) -> None:
    owners, units = token_units(texts, tokenizer, max_tokens=max_tokens, overlap=4)
    assert sorted(set(owners)) == list(range(len(texts)))  # nobody is left unscored
    for index, text in enumerate(texts):
        mine = [unit for owner, unit in zip(owners, units, strict=True) if owner == index]
        windows = text_windows(text, tokenizer, max_tokens=max_tokens, overlap=4)
        # The same windows as text_windows cuts, as the model would see them.
        assert mine == [tokenizer(w, truncation=True, max_length=max_tokens + 2)["input_ids"]
                        for w in windows]
        assert all(len(unit) <= max_tokens + 2 for unit in mine)


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 600), max_size=80), max_batch=st.integers(1, 40),
       budget=st.integers(1, 5000))
def test_length_batches_cover_every_unit_once_within_limits(lengths: list[int], max_batch: int,
                                                            budget: int) -> None:
    batches = list(length_batches(lengths, max_batch=max_batch, max_tokens=budget))
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert 1 <= len(batch) <= max_batch
        longest = max(lengths[i] for i in batch)
        assert len(batch) == 1 or len(batch) * longest <= budget


def test_pad_batch_masks_exactly_the_real_tokens() -> None:
    ids, mask = pad_batch([[101, 7, 102], [101, 102]], 0)
    assert ids.tolist() == [[101, 7, 102], [101, 102, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0]]
