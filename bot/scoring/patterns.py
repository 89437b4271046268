"""Policy regexes that cannot stall the bot: a safety check, linear-time matching, a time budget.

A policy regex runs against every message (in the moderator's worker thread), so one written
carelessly (``([a-z]+)+$``) or one that is merely quadratic on hostile input (``<@[^>]+>`` over
20,000 ``<@``) would hold up moderation for seconds. Three defences, measured on 40,000-character
crafted messages (see ``scripts/bench.py``):

1. :func:`check_pattern` refuses, at ``policy check`` and load, the shapes that backtrack
   exponentially: a repeated group that holds another repetition (``(a+)+``, ``(.*)*``) and a
   repeated alternation whose branches can start with the same character (``(a|a)*``,
   ``(\\w|\\d)+``). "Repeated" means unbounded or more than :data:`MAX_SAFE_REPEAT` times.
2. :class:`RulePattern` matches with RE2 (``google-re2``, a linear-time automaton) whenever
   RE2 can give the same answer as Python: the pattern has no lookaround, back-reference,
   atomic group or possessive repeat, and the text holds no non-ASCII letter, digit, space or
   cased character (RE2's ``\\b``, ``\\w``, ``\\d`` are ASCII; the rule scorer's folded text is
   ASCII but for symbols and emoji). RE2 runs the policy's rules over a 40,000-character
   message in well under a millisecond each, where Python's ``re`` and ``regex`` take 50-300 ms
   on the big alternations and seconds on the quadratic ones.
3. Patterns RE2 cannot take (the policy's lookbehinds such as ``(?<!israeli )``) first pass an
   RE2 *gate*: the pattern with its lookarounds dropped and ``\\b`` relaxed, which matches
   wherever the real one does, so a message the gate rejects cannot match. Only a message the
   gate accepts runs the real pattern, with the ``regex`` module (the same syntax as ``re``)
   under a budget of the thread's own CPU time (waiting for the GIL or a busy machine never
   counts); a run that exceeds it is logged with the rule id (never the text) and raises
   :class:`PatternTimeout`: the rule scorer then escalates the message for a moderator to
   read rather than take "unfinished" for "no match".
"""

from __future__ import annotations

__all__ = ["MAX_SAFE_REPEAT", "Match", "PatternTimeout", "RulePattern", "UnsafePattern",
           "check_pattern", "compile_pattern", "compile_rule_pattern"]

import logging
import re
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from re import _constants as _c  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any, Protocol

import re2  # type: ignore[import-untyped]
import regex  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

#: A group repeated at most this many times is not "repeated" for the safety check:
#: ``(\\w+ ){0,2}`` and ``(all |just ){0,3}`` backtrack boundedly.
MAX_SAFE_REPEAT = 4

_MAXREPEAT = _c.MAXREPEAT
_RE2_MAX_COUNT = 1000  # RE2's limit on {n,m}


class UnsafePattern(ValueError):
    """A regex refused because it can backtrack catastrophically; `reason` says how."""

    def __init__(self, reason: str, /) -> None:
        super().__init__(reason)
        self.reason = reason


class Match(Protocol):
    """What the rule scorer reads of a match (``re``, ``regex`` and RE2 matches all have it)."""

    @property
    def string(self) -> str: ...

    def start(self, group: int = 0, /) -> int: ...

    def end(self, group: int = 0, /) -> int: ...

    def group(self, group: int = 0, /) -> Any: ...


# --------------------------------------------------------------------------------------------
# The safety check


def check_pattern(source: str, /, *, flags: int = re.IGNORECASE) -> None:
    """Raise `UnsafePattern` if `source` can backtrack exponentially (or does not compile)."""
    try:
        parsed = _parser.parse(source, flags)
    except re.error as exc:
        raise UnsafePattern(f"does not compile: {exc}") from exc
    except RecursionError as exc:
        raise UnsafePattern("nested too deeply") from exc
    ignore_case = bool((flags | parsed.state.flags) & re.IGNORECASE)
    _check(list(parsed), ignore_case)


