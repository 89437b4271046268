"""The moderators' log: one line per action the bot or a moderator took, read from the audit log.

In the style of Zeppelin's and Red's modlog: a channel (optional, per platform) where every
warning, hide, escalation, timeout, suspension, reinstatement, pardon, decision, appeal and
policy reload appears as it happens, with its case number. The audit log is the one record of
who did what, so the log channel reads it in order from a cursor kept in the store (see
`Store.queue_modlog`): nothing is missed across a restart, and turning the log on does not
replay the past. This module only renders entries (pure).
"""

from __future__ import annotations

__all__ = ["LOGGED", "modlog_lines"]

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

#: Audit actions that appear in the log (prefixes end with ':'); everything else (refusals,
#: links, role changes, erasures, retention, digests, backups) stays in the audit log only.
LOGGED = ("verdict:", "warn", "hide", "timeout", "suspend:", "status:", "pardon", "resolve:",
          "appeal", "policy:")

_VERDICTS = {"warn": "warned", "hide": "hid", "escalate": "hid and escalated"}
_SHADOW = {"warn": "would have warned", "hide": "would have hidden",
           "escalate": "would have escalated"}
_MODERATOR = {"warn": "warned", "hide": "hid a message of", "timeout": "timed out",
              "suspend:proposed": "proposed suspending", "suspend:confirmed": "suspended",
              "pardon": "pardoned", "resolve:uphold": "upheld", "resolve:dismiss": "dismissed",
              "appeal": "appealed"}
#: Longest reason shown; the case holds the rest.
_REASON = 160


def logged(action: str, /) -> bool:
    """Whether an audit action belongs in the moderators' log."""
    return any(action == a or (a.endswith(":") and action.startswith(a)) for a in LOGGED)


def modlog_lines(entries: Iterable[Mapping[str, Any]], /, *, tz: Any = None) -> list[str]:
    """One line per logged audit entry (`at`, `actor`, `action`, `case_id`, `reason`, `detail`
    JSON, `member`: the member's display name), oldest first; others are skipped. Times are
    shown in `tz` (a tzinfo) when given."""
    lines = []
    for entry in entries:
        action = str(entry["action"])
        if action == "verdict:allow" or not logged(action):
            continue
        text = _describe(entry, action)
        if text is None:
            continue
        at = datetime.fromisoformat(str(entry["at"]))
        stamp = (at.astimezone(tz) if tz is not None else at).strftime("%d %b %H:%M")
        case = entry.get("case_id")
        lines.append(f"{stamp} · {text}" + (f" · case {case}" if case is not None else ""))
    return lines


def _describe(entry: Mapping[str, Any], action: str) -> str | None:
    detail = _detail(entry.get("detail"))
    member = str(entry.get("member") or "a member")
    actor = str(entry.get("actor") or "someone")
    reason = _short(entry.get("reason"))
    if action.startswith("verdict:"):
        kind = action.removeprefix("verdict:")
        shadow = detail.get("mode") == "shadow"
        did = (_SHADOW if shadow else _VERDICTS).get(kind, kind)
        where = f" in #{detail['channel']}" if detail.get("channel") else ""
        what = f"bot {did} a message by {member}{where}"
        return what + (f": {reason}" if reason else "") + \
            (" (shadow mode: nothing was done)" if shadow else "")
    if action.startswith("status:"):
        status = action.removeprefix("status:")
        return f"{actor} set {member} to {status}" + (f": {reason}" if reason else "")
    if action.startswith("policy:"):
        if action == "policy:reload":
            return f"{actor} reloaded the policy: {reason or '-'}"
        if action == "policy:reload-refused":
            return f"{actor} tried to reload the policy; refused: {reason or '-'}"
        return None
    verb = _MODERATOR.get(action)
    if verb is None:
        return None
    if action.startswith("resolve:") or action == "pardon":
        target = "the case"
    elif action == "appeal":
        target = "the decision"
    else:
        target = member
    return f"{actor} {verb} {target}" + (f": {reason}" if reason else "")


def _detail(raw: Any) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return dict(value) if isinstance(value, Mapping) else {}


def _short(reason: Any) -> str:
    text = " ".join(str(reason or "").split())
    return text if len(text) <= _REASON else text[:_REASON - 1] + "…"
