"""The moderator command set: platform-neutral commands, permission checks, neutral Replies."""

from __future__ import annotations

__all__ = ["COMMANDS", "Button", "Commands", "Refusal", "Reply", "render_text"]

import json
import logging
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from bot.actions import appeal_invitation
from bot.decide import decide
from bot.errors import ConductError, PolicyError, StoreError
from bot.models import (
    Account,
    Action,
    ActionKind,
    ActionStatus,
    Case,
    CaseState,
    Member,
    MemberStatus,
    Mode,
    Platform,
    Role,
    VerdictAction,
)
from bot.moderator import Moderator
from bot.policy import Policy
from bot.spam import plan_raid_end
from bot.standing import crossed_step, format_duration, format_until, parse_duration
from bot.store import CaseDraft, Store

log = logging.getLogger(__name__)


class Refusal(ConductError):
    """A command that cannot be carried out; nothing was changed."""


@dataclass(frozen=True, slots=True)
class Button:
    """An action a reply offers; `command` is run as if typed by whoever presses it."""

    label: str
    command: str
    style: str = "secondary"  # primary, danger, secondary


@dataclass(frozen=True, slots=True)
class Reply:
    """What a command answers, for an adapter to render (embed, Block Kit, console text)."""

    title: str
    text: str = ""
    fields: tuple[tuple[str, str], ...] = ()
    buttons: tuple[Button, ...] = ()
    ok: bool = True


