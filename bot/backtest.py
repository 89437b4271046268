"""Backtest a candidate policy: re-decide stored messages under it and under the active policy.

`run_backtest` reads the store, scores each held text once and decides it under both policies
(IO); `compare` turns the re-decided messages into a `Backtest` report (pure); `to_markdown`,
`to_json` and `to_csv` render the report (pure). Nothing is written to the store.

Both sides are decided now, with the same scores, the same rules engine and the same author
standing, so every difference comes from the policies alone; how far the active policy's
decisions now differ from the stored verdicts (a new model, a policy edited since, a member's
status changed) is reported on its own line.
"""

from __future__ import annotations

__all__ = [
    "CSV_COLUMNS",
    "STANDING_NOTE",
    "ActionCount",
    "Agreement",
    "Backtest",
    "Change",
    "ClauseCount",
    "Redecided",
    "Reviews",
    "Window",
    "compare",
    "run_backtest",
    "standing_at",
    "to_csv",
    "to_json",
    "to_markdown",
    "window_for",
]

import asyncio
import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.decide import decide
from bot.digest import parse_week, week_bounds
from bot.models import (
    Member,
    MemberStatus,
    Message,
    Platform,
    RuleHit,
    Standing,
    Verdict,
    VerdictAction,
)
from bot.moderator import Moderator
from bot.policy import Policy
from bot.scoring.rules import RuleScorer
from bot.spam import replayed

if TYPE_CHECKING:
    from bot.scoring.base import Batcher
    from bot.store import Store

#: How the author's standing is taken, said in every report's header.
STANDING_NOTE = (
    "each author's status and roles as stored now; a suspension counts only for messages "
    "sent between its start and its end (as the bot judges a post written before a "
    "suspension began). Strike points never change a verdict (they drive the ladder, which a "
    "backtest does not replay). Spam findings (floods, duplicates, raids...) are carried over "
    "from the stored verdicts, acted on as each policy's [spam] says; their counts are not "
    "re-run.")

#: Messages read, scored and decided together (one page of the store, one scoring batch).
PAGE = 256
#: Characters of a message quoted in a sample of changed decisions.
EXCERPT = 160
_ACTIONS = tuple(VerdictAction)


# -- the window ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """Which messages to re-decide: sent at or after `start` and before `end` (None: open)."""

    label: str
    start: datetime | None = None
    end: datetime | None = None


def window_for(*, week: str | None = None, since: datetime | None = None,
               tz: str = "Europe/London") -> Window:
    """The window of an ISO week in `tz` (like the digest's), of everything since a moment
    (a moment without a zone is UTC), or of every stored message; ValueError for a bad week,
    an unknown zone or both given."""
    if week is not None and since is not None:
        raise ValueError("give a week or a start date, not both")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc
    if week is not None:
        monday = parse_week(week)  # refuses weeks whose bounds a date cannot hold
        bounds = week_bounds(monday, tz=tz)
        year, number, _ = monday.isocalendar()
        return Window(f"{year}-W{number:02d} ({tz})", bounds[7], bounds[14])
    if since is not None:
        start = since if since.tzinfo else since.replace(tzinfo=UTC)
        return Window(f"since {start.isoformat()}", start, None)
    return Window("every stored message")


# -- re-deciding (IO) ----------------------------------------------------------------------------


def standing_at(member: Member | None, sent_at: datetime, /) -> Standing:
    """The author's standing for a stored message (see STANDING_NOTE)."""
    if member is None:
        return Standing()
    standing = member.standing()
    if member.status is MemberStatus.SUSPENDED and (
            (member.suspended_from is not None and sent_at < member.suspended_from)
            or (member.suspended_until is not None and sent_at >= member.suspended_until)):
        standing = replace(standing, status=MemberStatus.ACTIVE)
    return standing


@dataclass(frozen=True, slots=True)
class Redecided:
    """One stored message decided again under the active policy (`old`) and the candidate
    (`new`), with what was stored about it."""

    message: Message
    member_id: str | None
    old: Verdict
    new: Verdict
    stored: VerdictAction
    #: The stored verdict was reached under another policy version or model (version).
    stored_elsewhere: bool = False
    #: The latest moderator review of the stored verdict: 'upheld', 'dismissed' or None.
    review: str | None = None


