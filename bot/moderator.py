"""The pipeline: dedupe, resolve the member, score, decide, record; then run the outbox."""

from __future__ import annotations

__all__ = ["MAX_TEXT_CHARS", "PROTECTED_ROLES", "Handled", "Moderator"]

import asyncio
import logging
import random
import time
import weakref
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Sequence,
)
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from bot.actions import HIDING, plan_actions, would_have
from bot.decide import decide
from bot.errors import (
    ConductError,
    InputError,
    PlatformError,
    PolicyError,
    PolicyProblem,
    RateLimited,
    Unavailable,
    UnsupportedAction,
)
from bot.metrics import Metrics
from bot.models import (
    SHADOW_CASE,
    Action,
    ActionKind,
    ActionStatus,
    CaseState,
    Category,
    Member,
    MemberStatus,
    Message,
    Mode,
    Platform,
    Role,
    RuleHit,
    ScoreSet,
    Verdict,
    VerdictAction,
)
from bot.modlog import modlog_lines
from bot.platform import PlatformPort
from bot.policy import Policy, load_policy
from bot.scoring.base import Batcher
from bot.scoring.rules import RuleScorer
from bot.spam import SpamCheck, SpamCounts, plan_raid, plan_raid_join, spam_check, spam_keys
from bot.spam import windows as spam_windows
from bot.standing import (
    LadderStep,
    counted_strikes,
    crossed_step,
    decayed_points,
    fired_steps,
    format_duration,
)
from bot.store import CaseDraft, StaleStanding, Store, standing_token
from bot.store.store import OUTBOX_LEASE

log = logging.getLogger(__name__)

#: How often a message is decided again when another process keeps changing its author's
#: strikes meanwhile (each try re-reads them).
STALE_RETRIES = 8
_T = TypeVar("_T")

#: Slack's own limit on a message; Discord's is 4,000. Anything longer is not a real message.
MAX_TEXT_CHARS = 40_000
#: A rate-limited or unavailable action is tried this many times before it is reported failed.
MAX_ATTEMPTS = 5
#: How long an accepted message may wait in the inbox before any process's outbox sweep
#: decides it (`Moderator.orphaned`): far longer than deciding takes, even behind a backlog.
INBOX_ORPHAN = timedelta(minutes=1)
#: A member's spam (floods, duplicates, raids) earns strike points at most this often.
SPAM_STRIKE_EVERY = timedelta(hours=1)
#: The least the outbox sweep waits for a row falling due.
SWEEP_FLOOR = 0.5
#: The first wait before an action the platform could not do for now (a 5xx, a dropped
#: connection) is tried again; it doubles each time.
RETRY_WAIT = timedelta(seconds=30)


#: The kind of case an automatic verdict opens, unless it escalates.
_CASE_KINDS = {VerdictAction.WARN: "warning", VerdictAction.HIDE: "hide"}

#: Roles whose members are protected persons (replying to them counts as naming them).
PROTECTED_ROLES = frozenset({Role.MP, Role.COUNCILLOR, Role.STAFF})


@dataclass(frozen=True, slots=True)
class Handled:
    """The outcome of one message: who wrote it, what matched, the verdict, the outbox rows."""

    message: Message
    member: Member
    hits: tuple[RuleHit, ...]
    verdict: Verdict
    actions: tuple[Action, ...]
    case_id: int | None = None
    ladder: LadderStep | None = None


class _Active(NamedTuple):
    """The policy in force and its compiled rules, swapped together by a reload."""

    policy: Policy
    rules: RuleScorer


class _Scored(NamedTuple):
    """A chunk of messages, the policy its rules ran under, and, by id(), the scores and rule
    hits of those not yet decided."""

    messages: Sequence[Message]
    active: _Active
    scored: dict[int, tuple[ScoreSet, tuple[RuleHit, ...]]]


async def _aiter(items: AsyncIterable[_T] | Iterable[_T]) -> AsyncIterator[_T]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


def _reason(exc: BaseException) -> str:
    """What went wrong, for the inbox row: the error's own words for the project's errors,
    the exception type only for anything else (its text could quote the message)."""
    return str(exc) if isinstance(exc, ConductError) else type(exc).__name__


