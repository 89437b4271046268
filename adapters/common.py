"""Small helpers both platform adapters use."""

from __future__ import annotations

__all__ = ["clip", "need"]

from bot.errors import UnsupportedAction
from bot.models import Platform


def clip(text: str, limit: int, /) -> str:
    """`text` cut to `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def need(value: str | None, what: str, /, *, platform: Platform) -> str:
    """An outbox row's field, or UnsupportedAction when the row lacks it."""
    if not value:
        raise UnsupportedAction(f"the outbox row names no {what}", platform=platform)
    return value