def _check(items: list[tuple[Any, Any]], ignore_case: bool) -> None:
    for op, arg in items:
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            _low, high, body = arg
            body = list(body)
            if (high == _MAXREPEAT or high > MAX_SAFE_REPEAT) and op is not \
                    _c.POSSESSIVE_REPEAT:
                if _has_variable_repeat(body):
                    raise UnsafePattern(
                        "nested quantifier: a repeated group contains another repetition, "
                        "as in (a+)+ or (.*)*, which backtracks exponentially; bound the outer "
                        f"repetition to at most {{0,{MAX_SAFE_REPEAT}}} or remove one of them")
                if _overlapping_branches(body, ignore_case):
                    raise UnsafePattern(
                        "overlapping alternation under a quantifier: the branches of a "
                        "repeated group can start with the same character, as in (a|a)* or "
                        r"(\w|\d)+, which backtracks exponentially; make the branches "
                        "start differently or bound the repetition")
            _check(body, ignore_case)
        elif op is _c.SUBPATTERN:
            _check(list(arg[-1]), ignore_case)
        elif op is _c.BRANCH:
            for branch in arg[1]:
                _check(list(branch), ignore_case)
        elif op in (_c.ASSERT, _c.ASSERT_NOT):
            _check(list(arg[1]), ignore_case)
        elif op is _c.ATOMIC_GROUP:
            _check(list(arg), ignore_case)
        elif op is _c.GROUPREF_EXISTS:
            for branch in arg[1:]:
                if branch is not None:
                    _check(list(branch), ignore_case)


def _has_variable_repeat(items: list[tuple[Any, Any]]) -> bool:
    """Whether a repetition of variable length (other than ``?``) or a back-reference is in
    `items`: repeated again, it gives the engine many ways to split the same text."""
    for op, arg in items:
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
            low, high, body = arg
            if high != low and high > 1:
                return True
            if _has_variable_repeat(list(body)):
                return True
        elif op is _c.SUBPATTERN:
            if _has_variable_repeat(list(arg[-1])):
                return True
        elif op is _c.BRANCH:
            if any(_has_variable_repeat(list(b)) for b in arg[1]):
                return True
        elif op is _c.GROUPREF:
            return True
    return False


# A sample of characters for comparing what branches can start with: ASCII, and a few
# letters, digits, spaces and symbols beyond it.
_ALPHABET = tuple(map(chr, range(128))) + tuple("éßİıſΩωж٣\u00a0\u2003🔪🪢£€")


def _overlapping_branches(items: list[tuple[Any, Any]], ignore_case: bool) -> bool:
    """Whether an alternation in a repeated body has two branches that can begin with the same
    character, or one that can match nothing, so the repetition can split text many ways.
    Python's parser turns ``(a|a)`` into a class and ``(a|ab)`` into ``a(?:|b)``, so
    overlapping class members and empty branches count too."""
    for op, arg in items:
        if op is _c.BRANCH:
            seen: set[str] = set()
            for branch in arg[1]:
                first, empty = _first(list(branch), ignore_case)
                if empty or first & seen:
                    return True
                seen |= first
            if any(_overlapping_branches(list(b), ignore_case) for b in arg[1]):
                return True
        elif op is _c.IN and not any(m_op is _c.NEGATE for m_op, _ in arg):
            seen = set()
            for member in arg:
                chars = {ch for ch in _ALPHABET if _matches_char(_c.IN, [member], ch,
                                                                  ignore_case)}
                if chars & seen:
                    return True
                seen |= chars
        elif op is _c.SUBPATTERN:
            if _overlapping_branches(list(arg[-1]), ignore_case):
                return True
        elif op is _c.ATOMIC_GROUP:
            if _overlapping_branches(list(arg), ignore_case):
                return True
    return False


