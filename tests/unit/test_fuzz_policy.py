"""The policy loader never fails with anything but a located PolicyError (issue 11, point 4).

The regression cases are root causes a 41,018-input fuzzing run found (scripts/fuzz.py); the
properties feed arbitrary TOML-ish text and arbitrary values in a real policy's structure.
"""

from __future__ import annotations

import json
import math
import time
import tomllib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import PolicyError
from bot.policy import Policy, _locate, load_policy, parse_policy
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "policy.toml"
BASE = FIXTURE.read_text(encoding="utf-8")
BASE_LINES = len(BASE.splitlines())


def problems(source: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(source, file="p.toml")
    assert str(caught.value).startswith("p.toml: ")
    return [str(p) for p in caught.value.problems]


def rule(patterns: str, kind: str = "regex") -> str:
    return (f'\n[[rules]]\nid = "r"\nclause = "1.1"\nkind = "{kind}"\npatterns = {patterns}\n'
            'action = "warn"\ncategory = "insult"\n')


NEXT = BASE_LINES + 2  # the first line of what a case appends after a blank line


@pytest.mark.parametrize(("source", "expected"), [
    (BASE + '\n[members.foo]\naction = "hide"\nclause = "1.1"\n',
     f"line {NEXT}, members.foo: unknown key 'foo' (allowed: expelled, lapsed, suspended)"),
    (BASE.replace("warn = 0.75", "warn = nan", 1),
     "categories.toxicity.warn: threshold nan is outside [0, 1]"),
    (BASE.replace("warn = 0.75", "warn = " + "9" * 400, 1),
     "categories.toxicity.warn: threshold 99999999999999999999... (400 digits) is outside "
     "[0, 1]"),
    (BASE.replace("[strikes]\nwarn = 1", "[strikes]\nwarn = inf", 1),
     "strikes.warn: must be a number from 0 to 1e+06, not inf"),
    (BASE.replace("points = 6", "points = nan", 1),
     "strikes.ladder[1].points: must be a number from 0.1 to 1e+06, not nan"),
    (BASE + rule('["ok", "(?i)bad"]'),
     f"line {NEXT + 4}, rules[1].patterns[1]: regex '(?i)bad' uses an inline flag such as (?i) "
     "that applies to the whole expression"),
    (BASE + rule('["  "]', kind="keyword"),
     f"line {NEXT + 4}, rules[1].patterns[0]: keyword pattern '  ' is blank: it would act on "
     "nearly every message [rule r]"),
    (BASE + "\nx = " + "[" * 3000 + "]" * 3000 + "\n",
     f"line {NEXT}: not valid TOML: arrays or tables nested more than 100 deep"),
    (BASE + "\nx = " + "9" * 5000 + "\n",
     f"line {NEXT}: not valid TOML: a number of more than 4300 digits"),
    (BASE + "\nx = [1,\n",
     f"line {NEXT}: not valid TOML: Invalid value (at the end of the file: something opened "
     "earlier is never closed)"),
    (BASE + "\nx = = 1\n", f"line {NEXT}: not valid TOML: Invalid value (column 5)"),
    (BASE.replace('max_timeout = "28d"', 'max_timeout = "999999999999y"', 1),
     "sanctions.max_timeout: '999999999999y' is longer than 100 years"),
    (BASE.replace('[sanctions]', '[sanctions]\ntimezone = "' + "a" * 5000 + '"', 1),
     "sanctions.timezone: 'aaaa"),
])
def test_malformed_policies_are_refused_where_they_are_wrong(source: str, expected: str) -> None:
    found = problems(source)
    assert any(expected in p for p in found), found


def test_located_lines_are_the_lines_of_the_keys() -> None:
    lines = BASE.splitlines()
    found = problems(BASE.replace("warn = 0.75", "warn = nan", 1))
    line = next(i for i, text in enumerate(lines, start=1) if text == "warn = 0.75")
    assert found == [f"line {line}, categories.toxicity.warn: threshold nan is outside [0, 1]"]


def test_the_line_locator_is_not_cubic_on_a_long_unclosed_header() -> None:
    # Was cubic in the line's length: 2,000 spaces took 7 s, 20,000 would take hours.
    started = time.perf_counter()
    located = _locate("[" + " " * 20_000 + "\n" + "[[rules]]\nid = 'a'\n" * 5_000)
    assert time.perf_counter() - started < 2.0
    assert located["rules[4999].id"] == 3 + 2 * 4999


def test_shipped_policies_still_load() -> None:
    for path in [FIXTURE, *sorted((ROOT / "policies").glob("*.toml"))]:
        assert isinstance(load_policy(path), Policy)


# -- properties ---------------------------------------------------------------------------------


def outcome(source: str) -> Policy | PolicyError:
    """A Policy or a PolicyError whose every problem names a line (or a key missing from the
    whole file, which has no line); nothing else may escape."""
    try:
        return parse_policy(source, file="p.toml")
    except PolicyError as exc:
        assert exc.problems and str(exc).startswith("p.toml: ")
        for problem in exc.problems:
            assert problem.line is not None or "missing required key" in problem.message, problem
            assert "\n" not in str(problem)
        return exc


FRAGMENTS = st.sampled_from([
    "[members.foo]", "[members.suspended]", "[categories.toxicity]", "[[rules]]", "[[clauses]]",
    "[strikes]", "[[strikes.ladder]]", "[sanctions]", "[protected]", "[[protected.persons]]",
    "[channels.debate]", "[doxxing]", "version = ", "warn = ", "points = ", "patterns = ",
    "timeout = ", "max_timeout = ", "id = ", "clause = ", "kind = ", "action = ", "nan", "inf",
    "-inf", "1e400", '"(?i)x"', '"a(?i)b"', '" "', '[" "]', '"99999999999y"', '"1h"', "[", "]",
    "{", "}", "=", '"', "'''", '"""', "\n", "#", ",", "true", "0.5", "9" * 50, "\\u0000",
])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(FRAGMENTS, st.text(max_size=8)), max_size=40))
def test_any_toml_ish_text_is_a_policy_or_a_located_error(parts: list[str]) -> None:
    outcome("".join(parts))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(FRAGMENTS, st.text(max_size=6)), min_size=1, max_size=6),
       st.integers(min_value=0, max_value=BASE_LINES))
