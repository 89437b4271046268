"""The rules' literal prefilter must never hide a match the full regex would find."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.policy import load_policy, rule_parts
from bot.scoring.literals import Prefilter, fold, required_literals

ROOT = Path(__file__).resolve().parents[2]
POLICY = load_policy(ROOT / "policies" / "default.toml")
PARTS = [rule_parts(rule.kind, rule.patterns) for rule in POLICY.rules]
PREFILTER = Prefilter(PARTS)

# Words the default rules are made of, so random texts hit rules often, plus characters that
# re.IGNORECASE treats as equal although casefold() does not.
_WORDS = sorted({w for parts in PARTS for part in parts
                 for w in re.findall(r"[a-z']{2,}", part)})[:400]
_TOKENS = st.one_of(st.sampled_from(_WORDS), st.sampled_from(
    [" ", " ", ". ", "\n", "(((", ")))", "🔪", "@sam", "ı", "ſ", "K", "İ", "ß", "YOU", "Kill"]))


@pytest.mark.parametrize(("pattern", "expected"), [
    (r"\bkys\b", {"kys"}),
    (r"\b(kill|hang) (your|ur)self\b", {"self"}),
    (r"\b(i'?ll|i will) hurt you", {" hurt you"}),
    (r"watch (your|ur) back", {"watch "}),
    (r"[🔪🔫]\s*\w+", {"🔪", "🔫"}),
    (r"Shekels?", {"shekel"}),
])
def test_required_literals_are_what_every_match_contains(pattern: str,
                                                         expected: set[str]) -> None:
    assert required_literals(pattern) == expected


@pytest.mark.parametrize("pattern", [r"\w+", r"(a|\d+)", r"(kill)?\s*(you)?", r"[a-z]{3}"])
def test_patterns_without_a_required_literal_always_run(pattern: str) -> None:
    assert required_literals(pattern) is None


def test_fold_merges_what_ignorecase_merges() -> None:
    assert fold("ı") == fold("i")
    assert fold("ſ") == fold("s")
    assert fold("K") == "k"  # the Kelvin sign
    assert fold("KILL Them") == "kill them"


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, min_size=1, max_size=14).map(" ".join))
def test_prefiltered_rules_match_exactly_like_the_full_alternation(text: str) -> None:
    candidates = PREFILTER.candidates(fold(text))
    for r, full in enumerate(rule.regex for rule in POLICY.rules):
        expected = [(m.start(), m.end()) for m in full.finditer(text)]
        got = [(m.start(), m.end()) for m in PREFILTER.finditer(r, text, candidates)]
        assert got == expected, POLICY.rules[r].id


def test_a_message_without_any_rule_word_runs_few_rules() -> None:
    candidates = PREFILTER.candidates(fold("Lovely turnout at the ward meeting, thanks all"))
    assert len(candidates) < len(PARTS) // 4
    kys = next(r for r, parts in enumerate(PARTS) if any("kys" in part for part in parts))
    assert kys not in candidates
    assert kys in PREFILTER.candidates(fold("just kys"))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_fold_skips_translating_only_where_it_changes_nothing(text: str) -> None:
    from bot.scoring.literals import _SAME

    assert fold(text) == text.translate(_SAME).casefold().translate(_SAME)


# ASCII only: these texts take the Hyperscan path (bot.scoring.literals.AsciiScan).
_ASCII_TOKENS = st.one_of(st.sampled_from(_WORDS), st.sampled_from(
    [" ", "  ", ". ", "\n", "(((", ")))", "@sam", "YOU", "Kill", "K1ll", "u", "r", "'", "-",
     "ur", "100", "#", "*"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(_ASCII_TOKENS, min_size=1, max_size=14).map(" ".join))
def test_on_ascii_text_no_rule_that_matches_is_left_out(text: str) -> None:
    assert fold(text).isascii()
    candidates = PREFILTER.candidates(fold(text))
    for r, rule in enumerate(POLICY.rules):
        if rule.regex.search(text):
            assert r in candidates, rule.id


@pytest.mark.parametrize(("pattern", "text"), [
    (r"(kill)?(?(1) them| you)", "hey you"),  # Python-only syntax Hyperscan cannot compile
    (r"don\u2019t|dont", "i dont care"),
    ("ſcum", "you scum"),  # re.IGNORECASE matches "ſ" with "s"; bytes would not
])
def test_alternatives_hyperscan_cannot_read_run_on_every_text(pattern: str, text: str) -> None:
    assert re.search(pattern, text, re.IGNORECASE)
    prefilter = Prefilter([[pattern], [r"\bmuppet\b"]])
    assert prefilter.candidates(fold(text)) == {0}
    assert [m.group() for m in prefilter.finditer(0, text, prefilter.candidates(fold(text)))]


def test_candidates_are_the_same_from_many_threads() -> None:
    # Hyperscan's scratch space must not be shared between threads that scan at once.
    texts = [" ".join(_WORDS[i:] + _WORDS[:i]) * 20 for i in range(0, len(_WORDS), 25)]
    expected = [PREFILTER.candidates(fold(t)) for t in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda t: PREFILTER.candidates(fold(t)), texts))
    assert got == expected
