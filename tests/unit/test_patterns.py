"""Policy regexes: the static safety check, linear matching, and the time budget."""

from __future__ import annotations

import logging
import re

import pytest

from bot.policy import Policy, rule_parts
from bot.scoring.patterns import (
    PatternTimeout,
    RulePattern,
    UnsafePattern,
    check_pattern,
    compile_pattern,
    compile_rule_pattern,
)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (r"([a-z]+)+$", "nested quantifier"),
        (r"(a+)+", "nested quantifier"),
        (r"(.*)*", "nested quantifier"),
        (r"(a+){2,}", "nested quantifier"),
        (r"(\w+\s?)+$", "nested quantifier"),
        (r"(?:x|\s*)+y", "nested quantifier"),
        (r"(a|a)*", "overlapping alternation"),
        (r"(a|ab)*c", "overlapping alternation"),
        (r"(\w|\d)+", "overlapping alternation"),
        (r"(kill|knife|k)+ you", "overlapping alternation"),
        (r"([a-z]", "does not compile"),
    ],
)
def test_dangerous_patterns_are_refused_with_a_reason(source: str, reason: str) -> None:
    with pytest.raises(UnsafePattern) as caught:
        compile_rule_pattern(source)
    assert reason in caught.value.reason
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "source",
    [r"(ab|cd)+", r"(\w+ ){0,2}kill", r"a+b+", r"<@[^>]+>", r"(?:[a-z]|\d)+", r"[\W_]*x",
     r"\b(hope|wish) (you|u) die\b", r"(?<!not )\bkys\b(?!\s+lol)"],
)
def test_ordinary_patterns_are_accepted(source: str) -> None:
    check_pattern(source)


def test_every_default_policy_pattern_is_accepted(policy: Policy) -> None:
    for rule in policy.rules:
        for part in rule_parts(rule.kind, rule.patterns):
            compile_rule_pattern(part, label=rule.id)


def test_matches_are_those_of_re(policy: Policy) -> None:
    texts = [
        "i will kill you", "i will kill you at the polls", "smoke a fag", "you fag",
        "the israeli government", "jews control the media", "🔪 you", "you 🔪🔪",
        "kys", "don't kill yourself", "<@U123> 🪢", "sort him out", "f*** off",
        "ég will kill you", "über kill you", "naïve zionists run the bbc", "", "\n\n",
    ]
    for rule in policy.rules:
        source = "|".join(rule_parts(rule.kind, rule.patterns))
        expected = re.compile(source, re.IGNORECASE)
        ours = compile_rule_pattern(source)
        for text in texts:
            assert [(m.start(), m.end()) for m in ours.finditer(text)] == \
                [(m.start(), m.end()) for m in expected.finditer(text)], (rule.id, text)


def test_lookaround_free_patterns_run_on_re2() -> None:
    assert compile_rule_pattern(r"<@[^>]+>\s*🪢").linear
    assert not compile_rule_pattern(r"(?<!not )\bkys\b").linear


def test_quadratic_pattern_is_linear_on_re2() -> None:
    pattern = compile_rule_pattern(r"<@[^>]+>\s*🪢")
    text = "<@" * 20_000 + "<@U1> 🪢"
    assert [m.span() for m in pattern.finditer(text)] == [(0, len(text))]
    assert list(pattern.finditer("<@" * 20_000 + " 🪢")) == []


def test_gate_rejects_without_running_the_backtracking_engine() -> None:
    pattern = compile_rule_pattern(r"(?<!not )\bkys\b")
    assert list(pattern.finditer("a" * 40_000, timeout=0.001)) == []


def test_runaway_pattern_is_stopped_by_the_budget(caplog: pytest.LogCaptureFixture) -> None:
    # Bypasses the static check, which would refuse it; the lookbehind keeps it off RE2.
    runaway = compile_pattern(r"(?<!x)(a|aa)+$", check=False, label="runaway-rule")
    assert isinstance(runaway, RulePattern)
    text = "a" * 34 + "!"
    with caplog.at_level(logging.WARNING, logger="bot.scoring.patterns"):
        with pytest.raises(PatternTimeout, match="runaway-rule"):
            list(runaway.finditer(text, timeout=0.05))
    assert "runaway-rule" in caplog.text
    assert text not in caplog.text


def test_a_spent_budget_is_reported_not_taken_for_no_match(
        caplog: pytest.LogCaptureFixture) -> None:
    pattern = compile_rule_pattern(r"(?<!not )\bkys\b", label="self-harm")
    with caplog.at_level(logging.WARNING, logger="bot.scoring.patterns"):
        with pytest.raises(PatternTimeout):
            list(pattern.finditer("just kys", timeout=0))
    assert "self-harm" in caplog.text
    assert "kys" not in caplog.text.replace("self-harm", "")


def test_lone_surrogates_do_not_break_matching() -> None:
    pattern = compile_rule_pattern(r"kill (you|u)")
    assert [m.group(0) for m in pattern.finditer("\ud800 kill you \udfff")] == ["kill you"]