async def run_backtest(store: Store, /, *, active: Policy, candidate: Policy, scorer: Batcher,
                       window: Window, show_names: bool = False, sample: int = 20,
                       progress: Callable[[int, int], None] | None = None) -> Backtest:
    """Re-decide the window's messages whose text is still held under both policies and
    compare them. `progress(done, total)` is called as pages are decided."""
    # The moderator's own rules (active policy) and its test for replies to protected persons.
    moderator = Moderator(store=store, policy=active, scorer=scorer)
    new_rules = RuleScorer(candidate)
    held, erased = await store.backtest_counts(start=window.start, end=window.end)
    if progress is not None:
        progress(0, held)
    members: dict[str, Member | None] = {}
    decided: list[Redecided] = []
    after: tuple[str, int] | None = None
    while rows := await store.backtest_messages(start=window.start, end=window.end,
                                                after=after, limit=PAGE):
        after = (rows[-1]["sent_at"], rows[-1]["row"])
        texts = [row["text"] for row in rows]
        # As in the moderator: the model scores in its thread while the rules run in another.
        # Each text is scored once; the scores do not depend on the policy.
        scores, hits = await asyncio.gather(
            scorer.score_many(texts),
            asyncio.to_thread(_both_hits, moderator.rules, new_rules, texts))
        for row, score_set, (old_hits, new_hits) in zip(rows, scores, hits, strict=True):
            message = Message(Platform(row["platform"]), row["message_id"], row["channel"],
                              row["author"], row["text"], datetime.fromisoformat(row["sent_at"]),
                              revision=row["revision"], channel_name=row["channel_name"],
                              reply_to=row["reply_to"], thread=row["thread"])
            member_id = row["member_id"]
            if member_id is not None and member_id not in members:
                members[member_id] = await store.get_member(member_id)
            standing = standing_at(members.get(member_id) if member_id else None,
                                   message.sent_at)
            replies = await moderator.replies_to_protected(message)
            # Spam findings are carried over from the stored verdict (their counts are not
            # re-run), acted on as each policy's [spam] says.
            stored = json.loads(row["rule_ids"] or "[]")
            old, new = (decide(score_set, (*found, *replayed(stored, policy=policy.spam)),
                               policy=policy, standing=standing,
                               channel=message.channel, channel_name=message.channel_name,
                               replies_to_protected=replies)
                        for policy, found in ((active, old_hits), (candidate, new_hits)))
            elsewhere = (row["policy_version"], row["model"], row["model_version"]) != (
                active.version, score_set.model, score_set.version)
            decided.append(_slim(Redecided(
                message, member_id, old, new, VerdictAction(row["action"]),
                stored_elsewhere=elsewhere, review=row["review"])))
        if progress is not None:
            progress(len(decided), held)
    labels = {member_id: _label(member, member_id, show_names=show_names)
              for member_id, member in members.items()}
    return compare(decided, window=window, active=active, candidate=candidate,
                   scorer=f"{scorer.scorer.name} {scorer.scorer.version}",
                   skipped_erased=erased, members=labels, sample=sample)


def _slim(item: Redecided, /) -> Redecided:
    """What the report needs of a re-decided message, so a long window fits in memory: no
    scores or thresholds (the reasons quote them), and no text or reasons unless the
    action changed."""
    same = item.old.action is item.new.action

    def bare(verdict: Verdict) -> Verdict:
        return replace(verdict, scores={}, thresholds={},
                       reasons=() if same else verdict.reasons)

    message = replace(item.message, text="") if same else item.message
    return replace(item, message=message, old=bare(item.old), new=bare(item.new))


def _both_hits(old: RuleScorer, new: RuleScorer, texts: Sequence[str]
               ) -> list[tuple[tuple[RuleHit, ...], tuple[RuleHit, ...]]]:
    """Each text's rule hits under the active policy's rules and the candidate's."""
    return [(tuple(old.hits(text)), tuple(new.hits(text))) for text in texts]


def _label(member: Member | None, member_id: str, *, show_names: bool) -> str:
    """How a member appears in the report: the internal id, or (with `show_names`) as
    moderators see them, with name, id and membership number (two accounts never linked
    may carry the same name)."""
    return member.label if show_names and member is not None else member_id


# -- the report (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionCount:
    """How many messages get an action under each policy."""

    action: str
    old: int
    new: int


