"""Many regexes over one ASCII text in a single pass, with Hyperscan.

``hyperscan`` is the Python binding of Intel's multi-pattern regex engine: it compiles a set of
patterns into one database and reports, in one pass in C, which of them match and where. The
normaliser asks it which of its steps a message needs and where their hints lie; the rule
prefilter asks which rules may match. Both read bytes, so only ASCII texts are given to it:
there ``\\w``, ``\\b``, bounded repeats and case-insensitivity mean what they mean in ``re``.
"""

from __future__ import annotations

__all__ = ["ALLOWEMPTY", "CASELESS", "DOTALL", "MULTILINE", "PREFILTER", "SINGLEMATCH",
           "Multiscan", "ScanStopped", "compiles", "error"]

import threading
from collections.abc import Callable, Sequence
from typing import Any

import hyperscan

# Pattern flags (Hyperscan's names without the HS_FLAG_ prefix).
ALLOWEMPTY: int = hyperscan.HS_FLAG_ALLOWEMPTY
CASELESS: int = hyperscan.HS_FLAG_CASELESS
DOTALL: int = hyperscan.HS_FLAG_DOTALL
MULTILINE: int = hyperscan.HS_FLAG_MULTILINE
#: Report a superset of the matches: lookarounds and back-references are widened, not refused.
PREFILTER: int = hyperscan.HS_FLAG_PREFILTER
#: Report each pattern at most once per scan.
SINGLEMATCH: int = hyperscan.HS_FLAG_SINGLEMATCH

#: Raised by :func:`hyperscan.Database.compile` for a pattern it cannot take.
error = hyperscan.error
#: Raised by :meth:`Multiscan.scan` when the match handler returned true to stop the scan.
ScanStopped = hyperscan.ScanTerminated

#: A match handler: (pattern id, start, end, flags, context) -> true to stop the scan.
Handler = Callable[[int, int, int, int, Any], bool | None]


class Multiscan:
    """One compiled set of ``(id, pattern, flags)``, scanned from any thread.

    Hyperscan needs scratch space per scanning thread; each thread gets its own on first use.
    An empty set compiles to nothing and matches nothing.
    """

    __slots__ = ("_database", "_local")

    def __init__(self, patterns: Sequence[tuple[int, str, int]], /) -> None:
        self._database: Any = None
        if patterns:
            self._database = hyperscan.Database()
            self._database.compile(
                expressions=[pattern.encode() for _, pattern, _ in patterns],
                ids=[i for i, _, _ in patterns], flags=[f for _, _, f in patterns],
                elements=len(patterns))
        self._local = threading.local()

    def scan(self, text: str, on_match: Handler, context: Any, /) -> None:
        """Call ``on_match(id, start, end, flags, context)`` for each match in `text` (ASCII).

        Raises :data:`ScanStopped` when `on_match` returned true.
        """
        if self._database is None:
            return
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._database)
        self._database.scan(text.encode("ascii"), match_event_handler=on_match,
                            context=context, scratch=scratch)


    def ids(self, text: str, /) -> set[int]:
        """The ids of the patterns that match `text` (ASCII)."""
        found: set[int] = set()
        self.scan(text, _add_id, found)
        return found


def _add_id(pattern: int, _start: int, _end: int, _flags: int, found: set[int]) -> None:
    found.add(pattern)


def compiles(pattern: str, flags: int, /) -> bool:
    """Whether Hyperscan can take `pattern` with `flags`."""
    try:
        Multiscan([(0, pattern, flags)])
    except error:
        return False
    return True
