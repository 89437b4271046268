"""Pure planning of the platform actions a verdict calls for, and the words members see."""

from __future__ import annotations

__all__ = ["HIDING", "appeal_invitation", "notice_text", "plan_actions", "shadow_title",
           "with_case", "would_have"]

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from bot.models import Action, ActionKind, Message, Mode, RuleHit, Verdict, VerdictAction
from bot.policy import Policy
from bot.scoring.rules import redact_personal

_QUOTE_LIMIT = 1500  # characters of their own text given back in a notice
#: The verdicts that take the message down (and whose notices say so).
HIDING = (VerdictAction.HIDE, VerdictAction.ESCALATE)


def plan_actions(message: Message, verdict: Verdict, /, *, policy: Policy,
                 hits: Sequence[RuleHit] = ()) -> list[Action]:
    """The outbox rows for a verdict: notice, deletion, escalation (in that order of need).
    `hits` are the rule hits, so the notice never quotes doxxed details back.

    In shadow mode nothing is done to the member: with the policy's `shadow_review` a message
    the bot would have hidden or escalated goes to the moderators as an escalation post,
    marked as what the bot would have done, to uphold or dismiss; otherwise there is no row."""
    if verdict.action is VerdictAction.ALLOW:
        return []
    def action(kind: ActionKind, payload: dict[str, Any]) -> Action:
        return Action(kind=kind, platform=message.platform, channel=message.channel,
                      message_id=message.id, user=message.author, payload=payload)

    cited: dict[str, Any] = {"clause": verdict.clause, "clause_title": verdict.clause_title,
             "policy_version": verdict.policy_version, "action": str(verdict.action)}
    escalation = {
        **cited,
        "severity": int(verdict.severity),
        "priority": verdict.priority,
        "categories": list(verdict.categories),
        "rule_ids": list(verdict.rule_ids),
        "reasons": list(verdict.reasons),
        "author_name": message.author_name or message.author,
        "channel_name": message.channel_name or message.channel,
        "excerpt": message.text[:_QUOTE_LIMIT],
        "scores": {k: round(v, 3) for k, v in verdict.scores.items()},
    }
    if verdict.mode is Mode.SHADOW:
        return [action(ActionKind.ESCALATE, escalation | {"shadow": True})] \
            if policy.shadow_review and verdict.action in HIDING else []
    actions: list[Action] = []
    if verdict.action in HIDING:
        actions.append(action(ActionKind.DELETE, cited))
    actions.append(action(ActionKind.NOTIFY, {
        **cited, "text": notice_text(message, verdict, policy=policy, hits=hits)}))
    if verdict.action is VerdictAction.ESCALATE:
        actions.append(action(ActionKind.ESCALATE, escalation))
    return actions


def would_have(action: str, /) -> str:
    """'would have hidden' and the like: what a verdict in shadow mode would have done."""
    return "would have " + {"warn": "warned", "hide": "hidden", "escalate": "escalated"}.get(
        action, action)


def shadow_title(payload: Mapping[str, Any], /) -> str:
    """How a shadow-mode escalation post begins: what the bot would have done, and that it
    did nothing ('' for an ordinary escalation)."""
    if not payload.get("shadow"):
        return ""
    return f"Shadow mode: {would_have(str(payload.get('action')))}; nothing was done. "


def notice_text(message: Message, verdict: Verdict, /, *, policy: Policy,
                hits: Sequence[RuleHit] = ()) -> str:
    """The private notice to the author: what happened, which clause, their text back (with
    any personal details the rules found taken out: a notice never repeats a doxxed address,
    number or email)."""
    where = f"#{message.channel_name or message.channel}"
    clause = (f"clause {verdict.clause} ({verdict.clause_title})" if verdict.clause
              else "the code of conduct")
    if verdict.action is VerdictAction.WARN:
        head = (f"A friendly warning about your message in {where}: it may break {clause} of "
                f"the party's code of conduct. It has not been removed, but please edit it.")
    elif verdict.action is VerdictAction.HIDE:
        head = (f"Your message in {where} was hidden because it breaks {clause} of the party's "
                f"code of conduct.")
    else:
        head = (f"Your message in {where} was hidden and passed to the moderators because it "
                f"may break {clause} of the party's code of conduct.")
    cited = policy.clauses.get(verdict.clause or "")
    clause_text = cited.text if cited else ""
    text = message.text
    doxxed = any(h.kind == "doxxing" for h in hits)
    if doxxed:
        text = redact_personal(text, policy.doxxing)
    quoted = text[:_QUOTE_LIMIT] + ("…" if len(text) > _QUOTE_LIMIT else "")
    parts = [head]
    if clause_text:
        parts.append(f"The clause says: {clause_text}")
    if verdict.action is not VerdictAction.WARN and doxxed and text == message.text:
        # Found only after normalising (spacing, look-alikes): no safe way to quote it.
        parts.append("Your text is not repeated here because it contains personal details.")
    elif verdict.action is not VerdictAction.WARN:
        parts.append("Here is your text, so you can post it again without the problem:\n"
                     + "\n".join(f"> {line}" for line in quoted.splitlines() or [""]))
    parts.append(appeal_invitation(verdict.policy_version))
    return "\n\n".join(parts)


def appeal_invitation(policy_version: str, case: int | None = None) -> str:
    """A notice's last paragraph: how to appeal, with the case number once there is one."""
    if case is None:
        return f"If you think this is a mistake you can appeal (policy {policy_version})."
    return (f"This is case {case}. If you think it is a mistake, appeal with `/appeal {case}` "
            f"and say why; `/appeal` on its own lists your cases (policy {policy_version}).")


def with_case(action: Action, case: int, /) -> Action:
    """`action` as written for case number `case`: the payload names the case, and a notice's
    appeal invitation gives the number (known only once the case is recorded)."""
    payload = dict(action.payload) | {"case": case}
    text, version = payload.get("text"), str(payload.get("policy_version"))
    generic = appeal_invitation(version)
    if action.kind is ActionKind.NOTIFY and isinstance(text, str) and text.endswith(generic):
        payload["text"] = text[:-len(generic)] + appeal_invitation(version, case)
    return replace(action, payload=payload)