class Moderator:
    """The only orchestrator: adapters hand it messages and execute what it leaves in the outbox."""

    def __init__(self, *, store: Store, policy: Policy, scorer: Batcher,
                 metrics: Metrics | None = None) -> None:
        self.store = store
        #: Where messages, verdicts and outbox results are counted (by default a registry
        #: of its own; `bot.py run` shares one with the Batcher and serves it).
        self.metrics = metrics or Metrics()
        store.policy_version = policy.version
        self.scorer = scorer
        self._active = _Active(policy, RuleScorer(policy))
        # One outbox run per platform at a time, so no row is executed twice.
        self._outbox_locks: dict[Platform, asyncio.Lock] = {}
        self._reloading = asyncio.Lock()
        #: One decision at a time per author in this process: each reads the standing the
        #: previous one wrote (another process's are caught by `Store.record`'s check).
        self._deciding: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = \
            weakref.WeakValueDictionary()
        #: Per platform, the moderators' log channel (`bot.modlog`) its adapter configured:
        #: every outbox run first posts there what the audit log gained since.
        self.modlog_channels: dict[Platform, str] = {}
        #: When this bot started (the moderators' log, switched on, starts here).
        self.started = store.clock()
        #: How long this process holds the outbox rows it claims (see Store.claim_actions).
        self.outbox_lease = OUTBOX_LEASE
        #: Inbox entries this process is deciding now (not orphans, however long they take).
        self._inflight: set[int] = set()

    @property
    def policy(self) -> Policy:
        """The policy in force."""
        return self._active.policy

    @property
    def rules(self) -> RuleScorer:
        """The policy's rules, compiled."""
        return self._active.rules

    async def reload_policy(self, path: str | Path | None = None, /, *, actor: str) -> Policy:
        """Read and validate the policy file again (by default the one in force) and switch
        to it atomically: a message is decided wholly under the old policy or wholly under
        the new. On any problem the running policy stays and the PolicyError says why. Both
        outcomes are audited; every verdict keeps the version it was decided under."""
        async with self._reloading:
            old = self.policy
            file = str(path if path is not None else old.file)
            try:
                # Compiling the rules takes a while: off the event loop.
                policy, rules = await asyncio.to_thread(_compiled, file)
                if policy.version == old.version and policy != old:
                    raise PolicyError(file, [PolicyProblem(
                        f"the policy changed but its version is still {old.version!r}: give "
                        "it a new version, so verdicts under the two can be told apart",
                        path="version")])
            except PolicyError as exc:
                await self.store.audit(actor=actor, action="policy:reload-refused",
                                       reason=str(exc).splitlines()[0],
                                       policy_version=old.version,
                                       detail={"file": file, "problems": [
                                           str(p) for p in exc.problems][:20]})
                log.error("policy reload refused; %s stays in force: %s", old.version, exc)
                raise
            self._active = _Active(policy, rules)
            self.store.policy_version = policy.version
            await self.store.audit(actor=actor, action="policy:reload",
                                   policy_version=policy.version,
                                   reason=f"{old.version} -> {policy.version}",
                                   detail={"file": file, "from": old.version,
                                           "to": policy.version, "mode": str(policy.mode)})
            log.info("policy reloaded from %s: %s -> %s", file, old.version, policy.version)
            return policy

    @staticmethod
    def check(message: Message, /) -> None:
        """Refuse a message that cannot be moderated, with an InputError saying why."""
        if not message.text.strip():
            raise InputError(f"message {message.id} has no text to moderate")
        if len(message.text) > MAX_TEXT_CHARS:
            raise InputError(f"message {message.id} is {len(message.text):,} characters, over "
                             f"the {MAX_TEXT_CHARS:,} any platform allows")

    # -- the durable inbox: accepted before the platform is told, decided from there ----------

    async def accept(self, message: Message, /) -> int | None:
        """Keep a delivered message in the store's inbox before the platform is told it
        arrived, so a stop (SIGTERM, a crash) loses nothing; its inbox id, or None for a
        redelivery. InputError for a message that cannot be moderated."""
        self.check(message)
        return await self.store.inbox_put(message)

    async def decide_accepted(self, entry: int, message: Message, /) -> Handled | None:
        """Decide an accepted message and take it out of the inbox. A failure is raised and
        the message stays, to be tried again at the next start or sweep (`orphaned`), at most
        MAX_ATTEMPTS times."""
        self._inflight.add(entry)
        try:
            handled = await self.handle(message)
        except Exception as exc:
            attempts = await self.store.inbox_failed(entry, reason=_reason(exc))
            if attempts >= MAX_ATTEMPTS:
                log.error("%s failed %d times; it stays in the inbox for an operator",
                          message.key, attempts)
            raise
        finally:
            self._inflight.discard(entry)
        await self.store.inbox_done(entry)
        return handled

    async def orphaned(self, platform: Platform, /) -> list[tuple[int, Message]]:
        """Accepted messages that have waited in the inbox over INBOX_ORPHAN and that this
        process is not deciding: another process accepted them and died (a standby that got
        the same event found it kept, and left it), or deciding them failed here (tried again
        now, at most MAX_ATTEMPTS times in all). Deciding one twice is harmless: the store
        records a message's verdict once."""
        waiting = await self.store.inbox_waiting(
            platform, max_attempts=MAX_ATTEMPTS,
            received_before=self.store.clock() - INBOX_ORPHAN)
        found = [(entry, message) for entry, message in waiting if entry not in self._inflight]
        if found:
            log.info("%s: deciding %d message(s) left waiting in the inbox", platform,
                     len(found))
        return found

    async def waiting(self, platform: Platform, /) -> list[tuple[int, Message]]:
        """Accepted messages a stop left undecided, oldest first (said in the log)."""
        waiting = await self.store.inbox_waiting(platform, max_attempts=MAX_ATTEMPTS)
        if waiting:
            log.info("%s: deciding %d message(s) accepted before the last stop", platform,
                     len(waiting))
        return waiting

    async def handle(self, message: Message, /) -> Handled | None:
        """Decide one message; None when this revision was already decided (a redelivery)."""
        return (await self.handle_many([message]))[0]

    async def handle_many(self, messages: Sequence[Message], /) -> list[Handled | None]:
        """Decide messages in order, scoring them as one batch; None for redeliveries."""
        return await self._decide_scored(await self._score(messages))

    async def handle_chunks(self, chunks: AsyncIterable[Sequence[Message]] | Iterable[
                                Sequence[Message]], /
                            ) -> AsyncIterator[tuple[Sequence[Message], list[Handled | None]]]:
        """`handle_many` over each chunk in turn, scoring the next chunk while this one is
        decided and recorded (a replay's throughput: the store's work waits on its thread
        while the model computes). Each chunk comes back with its results, in order."""
        scoring: asyncio.Task[_Scored] | None = None
        try:
            async for chunk in _aiter(chunks):
                scored = None if scoring is None else await scoring
                scoring = asyncio.create_task(self._score(chunk))
                if scored is not None:
                    yield scored.messages, await self._decide_scored(scored)
            if scoring is not None:
                scored, scoring = await scoring, None
                yield scored.messages, await self._decide_scored(scored)
        finally:
            if scoring is not None:  # the caller stopped early, or deciding failed
                scoring.cancel()

    async def _score(self, messages: Sequence[Message], /) -> _Scored:
        """Scores and rule hits of the messages not yet decided (what needs no state)."""
        for message in messages:
            self.check(message)
        for message in messages:
            self.metrics.received(message.platform)
        started = time.perf_counter()
        decided = await self.store.decided(messages)
        fresh = [m for m in messages if m.key not in decided]
        texts = [m.text for m in fresh]
        active = self._active
        # The rules run in a worker thread while the model scores in its own: the model
        # releases the GIL, so the rules' time hides behind it, and a long message's rules
        # never stall the event loop.
        scores, rule_hits = await asyncio.gather(
            self.scorer.score_many(texts),
            asyncio.to_thread(lambda: [tuple(active.rules.hits(text)) for text in texts]))
        if texts:
            self.metrics.scoring_seconds.observe(time.perf_counter() - started)
        return _Scored(messages, active, dict(zip(
            (id(m) for m in fresh), zip(scores, rule_hits, strict=True), strict=True)))

    async def _decide_scored(self, batch: _Scored, /) -> list[Handled | None]:
        """Decide and record scored messages in order (members, strikes and cases are read
        here, after every earlier message was recorded)."""
        messages, (policy, _), scored = batch
        results: list[Handled | None] = []
        for message in messages:
            found = scored.get(id(message))
            if found is None:
                log.debug("duplicate %s ignored", message.key)
                results.append(None)
                continue
            lock = self._deciding.setdefault((message.platform, message.author), asyncio.Lock())
            async with lock:
                for attempt in range(1, STALE_RETRIES + 1):
                    try:
                        results.append(await self._decide_one(message, *found, policy=policy))
                        break
                    except StaleStanding:
                        # Another process changed this member's strikes while this one
                        # decided: decide again on the standing as it is now.
                        if attempt == STALE_RETRIES:
                            raise
                        log.info("%s: the member's strikes changed meanwhile; deciding again",
                                 message.key)
                        await asyncio.sleep(random.uniform(0, 0.02 * attempt))
        return results

    async def _decide_one(self, message: Message, message_scores: ScoreSet,
                          hits: tuple[RuleHit, ...], /, *, policy: Policy) -> Handled | None:
        """Decide and record one message; None when it was already recorded."""
        member = await self.resolve_member(message.platform, message.author,
                                           display_name=message.author_name)
        points, fired, seen = await self._climb(member.id, policy=policy)
        standing = member.standing(points=points)
        if member.suspended_from and message.sent_at < member.suspended_from:
            # Written before the suspension began (a late delivery or a replay).
            standing = replace(standing, status=MemberStatus.ACTIVE)
        spam = None
        if policy.spam is not None:
            # Whether the message deserves anything without the spam checks: a pile-on
            # counts hostile pings only.
            before = decide(message_scores, hits, policy=policy, standing=standing,
                            channel=message.channel, channel_name=message.channel_name)
            spam = await self._spam(message, member, policy,
                                    hostile=before.action is not VerdictAction.ALLOW)
            hits = (*hits, *spam.hits)
        verdict = decide(message_scores, hits, policy=policy, standing=standing,
                         channel=message.channel, channel_name=message.channel_name,
                         replies_to_protected=await self.replies_to_protected(message))
        planned = plan_actions(message, verdict, policy=policy, hits=hits)
        shadow = verdict.mode is Mode.SHADOW
        # Strikes are for conduct: a suspended member's harmless post is escalated, not
        # counted again. A burst of spam counts once an hour: each hidden message of one
        # flood would otherwise take it up the whole ladder. Shadow mode: no points.
        conduct = set(verdict.categories) - {Category.SANCTIONED}
        if conduct == {Category.SPAM} and await self.store.spam_struck(
                member.id, since=self.store.clock() - SPAM_STRIKE_EVERY):
            conduct = set()
        strike = policy.strikes.points.get(verdict.action, 0.0) \
            if conduct and not shadow else 0.0
        # Review before punishment: an escalation's points wait for a moderator's uphold,
        # so a mistaken one times nobody out.
        pending = bool(strike) and verdict.action is VerdictAction.ESCALATE and \
            policy.strikes.escalation_points == "on_uphold"
        step = None if pending else crossed_step(points, points + strike, fired=fired,
                                                 policy=policy.strikes)
        if step is not None and step.timeout is not None:
            planned.append(self._timeout(message, step.timeout, step.note, policy=policy))
        case = None
        if shadow and planned:
            # Put to the moderators as what the bot would have done; their uphold or
            # dismissal feeds the calibration figures, and the member never hears of it.
            case = CaseDraft(
                kind=SHADOW_CASE, summary=f"shadow mode: {would_have(verdict.action)} "
                f"under clause {verdict.clause} ({verdict.clause_title})",
                opened_by="bot", priority=verdict.priority, clause=verdict.clause,
                automatic=True, state=CaseState.OPEN)
        elif verdict.action is not VerdictAction.ALLOW and not shadow:
            # Every action against a member is a case: its number is in the notice, and
            # the member can appeal it; only escalations wait in the queue.
            ladder = f"; ladder at {round(points + strike, 1):g} points: {step.note}" \
                if step else ""
            escalated = verdict.action is VerdictAction.ESCALATE or bool(
                step and step.escalate)
            case = CaseDraft(
                kind="escalation" if escalated else _CASE_KINDS[verdict.action],
                summary=f"{verdict.action} under clause {verdict.clause} "
                        f"({verdict.clause_title}){ladder}",
                opened_by="bot", priority=verdict.priority, clause=verdict.clause,
                automatic=True, state=CaseState.OPEN if escalated else CaseState.UPHELD)
        recorded = await self.store.record(message, member, verdict, planned,
                                           strike=strike, strike_pending=pending,
                                           step=step.points if step else None, case=case,
                                           spam_events=spam.events if spam else (),
                                           standing=seen)
        if recorded is not None and spam is not None and not shadow:
            # Shadow mode does nothing to members: no raid response either.
            if spam.starts_raid:
                await self._start_raid(message, policy)
            elif spam.raid is not None and spam.new_account:
                await self._join_raid(message, member, spam.raid, policy)
        if recorded is not None:
            self.metrics.decided(message.platform, action=verdict.action, mode=verdict.mode)
        # None: the same revision came twice in this batch or another delivery won the race.
        return None if recorded is None else Handled(message, member, hits, verdict,
                                                     recorded.actions, recorded.case_id, step)

    async def _spam(self, message: Message, member: Member, policy: Policy, *,
                    hostile: bool) -> SpamCheck:
        """The `[spam]` checks for a message: its counts from the store (one query; a second
        only when it pings accounts in a hostile message and pile-ons are checked). An edit
        is checked for what it holds (links, mentions) but counts towards nothing: the
        message was counted when it was posted."""
        assert policy.spam is not None
        spam = policy.spam
        protected = await self.store.protected_accounts(
            message.platform, message.mentions, roles=PROTECTED_ROLES) \
            if hostile and message.mentions and spam.pile_on else []
        keys = spam_keys(message, policy=spam, protected_accounts=protected, hostile=hostile)
        if message.revision:
            counts = SpamCounts(first_seen=message.sent_at, history_start=message.sent_at)
            return replace(spam_check(message, member, keys, counts, policy=spam), events=())
        counts = SpamCounts(**await self.store.spam_counts(
            member.id, at=message.sent_at, channel=keys.channel, fingerprint=keys.fingerprint,
            targets=keys.targets, platform=message.platform, channel_id=message.channel,
            windows=spam_windows(spam)))
        return spam_check(message, member, keys, counts, policy=spam)

    async def _join_raid(self, message: Message, member: Member, raid: int,
                         policy: Policy) -> None:
        """A new account posting in a channel under a raid joins it: timed out like the
        others, and freed with them when a moderator ends the raid."""
        assert policy.spam is not None
        await self.store.join_raid(
            raid, (f"{member.display_name} ({member.id})", message.author),
            actions=plan_raid_join(message, message.author, raid_id=raid, policy=policy.spam,
                                   now=self.store.clock()))

    async def _start_raid(self, message: Message, policy: Policy) -> None:
        """Open a raid in the message's channel and queue its response (once per raid)."""
        spam = policy.spam
        assert spam is not None and spam.raid is not None
        started = await self.store.start_raid(
            platform=message.platform, channel=message.channel,
            channel_name=message.channel_name, key=f"{message.platform}:{message.channel}",
            at=message.sent_at, since=message.sent_at - timedelta(seconds=spam.raid.seconds),
            plan=lambda raid, accounts: plan_raid(message, accounts, raid_id=raid, policy=spam,
                                                  now=self.store.clock()))
        if started is not None:
            log.warning("raid %d in %s #%s: the moderators are alerted", started[0],
                        message.platform, message.channel_name or message.channel)

    async def resolve_member(self, platform: Platform, account: str, /, *,
                             display_name: str | None = None) -> Member:
        """The member behind an account; a suspension whose time is up ends here, audited."""
        member = await self.store.member_for(platform, account, display_name=display_name)
        until = member.suspended_until
        if member.status is MemberStatus.SUSPENDED and until and until <= self.store.clock():
            await self.store.set_status(member.id, status=MemberStatus.ACTIVE, actor="bot",
                                        reason="suspension ended")
            member = await self.store.member_for(platform, account)
        return member

    async def points(self, member_id: str, /, *, confirming: int | None = None) -> float:
        """A member's strike points now, after decay; with `confirming`, as they will be once
        that case's strikes awaiting review count."""
        return (await self.climb(member_id, confirming=confirming))[0]

    async def climb(self, member_id: str, /, *, confirming: int | None = None,
                    policy: Policy | None = None) -> tuple[float, frozenset[float]]:
        """A member's points now (as `points`) and the ladder steps this climb has fired,
        under `policy`'s strike rules (by default the policy in force)."""
        points, fired, _ = await self._climb(member_id, confirming=confirming, policy=policy)
        return points, fired

    async def _climb(self, member_id: str, /, *, confirming: int | None = None,
                     policy: Policy | None = None
                     ) -> tuple[float, frozenset[float], tuple[Any, ...]]:
        """`climb`, with the `standing_token` of the strikes it read."""
        read = await self.store.strikes(member_id)
        strikes = [s | {"pending": 0} if confirming is not None and s["case_id"] == confirming
                   else s for s in read]
        now, ladder = self.store.clock(), (policy or self.policy).strikes
        return (decayed_points(counted_strikes(strikes, now=now, policy=ladder), now=now,
                               policy=ladder),
                fired_steps(strikes, now=now, policy=ladder), standing_token(read))

    async def replies_to_protected(self, message: Message, /) -> bool:
        """Whether `message` answers one written by an MP, councillor or member of staff
        (which counts like naming them)."""
        if message.reply_to is None:
            return False
        parent = await self.store.message_row(message.platform, message.reply_to)
        if parent is None or parent["member_id"] is None:
            return False
        author = await self.store.get_member(parent["member_id"])
        return author is not None and bool(author.roles & PROTECTED_ROLES)

    def _timeout(self, message: Message, duration: timedelta, reason: str, *,
                 policy: Policy) -> Action:
        until = self.store.clock() + duration
        return Action(kind=ActionKind.TIMEOUT, platform=message.platform,
                      channel=message.channel, user=message.author,
                      payload={"until": until.isoformat(), "duration": format_duration(duration),
                               "reason": reason, "policy_version": policy.version})

    async def run_outbox(self, port: PlatformPort, /, *, limit: int = 100) -> list[Action]:
        """Execute pending outbox rows for the port's platform; write each result back.

        Runs for one platform are serialised: an event and the periodic sweep never execute
        the same row twice.
        """
        async with self._outbox_lock(port.platform):
            channel = self.modlog_channels.get(port.platform)
            if channel is not None:  # what the audit log gained since, first
                await self.store.queue_modlog(
                    port.platform, channel, since=self.started, render=partial(
                        modlog_lines, tz=ZoneInfo(self.policy.sanctions.timezone)))
            return await self._run_outbox(port, limit=limit)

    def _outbox_lock(self, platform: Platform) -> asyncio.Lock:
        return self._outbox_locks.setdefault(platform, asyncio.Lock())

    async def outbox_idle(self, platform: Platform, /) -> None:
        """Wait until no outbox run for `platform` is in progress."""
        async with self._outbox_lock(platform):
            pass

    async def sweep_outbox(self, port: PlatformPort, /, *, every: float,
                           before: Callable[[], Awaitable[None]] | None = None,
                           orphans: Callable[[int, Message], Awaitable[None]] | None = None
                           ) -> None:
        """Run the port's outbox at once (what a stop left pending goes out at start), then
        every `every` seconds until cancelled, waking sooner when a row told to wait (a
        rate-limited retry, a Slack timeout's end, the weekly digest) falls due. With
        `orphans` (the adapter's way of deciding an accepted message), each sweep first
        decides the inbox's `orphaned` messages."""
        while True:
            try:
                if before is not None:
                    await before()
                if orphans is not None:
                    for entry, message in await self.orphaned(port.platform):
                        await orphans(entry, message)
                await self.run_outbox(port)
                due = await self.store.next_due(port.platform)
            except ConductError as exc:  # keep sweeping; the rows stay pending
                log.error("%s: outbox sweep failed: %s", port.platform, exc)
                due = None
            wait = every
            if due is not None:
                # Not less than a moment: a due row that must still wait (a notice whose
                # deletion is rate limited) would otherwise spin the loop.
                wait = min(every, max(SWEEP_FLOOR, (due - self.store.clock()).total_seconds()))
            await asyncio.sleep(wait)

    async def grant_roles(self, platform: Platform, account: str, roles: frozenset[Role], /,
                          *, actor: str, display_name: str | None = None) -> Member:
        """Add roles a platform vouches for (a Discord role, a Slack list); never removes one:
        the party's register stays the authority."""
        member = await self.resolve_member(platform, account, display_name=display_name)
        if not roles <= member.roles:
            await self.store.set_roles(member.id, member.roles | roles, actor=actor)
            member = await self.resolve_member(platform, account)
        return member

    async def _run_outbox(self, port: PlatformPort, /, *, limit: int) -> list[Action]:
        # Claimed for this process: another bot process on the same database skips them.
        pending = await self.store.claim_actions(port.platform, limit=limit,
                                                 lease=self.outbox_lease)
        done: list[Action] = []
        for action in pending:
            assert action.id is not None
            if not await self._notice_may_go(action):
                await self.store.release_action(action.id)  # another run takes it up
                continue
            try:
                await _dispatch(port, action)
            except RateLimited as exc:
                if action.attempts + 1 >= MAX_ATTEMPTS:
                    await self.store.mark_action(action.id, status=ActionStatus.FAILED,
                                                 error=f"rate limited {MAX_ATTEMPTS} times: {exc}")
                    self._executed(action, "failed", exc)
                else:
                    retry = self.store.clock() + timedelta(seconds=exc.retry_after)
                    await self.store.mark_action(action.id, status=ActionStatus.PENDING,
                                                 error=str(exc), retry_at=retry)
                    self._executed(action, "retry", exc)
                continue
            except UnsupportedAction as exc:
                log.warning("%s cannot %s: %s", port.platform, action.kind, exc)
                await self.store.mark_action(action.id, status=ActionStatus.UNSUPPORTED,
                                             error=str(exc))
                self._executed(action, "unsupported", exc)
                if action.kind is ActionKind.ESCALATE:
                    await self._escalation_lost(action, str(exc))
                continue
            except PlatformError as exc:
                if isinstance(exc, Unavailable) and action.attempts + 1 < MAX_ATTEMPTS:
                    # A 5xx or a dropped connection: tried again with a doubling wait before
                    # it is given up (an escalation then goes to the moderators another way).
                    retry = self.store.clock() + RETRY_WAIT * 2 ** action.attempts
                    await self.store.mark_action(action.id, status=ActionStatus.PENDING,
                                                 error=str(exc), retry_at=retry)
                    self._executed(action, "retry", exc)
                    continue
                log.error("%s %s failed permanently: %s", port.platform, action.kind, exc)
                await self.store.mark_action(action.id, status=ActionStatus.FAILED,
                                             error=f"{type(exc).__name__}: {exc}")
                self._executed(action, "failed", exc)
                if action.kind is ActionKind.ESCALATE:
                    await self._escalation_lost(action, f"{type(exc).__name__}: {exc}")
                continue
            await self.store.mark_action(action.id, status=ActionStatus.DONE)
            self._executed(action, "done")
            done.append(action)
        return done

    def _executed(self, action: Action, outcome: str, error: PlatformError | None = None
                  ) -> None:
        """Count an outbox row's result (as written back) and the platform's error, if any."""
        self.metrics.executed(action.platform, kind=action.kind, outcome=outcome, error=error)

    async def _escalation_lost(self, action: Action, error: str) -> None:
        """An escalation that could not be posted goes to each moderator directly (a DM on the
        same platform), so a case is never known only to a log."""
        case = action.payload.get("case")
        moderators = await self.store.moderator_accounts(action.platform)
        text = (f"Case {case if case is not None else '-'} could not be posted to the "
                f"moderators' channel ({error}). Clause {action.payload.get('clause') or '-'} "
                f"{action.payload.get('clause_title') or ''}, in "
                f"#{action.payload.get('channel_name') or action.channel or '-'}. Open it with "
                f"`case {case}`; `queue` lists every open case.")
        notices = [Action(kind=ActionKind.NOTIFY, platform=action.platform, user=account,
                          payload={"text": text}) for account in moderators]
        if not notices:
            log.error("%s: case %s could not be escalated (%s) and no moderator has an account "
                      "there to tell", action.platform, case, error)
            return
        await self.store.enqueue(notices, case_id=case if isinstance(case, int) else None)

    async def _notice_may_go(self, action: Action) -> bool:
        """Whether `action` may be executed now. A notice saying the message was hidden waits
        for its case's deletion to succeed; if the deletion failed for good the notice is
        never sent and the moderators are told instead (an unsupported deletion is reported
        by the adapter itself, as Slack does without a user token)."""
        case = action.payload.get("case")
        if action.kind is not ActionKind.NOTIFY or not isinstance(case, int) or \
                action.payload.get("action") not in HIDING:
            return True
        deletes = [a for a in await self.store.actions(case_id=case)
                   if a.kind is ActionKind.DELETE]
        if all(d.status is ActionStatus.DONE for d in deletes):
            return True
        lost = [d for d in deletes if d.status in (ActionStatus.FAILED, ActionStatus.UNSUPPORTED)]
        if not lost:
            return False  # the deletion is still to come (rate limited): the notice waits
        assert action.id is not None
        await self.store.mark_action(action.id, status=ActionStatus.CANCELLED,
                                     error=f"not sent: the message was not hidden "
                                           f"({lost[0].error})")
        self._executed(action, "cancelled")
        failed = next((d for d in lost if d.status is ActionStatus.FAILED), None)
        if failed is not None:
            await self._report_failed_delete(case, failed)
        return False

    async def _report_failed_delete(self, case_id: int, delete: Action) -> None:
        """Put the case in front of the moderators: the bot could not hide the message."""
        row = await self.store.message_row(delete.platform, delete.message_id or "")
        case = await self.store.get_case(case_id)
        why = (f"The bot could not hide this message ({delete.error}); the member was not told "
               f"it was hidden. Please delete it by hand.")
        escalate = Action(kind=ActionKind.ESCALATE, platform=delete.platform,
                          channel=delete.channel, message_id=delete.message_id,
                          user=delete.user, payload={
                              **delete.payload, "reasons": [why], "priority": 1,
                              "excerpt": (row or {}).get("text") or "",
                              "channel_name": (row or {}).get("channel_name") or delete.channel})
        await self.store.update_case(
            case_id, actor="bot", event="delete failed", detail=why, actions=[escalate],
            state=None if case is None or case.state.active else CaseState.OPEN)


def _compiled(file: str) -> _Active:
    """A policy file read, validated and its rules compiled (PolicyError on any problem)."""
    policy = load_policy(file)
    return _Active(policy, RuleScorer(policy))


async def _dispatch(port: PlatformPort, action: Action) -> None:
    match action.kind:
        case ActionKind.DELETE:
            await port.hide(action)
        case ActionKind.NOTIFY:
            await port.notify(action)
        case ActionKind.ESCALATE:
            await port.escalate(action)
        case ActionKind.TIMEOUT:
            await port.timeout(action)
        case ActionKind.SUSPEND:
            await port.suspend(action)
        case ActionKind.RESTORE:
            await port.restore(action)
        case ActionKind.POST:
            await port.post(action)
        case ActionKind.SLOWMODE:
            await port.slowmode(action)
        case ActionKind.ALERT:
            await port.alert(action)