def _first(items: list[tuple[Any, Any]], ignore_case: bool) -> tuple[set[str], bool]:
    """Characters of `_ALPHABET` a match of `items` can start with, and whether it can be
    empty."""
    out: set[str] = set()
    for op, arg in items:
        if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            continue
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            inner, empty = _first(list(arg[2]), ignore_case)
            empty = empty or arg[0] == 0
        elif op is _c.SUBPATTERN:
            inner, empty = _first(list(arg[-1]), ignore_case)
        elif op is _c.ATOMIC_GROUP:
            inner, empty = _first(list(arg), ignore_case)
        elif op is _c.BRANCH:
            firsts = [_first(list(b), ignore_case) for b in arg[1]]
            inner = set().union(*(f for f, _ in firsts))
            empty = any(e for _, e in firsts)
        else:
            inner = {ch for ch in _ALPHABET if _matches_char(op, arg, ch, ignore_case)}
            empty = False
        out |= inner
        if not empty:
            return out, False
    return out, True


def _matches_char(op: Any, arg: Any, ch: str, ignore_case: bool) -> bool:
    def same(code: int) -> bool:
        other = chr(code)
        return ch == other or (ignore_case and ch.lower() == other.lower())

    if op is _c.LITERAL:
        return same(arg)
    if op is _c.NOT_LITERAL:
        return not same(arg)
    if op is _c.ANY:
        return ch != "\n"
    if op is _c.IN:
        negate = False
        hit = False
        for member_op, member_arg in arg:
            if member_op is _c.NEGATE:
                negate = True
            elif member_op is _c.LITERAL:
                hit = hit or same(member_arg)
            elif member_op is _c.RANGE:
                lo, hi = member_arg
                hit = hit or lo <= ord(ch) <= hi or (
                    ignore_case and any(lo <= ord(c) <= hi for c in (ch.lower(), ch.upper())
                                        if len(c) == 1))
            elif member_op is _c.CATEGORY:
                hit = hit or _in_category(member_arg, ch)
        return hit != negate
    return True  # anything else (a back-reference): assume it may


def _in_category(category: Any, ch: str) -> bool:
    word = ch.isalnum() or ch == "_"
    return {
        _c.CATEGORY_DIGIT: ch.isdecimal(), _c.CATEGORY_NOT_DIGIT: not ch.isdecimal(),
        _c.CATEGORY_SPACE: ch.isspace(), _c.CATEGORY_NOT_SPACE: not ch.isspace(),
        _c.CATEGORY_WORD: word, _c.CATEGORY_NOT_WORD: not word,
    }.get(category, True)


# --------------------------------------------------------------------------------------------
# Translation to RE2


class _Untranslatable(Exception):
    """RE2 cannot express this (exactly, or at all)."""


_ASCII_CLASSES = {
    _c.CATEGORY_DIGIT: r"0-9", _c.CATEGORY_WORD: r"0-9A-Za-z_",
    # Python's \s on ASCII text includes \v and the separators \x1c-\x1f; RE2's does not.
    _c.CATEGORY_SPACE: r"\t-\r\x{1c}-\x{20}",
}
# Unicode versions for the gate, which must match wherever Python does on any text.
_UNICODE_CLASSES = {
    _c.CATEGORY_DIGIT: r"\p{Nd}", _c.CATEGORY_WORD: r"\p{L}\p{N}_",
    _c.CATEGORY_SPACE: r"\t-\r\x{1c}-\x{20}\x{85}\p{Z}",
}
_NEGATED = {
    _c.CATEGORY_NOT_DIGIT: _c.CATEGORY_DIGIT, _c.CATEGORY_NOT_WORD: _c.CATEGORY_WORD,
    _c.CATEGORY_NOT_SPACE: _c.CATEGORY_SPACE,
}


def _char(code: int) -> str:
    ch = chr(code)
    return ch if ch.isascii() and ch.isalnum() else f"\\x{{{code:x}}}"


