"""decide() is pure: table-driven cases over scores, rule hits, channel and standing."""

from __future__ import annotations

import pytest

from bot.decide import decide
from bot.models import (
    Category,
    MemberStatus,
    Role,
    RuleHit,
    ScoreSet,
    Severity,
    Standing,
    VerdictAction,
)
from bot.policy import Policy

A = VerdictAction


def scores(**values: float) -> ScoreSet:
    base = dict.fromkeys(("toxicity", "severe_toxicity", "obscene", "threat", "insult",
                          "identity_attack", "sexual_explicit"), 0.01)
    return ScoreSet({**base, **values}, "test-model", "7")


def rule(rule_id: str, action: VerdictAction, category: Category, clause: str = "1.2",
         kind: str = "keyword") -> RuleHit:
    return RuleHit(rule_id, clause, action, category, kind, "x")


MENTION = RuleHit("protected:adler", "1.4", A.ALLOW, Category.HARASSMENT, "protected", "adler")


@pytest.mark.parametrize(
    ("values", "hits", "channel", "standing", "action", "clause", "severity"),
    [
        ({}, [], "general", Standing(), A.ALLOW, None, Severity.NONE),
        ({"insult": 0.72}, [], "general", Standing(), A.WARN, "1.1", Severity.UNCIVIL),
        ({"insult": 0.96}, [], "general", Standing(), A.HIDE, "1.1", Severity.VIOLATION),
        ({"identity_attack": 0.96}, [], "general", Standing(), A.ESCALATE, "1.2",
         Severity.VIOLATION),
        ({"threat": 0.85}, [], "general", Standing(), A.ESCALATE, "1.3", Severity.URGENT),
        # the debate channel tolerates swearing but not identity attacks
        ({"obscene": 0.90}, [], "general", Standing(), A.WARN, "1.6", Severity.UNCIVIL),
        ({"obscene": 0.90}, [], "policy-debate", Standing(), A.ALLOW, None, Severity.NONE),
        ({"identity_attack": 0.75}, [], "policy-debate", Standing(), A.HIDE, "1.2",
         Severity.VIOLATION),
        # the welcome channel acts on incivility sooner
        ({"toxicity": 0.65}, [], "welcome", Standing(), A.WARN, "1.1", Severity.UNCIVIL),
        ({"toxicity": 0.65}, [], "general", Standing(), A.ALLOW, None, Severity.NONE),
        # a severe but plain insult cites respect, not discrimination; a severe identity
        # attack cites discrimination, a severe threat threats
        ({"severe_toxicity": 0.8, "insult": 0.6}, [], "general", Standing(), A.HIDE, "1.1",
         Severity.VIOLATION),
        ({"severe_toxicity": 0.8, "identity_attack": 0.5}, [], "general", Standing(), A.HIDE,
         "1.2", Severity.VIOLATION),
        ({"severe_toxicity": 0.8}, [], "general", Standing(), A.HIDE, "1.2",
         Severity.VIOLATION),
        # rules
        ({}, [rule("slur-antisemitic", A.ESCALATE, Category.IDENTITY_ATTACK)], "general",
         Standing(), A.ESCALATE, "1.2", Severity.VIOLATION),
        ({}, [rule("doxxing:uk_phone", A.ESCALATE, Category.DOXXING, "1.5", "doxxing")],
         "general", Standing(), A.ESCALATE, "1.5", Severity.URGENT),
        # an address posted with menace is cited under privacy, the concrete rule
        ({"threat": 0.85}, [rule("doxxing:street_address", A.ESCALATE, Category.DOXXING,
                                 "1.5", "doxxing")],
         "general", Standing(), A.ESCALATE, "1.5", Severity.URGENT),
        # a mere mention of a protected person (policy criticism) is allowed ...
        ({}, [MENTION], "general", Standing(), A.ALLOW, None, Severity.NONE),
        # ... but a mention with an insult is escalated as harassment
        ({"insult": 0.72}, [MENTION], "general", Standing(), A.ESCALATE, "1.4",
         Severity.VIOLATION),
        # a suspended or expelled member's post is escalated whatever it says
        ({}, [], "general", Standing(status=MemberStatus.SUSPENDED), A.ESCALATE, "2.1",
         Severity.VIOLATION),
        ({}, [], "general", Standing(status=MemberStatus.EXPELLED), A.ESCALATE, "2.1",
         Severity.VIOLATION),
        ({}, [], "general", Standing(status=MemberStatus.LAPSED), A.ALLOW, None, Severity.NONE),
        # an exempt author (e.g. a bot account the party runs) is never acted on
        ({"threat": 0.99}, [], "general", Standing(roles=frozenset({Role.EXEMPT})), A.ALLOW,
         None, Severity.NONE),
    ],
)
def test_decide_table(test_policy: Policy, values, hits, channel, standing, action, clause,  # type: ignore[no-untyped-def]
                      severity) -> None:
    verdict = decide(scores(**values), hits, policy=test_policy, standing=standing, channel=channel)
    assert verdict.action is action
    assert verdict.clause == clause
    assert verdict.severity is severity
    if clause:
        assert verdict.clause_title == test_policy.clauses[clause].title


def test_gravest_clause_is_cited_when_actions_tie(test_policy: Policy) -> None:
    verdict = decide(scores(insult=0.96, identity_attack=0.75), [], policy=test_policy,
                     standing=Standing(), channel="general")
    assert verdict.action is A.HIDE
    assert verdict.clause == "1.2"
    assert verdict.categories == ("identity_attack", "insult")