@dataclass(frozen=True, slots=True)
class ClauseCount:
    """How many acted-on messages cite a clause under each policy."""

    clause: str
    title: str
    old: int
    new: int


@dataclass(frozen=True, slots=True)
class Change:
    """A message whose action differs between the two policies."""

    platform: str
    message_id: str
    revision: int
    sent_at: str
    channel: str
    member: str
    excerpt: str
    old: str
    new: str
    old_clause: str | None
    clause: str | None
    clause_title: str | None
    #: The candidate's reasons for its verdict.
    reasons: tuple[str, ...]
    #: The active policy's reasons for its verdict.
    old_reasons: tuple[str, ...]
    review: str | None


@dataclass(frozen=True, slots=True)
class Agreement:
    """How one policy's decisions agree with the moderators' reviews (upheld: the message
    should be acted on; dismissed: it should not)."""

    version: str
    agree: int
    acts_on_upheld: int
    allows_dismissed: int
    share: float | None


@dataclass(frozen=True, slots=True)
class Reviews:
    """The re-decided messages whose stored verdict a moderator reviewed."""

    reviewed: int
    upheld: int
    dismissed: int
    active: Agreement
    candidate: Agreement


@dataclass(frozen=True, slots=True)
class Backtest:
    """A candidate policy's decisions against the active policy's, on the same messages."""

    window: str
    start: str | None
    end: str | None
    active_policy: str
    active_file: str
    candidate_policy: str
    candidate_file: str
    scorer: str
    standing: str
    redecided: int
    skipped_erased: int
    #: Messages whose stored verdict differs from the active policy's decision now.
    differ_from_stored: int
    #: Messages whose stored verdict was reached under another policy version or model.
    stored_elsewhere: int
    changed: int
    harsher: int
    milder: int
    #: Messages acted on alike by both policies, but citing another clause.
    clause_changed: int
    actions: tuple[ActionCount, ...]
    #: matrix[old][new]: messages the active policy gives `old` and the candidate `new`.
    matrix: Mapping[str, Mapping[str, int]]
    clauses: tuple[ClauseCount, ...]
    newly_affected: tuple[str, ...]
    no_longer_affected: tuple[str, ...]
    reviews: Reviews
    sample: tuple[Change, ...]
    #: Every change, in the order the messages were sent (the CSV lists them all).
    changes: tuple[Change, ...]


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT else flat[:EXCERPT - 1] + "…"


def _clause_key(clause: str) -> tuple[tuple[int, int | str], ...]:
    # 1.2 before 1.10; a clause id that is not numbered sorts after the numbered ones.
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in clause.split("."))


def _agreement(items: Sequence[Redecided], policy: Policy, *, new: bool) -> Agreement:
    agree = upheld = dismissed = 0
    for item in items:
        acts = (item.new if new else item.old).action is not VerdictAction.ALLOW
        if item.review == "upheld" and acts:
            upheld += 1
        elif item.review == "dismissed" and not acts:
            dismissed += 1
        else:
            continue
        agree += 1
    return Agreement(policy.version, agree, upheld, dismissed,
                     agree / len(items) if items else None)