class _Translator:
    """Python regex syntax tree to RE2 source. `ascii` classes keep Python's meaning on texts
    whose non-ASCII characters are uncased symbols (Unicode ones approximate it on any text);
    `exact` refuses what RE2 cannot say, otherwise lookarounds are dropped, giving a gate that
    matches at least wherever Python would."""

    def __init__(self, *, exact: bool, ascii: bool) -> None:
        self.exact = exact
        self.ascii = ascii
        self.classes = _ASCII_CLASSES if ascii else _UNICODE_CLASSES

    def seq(self, items: list[tuple[Any, Any]]) -> str:
        return "".join(self.item(op, arg) for op, arg in items)

    def item(self, op: Any, arg: Any) -> str:
        if op is _c.LITERAL:
            return _char(arg)
        if op is _c.NOT_LITERAL:
            return f"[^{_char(arg)}]"
        if op is _c.ANY:
            return "."
        if op is _c.IN:
            return self.charset(arg)
        if op is _c.BRANCH:
            return "(?:" + "|".join(self.seq(list(b)) for b in arg[1]) + ")"
        if op is _c.SUBPATTERN:
            _group, add, remove, body = arg
            flags = self.flags(add) + ("-" + self.flags(remove) if self.flags(remove) else "")
            return f"(?{flags}:{self.seq(list(body))})"
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            if op is _c.POSSESSIVE_REPEAT and self.exact:
                raise _Untranslatable
            low, high, body = arg
            if low > _RE2_MAX_COUNT or (high != _MAXREPEAT and high > _RE2_MAX_COUNT):
                if self.exact:
                    raise _Untranslatable
                low = min(low, _RE2_MAX_COUNT)
                high = _MAXREPEAT
            count = (f"{{{low},}}" if high == _MAXREPEAT else
                     f"{{{low}}}" if low == high else f"{{{low},{high}}}")
            lazy = "?" if op is _c.MIN_REPEAT else ""
            return f"(?:{self.seq(list(body))}){count}{lazy}"
        if op is _c.ATOMIC_GROUP:
            if self.exact:
                raise _Untranslatable
            return f"(?:{self.seq(list(arg))})"
        if op is _c.AT:
            return self.at(arg)
        if op in (_c.ASSERT, _c.ASSERT_NOT):
            if self.exact:
                raise _Untranslatable
            return ""  # zero width: without it the pattern matches at least where it did
        raise _Untranslatable  # back-references and conditionals

    def at(self, where: Any) -> str:
        if where is _c.AT_BEGINNING_STRING:
            return r"\A"
        if where is _c.AT_END_STRING:
            return r"\z"
        if where is _c.AT_BEGINNING:
            return "^"
        if where is _c.AT_BEGINNING_LINE:
            return "(?m:^)"
        if where is _c.AT_END_LINE:
            return "(?m:$)"
        if where in (_c.AT_BOUNDARY, _c.AT_NON_BOUNDARY):
            # RE2's \b is ASCII, exact on the texts exact patterns are used for.
            if self.ascii:
                return r"\b" if where is _c.AT_BOUNDARY else r"\B"
            return ""
        # Python's "$" also matches before a final newline, which RE2 cannot say.
        if self.exact:
            raise _Untranslatable
        return ""

    def charset(self, members: list[tuple[Any, Any]]) -> str:
        negate = False
        parts: list[str] = []
        negated_categories: list[str] = []
        for op, arg in members:
            if op is _c.NEGATE:
                negate = True
            elif op is _c.LITERAL:
                parts.append(_char(arg))
            elif op is _c.RANGE:
                parts.append(f"{_char(arg[0])}-{_char(arg[1])}")
            elif op is _c.CATEGORY and arg in self.classes:
                parts.append(self.classes[arg])
            elif op is _c.CATEGORY and arg in _NEGATED:
                negated_categories.append(self.classes[_NEGATED[arg]])
            else:
                raise _Untranslatable
        if not negated_categories:
            body = "".join(parts)
            if not body:
                return "[^\\x{0}-\\x{10ffff}]" if not negate else "(?s:.)"
            return f"[{'^' if negate else ''}{body}]"
        if negate:
            raise _Untranslatable  # [^\W\d]: an intersection, which RE2 has no syntax for
        # [\W_] is "not a word character, or an underscore": a union of classes.
        alternatives = [f"[^{c}]" for c in negated_categories]
        if parts:
            alternatives.append(f"[{''.join(parts)}]")
        return "(?:" + "|".join(alternatives) + ")"

    @staticmethod
    def flags(value: int) -> str:
        return "".join(letter for flag, letter in ((re.IGNORECASE, "i"), (re.DOTALL, "s"),
                                                   (re.MULTILINE, "m")) if value & flag)


