"""The pipeline: dedupe, resolve the member, score, decide, record; then run the outbox."""

from __future__ import annotations

__all__ = ["MAX_TEXT_CHARS", "Handled", "Moderator"]

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.actions import plan_actions
from bot.decide import decide
from bot.errors import InputError, PlatformError, RateLimited, UnsupportedAction
from bot.models import Action, ActionKind, ActionStatus, Member, Message, RuleHit, Verdict
from bot.platform import PlatformPort
from bot.policy import Policy
from bot.scoring.base import Batcher
from bot.scoring.rules import RuleScorer
from bot.store import Store

log = logging.getLogger(__name__)

#: Slack's own limit on a message; Discord's is 4,000. Anything longer is not a real message.
MAX_TEXT_CHARS = 40_000
#: A rate-limited action is retried this many times before it is reported failed.
MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Handled:
    """The outcome of one message: who wrote it, what matched, the verdict, the outbox rows."""

    message: Message
    member: Member
    hits: tuple[RuleHit, ...]
    verdict: Verdict
    actions: tuple[Action, ...]


class Moderator:
    """The only orchestrator: adapters hand it messages and execute what it leaves in the outbox."""

    def __init__(self, *, store: Store, policy: Policy, scorer: Batcher) -> None:
        self.store = store
        self.policy = policy
        self.scorer = scorer
        self.rules = RuleScorer(policy)

    @staticmethod
    def check(message: Message, /) -> None:
        """Refuse a message that cannot be moderated, with an InputError saying why."""
        if not message.text.strip():
            raise InputError(f"message {message.id} has no text to moderate")
        if len(message.text) > MAX_TEXT_CHARS:
            raise InputError(f"message {message.id} is {len(message.text):,} characters, over "
                             f"the {MAX_TEXT_CHARS:,} any platform allows")

    async def handle(self, message: Message, /) -> Handled | None:
        """Decide one message; None when this revision was already decided (a redelivery)."""
        return (await self.handle_many([message]))[0]

    async def handle_many(self, messages: Sequence[Message], /) -> list[Handled | None]:
        """Decide messages in order, scoring them as one batch; None for redeliveries."""
        for message in messages:
            self.check(message)
        fresh = [m for m in messages if not await self.store.is_decided(m)]
        scored = dict(zip((id(m) for m in fresh),
                          await self.scorer.score_many([m.text for m in fresh]), strict=True))
        results: list[Handled | None] = []
        for message in messages:
            scores = scored.get(id(message))
            if scores is None:
                log.debug("duplicate %s ignored", message.key)
                results.append(None)
                continue
            member = await self.store.member_for(message.platform, message.author,
                                                 display_name=message.author_name)
            hits = tuple(self.rules.hits(message.text))
            verdict = decide(scores, hits, policy=self.policy, standing=member.standing,
                             channel=message.channel, channel_name=message.channel_name)
            planned = plan_actions(message, verdict, policy=self.policy)
            recorded = await self.store.record(message, member, verdict, planned)
            # None: the same revision came twice in this batch or another delivery won the race.
            results.append(None if recorded is None else
                           Handled(message, member, hits, verdict, recorded.actions))
        return results

    async def run_outbox(self, port: PlatformPort, /, *, limit: int = 100) -> list[Action]:
        """Execute pending outbox rows for the port's platform; write each result back."""
        pending = await self.store.pending_actions(platform=port.platform, limit=limit)
        done: list[Action] = []
        for action in pending:
            assert action.id is not None
            try:
                await _dispatch(port, action)
            except RateLimited as exc:
                if action.attempts + 1 >= MAX_ATTEMPTS:
                    await self.store.mark_action(action.id, status=ActionStatus.FAILED,
                                                 error=f"rate limited {MAX_ATTEMPTS} times: {exc}")
                else:
                    retry = self.store.clock() + timedelta(seconds=exc.retry_after)
                    await self.store.mark_action(action.id, status=ActionStatus.PENDING,
                                                 error=str(exc), retry_at=retry)
                continue
            except UnsupportedAction as exc:
                log.warning("%s cannot %s: %s", port.platform, action.kind, exc)
                await self.store.mark_action(action.id, status=ActionStatus.UNSUPPORTED,
                                             error=str(exc))
                continue
            except PlatformError as exc:
                log.error("%s %s failed permanently: %s", port.platform, action.kind, exc)
                await self.store.mark_action(action.id, status=ActionStatus.FAILED,
                                             error=f"{type(exc).__name__}: {exc}")
                continue
            await self.store.mark_action(action.id, status=ActionStatus.DONE)
            done.append(action)
        return done


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
        case ActionKind.POST:
            await port.post(action)