Handler = Callable[["Commands", Member, list[str]], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Climb:
    """What a sanction's points do on the ladder: timeouts, a note, the step they fired."""

    timeouts: list[Action] = field(default_factory=list)
    note: str = ""
    step: float | None = None


@dataclass(frozen=True, slots=True)
class Spec:
    """One command: its handler, usage line and who may run it."""

    handler: Handler
    usage: str
    summary: str
    moderators_only: bool = True
    min_args: int = 0


COMMANDS: dict[str, Spec] = {}


def command(name: str, usage: str, summary: str, *, moderators_only: bool = True,
            min_args: int = 0) -> Callable[[Handler], Handler]:
    """Register a handler under `name`."""
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Spec(handler, usage, summary, moderators_only, min_args)
        return handler
    return register


@dataclass(slots=True)
class Commands:
    """Runs commands for an account against the core."""

    moderator: Moderator

    @property
    def store(self) -> Store:
        """The moderator's store."""
        return self.moderator.store

    async def run(self, account: Account, words: str | Sequence[str], /) -> Reply:
        """Parse and run one command as `account`; every outcome is a Reply, never an exception.

        Every refusal is audited (who, what, why) and changes nothing else; an account never
        seen gets no member record for asking.
        """
        try:
            return await self._run(account, words)
        except Exception:
            # A bug must not take the adapter's event handler down, nor leave the member
            # without an answer: the traceback goes to the operator's log.
            log.exception("command %r from %s:%s failed", _printable(str(words)[:80]),
                          account.platform, _printable(account.id))
            return Reply("Something went wrong", "The bot could not finish this command; the "
                         "error is in its log for the operator. Check `case` or `history` "
                         "before trying again.", ok=False)

    async def _run(self, account: Account, words: str | Sequence[str], /) -> Reply:
        name, args = "?", []  # type: tuple[str, list[str]]
        # A lone surrogate (undecodable bytes on a command line) cannot be stored or looked
        # up: the refusal is audited with it replaced, and nothing else is read.
        unreadable = _unreadable(account.id, *([words] if isinstance(words, str) else words))
        account_id = _printable(account.id)
        if unreadable is None:
            known = await self.store.member_by_account(account.platform, account.id)
            actor = await self.moderator.resolve_member(account.platform, account.id) if known \
                else Member(id="", display_name=f"{account.platform}:{account_id}")
        else:
            actor = Member(id="", display_name=f"{account.platform}:{account_id}")

        async def refuse(title: str, why: str) -> Reply:
            await self.store.audit(actor=_who(actor), action=f"refused:{_printable(name)}",
                                   member_id=actor.id or None, reason=_printable(why),
                                   detail={"account": f"{account.platform}:{account_id}",
                                           "args": [_printable(a) for a in args[:3]]})
            return Reply(title, why, ok=False)

        if unreadable is not None:
            args = [str(w) for w in ([words] if isinstance(words, str) else words)]
            return await refuse("Cannot read that command", f"It contains {unreadable}, which "
                                "is not text: type the command again.")
        try:
            tokens = _split(words) if isinstance(words, str) else [str(w) for w in words]
        except ValueError as exc:
            return await refuse("Cannot read that command",
                                f"{exc} (check your quotation marks)")
        name, args = (tokens[0].casefold(), tokens[1:]) if tokens else ("help", [])
        spec = COMMANDS.get(name)
        if spec is None:
            return await refuse("Unknown command", f"There is no command {name!r}. Try `help`.")
        if spec.moderators_only and Role.MODERATOR not in actor.roles:
            return await refuse("Not allowed", f"Only moderators can use `{name}`.")
        if spec.moderators_only and actor.status is not MemberStatus.ACTIVE:
            return await refuse("Not allowed", f"Moderators must be in good standing to act: "
                                               f"you are {actor.status}.")
        if len(args) < spec.min_args:
            return await refuse("Missing arguments", f"Usage: `{spec.usage}`")
        try:
            return await spec.handler(self, actor, args)
        except (Refusal, StoreError) as exc:
            return await refuse("Refused", str(exc))

    async def run_as_system(self, name: str, /, *args: str) -> Reply:
        """Run a command as the operator at the console (who holds the database itself)."""
        system = Member(id="system", display_name="operator",
                        roles=frozenset({Role.MODERATOR}))
        try:
            return await COMMANDS[name].handler(self, system, list(args))
        except (Refusal, StoreError) as exc:
            return Reply("Refused", str(exc), ok=False)

    # -- lookups -----------------------------------------------------------------------------

    async def member(self, ref: str) -> Member:
        """Exactly one member for a reference, or a Refusal saying why not."""
        found = await self.store.find_members(ref)
        if not found:
            raise Refusal(f"No member matches {ref!r} (use a name, membership number, member id "
                          "or PLATFORM:ACCOUNT such as discord:1234)")
        if len(found) > 1:
            raise Refusal(f"{len(found)} members are called {ref!r}: use a membership number "
                          f"or id ({', '.join(m.id for m in found)})")
        member: Member = found[0]
        return member

    async def case(self, ref: str, *, acting: Member | None = None) -> Case:
        """The case numbered `ref`, or a Refusal; with `acting`, refused when the case is
        about that moderator (nobody decides their own case)."""
        number = ref.lstrip("#")
        if not number.isascii() or not number.isdigit() or len(number) > 18:
            raise Refusal(f"{ref!r} is not a case number")
        case: Case | None = await self.store.get_case(int(number))
        if case is None:
            raise Refusal(f"There is no case {number}")
        if acting is not None and case.member_id == acting.id:
            raise Refusal(f"Case {case.id} is about you: another moderator must act on it")
        return case

    async def ladder(self, member: Member, strike: float, *, confirming: int | None = None,
                     where: tuple[str, str] | None = None) -> Climb:
        """The ladder step a sanction's strike points cross (or, with `confirming`, the
        points awaiting review in that case): its timeouts and a note. `where` (platform,
        channel) is where the breach was, for a platform that times out per channel."""
        before, fired = await self.moderator.climb(member.id)
        after = before + strike if confirming is None else \
            await self.moderator.points(member.id, confirming=confirming)
        step = crossed_step(before, after, fired=fired, policy=self.moderator.policy.strikes)
        if step is None:
            return Climb()
        note = f" Ladder at {_points(after)} points: {step.note.rstrip('.')}."
        if step.escalate:
            note += " Consider `suspend`."
        if step.timeout is None:
            return Climb([], note, step.points)
        until = self.store.clock() + step.timeout
        return Climb([replace(a, channel=where[1]) if where and a.platform == where[0] else a
                      for a in self.accounts_actions(member, ActionKind.TIMEOUT, {
                          "until": until.isoformat(), "duration": format_duration(step.timeout),
                          "reason": step.note})], note, step.points)

    def accounts_actions(self, member: Member, kind: ActionKind,
                         payload: dict[str, object]) -> list[Action]:
        """One outbox row per linked account (each platform does its own part)."""
        if not member.accounts:
            raise Refusal(f"{member.label} has no linked platform account to act on")
        return [Action(kind=kind, platform=a.platform, user=a.id, payload=payload)
                for a in member.accounts]

    def until(self, end: datetime | timedelta | None) -> str:
        """An end time (or a duration from now) in the party's time zone."""
        if isinstance(end, timedelta):
            end = self.store.clock() + end
        return format_until(end, tz=self.moderator.policy.sanctions.timezone)

    def notice(self, text: str, **payload: object) -> dict[str, object]:
        """A notice's payload: `text` and the invitation to appeal (the case number is added
        when the case is recorded)."""
        version = self.moderator.policy.version
        return {**payload, "policy_version": version,
                "text": f"{text}\n\n{appeal_invitation(version)}"}

    async def undone(self, case: Case) -> str:
        """What dismissing or pardoning `case` undoes, as sentences ('' when nothing)."""
        strikes = [s for s in await self.store.strikes(case.member_id) if s["case_id"] == case.id]
        timeouts = [a for a in await self.store.actions(case_id=case.id)
                    if a.kind is ActionKind.TIMEOUT
                    and a.status in (ActionStatus.PENDING, ActionStatus.DONE)]
        return " ".join(text for text, applies in (
            ("Its strike points no longer count.", strikes),
            ("The timeout it caused has been lifted.", timeouts)) if applies)

    async def notices(self, about: Case | Member, text: str) -> list[Action]:
        """Tell a member (or a case's member) `text` on each linked account (none when there
        is none)."""
        member = await self.store.get_member(about.member_id) if isinstance(about, Case) \
            else about
        if member is None or not member.accounts:
            return []
        return self.accounts_actions(member, ActionKind.NOTIFY, {"text": text})


#: Phones and word processors type curly quotes: they group words like straight ones.
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"',
                         "\u00bb": '"'})


def _split(words: str) -> list[str]:
    """Split typed command words; double quotes (straight or curly) group, apostrophes are
    just letters ("don't")."""
    lexer = shlex.shlex(words.translate(_QUOTES), posix=True)
    lexer.whitespace_split = True
    lexer.quotes = '"'
    lexer.escape = ""
    lexer.commenters = ""
    return list(lexer)