def _to_re2(parsed: Any, flags: int, *, exact: bool, ascii: bool = True) -> Any | None:
    """The RE2 program for a parsed pattern, or None if RE2 cannot take it (so translated)."""
    translator = _Translator(exact=exact, ascii=ascii)
    try:
        body = translator.seq(list(parsed))
    except (_Untranslatable, RecursionError):
        return None
    all_flags = flags | parsed.state.flags
    prefix = _Translator.flags(all_flags & (re.IGNORECASE | re.DOTALL | re.MULTILINE))
    options = re2.Options()
    options.max_mem = 64 << 20
    try:
        return re2.compile(f"(?{prefix}:{body})" if prefix else body, options)
    except re2.error:
        return None


# Non-ASCII characters on which RE2's ASCII classes and case folding agree with Python's.
@lru_cache(maxsize=4096)
def _inert(ch: str) -> bool:
    return not (ch.isalnum() or ch == "_" or ch.isspace() or ch.lower() != ch
                or ch.upper() != ch or ch.casefold() != ch or ch.isdecimal())


def _exact_ok(text: str) -> bool:
    """Whether RE2's ASCII semantics equal Python's Unicode ones on `text`."""
    if text.isascii():
        return True
    return all(_inert(ch) for ch in set(text) if not ch.isascii())


_SURROGATE = re.compile("[\ud800-\udfff]")


# --------------------------------------------------------------------------------------------
# Compiled patterns


