"""Cut texts into scoring units that fit a model, run them in length-sorted batches, and keep
each text's highest score per category."""

from __future__ import annotations

__all__ = ["length_batches", "merge_max", "pad_batch", "score_units", "text_windows",
           "token_units"]

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

#: Padded tokens (batch size x longest unit) one forward pass may hold: bounds the memory and
#: keeps each matrix in the cache sizes where CPU matmuls run fastest.
BATCH_TOKENS = 4096


def _window_spans(count: int, /, *, max_tokens: int, overlap: int) -> list[tuple[int, int]]:
    """(first, last) token index of each window over `count` tokens."""
    if max_tokens <= overlap:
        raise ValueError("max_tokens must exceed overlap")
    spans: list[tuple[int, int]] = []
    start, step = 0, max_tokens - overlap
    while True:
        end = min(start + max_tokens, count)
        spans.append((start, end - 1))
        if end >= count:
            return spans
        start += step


def _offsets(raw: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Character offsets of the tokens that cover text (special tokens cover none)."""
    return [(s, e) for s, e in raw if e > s]


def text_windows(text: str, tokenizer: Any, /, *, max_tokens: int, overlap: int = 64) -> list[str]:
    """Cut `text` into windows of at most `max_tokens` model tokens, overlapping by `overlap`.

    Uses the fast tokenizer's character offsets, so each window is a verbatim slice of the
    original text (the model sees the member's own words, never a decoded approximation).
    A text that fits is returned whole. Abuse at the end of a long message lands in a window.
    """
    if max_tokens <= overlap:
        raise ValueError("max_tokens must exceed overlap")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False,
                    truncation=False)
    return _slices(text, _offsets(enc["offset_mapping"]), max_tokens=max_tokens,
                   overlap=overlap)


def _slices(text: str, offsets: Sequence[tuple[int, int]], /, *, max_tokens: int,
            overlap: int) -> list[str]:
    if len(offsets) <= max_tokens:
        return [text]
    return [text[offsets[first][0]:offsets[last][1]]
            for first, last in _window_spans(len(offsets), max_tokens=max_tokens,
                                             overlap=overlap)]


def token_units(texts: Sequence[str], tokenizer: Any, /, *, max_tokens: int, overlap: int
                ) -> tuple[list[int], list[list[int]]]:
    """Every text's scoring units as token ids with the model's special tokens, and which
    text each belongs to. A text that fits `max_tokens` is one unit, tokenised once (the whole
    batch in one call); a longer one is cut by `text_windows`'s rule into verbatim slices,
    which are tokenised again."""
    if not texts:
        return [], []
    enc = tokenizer(list(texts), return_offsets_mapping=True, truncation=False, verbose=False)
    specials = int(tokenizer.num_special_tokens_to_add(pair=False))
    owners: list[int] = []
    units: list[list[int]] = []
    long_owners: list[int] = []
    long_texts: list[str] = []
    for index, (ids, raw) in enumerate(zip(enc["input_ids"], enc["offset_mapping"],
                                           strict=True)):
        offsets = _offsets(raw)
        if len(offsets) <= max_tokens and len(ids) <= max_tokens + specials:
            owners.append(index)
            units.append(list(ids))
            continue
        windows = _slices(texts[index], offsets, max_tokens=max_tokens, overlap=overlap)
        long_owners.extend([index] * len(windows))
        long_texts.extend(windows)
    if long_texts:
        again = tokenizer(long_texts, truncation=True, max_length=max_tokens + specials,
                          verbose=False)
        owners.extend(long_owners)
        units.extend(list(ids) for ids in again["input_ids"])
    return owners, units


def length_batches(lengths: Sequence[int], /, *, max_batch: int,
                   max_tokens: int = BATCH_TOKENS) -> Iterator[list[int]]:
    """Indices of `lengths` in batches of similar length (shortest first), each holding at
    most `max_batch` units and `max_tokens` padded tokens (a unit longer than that alone)."""
    batch: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        # Sorted ascending, so the newest unit is the batch's longest.
        if batch and (len(batch) >= max_batch or (len(batch) + 1) * lengths[i] > max_tokens):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def pad_batch(units: Sequence[Sequence[int]], pad_id: int, /) -> tuple[Any, Any]:
    """(input_ids, attention_mask) int64 tensors for `units`, right-padded with `pad_id`."""
    import torch

    longest = max(map(len, units))
    ids = torch.full((len(units), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(units), longest), dtype=torch.long)
    for row, unit in enumerate(units):
        ids[row, :len(unit)] = torch.tensor(unit, dtype=torch.long)
        mask[row, :len(unit)] = 1
    return ids, mask


def merge_max(parts: Iterable[Mapping[str, float]], /) -> dict[str, float]:
    """Per category, the highest score over a text's windows."""
    merged: dict[str, float] = {}
    for part in parts:
        for key, value in part.items():
            if value > merged.get(key, float("-inf")):
                merged[key] = float(value)
    return merged


def score_units(
    texts: Sequence[str],
    tokenizer: Any,
    /,
    *,
    max_tokens: int,
    overlap: int,
    run: Callable[[Any, Any], list[dict[str, float]]],
    max_batch: int,
) -> list[dict[str, float]]:
    """Score every text by its units (see `token_units`), in length-sorted batches through
    `run(input_ids, attention_mask)`; each text keeps its highest score per category."""
    owners, units = token_units(texts, tokenizer, max_tokens=max_tokens, overlap=overlap)
    rows: list[dict[str, float]] = [{} for _ in units]
    for chunk in length_batches([len(u) for u in units], max_batch=max_batch):
        ids, mask = pad_batch([units[i] for i in chunk], tokenizer.pad_token_id)
        for i, row in zip(chunk, run(ids, mask), strict=True):
            rows[i] = row
    per_text: list[list[dict[str, float]]] = [[] for _ in texts]
    for owner, row in zip(owners, rows, strict=True):
        per_text[owner].append(row)
    return [merge_max(parts) for parts in per_text]