def _spread(items: Sequence[Change], n: int) -> tuple[Change, ...]:
    """At most `n` of `items`, evenly spread over them (deterministic)."""
    if len(items) <= n:
        return tuple(items)
    return tuple(items[i * len(items) // n] for i in range(n))


def compare(decided: Sequence[Redecided], /, *, window: Window, active: Policy,
            candidate: Policy, scorer: str, skipped_erased: int = 0,
            members: Mapping[str, str] | None = None, sample: int = 20) -> Backtest:
    """The report of a backtest from its re-decided messages."""
    labels = members or {}

    def label(member_id: str) -> str:
        return labels.get(member_id, member_id)

    matrix: dict[str, dict[str, int]] = {a: dict.fromkeys(_ACTIONS, 0) for a in _ACTIONS}
    clauses: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    acted_old: set[str] = set()
    acted_new: set[str] = set()
    changes: list[Change] = []
    harsher = milder = clause_changed = 0
    for item in sorted(decided, key=lambda d: (d.message.sent_at, d.message.key)):
        old, new = item.old, item.new
        matrix[old.action][new.action] += 1
        member_id = item.member_id or "-"
        for side, verdict, acted in ((0, old, acted_old), (1, new, acted_new)):
            if verdict.action is not VerdictAction.ALLOW:
                clauses[verdict.clause or "-"][side] += 1
                acted.add(member_id)
        if old.action is new.action:
            clause_changed += old.clause != new.clause
            continue
        harsher += new.action.rank > old.action.rank
        milder += new.action.rank < old.action.rank
        m = item.message
        changes.append(Change(
            platform=str(m.platform), message_id=m.id, revision=m.revision,
            sent_at=m.sent_at.astimezone(UTC).isoformat(timespec="seconds"),
            channel=m.channel_name or m.channel, member=label(member_id), excerpt=_excerpt(m.text),
            old=str(old.action), new=str(new.action), old_clause=old.clause,
            clause=new.clause, clause_title=new.clause_title, reasons=new.reasons,
            old_reasons=old.reasons, review=item.review))
    reviewed = [d for d in decided if d.review in ("upheld", "dismissed")]
    return Backtest(
        window=window.label,
        start=window.start.astimezone(UTC).isoformat() if window.start else None,
        end=window.end.astimezone(UTC).isoformat() if window.end else None,
        active_policy=active.version, active_file=active.file,
        candidate_policy=candidate.version, candidate_file=candidate.file,
        scorer=scorer, standing=STANDING_NOTE,
        redecided=len(decided), skipped_erased=skipped_erased,
        differ_from_stored=sum(d.stored is not d.old.action for d in decided),
        stored_elsewhere=sum(d.stored_elsewhere for d in decided),
        changed=len(changes), harsher=harsher, milder=milder, clause_changed=clause_changed,
        actions=tuple(ActionCount(str(a), sum(matrix[a].values()),
                                  sum(row[a] for row in matrix.values())) for a in _ACTIONS),
        matrix={str(a): {str(b): n for b, n in row.items()} for a, row in matrix.items()},
        clauses=tuple(ClauseCount(c, candidate.clause_title(c) or active.clause_title(c) or "",
                                  old, new)
                      for c, (old, new) in sorted(clauses.items(),
                                                  key=lambda kv: _clause_key(kv[0]))),
        # By id: two members may share a name.
        newly_affected=tuple(sorted(label(m) for m in acted_new - acted_old)),
        no_longer_affected=tuple(sorted(label(m) for m in acted_old - acted_new)),
        reviews=Reviews(len(reviewed), sum(d.review == "upheld" for d in reviewed),
                        sum(d.review == "dismissed" for d in reviewed),
                        _agreement(reviewed, active, new=False),
                        _agreement(reviewed, candidate, new=True)),
        sample=_spread(changes, sample),
        changes=tuple(changes))


# -- rendering (pure) ----------------------------------------------------------------------------


def _minute(moment: str) -> str:
    """A UTC ISO time as 2026-11-16 09:00."""
    return moment[:16].replace("T", " ")


def _signed(n: int) -> str:
    return f"{n:+d}" if n else "0"


def _share(agreement: Agreement, total: int) -> str:
    if agreement.share is None:
        return "-"
    return f"{agreement.agree}/{total} ({agreement.share:.0%})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(b: Backtest, /) -> str:
    """The report as Markdown (the sample of changed decisions quotes the messages)."""
    span = f", {_minute(b.start)} to {_minute(b.end)} UTC" if b.start and b.end else ""
    out = [
        f"# Backtest: candidate policy {b.candidate_policy} against the active "
        f"{b.active_policy}", "",
        f"- Window: {b.window}{span}",
        f"- Active policy: {b.active_policy} ({b.active_file}); candidate: "
        f"{b.candidate_policy} ({b.candidate_file})",
        f"- Scorer: {b.scorer}; each text scored once, the same scores for both policies",
        f"- Re-decided: {b.redecided} message(s) whose text is held; {b.skipped_erased} "
        "skipped (their text was erased by retention or an erasure request)",
        f"- Standing: {b.standing}",
        f"- Both policies decided now; the active policy's decision differs from the stored "
        f"verdict for {b.differ_from_stored} message(s) ({b.stored_elsewhere} stored under "
        "another policy version or model)",
        f"- Changed: {b.changed} decision(s), {b.harsher} harsher and {b.milder} milder "
        f"under the candidate; {b.clause_changed} more keep their action but cite another "
        "clause",
        "", "## Actions", "",
        "Rows: the active policy's action; columns: the candidate's.", "",
        "| active \\ candidate | " + " | ".join(a.action for a in b.actions) + " | total |",
        "|---|" + "---:|" * (len(b.actions) + 1),
    ]
    for row in b.actions:
        cells = [str(b.matrix[row.action][col.action]) for col in b.actions]
        out.append(f"| {row.action} | " + " | ".join(cells) + f" | {row.old} |")
    out.append("| total | " + " | ".join(str(a.new) for a in b.actions)
               + f" | {b.redecided} |")
    out += ["", "| action | active | candidate | change |", "|---|---:|---:|---:|"]
    out += [f"| {a.action} | {a.old} | {a.new} | {_signed(a.new - a.old)} |" for a in b.actions]
    out += ["", "## Clauses cited (messages acted on)", ""]
    if b.clauses:
        out += ["| clause | title | active | candidate | change |", "|---|---|---:|---:|---:|"]
        out += [f"| {c.clause} | {_cell(c.title)} | {c.old} | {c.new} | "
                f"{_signed(c.new - c.old)} |" for c in b.clauses]
    else:
        out.append("_none_")
    out += ["", "## Members", "",
            f"Newly affected (acted on under the candidate, not under the active policy): "
            f"{len(b.newly_affected)}"]
    out += [f"- {m}" for m in b.newly_affected]
    out += ["", f"No longer affected (acted on under the active policy only): "
            f"{len(b.no_longer_affected)}"]
    out += [f"- {m}" for m in b.no_longer_affected]
    r = b.reviews
    out += ["", "## Moderators' reviews", ""]
    if r.reviewed:
        out += [f"{r.reviewed} of the re-decided messages had their verdict reviewed: "
                f"{r.upheld} upheld (should be acted on), {r.dismissed} dismissed (should not).",
                "", "| policy | agrees with the moderators | acts on upheld | allows dismissed |",
                "|---|---:|---:|---:|"]
        for name, agreement in (("active", r.active), ("candidate", r.candidate)):
            out.append(f"| {name} {agreement.version} | {_share(agreement, r.reviewed)} | "
                       f"{agreement.acts_on_upheld}/{r.upheld} | "
                       f"{agreement.allows_dismissed}/{r.dismissed} |")
    else:
        out.append("No re-decided message has a reviewed verdict.")
    out += ["", f"## Changed decisions ({len(b.sample)} of {b.changed})", ""]
    if not b.sample:
        out.append("_none_")
    for n, c in enumerate(b.sample, 1):
        review = f"; moderators {c.review} the stored verdict" if c.review else ""
        title = f" {c.clause_title}" if c.clause_title else ""
        out += [f"{n}. **{c.old} → {c.new}** `{c.platform}:{c.message_id}`"
                + (f" r{c.revision}" if c.revision else "")
                + f" in #{c.channel}, {_minute(c.sent_at)} UTC, {c.member}{review}",
                f"   > {c.excerpt}",
                f"   - candidate, {c.new}" + (f", clause {c.clause}{title}" if c.clause else "")
                + ": " + ("; ".join(c.reasons) or "no finding"),
                f"   - active, {c.old}" + (f", clause {c.old_clause}" if c.old_clause else "")
                + ": " + ("; ".join(c.old_reasons) or "no finding")]
    return "\n".join(out) + "\n"


def to_json(b: Backtest, /) -> str:
    """The report as a JSON document (the sample, not every change: `changed` counts them)."""
    data: dict[str, Any] = asdict(b)
    del data["changes"]
    return json.dumps(data, ensure_ascii=False, indent=2)


CSV_COLUMNS = ("platform", "message_id", "revision", "sent_at", "channel", "member",
               "active_action", "candidate_action", "active_clause", "candidate_clause",
               "candidate_clause_title", "candidate_reasons", "active_reasons", "review",
               "excerpt")


def to_csv(b: Backtest, /) -> str:
    """Every changed decision, one row each, in the order the messages were sent."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in b.changes:
        writer.writerow([c.platform, c.message_id, c.revision, c.sent_at, c.channel, c.member,
                         c.old, c.new, c.old_clause or "", c.clause or "",
                         c.clause_title or "", "; ".join(c.reasons), "; ".join(c.old_reasons),
                         c.review or "", c.excerpt])
    return buffer.getvalue()