class RulePattern:
    """A regex matched in linear time where possible and under a time budget otherwise."""

    __slots__ = ("_exact", "_gate", "_gate_ascii", "_regex", "label", "source")

    def __init__(self, source: str, /, *, flags: int = re.IGNORECASE, label: str = "") -> None:
        self.source = source
        self.label = label
        try:
            self._regex = regex.compile(source, flags)
        except regex.error as exc:
            raise UnsafePattern(f"does not compile: {exc}") from exc
        try:
            parsed = _parser.parse(source, flags)
        except (re.error, RecursionError):
            parsed = None
        self._exact = _to_re2(parsed, flags, exact=True) if parsed is not None else None
        # Two gates: with ASCII classes and word boundaries, for texts on which they agree
        # with Python's (fast, and selective), and with Unicode classes for any other text.
        self._gate = (_to_re2(parsed, flags, exact=False, ascii=False)
                      if parsed is not None else None)
        self._gate_ascii = (_to_re2(parsed, flags, exact=False, ascii=True)
                            if parsed is not None else None)

    @property
    def linear(self) -> bool:
        """Whether RE2 can run this pattern exactly (on texts free of non-ASCII letters)."""
        return self._exact is not None

    def finditer(self, text: str, /, *, timeout: float = 0.02) -> Iterator[Match]:
        """Every match, as ``re.finditer`` would give them; a run of the ``regex`` module that
        takes more than `timeout` seconds of CPU time stops there, logged, with
        PatternTimeout."""
        if self._gate is not None:
            safe = _SURROGATE.sub("\ufffd", text) if not text.isascii() else text
            ascii_ok = _exact_ok(text)
            if self._exact is not None and ascii_ok:
                return self._exact.finditer(safe)  # type: ignore[no-any-return]
            gate = self._gate_ascii if ascii_ok and self._gate_ascii is not None else self._gate
            return self._gated(gate, text, safe, timeout)
        return self._timed(text, timeout)

    def search(self, text: str, /, *, timeout: float = 0.02) -> Match | None:
        """The first match, or None (PatternTimeout when the budget runs out)."""
        return next(self.finditer(text, timeout=timeout), None)

    def _gated(self, gate_re: Any, text: str, safe: str, timeout: float) -> Iterator[Match]:
        """The real pattern tried only where the gate matches: every match of it starts inside
        a gate match (the gate matches wherever it does, and scans left to right), so a long
        message costs the backtracking engine only the few places that look like abuse."""
        # Only the backtracking engine's time counts: the gate is linear.
        budget = _Budget(timeout)
        at = 0
        try:
            for gate in gate_re.finditer(safe):
                p = max(gate.start(), at)
                stop = max(gate.end(), gate.start() + 1)
                while p < stop:
                    m = budget.run(self._regex.match, text, p)
                    if m is None:
                        p += 1
                        continue
                    yield m
                    at = p = m.end() if m.end() > p else p + 1
        except TimeoutError:
            self._overran(text, timeout)

    def _timed(self, text: str, timeout: float) -> Iterator[Match]:
        budget = _Budget(timeout)
        at = 0
        try:
            while at <= len(text):
                m = budget.run(self._regex.search, text, at)
                if m is None:
                    return
                yield m
                at = m.end() if m.end() > m.start() else m.end() + 1
        except TimeoutError:
            self._overran(text, timeout)

    def _overran(self, text: str, timeout: float) -> None:
        log.warning("rule %s: pattern ran past its %.0f ms budget on a %d-character text",
                    self.label or "?", timeout * 1000, len(text))
        raise PatternTimeout(self.label)


class PatternTimeout(TimeoutError):
    """A pattern used up its time budget on a text before it finished: whether it matches is
    unknown (logged with the rule id and the text's length, never the text)."""

    def __init__(self, label: str) -> None:
        super().__init__(f"rule {label or '?'} did not finish in its time budget")
        self.label = label


class _Budget:
    """Seconds of this thread's CPU time for one pattern on one text. The `regex` module's own
    timeout is wall-clock: one that came from waiting (another thread holding the GIL, a busy
    machine) is retried, one that came from work ends the run (TimeoutError). The CPU clock is
    read every few calls only: reading it costs as much as a short match."""

    __slots__ = ("_calls", "_limit", "_started")

    def __init__(self, seconds: float) -> None:
        self._limit = seconds
        self._started = time.thread_time()
        self._calls = 0

    def _spent(self) -> bool:
        return time.thread_time() - self._started >= self._limit

    def run(self, call: Callable[..., Any], *args: Any) -> Any:
        self._calls += 1
        if self._limit <= 0 or (self._calls % 32 == 0 and self._spent()):
            raise TimeoutError
        while True:
            try:
                return call(*args, timeout=self._limit)
            except TimeoutError:
                if self._spent():
                    raise


def compile_pattern(source: str, /, *, flags: int = re.IGNORECASE, label: str = "",
                    check: bool = True) -> RulePattern:
    """Compile `source` (`check=False` skips the safety check: for tests and trusted code)."""
    if check:
        check_pattern(source, flags=flags)
    return RulePattern(source, flags=flags, label=label)


def compile_rule_pattern(source: str, /, *, label: str = "") -> RulePattern:
    """A policy regex as the rule scorer matches it (case-insensitive); raises `UnsafePattern`
    with the reason when it can backtrack catastrophically or does not compile."""
    return compile_pattern(source, flags=re.IGNORECASE, label=label)
