"""Crafted 40,000-character messages: the rule scorer still finds what it should, and only it.

Timings are for `scripts/bench.py`; these tests check behaviour only (a blow-up would show as
the suite's timeout). What the scorer finds must not depend on the machine's speed, so the
per-message time budget is made generous here, and tested on its own with none at all."""

from __future__ import annotations

import logging

import pytest

from bot.models import VerdictAction
from bot.policy import Policy
from bot.scoring import rules as rules_module
from bot.scoring.rules import RuleScorer

#: The shipped per-message budget, before the fixture below makes it generous.
REAL_BUDGET = rules_module.MESSAGE_BUDGET_S


@pytest.fixture(autouse=True)
def generous_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules_module, "MESSAGE_BUDGET_S", 10.0)

N = 40_000


def fill(unit: str, n: int = N) -> str:
    return (unit * (n // len(unit) + 1))[:n]


# Each input is padding that once cost seconds (or tens of milliseconds per form) somewhere in
# the normaliser, the literal prefilter, a policy regex or a detector.
PADDING = {
    "at-run": fill("@"),
    "dot-run": fill("."),
    "letter-run": fill("a"),
    "space-run": fill(" "),
    "digit-run": fill("1"),
    "dash-run": fill("-"),
    "star-run": fill("*"),
    "emoji-run": fill("🔪"),
    "spaced-letters": fill("a "),
    "dotted-letters": fill("k.i.l.l "),
    "dotted-word": fill("ab."),
    "word-then-at": fill("a")[:-1] + "@",
    "dots-then-at": fill("a.")[:-1] + "@",
    "digits-then-at": fill("1")[:-1] + "@",
    "plus-run": fill("+a"),
    "www-run": fill("www."),
    "mention-opens": fill("<@"),
    "f-then-stars": "f" + fill("*")[:-1],
    "quotes": fill('"a" '),
    "open-quotes": fill(' "a'),
    "sentences": fill("You are nice. "),
    "questions": fill("fag? "),
    "long-line": fill("word "),
    "trigger-words": fill("i will "),
    "knives-at": fill("🔪@"),
    "cyrillic": fill("ѕсum "),
    "combining": fill("a\u0336"),
}
THREAT = " i will kill you"


@pytest.fixture(scope="module")
def scorer(policy: Policy) -> RuleScorer:
    return RuleScorer(policy)


@pytest.mark.parametrize("name", sorted(PADDING))
def test_threat_at_the_end_of_a_long_message_is_found(scorer: RuleScorer, name: str) -> None:
    padding = PADDING[name][: 39_000]
    text = padding + "\n" + THREAT
    hits = {h.rule_id for h in scorer.hits(text)}
    assert "threat-violence" in hits, name


@pytest.mark.parametrize("name", sorted(PADDING))
def test_padding_alone_raises_no_threat(scorer: RuleScorer, name: str) -> None:
    hits = {h.rule_id for h in scorer.hits(PADDING[name])}
    assert "threat-violence" not in hits
    assert "self-harm-incitement" not in hits


def test_long_legitimate_text_gives_no_hit(scorer: RuleScorer) -> None:
    paragraph = ("The housing committee met on Tuesday to discuss the budget for next year. "
                 "Members asked about the timetable, the consultation and the costs; the "
                 "chair agreed to circulate the figures before the next meeting.\n")
    text = fill(paragraph)
    assert scorer.hits(text) == []


def test_threat_hidden_in_long_legitimate_text_is_found(scorer: RuleScorer) -> None:
    paragraph = "Members discussed the budget and the consultation at length. "
    text = fill(paragraph)[:39_000] + "Honestly, someone should stab her."
    assert "threat-violence" in {h.rule_id for h in scorer.hits(text)}


def test_email_at_the_end_of_a_dotted_run_is_found(scorer: RuleScorer) -> None:
    text = fill("a.")[:39_000] + " write to ..jane.doe@example.org today"
    hits = [h for h in scorer.hits(text) if h.rule_id == "doxxing:email"]
    assert hits and hits[0].matched.startswith("jane")


def test_a_busy_machine_never_makes_an_ordinary_rule_miss(
        policy: Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the shipped budget, threads waiting for the GIL (the moderator runs rules in worker
    threads) or a busy machine must not change what the rules find: the budget counts CPU
    time, not the clock."""
    monkeypatch.setattr(rules_module, "MESSAGE_BUDGET_S", REAL_BUDGET)
    import json
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    rules = RuleScorer(policy)
    lines = (Path(__file__).resolve().parents[2] / "examples" / "forum.jsonl").read_text(
        encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines if line.strip()]
    alone = [[h.rule_id for h in rules.hits(t)] for t in texts]
    assert any(alone)
    stop = threading.Event()

    def burn() -> None:  # pure-Python work that holds the GIL in slices
        while not stop.is_set():
            sum(i * i for i in range(20_000))

    burners = [threading.Thread(target=burn) for _ in range(3)]
    for thread in burners:
        thread.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            crowded = list(pool.map(lambda t: [h.rule_id for h in rules.hits(t)], texts * 3))
    finally:
        stop.set()
        for thread in burners:
            thread.join()
    assert crowded == alone * 3


def test_a_spent_budget_escalates_instead_of_passing_the_message(
        scorer: RuleScorer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(rules_module, "MESSAGE_BUDGET_S", 0.0)
    with caplog.at_level(logging.WARNING, logger="bot.scoring.rules"):
        # A short message: patterns that need the backtracking engine stop...
        short = scorer.hits("kike, i will kill you")
        # ...and a long one stops between windows.
        long = scorer.hits(fill("i will kill you at the polls ", 39_000) + THREAT)
    (stopped,) = [h for h in short if h.kind == "unfinished"]
    assert stopped.action is VerdictAction.ESCALATE
    # Rules RE2 runs in linear time need no budget: the slur is still found.
    assert "slur-antisemitic" in {h.rule_id for h in short}
    assert [(h.kind, h.action, h.matched) for h in long] == [
        ("unfinished", VerdictAction.ESCALATE, "at character 0 of 39,016")]
    assert "escalated for a moderator to read" in caplog.text
    assert "kill" not in caplog.text  # the log never quotes the message


def test_a_long_message_is_read_in_overlapping_windows(scorer: RuleScorer) -> None:
    # Every window boundary falls somewhere in these threats: each is still found whole.
    for shift in range(0, 400, 37):
        text = fill("The branch meets on Tuesday. ", 2_990 + shift) + THREAT + \
            fill(" Minutes to follow.", 9_000)
        assert "threat-violence" in {h.rule_id for h in scorer.hits(text)}, shift
