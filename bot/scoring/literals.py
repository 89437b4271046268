"""Required literals of a regex: a cheap test that rules a pattern out before it runs.

Python's ``re`` tries a pattern that opens with a large alternation (``\\b(i'll|we will|...)``)
at every position of the text, so the policy's big rules cost a millisecond a message. Most
messages contain none of the words such a rule needs, and one Aho-Corasick pass over the
message (:class:`Prefilter`) says so in microseconds. :func:`required_literals` reads the
parsed pattern (``re._parser``, the standard library's own parser) and returns a set of
strings of which every match must contain at least one, casefolded, or None when no such set
can be told.

The test is conservative: when it says no literal is present the pattern cannot match (the
property tests check this against ``re`` itself); when it says yes, the regex decides.

Most texts the rules read are ASCII (the normaliser folds letters to ASCII; only emoji and
symbols stay). For those a sharper test runs first: every alternative of every rule compiled
into one Hyperscan database (:class:`AsciiScan`, see :mod:`bot.multiscan`) in *prefilter*
mode, which reports each alternative that may match (lookarounds and back-references are
widened, never narrowed) in one pass over the text. A word such as "ing" or "own" that a rule
needs occurs in half the messages; the whole pattern around it almost never does, so far fewer
rules run.
"""

from __future__ import annotations

__all__ = ["Prefilter", "fold", "required_literals"]

import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence, Set
from functools import lru_cache
from operator import itemgetter
from re import _casefix, _parser  # type: ignore[attr-defined]
from re import _constants as _c  # type: ignore[attr-defined]
from typing import Any

import ahocorasick

from bot import multiscan
from bot.scoring.patterns import Match, RulePattern

log = logging.getLogger(__name__)

#: A literal set larger than this filters too little to be worth keeping.
MAX_LITERALS = 200

Literals = frozenset[str]

# Characters that ``re.IGNORECASE`` matches to each other although casefold() keeps them apart
# (dotless i and i, long s and s, ...): each class is read as its smallest member.
_SAME: dict[int, str] = {}
for _code, _others in _casefix._EXTRA_CASES.items():
    _members = {chr(_code), *map(chr, _others)}
    for _member in _members:
        _SAME[ord(_member)] = min(_members)

#: The look-alikes that map to another character.
_SAME_CHARS = frozenset(chr(c) for c in _SAME if _SAME[c] != chr(c))


def fold(text: str, /) -> str:
    """Text as the literal test compares it: casefolded, ignore-case look-alikes merged."""
    if text.isascii():  # no look-alike maps an ASCII letter elsewhere: skip the slow translate
        return text.lower()
    # Translating costs about a microsecond a character: only where a look-alike is present
    # (the ASCII letters among them map to themselves).
    if not _SAME_CHARS.isdisjoint(text):
        text = text.translate(_SAME)
    text = text.casefold()
    return text if _SAME_CHARS.isdisjoint(text) else text.translate(_SAME)


def required_literals(pattern: str | re.Pattern[str], /) -> Literals | None:
    """Strings, casefolded, of which every match of `pattern` contains one; None if unknown."""
    source = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
    try:
        parsed = _parser.parse(source)
    except (re.error, RecursionError):  # pragma: no cover - compiled patterns parse
        return None
    found = _sequence(list(parsed))
    if found is None or not found or "" in found or len(found) > MAX_LITERALS:
        return None
    return found


def _sequence(items: list[tuple[Any, Any]]) -> Literals | None:
    """The most selective literal set any item of a sequence guarantees."""
    candidates: list[Literals] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            candidates.append(frozenset({fold("".join(run))}))
            run.clear()

    for op, arg in items:
        if op is _c.LITERAL:
            run.append(chr(arg))
        elif op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            continue  # zero width: the literals either side stay adjacent
        else:
            flush()
            inner = _item(op, arg)
            if inner is not None:
                candidates.append(inner)
    flush()
    if not candidates:
        return None
    # The set whose shortest literal is longest (spaces aside) hits by chance least often.
    return max(candidates, key=lambda s: (min(len(lit.strip()) for lit in s), -len(s)))


