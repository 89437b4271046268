"""Message -> verdict -> outbox -> platform, through Moderator with a deterministic scorer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from adapters.console import ConsolePort
from bot.errors import InputError, PermissionDenied, RateLimited, UnsupportedAction
from bot.models import Action, ActionKind, ActionStatus, MemberStatus, Message, Platform
from bot.moderator import MAX_TEXT_CHARS, Moderator
from bot.policy import Policy
from bot.scoring import Batcher
from bot.store import Store
from tests.conftest import KeywordScorer

WHEN = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def msg(mid: str, text: str, *, author: str = "u1", channel: str = "general",
        revision: int = 0, platform: Platform = Platform.DISCORD) -> Message:
    return Message(platform, mid, channel, author, text, WHEN, revision=revision,
                   channel_name=channel)


@pytest.fixture
async def moderator(store: Store, test_policy: Policy, scorer: KeywordScorer):  # type: ignore[no-untyped-def]
    async with Batcher(scorer, max_batch=8) as batcher:
        yield Moderator(store=store, policy=test_policy, scorer=batcher)


async def test_acceptable_message_has_no_actions(moderator: Moderator) -> None:
    handled = await moderator.handle(msg("1", "Great canvassing session in Leeds today"))
    assert handled is not None
    assert handled.verdict.action == "allow" and handled.actions == ()


async def test_abusive_message_is_hidden_noticed_and_escalated(moderator: Moderator) -> None:
    handled = await moderator.handle(msg("1", "immigrants are vermin"))
    assert handled is not None
    assert handled.verdict.action == "escalate" and handled.verdict.clause == "1.2"
    # its 3 strike points wait for a moderator's review: no timeout before anyone has looked
    assert [a.kind for a in handled.actions] == ["delete", "notify", "escalate"]
    notice = handled.actions[1].payload["text"]
    assert "clause 1.2 (No discrimination or hate)" in notice
    assert "> immigrants are vermin" in notice  # their text, given back to fix and repost
    port = ConsolePort(Platform.DISCORD)
    done = await moderator.run_outbox(port)
    assert [a.kind for a in port.performed] == ["delete", "notify", "escalate"]
    assert len(done) == 3
    assert await moderator.store.pending_actions() == []


async def test_incivility_is_warned_without_deleting(moderator: Moderator) -> None:
    handled = await moderator.handle(msg("1", "you idiot"))
    assert handled is not None
    assert handled.verdict.action == "warn"
    assert [a.kind for a in handled.actions] == ["notify"]
    assert "friendly warning" in handled.actions[0].payload["text"]


async def test_swearing_tolerated_in_debate_channel_only(moderator: Moderator) -> None:
    general = await moderator.handle(msg("1", "bleeding obvious nonsense"))
    debate = await moderator.handle(msg("2", "bleeding obvious nonsense",
                                        channel="policy-debate"))
    assert general is not None and debate is not None
    assert general.verdict.action == "warn"
    assert debate.verdict.action == "allow"


async def test_a_message_delivered_twice_is_decided_once(moderator: Moderator) -> None:
    first = await moderator.handle(msg("1", "you idiot"))
    again = await moderator.handle(msg("1", "you idiot"))
    assert first is not None and again is None
    assert len(await moderator.store.actions()) == 1


async def test_concurrent_redeliveries_are_decided_once(moderator: Moderator) -> None:
    results = await asyncio.gather(*(moderator.handle(msg("1", "you idiot")) for _ in range(5)))
    assert sum(r is not None for r in results) == 1
    assert len(await moderator.store.actions()) == 1


async def test_an_edit_is_a_new_revision_and_rescored(moderator: Moderator) -> None:
    first = await moderator.handle(msg("1", "I disagree with this"))
    edit = await moderator.handle(msg("1", "I disagree, you idiot", revision=1))
    assert first is not None and edit is not None
    assert (first.verdict.action, edit.verdict.action) == ("allow", "warn")


async def test_batch_is_scored_in_one_call_and_decided_in_order(
        moderator: Moderator, scorer: KeywordScorer) -> None:
    messages = [msg(str(i), f"message {i}") for i in range(6)]
    results = await moderator.handle_many(messages)
    assert [r.message.id for r in results if r] == [str(i) for i in range(6)]
    assert scorer.batches == [6]


async def test_suspended_member_post_is_escalated(moderator: Moderator) -> None:
    member = await moderator.store.member_for(Platform.SLACK, "U9")
    await moderator.store.set_status(member.id, status=MemberStatus.SUSPENDED, actor="test",
                                     reason="abuse")
    handled = await moderator.handle(msg("1", "Lovely weather for leafleting", author="U9",
                                         platform=Platform.SLACK))
    assert handled is not None
    assert handled.verdict.action == "escalate" and handled.verdict.clause == "2.1"
    assert handled.verdict.priority == 2


async def test_harassment_of_protected_person_escalates(moderator: Moderator) -> None:
    criticism = await moderator.handle(msg("1", "Rachel Adler voted the wrong way on housing"))
    abuse = await moderator.handle(msg("2", "Rachel Adler is an idiot"))
    assert criticism is not None and abuse is not None
    assert criticism.verdict.action == "allow"
    assert abuse.verdict.action == "escalate" and abuse.verdict.clause == "1.4"
    assert "protected:adler" in abuse.verdict.rule_ids


@pytest.mark.parametrize("text", ["", "   \n ", "x" * (MAX_TEXT_CHARS + 1)])
async def test_unusable_text_is_refused_and_nothing_stored(moderator: Moderator,
                                                           text: str) -> None:
    with pytest.raises(InputError):
        await moderator.handle(msg("1", text))
    assert not await moderator.store.is_decided(msg("1", text))
    assert await moderator.store.actions() == []


class FlakyPort(ConsolePort):
    """Fails each kind of action in a different way, as real platforms do."""

    async def hide(self, action: Action, /) -> None:
        raise PermissionDenied("Missing Permissions", platform="discord", action="delete")

    async def notify(self, action: Action, /) -> None:
        raise RateLimited("slow down", platform="discord", action="notify", retry_after=30)

    async def escalate(self, action: Action, /) -> None:
        raise UnsupportedAction("no moderators channel", platform="discord", action="escalate")


async def test_platform_failures_are_written_back_not_lost(moderator: Moderator) -> None:
    await moderator.handle(msg("1", "immigrants are vermin"))
    await moderator.handle(msg("2", "you idiot"))
    done = await moderator.run_outbox(FlakyPort(Platform.DISCORD))
    assert done == []
    rows = await moderator.store.actions()
    delete, hidden_notice, escalate, warning = rows[:4]
    assert delete.status is ActionStatus.FAILED
    assert "PermissionDenied" in (delete.error or "")
    # "your message was hidden" is never sent for a message still up; moderators are told
    assert hidden_notice.status is ActionStatus.CANCELLED
    assert escalate.status is ActionStatus.UNSUPPORTED
    (report,) = rows[4:]
    assert report.kind is ActionKind.ESCALATE and report.status is ActionStatus.PENDING
    assert "could not hide this message" in report.payload["reasons"][0]
    assert report.payload["excerpt"] == "immigrants are vermin"
    assert warning.status is ActionStatus.PENDING  # rate limited: retried after 30 s
    # the rate-limited notice is not retried before its time
    assert [a.id for a in await moderator.store.pending_actions()] == [report.id]


async def test_a_hidden_notice_waits_for_a_rate_limited_delete(moderator: Moderator) -> None:
    class SlowToDelete(ConsolePort):
        calls = 0

        async def hide(self, action: Action, /) -> None:
            SlowToDelete.calls += 1
            if SlowToDelete.calls == 1:
                raise RateLimited("slow down", platform="discord", action="delete",
                                  retry_after=0)
            await super().hide(action)

    await moderator.handle(msg("1", "immigrants are vermin"))
    port = SlowToDelete(Platform.DISCORD)
    await moderator.run_outbox(port)
    assert [a.kind for a in port.performed] == ["escalate"]  # the notice waits
    await moderator.run_outbox(port)
    assert [a.kind for a in port.performed] == ["escalate", "delete", "notify"]


class SlowPort(ConsolePort):
    """Takes a moment per action, as a real platform does."""

    async def _do(self, action: Action) -> None:
        await asyncio.sleep(0.01)
        self.performed.append(action)


async def test_concurrent_outbox_runs_never_execute_a_row_twice(moderator: Moderator) -> None:
    await moderator.handle(msg("1", "immigrants are vermin"))
    port = SlowPort(Platform.DISCORD)
    runs = await asyncio.gather(*(moderator.run_outbox(port) for _ in range(3)))
    assert sorted(len(r) for r in runs) == [0, 0, 3]
    assert len(port.performed) == len({a.id for a in port.performed}) == 3


async def test_chunks_are_decided_in_order_as_one_batch_would_be(
        store: Store, moderator: Moderator) -> None:
    # The next chunk is scored while this one is recorded; standing still builds up in order.
    texts = ["you idiot", "Great canvassing session", "immigrants are vermin", "you idiot"]
    chunks = [[msg(f"{c}{i}", t) for i, t in enumerate(texts)] for c in "abc"]
    chunks.append([msg("a0", "you idiot"), msg("d0", "thanks all")])  # a redelivery
    got = [(chunk, results) async for chunk, results in moderator.handle_chunks(chunks)]
    assert [chunk for chunk, _ in got] == chunks
    actions = [[None if h is None else h.verdict.action for h in results] for _, results in got]
    assert actions[0] == ["warn", "allow", "escalate", "warn"]
    assert actions[3] == [None, "allow"]
    points = [h.ladder for _, results in got for h in results if h is not None and h.ladder]
    assert points, "repeated warnings climbed the strikes ladder across chunks"
    assert len(await store.actions()) == sum(
        len(h.actions) for _, results in got for h in results if h is not None)


async def test_a_bad_chunk_fails_in_order_and_the_next_scoring_is_cancelled(
        moderator: Moderator) -> None:
    chunks = [[msg("1", "fine")], [msg("2", " ")], [msg("3", "fine")]]
    decided = []
    with pytest.raises(InputError, match="no text"):
        async for chunk, _ in moderator.handle_chunks(chunks):
            decided.append(chunk)
    assert decided == chunks[:1]  # the chunk before the bad one was decided, none after
    assert await moderator.store.decided([m for c in chunks for m in c]) == {chunks[0][0].key}

    # Deciding fails while the next chunk is being scored: that scoring is cancelled.
    scoring_started, scoring_cancelled = asyncio.Event(), asyncio.Event()
    score = moderator._score

    async def slow(messages):  # type: ignore[no-untyped-def]
        if messages[0].id == "5":
            scoring_started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                scoring_cancelled.set()
                raise
        return await score(messages)

    async def broken(batch):  # type: ignore[no-untyped-def]
        await scoring_started.wait()
        raise RuntimeError("store down")

    moderator._score = slow  # type: ignore[method-assign]
    moderator._decide_scored = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="store down"):
        async for _ in moderator.handle_chunks([[msg("4", "fine")], [msg("5", "fine")]]):
            pass
    await asyncio.wait_for(scoring_cancelled.wait(), 5)