def test_a_real_policy_with_junk_spliced_in_is_a_policy_or_a_located_error(
        parts: list[str], at: int) -> None:
    lines = BASE.splitlines()
    outcome("\n".join([*lines[:at], "".join(parts), *lines[at:]]))


def toml_value(value: Any) -> str:
    """A value as an inline TOML value (arrays of tables become arrays of inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}"
                           for k, v in value.items()) + "}"


def to_toml(data: dict[str, Any]) -> str:
    return "\n".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}"
                     for k, v in data.items()) + "\n"


SCALARS = st.one_of(
    st.booleans(), st.integers(min_value=-(10**400), max_value=10**400), st.floats(),
    st.text(max_size=12), st.sampled_from(["warn", "hide", "escalate", "allow", "keyword",
                                           "regex", "1.1", "insult", "threat", "1h", "30d",
                                           "999999999999y", "(?i)x", "a(?i)b", " ", "", "mp",
                                           "suspended", "Europe/London", "on_uphold"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=6), st.sampled_from(
        ["warn", "hide", "id", "clause", "patterns", "points", "foo", "suspended"])), inner,
        max_size=4)), max_leaves=12)


@st.composite
def mutated_policy(draw: st.DrawFn) -> dict[str, Any]:
    """The fixture policy with one to three values replaced by arbitrary ones (or removed)."""
    data: dict[str, Any] = tomllib.loads(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        node: Any = data
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, dict | list) and child and draw(st.booleans()):
                node = child
                continue
            if isinstance(node, dict) and draw(st.integers(0, 5)) == 0:
                del node[key]
            else:
                node[key] = draw(VALUES)
            break
    return data


@settings(max_examples=100, deadline=None)
@given(mutated_policy())
def test_arbitrary_values_in_a_policy_give_a_policy_or_a_located_error(
        data: dict[str, Any]) -> None:
    outcome(to_toml(data))


def test_the_structured_strategy_round_trips_a_valid_policy() -> None:
    # Guards the property above: if to_toml broke, every example would be a syntax error.
    assert isinstance(outcome(to_toml(tomllib.loads(BASE))), Policy)