def test_verdict_records_versions_scores_thresholds_and_rules(test_policy: Policy) -> None:
    hit = rule("slur-misogynist", A.HIDE, Category.IDENTITY_ATTACK)
    verdict = decide(scores(toxicity=0.8), [hit, MENTION], policy=test_policy, standing=Standing(),
                     channel="general")
    assert verdict.model == "test-model" and verdict.model_version == "7"
    assert verdict.policy_version == test_policy.version
    assert verdict.scores["toxicity"] == 0.8
    assert verdict.thresholds["toxicity"] == {"warn": 0.75, "hide": 0.97}
    assert verdict.rule_ids == ("protected:adler", "slur-misogynist")
    assert verdict.action is A.ESCALATE and verdict.priority >= 1
    assert any("protected person" in r for r in verdict.reasons)


def test_suspended_member_priority(test_policy: Policy) -> None:
    verdict = decide(scores(), [], policy=test_policy, channel="general",
                     standing=Standing(status=MemberStatus.SUSPENDED))
    assert verdict.priority == test_policy.statuses[MemberStatus.SUSPENDED].priority
    assert verdict.categories == ("sanctioned",)


def test_decide_is_deterministic(test_policy: Policy) -> None:
    args = (scores(insult=0.8), [MENTION])
    kwargs = {"policy": test_policy, "standing": Standing(), "channel": "general"}
    assert decide(*args, **kwargs) == decide(*args, **kwargs)  # type: ignore[arg-type]


def test_quoted_hit_does_not_act_but_is_explained(test_policy: Policy) -> None:
    quoted = RuleHit("slur-antisemitic", "1.2", A.ALLOW, Category.IDENTITY_ATTACK, "quoted", "k")
    verdict = decide(scores(), [quoted, MENTION], policy=test_policy, standing=Standing(),
                     channel="general")
    assert verdict.action is A.ALLOW and verdict.clause is None and verdict.rule_ids == ()
    assert any("quotation" in r for r in verdict.reasons)


def test_rules_that_ran_out_of_time_send_the_message_to_a_moderator(
        test_policy: Policy) -> None:
    unfinished = RuleHit("unfinished:r-threat", "1.3", A.ESCALATE, Category.THREAT,
                         "unfinished", "at rule r-threat")
    verdict = decide(scores(), [unfinished], policy=test_policy, standing=Standing(),
                     channel="general")
    assert verdict.action is A.ESCALATE and verdict.clause == "1.3"
    assert any("ran out of time at rule r-threat" in r for r in verdict.reasons)


def test_channel_can_switch_a_rule_off(test_policy: Policy) -> None:
    swear = rule("profanity", A.WARN, Category.OBSCENE, "1.1")
    general = decide(scores(), [swear], policy=test_policy, standing=Standing(),
                     channel="general")
    debate = decide(scores(), [swear], policy=test_policy, standing=Standing(),
                    channel="c123", channel_name="policy-debate")
    assert general.action is A.WARN
    assert debate.action is A.ALLOW
    assert "rule profanity does not apply in this channel" in debate.reasons


def test_criticism_naming_a_protected_person_is_not_harassment(test_policy: Policy) -> None:
    # Toxicity at warn level ("useless on housing, she should resign") is not aimed abuse.
    sharp = decide(scores(toxicity=0.8), [MENTION], policy=test_policy, standing=Standing(),
                   channel="general")
    assert sharp.action is A.WARN and "harassment" not in sharp.categories
    # An insult at her is: escalated to the compliance unit under clause 1.4.
    insult = decide(scores(insult=0.8), [MENTION], policy=test_policy, standing=Standing(),
                    channel="general")
    assert insult.action is A.ESCALATE and insult.clause == "1.4"
    assert any("insult" in r for r in insult.reasons)


def test_protected_needs_a_model_score_of_min_score(test_policy: Policy) -> None:
    from dataclasses import replace

    strict = replace(test_policy, protected=replace(test_policy.protected, min_score=0.9))
    below = decide(scores(insult=0.8), [MENTION], policy=strict, standing=Standing(),
                   channel="general")
    assert below.action is A.WARN
    above = decide(scores(insult=0.92), [MENTION], policy=strict, standing=Standing(),
                   channel="general")
    assert above.action is A.ESCALATE
    # A rule's aimed finding needs no score.
    slur = rule("slur-misogynist", A.HIDE, Category.IDENTITY_ATTACK)
    assert decide(scores(), [slur, MENTION], policy=strict, standing=Standing(),
                  channel="general").action is A.ESCALATE


def test_a_reported_rule_match_needs_the_model_to_agree(test_policy: Policy) -> None:
    reported = RuleHit("slur-antisemitic", "1.2", A.ESCALATE, Category.IDENTITY_ATTACK,
                       "keyword", "k", reported=True)
    # The model reads the whole message as a report (severe_toxicity below its warn level).
    calm = decide(scores(severe_toxicity=0.1), [reported], policy=test_policy,
                  standing=Standing(), channel="general")
    assert calm.action is A.ALLOW
    assert any("quotes or reports" in r for r in calm.reasons)
    # ... or as abuse: the rule acts.
    hostile = decide(scores(severe_toxicity=0.6), [reported], policy=test_policy,
                     standing=Standing(), channel="general")
    assert hostile.action is A.ESCALATE and hostile.rule_ids == ("slur-antisemitic",)
    # A scorer without severe_toxicity cannot confirm or deny: the rule stands alone.
    bare = ScoreSet({"toxicity": 0.0}, "test-model", "7")
    assert decide(bare, [reported], policy=test_policy, standing=Standing(),
                  channel="general").action is A.ESCALATE