def _item(op: Any, arg: Any) -> Literals | None:
    if op is _c.SUBPATTERN:
        return _sequence(list(arg[-1]))
    if op is _c.BRANCH:
        return _union(_sequence(list(branch)) for branch in arg[1])
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
        low, _high, body = arg
        return _sequence(list(body)) if low >= 1 else None
    if op is _c.ATOMIC_GROUP:
        return _sequence(list(arg))
    if op is _c.IN:
        chars: set[str] = set()
        for member_op, member_arg in arg:
            if member_op is not _c.LITERAL:
                return None  # ranges, classes and negations: no literal to require
            chars.add(fold(chr(member_arg)))
        return frozenset(chars) or None
    return None


def _union(sets: Iterable[Literals | None]) -> Literals | None:
    out: set[str] = set()
    for found in sets:
        if found is None:
            return None
        out |= found
    return frozenset(out)


_HS_FLAGS = {re.IGNORECASE: multiscan.CASELESS, re.DOTALL: multiscan.DOTALL,
             re.MULTILINE: multiscan.MULTILINE}
_HS_BASE = multiscan.PREFILTER | multiscan.SINGLEMATCH | multiscan.ALLOWEMPTY


class AsciiScan:
    """Which rules may match an ASCII text, from one Hyperscan pass over it.

    Each alternative is compiled in Hyperscan's prefilter mode (see :mod:`bot.multiscan`): a
    superset of its matches is reported, so a rule it leaves out cannot match. Texts with
    characters other than ASCII are not given to it (see :meth:`Prefilter.candidates`).
    Alternatives it cannot take are reported for every text: Python-only syntax (``\\u2019``),
    or a non-ASCII letter that ``re.IGNORECASE`` equates with an ASCII one ("ſ" and "s").
    """

    __slots__ = ("_always", "_scan")

    def __init__(self, rules: tuple[tuple[str, ...], ...], flags: int, /) -> None:
        hs_flags = _HS_BASE
        for flag, hs_flag in _HS_FLAGS.items():
            if flags & flag:
                hs_flags |= hs_flag
        entries: list[tuple[int, str, int]] = []
        always: set[int] = set()
        for r, parts in enumerate(rules):
            for part in parts:
                # Verbose patterns' whitespace and comments are Python's reading only.
                if not flags & re.VERBOSE and _case_safe(part, flags):
                    entries.append((r, part, hs_flags))
                else:
                    always.add(r)
        try:
            self._scan = multiscan.Multiscan(entries)
        except multiscan.error:
            # Some alternative uses syntax Hyperscan lacks: find it (slower, only then).
            usable = []
            for r, part, _ in entries:
                if multiscan.compiles(part, hs_flags):
                    usable.append((r, part, hs_flags))
                else:
                    log.debug("prefilter: Hyperscan cannot take %r; it runs on every text",
                              part[:60])
                    always.add(r)
            self._scan = multiscan.Multiscan(usable)
        self._always = frozenset(always)

    def candidates(self, text: str, /) -> frozenset[int]:
        """The rules that may match `text`, which must be ASCII."""
        found = self._scan.ids(text)
        return self._always.union(found) if self._always else frozenset(found)


def _case_safe(part: str, flags: int) -> bool:
    """Whether `part` holds no non-ASCII letter that ``re.IGNORECASE`` equates with an ASCII
    one ("ſ" matches "s", the Kelvin sign "k"): bytes compared as ASCII would miss those."""
    if part.isascii() or not flags & re.IGNORECASE:
        return True
    return not any(not ch.isascii() and re.search(re.escape(ch), _ASCII_LETTERS, flags)
                   for ch in set(part))


