"""Members, standing, cases, appeals and the command set, through Moderator and Commands.

A real store on each backend (a SQLite file, a PostgreSQL database), the stable test policy
(ladder 3 / 6 / 10 points, half-life 10 days, two-person sign-off) and a controllable clock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from bot.commands import Commands, Reply
from bot.database import Target
from bot.models import Account, ActionKind, CaseState, MemberStatus, Message, Platform, Role
from bot.moderator import Moderator
from bot.policy import Policy
from bot.scoring import Batcher
from bot.store import Store
from tests.conftest import KeywordScorer

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
KAREN = Account(Platform.CONSOLE, "karen")
OMAR = Account(Platform.SLACK, "UOMAR0001")
MEMBER = Account(Platform.DISCORD, "100000000000000001")


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    moderator: Moderator
    commands: Commands
    clock: Clock
    n: int = 0

    @property
    def store(self) -> Store:
        return self.moderator.store

    async def post(self, text: str, *, account: Account = MEMBER, reply_to: str | None = None,
                   channel: str = "general"):  # type: ignore[no-untyped-def]
        self.n += 1
        message = Message(account.platform, f"msg{self.n}", channel, account.id, text,
                          self.clock(), channel_name=channel, reply_to=reply_to)
        handled = await self.moderator.handle(message)
        assert handled is not None
        return handled

    async def run(self, account: Account, words: str) -> Reply:
        return await self.commands.run(account, words)


@asynccontextmanager
async def open_world(target: Target, policy: Policy) -> AsyncIterator[World]:
    """The store at `target` (a SQLite path or a PostgreSQL URL) under `policy`, with two
    moderators: Karen and Omar."""
    clock = Clock()
    async with Store.open(target, clock=clock) as store, Batcher(KeywordScorer()) as batcher:
        moderator = Moderator(store=store, policy=policy, scorer=batcher)
        for number, name, account in (("M0001", "Karen Lomax", KAREN),
                                      ("M0002", "Omar Haddad", OMAR)):
            await store.import_member(membership_number=number, name=name,
                                      status=MemberStatus.ACTIVE, roles={Role.MODERATOR},
                                      reason=None, suspended_from=None, suspended_until=None,
                                      accounts=[(account.platform, account.id)], actor="test")
        yield World(moderator, Commands(moderator), clock)


@pytest.fixture
async def world(database: Target, test_policy: Policy) -> AsyncIterator[World]:
    async with open_world(database, test_policy) as opened:
        yield opened


async def refusal_only(store: Store, before: int) -> bool:
    """Since `before` entries, the audit log gained exactly one entry: a refusal."""
    entries = await store.audit_entries(limit=10_000)
    return len(entries) == before + 1 and sum(
        e["action"].startswith("refused:") for e in entries) == 1


async def audit_count(store: Store) -> int:
    return len(await store.audit_entries(limit=10_000))


# -- strikes and the ladder ---------------------------------------------------------------------


async def test_repeat_offences_climb_the_ladder_and_decay(world: World) -> None:
    first = await world.post("you idiot")
    second = await world.post("you idiot again")
    assert first.ladder is None and second.ladder is None
    third = await world.post("still an idiot")
    assert third.ladder is not None and third.ladder.note == "cooling-off"
    timeout = [a for a in third.actions if a.kind is ActionKind.TIMEOUT]
    assert len(timeout) == 1 and timeout[0].payload["duration"] == "1h"
    assert third.case_id is not None  # every warning is a case the member can appeal
    case = await world.store.get_case(third.case_id)
    assert case is not None and case.kind == "warning" and case.state is CaseState.UPHELD
    assert "ladder at 3 points: cooling-off" in case.summary

    # a month later the points have decayed (3 -> 3/8): one more warning is no new step
    world.clock.now += timedelta(days=30)
    assert await world.moderator.points(first.member.id) == pytest.approx(0.375)
    later = await world.post("idiot")
    assert later.ladder is None

    # escalations wait for a moderator: their points count once upheld, and then climb:
    # 1.375 + 3 crosses 3 (cooling-off), + 3 more crosses 6 (one-day timeout, review)
    escalations = [await world.post("immigrants are vermin"),
                   await world.post("vermin, all of them")]
    assert [e.ladder for e in escalations] == [None, None]
    assert not any(a.kind is ActionKind.TIMEOUT for e in escalations for a in e.actions)
    assert await world.moderator.points(first.member.id) == pytest.approx(1.375)
    notes = [(await world.run(KAREN, f"resolve {e.case_id} uphold abuse of a group")).text
             for e in escalations]
    assert notes[0] == "abuse of a group. Ladder at 4.4 points: cooling-off."  # rounded
    assert notes[1] == "abuse of a group. Ladder at 7.4 points: review. Consider `suspend`."
    timeouts = [a.payload["duration"] for a in await world.store.actions(
        case_id=escalations[1].case_id) if a.kind is ActionKind.TIMEOUT]
    assert timeouts == ["1d"]


async def test_a_ladder_step_fires_once_per_climb(world: World) -> None:
    for text in ("you idiot", "idiot again", "still an idiot"):
        last = await world.post(text)
    assert last.ladder is not None and last.ladder.note == "cooling-off"
    world.clock.now += timedelta(minutes=1)  # 3 points have decayed to 2.9999
    again = await world.post("idiot, one more time")
    assert again.ladder is None
    assert not any(a.kind is ActionKind.TIMEOUT for a in again.actions)
    # a half-life on (10 days), the points have fallen below 2: a new climb fires it again
    world.clock.now += timedelta(days=10)
    assert await world.moderator.points(last.member.id) == pytest.approx(2, abs=0.01)
    climbing = [await world.post("idiot"), await world.post("idiot")]  # 2.99.., then 3.99..
    assert [h.ladder.note if h.ladder else None for h in climbing] == [None, "cooling-off"]


async def test_escalation_opens_a_case_that_keeps_its_evidence(world: World) -> None:
    handled = await world.post("immigrants are vermin")
    assert handled.case_id is not None
    escalate = next(a for a in handled.actions if a.kind is ActionKind.ESCALATE)
    assert escalate.payload["case"] == handled.case_id  # the moderators' post names the case
    reply = await world.run(KAREN, f"case {handled.case_id}")
    assert reply.ok and "> immigrants are vermin" in reply.text
    assert ("state", "open") in reply.fields
    assert {b.label for b in reply.buttons} >= {"Uphold", "Dismiss"}


# -- suspended members -------------------------------------------------------------------------


async def test_suspended_member_is_escalated_and_priority_when_targeting_protected(
        world: World) -> None:
    member = await world.store.member_for(MEMBER.platform, MEMBER.id)
    await world.store.set_status(member.id, status=MemberStatus.SUSPENDED, actor="test",
                                 reason="abuse", since=START - timedelta(days=1),
                                 until=START + timedelta(days=30))
    quiet = await world.post("Lovely weather for leafleting")
    assert quiet.verdict.action == "escalate" and quiet.verdict.priority == 2
    assert quiet.verdict.clause == "2.1"
    targeting = await world.post("Rachel Adler should resign")
    assert targeting.verdict.action == "escalate" and targeting.verdict.priority == 9
    queue = await world.run(KAREN, "queue")
    assert queue.text.splitlines()[0].startswith(f"#{targeting.case_id} [p9]")


async def test_a_reply_to_a_representative_counts_as_naming_them(world: World) -> None:
    mp = Account(Platform.DISCORD, "100000000000000099")
    await world.store.import_member(membership_number="M0099", name="Rachel Adler",
                                    status=MemberStatus.ACTIVE, roles={Role.MP}, reason=None,
                                    suspended_from=None, suspended_until=None,
                                    accounts=[(mp.platform, mp.id)], actor="test")
    statement = await world.post("Our housing plan, published today", account=mp)
    rude = await world.post("what an idiot", reply_to=statement.message.id)
    assert rude.verdict.action == "escalate" and rude.verdict.clause == "1.4"


async def test_a_suspension_ends_by_itself(world: World) -> None:
    member = await world.store.member_for(MEMBER.platform, MEMBER.id)
    await world.store.set_status(member.id, status=MemberStatus.SUSPENDED, actor="test",
                                 reason="abuse", since=START, until=START + timedelta(days=7))
    world.clock.now += timedelta(days=8)
    handled = await world.post("Back and behaving")
    assert handled.member.status is MemberStatus.ACTIVE
    assert handled.verdict.action == "allow"
    ended = await world.store.audit_entries(member_id=member.id, action="status:active")
    assert ended and ended[0]["actor"] == "bot" and ended[0]["reason"] == "suspension ended"


# -- identity ----------------------------------------------------------------------------------


async def test_a_member_linked_on_two_platforms_has_one_record(world: World) -> None:
    slack = Account(Platform.SLACK, "UMEMBER001")
    on_discord = await world.post("you idiot")
    on_slack = await world.post("you idiot", account=slack)
    assert on_discord.member.id != on_slack.member.id  # not linked yet: two records
    reply = await world.run(KAREN, f"link discord:{MEMBER.id} slack {slack.id}")
    assert reply.ok and "merged" in reply.text
    after = await world.post("idiot, thrice", account=slack)
    assert after.member.id == on_discord.member.id
    assert after.ladder is not None  # 1 + 1 + 1: the strikes of both platforms add up
    history = await world.run(KAREN, f"history discord:{MEMBER.id}")
    assert ("strikes", "3 (0 pardoned)") in history.fields


async def test_linking_an_account_of_another_registered_member_is_refused(world: World) -> None:
    before = await audit_count(world.store)
    reply = await world.run(KAREN, f"link M0002 console {KAREN.id}")
    assert not reply.ok and "already linked to another member" in reply.text
    assert await refusal_only(world.store, before)
    karen = (await world.store.find_members("M0001"))[0]
    assert KAREN in karen.accounts


# -- two-person sign-off --------------------------------------------------------------------


async def test_suspension_needs_a_second_moderator(world: World) -> None:
    await world.post("hello")  # the member exists
    proposed = await world.run(KAREN, f"suspend discord:{MEMBER.id} 14d repeated abuse")
    assert proposed.ok and "must confirm" in proposed.text
    case_id = int(proposed.title.split("case ")[1].rstrip(")"))
    member = (await world.store.find_members(f"discord:{MEMBER.id}"))[0]
    assert member.status is MemberStatus.ACTIVE  # not yet

    own = await world.run(KAREN, f"confirm {case_id}")
    assert not own.ok and "second moderator" in own.text
    confirmed = await world.run(OMAR, f"confirm {case_id}")
    assert confirmed.ok
    member = (await world.store.find_members(f"discord:{MEMBER.id}"))[0]
    assert member.status is MemberStatus.SUSPENDED
    assert member.suspended_until == START + timedelta(days=14)
    suspend = [a for a in await world.store.actions() if a.kind is ActionKind.SUSPEND]
    assert [(a.platform, a.user) for a in suspend] == [(MEMBER.platform, MEMBER.id)]
    case = await world.store.get_case(case_id)
    assert case is not None and case.state is CaseState.UPHELD
    events = [e["event"] for e in await world.store.case_events(case_id)]
    assert events == ["opened", "confirmed"]
    again = await world.run(OMAR, f"confirm {case_id}")
    assert not again.ok


# -- appeals -----------------------------------------------------------------------------------


async def test_a_member_appeals_once_and_sees_the_outcome(world: World) -> None:
    handled = await world.post("immigrants are vermin")
    case_id = handled.case_id
    other = await world.run(Account(Platform.DISCORD, "100000000000000002"),
                            f"appeal {case_id} not me")
    assert not other.ok and "not about you" in other.text
    appeal = await world.run(MEMBER, f"appeal {case_id} I was quoting a leaflet to condemn it")
    assert appeal.ok
    twice = await world.run(MEMBER, f"appeal {case_id} again")
    assert not twice.ok and "already been appealed" in twice.text
    queue = await world.run(KAREN, "queue")
    assert f"#{case_id}" in queue.text and "appealed" in queue.text
    granted = await world.run(OMAR, f"resolve {case_id} dismiss quoted to condemn it")
    assert granted.ok and "overturn" in granted.text
    case = await world.store.get_case(case_id)  # type: ignore[arg-type]
    assert case is not None and case.state is CaseState.DISMISSED
    assert case.appeal_outcome == "appeal granted: quoted to condemn it"
    assert await world.moderator.points(handled.member.id) == 0  # strikes pardoned
    reviews = await world.store.reviews()
    assert [(r["outcome"], r["case_id"]) for r in reviews] == [("dismissed", case_id)]


# -- the rest of the command set ---------------------------------------------------------------


async def test_moderator_commands(world: World) -> None:
    await world.post("hello")
    ref = f"discord:{MEMBER.id}"
    warned = await world.run(KAREN, f"warn {ref} please keep it civil")
    assert warned.ok and "1 strike point" in warned.text
    notify = [a for a in await world.store.actions() if a.kind is ActionKind.NOTIFY]
    assert "please keep it civil" in notify[-1].payload["text"]
    timed = await world.run(KAREN, f"timeout {ref} 2h spamming the channel")
    assert timed.ok and "2h" in timed.title
    hidden = await world.run(KAREN, "hide discord:msg1 off topic")
    assert hidden.ok and "Ladder at 3 points: cooling-off" in hidden.text  # 1 + 2 points
    assert [a.payload["duration"] for a in await world.store.actions()
            if a.kind is ActionKind.TIMEOUT] == ["2h", "1h"]
    assert any(a.kind is ActionKind.DELETE and a.message_id == "msg1"
               for a in await world.store.actions())
    case_id = int(warned.text.split()[1].rstrip(";"))
    assert (await world.run(KAREN, f"note {case_id} spoke to them by phone")).ok
    assert (await world.run(KAREN, f"assign {case_id} M0002")).ok is False  # upheld already
    assert (await world.run(KAREN, f"pardon {case_id} first offence")).ok
    history = await world.run(KAREN, f"history {ref}")
    assert ("points now", "2") in history.fields  # the hide's 2 points; the warning pardoned
    check = await world.run(KAREN, "check immigrants are vermin")
    assert check.title == "Would escalate"
    policy = await world.run(KAREN, "policy")
    assert "1.2 No discrimination or hate" in policy.text
    helped = await world.run(MEMBER, "help")
    assert "appeal" in helped.text and "suspend" not in helped.text


async def test_assign_and_resolve(world: World) -> None:
    handled = await world.post("immigrants are vermin")
    n = handled.case_id
    assert (await world.run(KAREN, f"assign {n}")).ok
    case = await world.store.get_case(n)  # type: ignore[arg-type]
    assert case is not None and case.state is CaseState.ASSIGNED
    assert case.assignee is not None and "Karen Lomax" in case.assignee
    assert (await world.run(OMAR, f"resolve {n} uphold clear hate speech")).ok
    closed = await world.run(KAREN, f"resolve {n} dismiss changed my mind")
    assert not closed.ok and "already upheld" in closed.text
    assert [r["outcome"] for r in await world.store.reviews()] == ["upheld"]


@pytest.mark.parametrize(
    ("words", "refusal"),
    [
        ("history nobody-at-all", "No member matches"),
        ("case 999", "There is no case 999"),
        ("case abc", "is not a case number"),
        ("timeout M0002 soon being rude", "is not a duration"),
        ("timeout M0002 60d being rude", "at most 4w"),
        ("suspend M0002 forever-ish abuse", "is not a duration"),
        ("resolve 1 maybe because", "say uphold or dismiss"),
        ("warn M0002", "Usage: `warn MEMBER REASON`"),
        ("link M0002 teams X1", "is not a platform"),
        ("frobnicate", "There is no command"),
        ('check "unbalanced', "check your quotation marks"),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(world: World, words: str,
                                                        refusal: str) -> None:
    before = await audit_count(world.store)
    reply = await world.run(KAREN, words)
    assert not reply.ok
    assert refusal in reply.text
    assert await refusal_only(world.store, before)
    assert await world.store.queue() == ([], 0)


async def test_non_moderators_are_refused_and_the_refusal_is_audited(world: World) -> None:
    reply = await world.run(MEMBER, "queue")
    assert not reply.ok and reply.text == "Only moderators can use `queue`."
    refused = await world.store.audit_entries(action="refused:queue")
    assert len(refused) == 1 and refused[0]["reason"] == "Only moderators can use `queue`."
    # an account never seen before asked: it is refused and audited, and gets no record
    assert refused[0]["actor"] == f"discord:{MEMBER.id} ()" and refused[0]["member_id"] is None
    assert await world.store.member_by_account(MEMBER.platform, MEMBER.id) is None


async def test_a_suspended_moderator_cannot_act(world: World) -> None:
    karen = (await world.store.find_members("M0001"))[0]
    await world.store.set_status(karen.id, status=MemberStatus.SUSPENDED, actor="test",
                                 reason="under investigation", since=START, until=None)
    reply = await world.run(KAREN, "queue")
    assert not reply.ok and reply.text == ("Moderators must be in good standing to act: you "
                                           "are suspended.")
    assert (await world.run(KAREN, "help")).ok  # members' commands still work


async def test_nobody_decides_a_case_about_themselves(world: World) -> None:
    handled = await world.post("you idiot", account=OMAR)  # Omar, a moderator, is warned
    case = handled.case_id
    for words in (f"pardon {case} mine", f"resolve {case} dismiss mine", f"note {case} x",
                  f"assign {case}"):
        reply = await world.run(OMAR, words)
        assert not reply.ok and reply.text == (f"Case {case} is about you: another moderator "
                                               "must act on it"), words
    assert (await world.run(OMAR, f"appeal {case} it was banter")).ok  # as a member may
    granted = await world.run(OMAR, f"resolve {case} dismiss appeal granted by myself")
    assert not granted.ok
    assert len(await world.store.audit_entries(action="refused:resolve")) == 2
    assert (await world.run(KAREN, f"resolve {case} dismiss fair point")).ok


async def test_the_audit_log_is_append_only(world: World) -> None:
    await world.post("immigrants are vermin")
    entry = (await world.store.audit_entries())[0]
    assert entry["actor"] == "bot" and entry["action"] == "verdict:escalate"
    assert entry["policy_version"] == "test-1" and "keyword-test" in entry["model_version"]
    # SQLite's trigger aborts the statement; PostgreSQL's raises from PL/pgSQL.
    refused = (psycopg.errors.RaiseException if world.store.postgres
               else sqlite3.IntegrityError)
    with pytest.raises(refused, match="append-only"):
        async with world.store.transaction() as db:
            await db.execute("UPDATE audit_log SET actor='someone else'")


async def test_retention_erases_old_evidence_but_keeps_the_case(world: World) -> None:
    handled = await world.post("immigrants are vermin")
    world.clock.now += timedelta(days=400)
    counts = await world.store.apply_retention(evidence=timedelta(days=365),
                                               audit=timedelta(days=2190), dry_run=True)
    assert counts == {"texts_erased": 1, "audit_deleted": 0, "spam_events_deleted": 0}
    await world.store.apply_retention(evidence=timedelta(days=365), audit=timedelta(days=2190))
    reply = await world.run(KAREN, f"case {handled.case_id}")
    assert "[text erased under the retention policy]" in reply.text
    assert "immigrants" not in reply.text
    assert ("state", "open") in reply.fields  # the case and its history remain
    job = await world.store.audit_entries(action="retention")
    assert job and job[0]["actor"] == "retention"


async def test_platform_results_are_audited(world: World) -> None:
    from adapters.console import ConsolePort

    handled = await world.post("immigrants are vermin")
    await world.moderator.run_outbox(ConsolePort(Platform.DISCORD))
    done = await world.store.audit_entries(member_id=handled.member.id, action="platform:")
    assert {e["action"] for e in done} == {"platform:delete:done", "platform:notify:done",
                                           "platform:escalate:done"}
    assert all(e["case_id"] == handled.case_id and e["policy_version"] == "test-1"
               for e in done)


async def test_every_button_runs_as_a_command(world: World) -> None:
    handled = await world.post("immigrants are vermin")
    view = await world.run(KAREN, f"case {handled.case_id}")
    assign = next(b for b in view.buttons if b.label == "Assign to me")
    assert (await world.run(KAREN, assign.command)).ok
    dismiss = next(b for b in view.buttons if b.label == "Dismiss")
    assert (await world.run(OMAR, dismiss.command)).ok
    case = await world.store.get_case(handled.case_id)  # type: ignore[arg-type]
    assert case is not None and case.state is CaseState.DISMISSED


async def test_typed_reasons_may_contain_apostrophes_and_quotes(world: World) -> None:
    await world.post("hello")
    reply = await world.run(KAREN, f'warn discord:{MEMBER.id} don\'t call people "idiots"')
    assert reply.ok
    notice = [a for a in await world.store.actions() if a.kind is ActionKind.NOTIFY][-1]
    assert "don't call people idiots" in notice.payload["text"]


async def test_subject_access_export_and_erasure(world: World) -> None:
    handled = await world.post("immigrants are vermin")
    member_id = handled.member.id
    data = await world.store.member_export(member_id)
    assert data["member"]["accounts"] == [f"discord:{MEMBER.id}"]
    assert [m["text"] for m in data["messages"]] == ["immigrants are vermin"]
    assert data["messages"][0]["action"] == "escalate"
    assert data["cases"][0]["history"][0]["event"] == "opened"
    assert data["strikes"] and data["audit"]
    assert await world.store.erase_member_text(member_id, actor="dpo",
                                               reason="erasure request") == 1
    after = await world.store.member_export(member_id)
    assert after["messages"][0]["text"] is None
    assert after["messages"][0]["action"] == "escalate"  # the decision stays on record
    assert after["cases"] == data["cases"]
    assert after["audit"][-1]["action"] == "erase"
