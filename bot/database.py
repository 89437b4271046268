"""Where the store is: a SQLite file (the default) or a PostgreSQL server named by URL.

Kept apart from `bot.store` so configuration can parse a target without importing the store.
"""

from __future__ import annotations

__all__ = ["Target", "described", "is_url", "parse_target", "redact"]

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

Target = str | Path


def is_url(target: Target) -> bool:
    """Whether a database target names a PostgreSQL server (postgresql:// or postgres://)."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def parse_target(text: str) -> Target:
    """A database target from the command line or CONDUCTBOT_DB: a PostgreSQL URL stays a
    string; ``sqlite:///path`` and a plain path become a Path. ValueError on anything else
    that looks like a URL (a typo'd scheme must not become a file of that name)."""
    text = text.strip()
    if is_url(text):  # libpq reads the rest (postgresql:///DB is the local socket)
        return text
    if text.startswith("sqlite://"):
        rest = text.removeprefix("sqlite://")
        if not rest.startswith("/") or rest == "/":
            raise ValueError(f"{text} names no file: sqlite:///relative/path or "
                             "sqlite:////absolute/path")
        return Path(rest[1:])
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        raise ValueError(f"{redact(text)}: only postgresql://... and sqlite:///... databases "
                         "are supported")
    return Path(text)


def described(target: Target) -> str:
    """A target fit for logs and messages: a path, or a URL without its password."""
    return redact(target) if isinstance(target, str) and is_url(target) else str(target)


def redact(url: str) -> str:
    """A URL fit for logs and messages: any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