_ASCII_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@lru_cache(maxsize=16)
def _ascii_scan(rules: tuple[tuple[str, ...], ...], flags: int) -> AsciiScan:
    """One database per set of rules: a policy's scorers share it (compiling takes 0.3-0.8 s)."""
    return AsciiScan(rules, flags)


class Prefilter:
    """Alternations that try only the alternatives whose literals occur in the text.

    Built over many rules (each a list of regex alternatives), it finds every required literal
    of every alternative in one Aho-Corasick pass (``pyahocorasick``, in C) over the folded
    text, and runs only the rules with an alternative that may match: a rule none of whose
    alternatives has its required literals in the text cannot match, so skipping it changes
    nothing. A rule runs as its whole alternation, ``"|".join(parts)``, compiled once on first
    use as a :class:`~bot.scoring.patterns.RulePattern` (RE2 where it can, else under a time
    budget); alternatives that cannot match are cheap to try. (Compiling the alternatives that
    might match, one pattern per subset, ran a little faster once warm but compiled a new
    pattern for almost every new message in a replay.) `names` label them in the log.
    """

    __slots__ = ("_always", "_automaton", "_compiled", "_groups", "_names", "_parts", "_scan",
                 "compiling", "flags")

    def __init__(self, rules: Sequence[Sequence[str]], /, flags: int = re.IGNORECASE, *,
                 names: Sequence[str] = ()) -> None:
        self._parts = tuple(tuple(parts) for parts in rules)
        self._names = tuple(names)
        self.flags = flags
        # literal -> the rules with an alternative that needs it; rules with an alternative
        # that needs none may always match.
        needs: dict[str, set[int]] = {}
        always: set[int] = set()
        for r, parts in enumerate(self._parts):
            for part in parts:
                literals = required_literals(part)
                if literals is None:
                    always.add(r)
                for literal in literals or ():
                    needs.setdefault(literal, set()).add(r)
        self._always = frozenset(always)
        self._automaton = ahocorasick.Automaton()
        for literal, owners in needs.items():
            self._automaton.add_word(literal, frozenset(owners))
        if needs:
            self._automaton.make_automaton()
        self._scan = _ascii_scan(self._parts, flags)
        self._compiled: dict[int, RulePattern] = {}
        self._groups: dict[frozenset[frozenset[int]], frozenset[int]] = {}
        #: CPU seconds spent compiling patterns on first use: a message's time budget leaves
        #: them out (the first message to need a pattern must not pay for building it).
        self.compiling = 0.0

    def candidates(self, folded: str, /) -> frozenset[int]:
        """For a text already through :func:`fold`: the rules that may match (the others
        cannot). An ASCII text gets Hyperscan's sharper answer, any other the literals'."""
        if folded.isascii():
            return self._scan.candidates(folded)
        # Distinct values first (C-level): a message repeating one literal 20,000 times would
        # otherwise cost a Python-level union per occurrence.
        found = frozenset(map(itemgetter(1), self._automaton.iter(folded))) \
            if len(self._automaton) else frozenset()
        rules = self._groups.get(found)
        if rules is None:
            # Most messages share a few literal sets (usually none at all): unite each once.
            if len(self._groups) >= 1024:
                self._groups.clear()
            rules = self._groups[found] = self._always.union(*found)
        return rules

    def finditer(self, rule: int, text: str, candidates: Set[int], /, *,
                 timeout: float = 0.02) -> Iterator[Match]:
        """Rule `rule`'s matches in `text`, given the text's :meth:`candidates`; a backtracking
        run stops after `timeout` seconds of CPU time with PatternTimeout (see `RulePattern`)."""
        if rule not in candidates:
            return iter(())
        pattern = self._compiled.get(rule)
        if pattern is None:
            label = self._names[rule] if rule < len(self._names) else str(rule)
            started = time.thread_time()
            pattern = self._compiled[rule] = RulePattern(
                "|".join(self._parts[rule]), flags=self.flags, label=label)
            self.compiling += time.thread_time() - started
        return pattern.finditer(text, timeout=timeout)
