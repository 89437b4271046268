"""Pure decisions: scores, rule hits, channel and standing in; a Verdict out. No IO, no clock."""

from __future__ import annotations

__all__ = ["decide"]

from collections.abc import Sequence
from dataclasses import dataclass

from bot.models import (
    MODEL_CATEGORIES,
    Category,
    Role,
    RuleHit,
    ScoreSet,
    Severity,
    Standing,
    Verdict,
    VerdictAction,
)
from bot.policy import Policy

# When two findings call for the same action, the clause cited is the gravest one's.
_GRAVITY = (
    # Posting someone's address or number is a breach of privacy whatever else the model
    # hears in it: the concrete rule's clause is the one a notice cites.
    Category.DOXXING,
    Category.THREAT,
    Category.IDENTITY_ATTACK,
    Category.HARASSMENT,
    Category.SANCTIONED,
    # A flood or raid is disruption, graver than incivility but not than abuse of a person.
    Category.SPAM,
    Category.SEVERE_TOXICITY,
    Category.SEXUAL_EXPLICIT,
    Category.INSULT,
    Category.OBSCENE,
    Category.TOXICITY,
)
_URGENT = frozenset({Category.THREAT, Category.DOXXING})
_TOP_PRIORITY = 9
_SEVERITY = {
    VerdictAction.ALLOW: Severity.NONE,
    VerdictAction.WARN: Severity.UNCIVIL,
    VerdictAction.HIDE: Severity.VIOLATION,
    VerdictAction.ESCALATE: Severity.VIOLATION,
}


def _model_confirms(scores: ScoreSet, policy: Policy) -> bool:
    """Whether the model finds a conduct violation in the whole message: severe_toxicity at its
    warn level. Without that score or threshold the rule stands alone."""
    category = policy.categories.get(Category.SEVERE_TOXICITY)
    limit = category.thresholds.warn if category is not None else None
    if limit is None or Category.SEVERE_TOXICITY not in scores.values:
        return True
    return scores.get(Category.SEVERE_TOXICITY) >= limit


@dataclass(frozen=True, slots=True)
class _Finding:
    action: VerdictAction
    category: Category
    clause: str
    reason: str
    rule_id: str | None = None
    score: float | None = None  # the model's, for a model finding

    @property
    def weight(self) -> tuple[int, int]:
        return (self.action.rank, -_GRAVITY.index(self.category))


#: Scores that say how bad a message is, not what kind of breach: they cite the clause of the
#: likeliest kind (a plain insult's severity is a matter of respect, not of hate).
_GENERIC = frozenset({Category.SEVERE_TOXICITY, Category.TOXICITY})
_KINDS = (Category.THREAT, Category.IDENTITY_ATTACK, Category.SEXUAL_EXPLICIT, Category.INSULT,
          Category.OBSCENE)


#: How likely a kind must be for a generic score to cite its clause.
_KIND_EVIDENCE = 0.3


def _clause_for(category: Category, scores: ScoreSet, policy: Policy) -> str:
    """The clause a model finding cites: its own, or for a generic score the clause of the
    kind the model scores highest, when it finds one at all likely."""
    if category in _GENERIC:
        kinds = [k for k in _KINDS if k in policy.categories]
        likeliest = max(kinds, key=scores.get, default=None)
        if likeliest is not None and scores.get(likeliest) >= _KIND_EVIDENCE:
            return policy.categories[likeliest].clause
    return policy.categories[category].clause


