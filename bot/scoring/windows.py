"""Split long texts into overlapping windows that each fit a model's input."""

from __future__ import annotations

__all__ = ["merge_max", "score_by_units", "text_windows"]

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any


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
    offsets: Sequence[tuple[int, int]] = [
        (s, e) for s, e in enc["offset_mapping"] if e > s
    ]
    if len(offsets) <= max_tokens:
        return [text]
    windows: list[str] = []
    step = max_tokens - overlap
    start = 0
    while start < len(offsets):
        chunk = offsets[start:start + max_tokens]
        windows.append(text[chunk[0][0]:chunk[-1][1]])
        if start + max_tokens >= len(offsets):
            break
        start += step
    return windows


def merge_max(parts: Iterable[Mapping[str, float]], /) -> dict[str, float]:
    """Per category, the highest score over a text's windows."""
    merged: dict[str, float] = {}
    for part in parts:
        for key, value in part.items():
            if value > merged.get(key, float("-inf")):
                merged[key] = float(value)
    return merged


def score_by_units(
    texts: Sequence[str],
    /,
    *,
    split: Callable[[str], list[str]],
    score: Callable[[list[str]], list[dict[str, float]]],
) -> list[dict[str, float]]:
    """Score every unit (window, sentence) of every text in one call; keep each text's maxima."""
    units: list[str] = []
    owners: list[int] = []
    for index, text in enumerate(texts):
        parts = split(text)
        units.extend(parts)
        owners.extend([index] * len(parts))
    rows = score(units)
    per_text: list[list[dict[str, float]]] = [[] for _ in texts]
    for owner, row in zip(owners, rows, strict=True):
        per_text[owner].append(row)
    return [merge_max(parts) for parts in per_text]