def _unreadable(*texts: str) -> str | None:
    """'U+D800' for the first lone surrogate in `texts` (not text: it cannot be stored)."""
    for text in texts:
        for ch in str(text):
            if "\ud800" <= ch <= "\udfff":
                return f"U+{ord(ch):04X}"
    return None


def _printable(text: str) -> str:
    """`text` with lone surrogates replaced by U+FFFD, so it can be stored and logged."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _points(value: float) -> str:
    """Points as moderators read them: one decimal at most (2.9999 is 3)."""
    return f"{round(value, 1):g}"


def _who(member: Member) -> str:
    return f"{member.display_name} ({member.id})"


def _reason(args: Sequence[str], what: str) -> str:
    reason = " ".join(args).strip()
    if not reason:
        raise Refusal(f"Give a reason for the {what}: it is recorded and shown to the member")
    return reason


def _age(moment: datetime, now: datetime) -> str:
    seconds = int((now - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return "just now"


def _case_line(case: Case, now: datetime, member: Member | None = None) -> str:
    who = f", assigned to {case.assignee}" if case.assignee else ""
    about = f" {member.display_name}:" if member else ""
    return (f"#{case.id} [p{case.priority}] {case.kind} {case.state}{who}, "
            f"{_age(case.opened_at, now)} old,{about} {case.summary}")


# -- commands ----------------------------------------------------------------------------------


@command("help", "help", "list the commands you can use", moderators_only=False)
async def _help(self: Commands, actor: Member, args: list[str]) -> Reply:
    moderator = Role.MODERATOR in actor.roles
    lines = [f"`{s.usage}`: {s.summary}" for s in COMMANDS.values()
             if moderator or not s.moderators_only]
    return Reply("conductbot commands", "\n".join(lines))


@command("check", "check TEXT", "score a text and show what the bot would do", min_args=1)
async def _check(self: Commands, actor: Member, args: list[str]) -> Reply:
    text = " ".join(args)
    m = self.moderator
    scores = await m.scorer.score(text)
    hits = m.rules.hits(text)
    verdict = decide(scores, hits, policy=m.policy, standing=actor.standing(),
                     channel="general")
    top = sorted(verdict.scores.items(), key=lambda kv: -kv[1])[:4]
    shadow = " (shadow mode: recorded, nothing done)" if verdict.mode is Mode.SHADOW and \
        verdict.action is not VerdictAction.ALLOW else ""
    return Reply(
        f"Would {verdict.action}{shadow}",
        "; ".join(verdict.reasons) or "Nothing in the policy applies.",
        fields=(("clause", f"{verdict.clause} {verdict.clause_title}" if verdict.clause else "-"),
                ("categories", ", ".join(verdict.categories) or "-"),
                ("rules", ", ".join(h.rule_id for h in hits) or "-"),
                ("scores", ", ".join(f"{k} {v:.2f}" for k, v in top)),
                ("model", f"{verdict.model} {verdict.model_version}, policy "
                          f"{verdict.policy_version}")))


@command("history", "history MEMBER", "a member's status, strike points and cases", min_args=1)
async def _history(self: Commands, actor: Member, args: list[str]) -> Reply:
    member = await self.member(" ".join(args))
    now = self.store.clock()
    points = await self.moderator.points(member.id)
    strikes = await self.store.strikes(member.id, include_pardoned=True)
    cases = await self.store.member_cases(member.id)
    status = str(member.status)
    if member.status is MemberStatus.SUSPENDED:
        status += f" {self.until(member.suspended_until)}"
    if member.status_reason:
        status += f" ({member.status_reason})"
    pardoned = sum(1 for s in strikes if s["pardoned_at"])
    waiting = sum(1 for s in strikes if s["pending"] and not s["pardoned_at"])
    return Reply(
        member.label,
        "\n".join(_case_line(c, now) for c in cases[:10]) or "No cases.",
        fields=(("status", status),
                ("roles", ", ".join(sorted(member.roles)) or "-"),
                ("points now", _points(points)),
                ("strikes", f"{len(strikes) - pardoned} ({pardoned} pardoned"
                            + (f", {waiting} awaiting review)" if waiting else ")")),
                ("accounts", ", ".join(f"{a.platform}:{a.id}" for a in member.accounts) or "-")))


@command("case", "case N", "a case: evidence, state and history", min_args=1)
async def _case(self: Commands, actor: Member, args: list[str]) -> Reply:
    case = await self.case(args[0])
    member = await self.store.get_member(case.member_id)
    evidence = await self.store.case_evidence(case.id)
    events = await self.store.case_events(case.id)
    lines: list[str] = []
    for e in evidence:
        posted = format_until(datetime.fromisoformat(e["sent_at"]),
                              tz=self.moderator.policy.sanctions.timezone).removeprefix("until ")
        lines.append(f"> {(e['text'] or '[text erased under the retention policy]')[:300]}  "
                     f"({e['platform']}:{e['message_id']} in "
                     f"#{e['channel_name'] or e['channel']}, posted {posted}, "
                     f"{e['action'] or 'moderator'})")
        if e["verdict_id"] is not None:  # why the bot acted
            top = sorted(json.loads(e["scores"]).items(), key=lambda kv: -kv[1])[:4]
            lines.append(f"  why: {'; '.join(json.loads(e['reasons'])) or '-'}. Scores: "
                         f"{', '.join(f'{k} {v:.2f}' for k, v in top)}; rules: "
                         f"{', '.join(json.loads(e['rule_ids'])) or '-'}; {e['model']} "
                         f"{e['model_version']}, policy {e['policy_version']}")
    lines += [f"{e['at'][:16]} {e['actor']}: {e['event']}"
              + (f" ({e['from_state']} -> {e['to_state']})" if e["from_state"] != e["to_state"]
                 and e["from_state"] else "") + (f": {e['detail']}" if e["detail"] else "")
              for e in events]
    fields = [("member", member.label if member else case.member_id), ("state", case.state),
              ("kind", case.kind), ("priority", str(case.priority)),
              ("clause", case.clause or "-"), ("assignee", case.assignee or "-")]
    if case.proposal:
        fields.append(("proposal", f"suspend {case.proposal.get('duration')} proposed by "
                                   f"{case.proposal.get('proposer_name')}"))
    if case.appeal:
        fields.append(("appeal", case.appeal + (f" -> {case.appeal_outcome}"
                                                if case.appeal_outcome else "")))
    if case.resolution:
        fields.append(("resolution", case.resolution))
    buttons: tuple[Button, ...] = ()
    if case.state.active:
        # A button carries a stock reason; adapters may ask for a better one (a modal).
        buttons = (Button("Uphold", f"resolve {case.id} uphold upheld on review", "primary"),
                   Button("Dismiss", f"resolve {case.id} dismiss dismissed on review", "danger"),
                   Button("Assign to me", f"assign {case.id}"))
        if case.proposal:
            buttons = (Button("Confirm suspension", f"confirm {case.id}", "danger"),
                       Button("Reject", f"resolve {case.id} dismiss proposal rejected"))
    return Reply(f"Case {case.id}: {case.summary}", "\n".join(lines), tuple(fields), buttons)


@command("warn", "warn MEMBER REASON", "warn a member privately (adds strike points)",
         min_args=2)
async def _warn(self: Commands, actor: Member, args: list[str]) -> Reply:
    member = await self.member(args[0])
    reason = _reason(args[1:], "warning")
    actions = self.accounts_actions(member, ActionKind.NOTIFY, self.notice(
        f"A moderator has warned you: {reason}. Please read the code of conduct.",
        reason=reason))
    points = self.moderator.policy.strikes.points.get(VerdictAction.WARN, 0.0)
    climb = await self.ladder(member, points)
    case_id, _ = await self.store.sanction(
        member.id, draft=CaseDraft("warning", f"warned: {reason}", _who(actor),
                                   state=CaseState.UPHELD),
        actions=actions + climb.timeouts, strike=points, step=climb.step, reason=reason,
        audit_action="warn")
    return Reply(f"Warned {member.display_name}",
                 f"Case {case_id}; {_points(points)} strike point(s).{climb.note}")


@command("hide", "hide PLATFORM:MESSAGE_ID", "delete a message (adds strike points)",
         min_args=1)
async def _hide(self: Commands, actor: Member, args: list[str]) -> Reply:
    platform_name, _, message_id = args[0].partition(":")
    try:
        platform = Platform(platform_name)
    except ValueError:
        raise Refusal(f"{args[0]!r}: name the message as PLATFORM:MESSAGE_ID, e.g. "
                      "discord:1234") from None
    row = await self.store.message_row(platform, message_id)
    if row is None:
        raise Refusal(f"No message {args[0]} is on record")
    reason = " ".join(args[1:]).strip() or "hidden by a moderator"
    member = await self.store.get_member(row["member_id"])
    assert member is not None
    delete = Action(kind=ActionKind.DELETE, platform=platform, channel=row["channel"],
                    message_id=message_id, user=row["author"], payload={"reason": reason})
    notice = replace(delete, kind=ActionKind.NOTIFY, message_id=None, payload=self.notice(
        f"A moderator hid your message in #{row['channel_name'] or row['channel']}: {reason}.",
        reason=reason, action=str(VerdictAction.HIDE)))
    points = self.moderator.policy.strikes.points.get(VerdictAction.HIDE, 0.0)
    climb = await self.ladder(member, points)
    case_id, _ = await self.store.sanction(
        member.id, draft=CaseDraft("hide", f"message hidden: {reason}", _who(actor),
                                   state=CaseState.UPHELD),
        actions=[delete, notice, *climb.timeouts], strike=points, step=climb.step,
        reason=reason, audit_action="hide", message_rows=[row["id"]])
    return Reply(f"Hiding {args[0]}", f"Case {case_id}; {member.display_name} gets "
                                      f"{_points(points)} strike point(s).{climb.note}")


@command("timeout", "timeout MEMBER DURATION REASON", "stop a member posting for a while",
         min_args=3)
async def _timeout(self: Commands, actor: Member, args: list[str]) -> Reply:
    member = await self.member(args[0])
    duration = _duration(args[1])
    limit = self.moderator.policy.sanctions.max_timeout
    if duration is None or duration > limit:
        raise Refusal(f"A timeout lasts at most {format_duration(limit)}; use suspend for "
                      "longer")
    reason = _reason(args[2:], "timeout")
    until = self.store.clock() + duration
    actions = self.accounts_actions(member, ActionKind.TIMEOUT, {
        "until": until.isoformat(), "duration": format_duration(duration), "reason": reason})
    actions += self.accounts_actions(member, ActionKind.NOTIFY, self.notice(
        f"A moderator has stopped you posting for {format_duration(duration)}, "
        f"{self.until(until)}: {reason}.", reason=reason))
    case_id, _ = await self.store.sanction(
        member.id, draft=CaseDraft("timeout", f"timeout {format_duration(duration)}: {reason}",
                                   _who(actor), state=CaseState.UPHELD),
        actions=actions, reason=reason, audit_action="timeout")
    return Reply(f"Timed out {member.display_name} for {format_duration(duration)}",
                 f"Case {case_id}; {self.until(until)}.")


def _duration(text: str, *, indefinite: bool = False) -> timedelta | None:
    try:
        # A suspension of minutes is a slip for months: "3m" is refused as ambiguous there.
        return parse_duration(text, allow_indefinite=indefinite, minutes_ok=not indefinite)
    except ValueError as exc:
        raise Refusal(str(exc)) from None


@command("suspend", "suspend MEMBER DURATION|indefinite REASON",
         "propose (or, without two-person sign-off, impose) a suspension", min_args=3)
async def _suspend(self: Commands, actor: Member, args: list[str]) -> Reply:
    member = await self.member(args[0])
    duration = _duration(args[1], indefinite=True)
    reason = _reason(args[2:], "suspension")
    if member.status is MemberStatus.SUSPENDED:
        raise Refusal(f"{member.label} is already suspended")
    for open_case in await self.store.member_cases(member.id):
        if open_case.proposal and open_case.state.active:
            raise Refusal(
                f"Case {open_case.id} already proposes suspending {member.display_name} for "
                f"{open_case.proposal.get('duration')} (by "
                f"{open_case.proposal.get('proposer_name')}): confirm it, or reject it with "
                f"`resolve {open_case.id} dismiss REASON` before proposing another")
    proposal = {"duration": format_duration(duration), "reason": reason,
                "proposer": actor.id, "proposer_name": actor.display_name}
    two_person = self.moderator.policy.sanctions.two_person_suspension
    case_id, _ = await self.store.sanction(
        member.id, draft=CaseDraft("suspension", f"suspension {format_duration(duration)} "
                                   f"proposed: {reason}", _who(actor), priority=2,
                                   state=CaseState.OPEN, proposal=proposal),
        actions=[], reason=reason, audit_action="suspend:proposed")
    if two_person:
        return Reply(f"Suspension of {member.display_name} proposed (case {case_id})",
                     f"{format_duration(duration)}, {self.until(duration)} if confirmed now. "
                     "Another moderator must confirm it before it takes effect.",
                     buttons=(Button("Confirm suspension", f"confirm {case_id}", "danger"),))
    return await _apply_suspension(self, actor, await self.case(str(case_id)))


@command("confirm", "confirm N", "confirm another moderator's proposed suspension", min_args=1)
async def _confirm(self: Commands, actor: Member, args: list[str]) -> Reply:
    case = await self.case(args[0], acting=actor)
    if not case.proposal or not case.state.active:
        raise Refusal(f"Case {case.id} is not a suspension awaiting confirmation")
    if case.proposal.get("proposer") == actor.id:
        raise Refusal("You proposed this suspension: a second moderator must confirm it")
    return await _apply_suspension(self, actor, case)


async def _apply_suspension(self: Commands, actor: Member, case: Case) -> Reply:
    assert case.proposal is not None
    member = await self.store.get_member(case.member_id)
    assert member is not None
    duration = parse_duration(str(case.proposal["duration"]), allow_indefinite=True)
    now = self.store.clock()
    until = now + duration if duration else None
    reason = str(case.proposal["reason"])
    # A return queued by an earlier timeout must not let a suspended member back in.
    await self.store.set_status(member.id, status=MemberStatus.SUSPENDED, actor=_who(actor),
                                reason=reason, since=now, until=until, case_id=case.id,
                                cancel=(ActionKind.RESTORE,))
    when = self.until(until)
    actions = [Action(kind=ActionKind.SUSPEND, platform=a.platform, user=a.id,
                      payload={"until": until.isoformat() if until else None,
                               "reason": reason}) for a in member.accounts]
    if member.accounts:
        actions += self.accounts_actions(member, ActionKind.NOTIFY, self.notice(
            f"You are suspended from the party's member forums {when}: {reason}.",
            reason=reason))
    await self.store.update_case(case.id, actor=_who(actor), event="confirmed",
                                 state=CaseState.UPHELD, detail=reason,
                                 resolution=f"suspended {format_duration(duration)}",
                                 actions=actions, audit_action="suspend:confirmed")
    return Reply(f"{member.display_name} is suspended {when}",
                 f"Case {case.id}: {format_duration(duration)} as proposed by "
                 f"{case.proposal.get('proposer_name')}: {reason}.")


@command("reinstate", "reinstate MEMBER REASON", "end a suspension or expulsion", min_args=2)
async def _reinstate(self: Commands, actor: Member, args: list[str]) -> Reply:
    member = await self.member(args[0])
    reason = _reason(args[1:], "reinstatement")
    if member.status not in (MemberStatus.SUSPENDED, MemberStatus.EXPELLED):
        raise Refusal(f"{member.label} is {member.status}, not suspended or expelled")
    # Undo on each platform: Discord lifts the timeout, Slack invites back to the channels.
    actions = [Action(kind=ActionKind.RESTORE, platform=a.platform, user=a.id,
                      payload={"lift": True, "reason": f"reinstated: {reason}"})
               for a in member.accounts]
    actions += await self.notices(member, f"You are reinstated in the party's member forums: "
                                          f"{reason}.")
    await self.store.set_status(member.id, status=MemberStatus.ACTIVE, actor=_who(actor),
                                reason=reason, actions=actions, cancel=(ActionKind.SUSPEND,))
    return Reply(f"{member.display_name} is reinstated", reason + (
        " Their access is restored and they are told." if member.accounts else ""))


@command("pardon", "pardon N REASON", "remove the strike points of a case", min_args=2)
async def _pardon(self: Commands, actor: Member, args: list[str]) -> Reply:
    case = await self.case(args[0], acting=actor)
    reason = _reason(args[1:], "pardon")
    reversed_ = next((e for e in await self.store.case_events(case.id)
                      if e["event"] in ("pardoned", "dismissed")), None)
    if reversed_ is not None:
        raise Refusal(f"Case {case.id} was already {reversed_['event']} "
                      f"({reversed_['detail']})")
    undone = await self.undone(case)
    if not undone:
        raise Refusal(f"Case {case.id} has no strike points or timeout to pardon")
    notices = await self.notices(case, f"Case {case.id} has been pardoned: {reason}. "
                                       f"{undone}".strip())
    await self.store.update_case(case.id, actor=_who(actor), event="pardoned", detail=reason,
                                 pardon=reason, actions=notices, audit_action="pardon")
    return Reply(f"Case {case.id} pardoned", undone + (" The member is told." if notices
                                                       else ""))


@command("note", "note N TEXT", "add a note to a case's history", min_args=2)
async def _note(self: Commands, actor: Member, args: list[str]) -> Reply:
    case = await self.case(args[0], acting=actor)
    await self.store.update_case(case.id, actor=_who(actor), event="note",
                                 detail=" ".join(args[1:]))
    return Reply(f"Note added to case {case.id}")


#: Cases on one page of the queue.
QUEUE_PAGE = 50


@command("queue", "queue [mine|unassigned] [clause:C] [channel:NAME] [platform:P] [page:N]",
         "cases waiting, highest priority and oldest first; filters and pages")
async def _queue(self: Commands, actor: Member, args: list[str]) -> Reply:
    filters: dict[str, Any] = {}
    page = 1
    for word in args:
        key, _, value = word.casefold().partition(":")
        if word.casefold() == "mine":
            filters["assignee"] = _who(actor)
        elif word.casefold() == "unassigned":
            filters["unassigned"] = True
        elif key in ("clause", "channel") and value:
            filters[key] = word.partition(":")[2]
        elif key == "platform" and value in {p.value for p in Platform}:
            filters["platform"] = Platform(value)
        elif key == "page" and value.isascii() and value.isdigit() and 0 < int(value) < 10**6:
            page = int(value)
        else:
            raise Refusal(f"{word!r} is not a queue filter: use mine, unassigned, clause:1.2, "
                          "channel:general, platform:discord or page:2")
    cases, total = await self.store.queue(limit=QUEUE_PAGE, offset=(page - 1) * QUEUE_PAGE,
                                          **filters)
    now = self.store.clock()
    members = {c.member_id: await self.store.get_member(c.member_id) for c in cases}
    lines = [_case_line(c, now, members[c.member_id]) for c in cases]
    first = (page - 1) * QUEUE_PAGE + 1
    last = first + len(cases) - 1
    if total > len(cases) and cases:
        kept = [w for w in args if not w.casefold().startswith("page:")]
        more = f" `{' '.join(['queue', *kept, f'page:{page + 1}'])}` for more." \
            if last < total else ""
        lines.append(f"Showing {first}-{last} of {total}.{more}")
    return Reply(f"{total} case(s) waiting", "\n".join(lines) or (
        "Nothing waiting." if page == 1 else f"Page {page} is past the last case ({total})."),
        buttons=tuple(Button(f"Case {c.id}", f"case {c.id}") for c in cases[:5]))


@command("assign", "assign N [MODERATOR]", "take a case, or give it to a moderator", min_args=1)
async def _assign(self: Commands, actor: Member, args: list[str]) -> Reply:
    case = await self.case(args[0], acting=actor)
    if not case.state.active:
        raise Refusal(f"Case {case.id} is {case.state}: there is nothing to assign")
    assignee = await self.member(" ".join(args[1:])) if args[1:] else actor
    if Role.MODERATOR not in assignee.roles:
        raise Refusal(f"{assignee.label} is not a moderator")
    state = CaseState.ASSIGNED if case.state is CaseState.OPEN else case.state
    await self.store.update_case(case.id, actor=_who(actor), event="assigned", state=state,
                                 assignee=_who(assignee), detail=_who(assignee))
    return Reply(f"Case {case.id} assigned to {assignee.display_name}")


@command("resolve", "resolve N uphold|dismiss REASON", "decide a case", min_args=3)
async def _resolve(self: Commands, actor: Member, args: list[str]) -> Reply:
    outcome = args[1].casefold()
    if outcome not in ("uphold", "dismiss"):
        raise Refusal(f"{args[1]!r}: say uphold or dismiss")
    case = await self.case(args[0], acting=actor)
    reason = _reason(args[2:], "decision")
    if not case.state.active:
        raise Refusal(f"Case {case.id} is already {case.state}")
    if case.proposal and outcome == "uphold":
        raise Refusal(f"Case {case.id} is a proposed suspension: use `confirm {case.id}`")
    upheld = outcome == "uphold"
    state = CaseState.UPHELD if upheld else CaseState.DISMISSED
    appeal_outcome = None
    climb = Climb()
    member = await self.store.get_member(case.member_id)
    if upheld and member is not None:
        # Review before punishment: the case's strike points count from now, and may take the
        # member up the ladder.
        evidence = await self.store.case_evidence(case.id)
        climb = await self.ladder(
            member, 0.0, confirming=case.id,
            where=(evidence[0]["platform"], evidence[0]["channel"]) if evidence else None)
    actions, note = list(climb.timeouts), climb.note
    undone = "" if upheld else await self.undone(case)
    if case.state is CaseState.APPEALED:
        appeal_outcome = f"appeal rejected: {reason}" if upheld else f"appeal granted: {reason}"
        actions += await self.notices(case, (
            f"Your appeal of case {case.id} was rejected: {reason}. The decision stands."
            if upheld else f"Your appeal of case {case.id} was granted: {reason}. {undone}"
        ).strip())
    elif not upheld and not case.shadow and (
            case.automatic or await self.store.actions(case_id=case.id)):
        # The member was told of the action: they hear it was dismissed.
        actions += await self.notices(case, f"Case {case.id} was reviewed by a moderator and "
                                            f"dismissed: {reason}. {undone}".strip())
    await self.store.update_case(
        case.id, actor=_who(actor), event="upheld" if upheld else "dismissed", state=state,
        detail=reason, resolution=reason, appeal_outcome=appeal_outcome,
        review=("upheld" if upheld else "dismissed") if case.automatic else None,
        confirm_strikes=upheld, step=climb.step, actions=actions,
        pardon=None if upheld else f"dismissed: {reason}", audit_action=f"resolve:{outcome}")
    if undone:
        note += f" {undone}"
    if case.shadow:
        note += (" Recorded: the bot " + ("was right" if upheld else "would have been wrong")
                 + " (shadow mode: nothing was done to the member, who is not told).")
    elif case.automatic and not upheld:
        note += " Recorded as an overturn of the automatic verdict."
    if any(a.kind is ActionKind.NOTIFY for a in actions):
        note += f" {case.member_id if member is None else member.display_name} is told."
    return Reply(f"Case {case.id} {state}", f"{reason.rstrip('.')}.{note}")


@command("link", "link MEMBER PLATFORM ID", "link a platform account to a member", min_args=3)
async def _link(self: Commands, actor: Member, args: list[str]) -> Reply:
    member = await self.member(args[0])
    try:
        platform = Platform(args[1].casefold())
    except ValueError:
        raise Refusal(f"{args[1]!r} is not a platform (discord, slack, console)") from None
    if not args[2].strip() or args[2] != args[2].strip():
        raise Refusal(f"{args[2]!r} is not an account id: give the id as the platform shows it")
    merged = await self.store.link_account(member.id, platform, args[2], actor=_who(actor))
    extra = f" Its earlier record ({merged}) was merged in." if merged else ""
    return Reply(f"Linked {platform}:{args[2]} to {member.display_name}", extra.strip())


@command("unlink", "unlink PLATFORM:ID", "detach a wrongly linked account from its member",
         min_args=1)
async def _unlink(self: Commands, actor: Member, args: list[str]) -> Reply:
    platform_name, _, account = args[0].partition(":")
    try:
        platform = Platform(platform_name.casefold())
    except ValueError:
        platform = None
    if platform is None or not account.strip():
        raise Refusal(f"{args[0]!r}: name the account as PLATFORM:ID, e.g. discord:1234")
    member_id = await self.store.unlink_account(platform, account, actor=_who(actor))
    member = await self.store.get_member(member_id)
    return Reply(f"Unlinked {platform}:{account}",
                 f"It no longer belongs to {member.label if member else member_id}; its history "
                 "stays with them.")


@command("raid", "raid [end N [REASON]]", "raids in progress; `end` ends one and lifts its "
         "slowmode and timeouts")
async def _raid(self: Commands, actor: Member, args: list[str]) -> Reply:
    if not args:
        raids = await self.store.raids(active=True)
        lines = [f"#{r['id']} in #{r['channel_name'] or r['channel']} on {r['platform']} since "
                 f"{r['started_at'][:16].replace('T', ' ')}: {len(r['accounts'])} new accounts "
                 f"({', '.join(label for label, _ in r['accounts'][:10])}"
                 + (", ..." if len(r["accounts"]) > 10 else "") + f"); response: {r['response']}"
                 for r in raids]
        return Reply(f"{len(raids)} raid(s) in progress", "\n".join(lines) or "None.",
                     buttons=tuple(Button(f"End raid {r['id']}",
                                          f"raid end {r['id']} ended by a moderator")
                                   for r in raids[:5]))
    if args[0].casefold() != "end" or len(args) < 2:
        raise Refusal("Say `raid` to list raids in progress, or `raid end N REASON`")
    number = args[1].lstrip("#")
    if not number.isascii() or not number.isdigit() or len(number) > 18:
        raise Refusal(f"{args[1]!r} is not a raid number")
    reason = _reason(args[2:], "raid over")
    raid = await self.store.end_raid(int(number), actor=_who(actor), reason=reason,
                                     undo=lambda r: plan_raid_end(r, reason=reason))
    undone = [what for what, used in (("slowmode lifted", "slowmode"),
                                      ("timeouts lifted", "timeout"))
              if used in str(raid["response"]).split(",")]
    return Reply(f"Raid {raid['id']} ended", f"{reason.rstrip('.')}."
                 + (f" {' and '.join(undone).capitalize()}." if undone else ""))


@command("policy", "policy [reload]", "the policy's version, mode and clauses; `reload` "
         "validates the policy file again and switches to it")
async def _policy(self: Commands, actor: Member, args: list[str]) -> Reply:
    if args and args[0].casefold() == "reload":
        before = self.moderator.policy.version
        try:
            policy = await self.moderator.reload_policy(actor=_who(actor))
        except PolicyError as exc:  # audited by the moderator
            return Reply("Policy not reloaded", f"{before} stays in force.\n{exc}", ok=False)
        return Reply(f"Policy reloaded: {before} -> {policy.version}" if policy.version != before
                     else f"Policy unchanged: the file still says {before}",
                     _policy_summary(policy))
    if args:
        raise Refusal(f"{args[0]!r}: say `policy` or `policy reload`")
    policy = self.moderator.policy
    return Reply(f"{policy.name or 'Policy'} {policy.version}", _policy_summary(policy))


def _policy_summary(policy: Policy) -> str:
    differ = [o.name for o in policy.channels if o.mode and o.mode is not policy.mode]
    mode = f"Mode: {policy.mode}" + (f" (but {', '.join(differ)}: "
                                     f"{'enforce' if policy.mode is Mode.SHADOW else 'shadow'})"
                                     if differ else "")
    return "\n".join([mode, *(f"{c.id} {c.title}" for c in policy.clauses.values())])


@command("mycases", "mycases", "the cases about you, and which you can still appeal",
         moderators_only=False)
async def _mycases(self: Commands, actor: Member, args: list[str]) -> Reply:
    # A shadow case did nothing to the member: it is the moderators' measure of the bot.
    cases = [c for c in await self.store.member_cases(actor.id) if not c.shadow]
    if not cases:
        return Reply("No cases about you", "The moderators have taken no action about you.")
    lines = [f"#{c.id} {c.opened_at:%Y-%m-%d}: {c.summary} ({_appeal_state(c)})" for c in cases]
    return Reply(f"{len(cases)} case(s) about you", "\n".join(lines) + "\n\nTo appeal, "
                 "`appeal N` and say why the decision should change.")


def _appeal_state(case: Case) -> str:
    if case.appeal_outcome:
        return case.appeal_outcome
    if case.appeal is not None:
        return "appealed, waiting for a moderator"
    if case.state is CaseState.DISMISSED:
        return "dismissed"
    return f"{case.state}; you can appeal"


@command("appeal", "appeal N STATEMENT", "appeal a decision about you (once per case); "
         "on its own, list your cases", moderators_only=False)
async def _appeal(self: Commands, actor: Member, args: list[str]) -> Reply:
    if not args:
        return await _mycases(self, actor, args)
    if len(args) < 2:
        raise Refusal(f"Say why case {args[0]} should change: `appeal {args[0]} STATEMENT`")
    case = await self.case(args[0])
    if case.member_id != actor.id:
        raise Refusal(f"Case {case.id} is not about you: only its member can appeal it")
    if case.shadow:  # recorded in shadow mode: nothing was decided about the member
        raise Refusal(f"Case {case.id} is not a decision about you: nothing was done, so "
                      "there is nothing to appeal")
    if case.appeal is not None:
        raise Refusal(f"Case {case.id} has already been appealed")
    if case.state is CaseState.DISMISSED:
        raise Refusal(f"Case {case.id} was dismissed: there is nothing to appeal")
    statement = " ".join(args[1:]).strip()
    await self.store.update_case(case.id, actor=_who(actor), event="appealed",
                                 state=CaseState.APPEALED, appeal=statement, detail=statement,
                                 audit_action="appeal")
    return Reply(f"Your appeal of case {case.id} is with the moderators",
                 "You will hear the outcome; the case records it.")


def render_text(reply: Reply, /) -> str:
    """A Reply as plain text for the console."""
    mark = "" if reply.ok else "✗ "
    lines = [f"{mark}{reply.title}"]
    lines += [f"  {name}: {value}" for name, value in reply.fields]
    if reply.text:
        lines += ["", reply.text]
    if reply.buttons:
        lines += ["", "  ".join(f"[{b.label}: {b.command}]" for b in reply.buttons)]
    return "\n".join(lines)