def decide(
    scores: ScoreSet,
    hits: Sequence[RuleHit],
    /,
    *,
    policy: Policy,
    standing: Standing,
    channel: str,
    channel_name: str | None = None,
    replies_to_protected: bool = False,
) -> Verdict:
    """Decide what to do with one message.

    `replies_to_protected`: the message answers one written by an MP, councillor or member of
    staff, which counts like naming them.
    """
    override = policy.override_for(channel, channel_name)
    findings: list[_Finding] = []
    thresholds: dict[str, dict[str, float]] = {}
    for category in MODEL_CATEGORIES:
        if category not in policy.categories:
            continue
        limits = policy.thresholds_for(category, override=override)
        thresholds[category] = limits.as_dict()
        if category not in scores.values:
            continue
        score = scores.get(category)
        action = limits.action_for(score)
        if action is not VerdictAction.ALLOW:
            findings.append(_Finding(action, category, _clause_for(category, scores, policy),
                                     f"{category} {score:.2f} reached {action} "
                                     f"({limits.as_dict()[action.value]:.2f})",
                                     score=score))

    mentions = [h for h in hits if h.kind == "protected"]
    notes: list[str] = []
    skipped = override.skip_rules if override is not None else frozenset()
    for hit in hits:
        if hit.kind == "protected":
            continue
        if hit.rule_id in skipped:
            notes.append(f"rule {hit.rule_id} does not apply in this channel")
            continue
        if hit.action is VerdictAction.ALLOW:
            notes.append(f"rule {hit.rule_id} matched inside a quotation reporting abuse: "
                         "not acted on")
            continue
        if hit.kind == "unfinished":
            findings.append(_Finding(hit.action, hit.category, hit.clause,
                                     f"the rules ran out of time {hit.matched} (a very long "
                                     "message that is slow to check): a moderator should read "
                                     "it", hit.rule_id))
            continue
        if hit.reported and not _model_confirms(scores, policy):
            notes.append(f"rule {hit.rule_id} matched words that the message quotes or "
                         "reports, and the model does not find abuse: not acted on")
            continue
        findings.append(_Finding(hit.action, hit.category, hit.clause,
                                 f"rule {hit.rule_id} matched", hit.rule_id))

    protected = policy.protected
    # Only abuse aimed at the person (an insult, threat, identity or sexual abuse) turns a
    # mention into harassment; a sharp word about their record or votes does not.
    aimed = [f for f in findings if f.category in protected.categories
             and (f.score is None or f.score >= protected.min_score)]
    base = max((f.action for f in aimed), key=lambda a: a.rank, default=VerdictAction.ALLOW)
    targets = ", ".join(h.rule_id.removeprefix("protected:") for h in mentions)
    if replies_to_protected:
        targets = ", ".join(filter(None, (targets, "a reply to one")))
    if targets and aimed and base.rank >= protected.min_action.rank:
        kinds = ", ".join(dict.fromkeys(f.category.value for f in aimed))
        findings.append(_Finding(protected.action, Category.HARASSMENT, protected.clause,
                                 f"names a protected person ({targets}) in a message with "
                                 f"{kinds} that reached {base}"))
        findings.extend(_Finding(protected.action, Category.HARASSMENT, protected.clause,
                                 "", hit.rule_id) for hit in mentions)

    priority = 0
    treatment = policy.statuses.get(standing.status)
    if treatment is not None and treatment.action is not VerdictAction.ALLOW:
        findings.append(_Finding(treatment.action, Category.SANCTIONED, treatment.clause,
                                 f"author is {standing.status}"))
        priority = treatment.priority
        if targets and treatment.action is VerdictAction.ESCALATE:
            priority = _TOP_PRIORITY
            findings.append(_Finding(treatment.action, Category.SANCTIONED, treatment.clause,
                                     f"a {standing.status} member targets a protected person "
                                     f"({targets}): escalated at once"))

    reasons = [f.reason for f in findings if f.reason] + notes
    if Role.EXEMPT in standing.roles and findings:
        reasons.append("author has the exempt role: no action")
        findings = []

    top = max(findings, key=lambda f: f.weight, default=None)
    action = top.action if top else VerdictAction.ALLOW
    acting = sorted(findings, key=lambda f: f.weight, reverse=True)
    categories = tuple(dict.fromkeys(f.category.value for f in acting))
    severity = _SEVERITY[action]
    if action is VerdictAction.ESCALATE and _URGENT & {f.category for f in acting}:
        severity = Severity.URGENT
    if action is VerdictAction.ESCALATE:
        priority = max(priority, 1 + (severity is Severity.URGENT))
    clause = top.clause if top else None
    return Verdict(
        action=action,
        severity=severity,
        categories=categories,
        rule_ids=tuple(dict.fromkeys(f.rule_id for f in acting if f.rule_id)),
        clause=clause,
        clause_title=policy.clause_title(clause),
        scores=dict(scores.values),
        thresholds=thresholds,
        model=scores.model,
        model_version=scores.version,
        policy_version=policy.version,
        reasons=tuple(reasons),
        priority=priority,
        mode=policy.mode_for(channel, channel_name),
    )
