"""Review before punishment: an automatic escalation's points wait for a moderator, and a
dismissal or pardon undoes what a case caused and tells the member.

Through Moderator and Commands with a real store on each backend (a SQLite file, a PostgreSQL
database), the stable test policy (ladder: 1h timeout at 3 points) and a controllable clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.console import ConsolePort
from bot.database import Target
from bot.models import (
    Account,
    Action,
    ActionKind,
    ActionStatus,
    CaseState,
    MemberStatus,
    Platform,
    Role,
)
from bot.policy import Policy, PolicyError, load_policy
from tests.conftest import ROOT
from tests.scenarios.test_members import KAREN, MEMBER, OMAR, START, World, open_world

ABUSE = "immigrants are vermin"  # the keyword scorer escalates this: 3 strike points


Under = Callable[[Policy], AbstractAsyncContextManager[World]]


@pytest.fixture
def world_under(database: Target) -> Under:
    return lambda policy: open_world(database, policy)


def at_once(policy: Policy) -> Policy:
    return replace(policy, strikes=replace(policy.strikes, escalation_points="at_once"))


async def kinds(world: World, case_id: int | None) -> list[str]:
    return [str(a.kind) for a in await world.store.actions(case_id=case_id)]


async def test_a_mistaken_escalation_times_nobody_out_and_dismissal_tells_the_member(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(test_policy) as world:
        handled = await world.post(ABUSE)
        assert handled.verdict.action == "escalate" and handled.ladder is None
        assert await kinds(world, handled.case_id) == ["delete", "notify", "escalate"]
        assert await world.moderator.points(handled.member.id) == 0  # awaiting review
        history = await world.run(KAREN, f"history discord:{MEMBER.id}")
        assert ("strikes", "1 (0 pardoned, 1 awaiting review)") in history.fields

        reply = await world.run(KAREN, f"resolve {handled.case_id} dismiss quoting to report")
        assert reply.ok and "is told" in reply.text
        notices = [a for a in await world.store.actions(case_id=handled.case_id)
                   if a.kind is ActionKind.NOTIFY][1:]
        assert len(notices) == 1 and notices[0].user == MEMBER.id
        text = notices[0].payload["text"]
        assert f"Case {handled.case_id}" in text and "dismissed: quoting to report" in text
        assert "strike points no longer count" in text and "timeout" not in text
        assert ActionKind.TIMEOUT not in {a.kind for a in await world.store.actions()}
        # the dismissed case's points never count, even once it is no longer awaiting review
        history = await world.run(KAREN, f"history discord:{MEMBER.id}")
        assert ("strikes", "0 (1 pardoned)") in history.fields


async def test_upholding_counts_the_points_and_climbs_the_ladder(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(test_policy) as world:
        handled = await world.post(ABUSE)
        reply = await world.run(KAREN, f"resolve {handled.case_id} uphold dehumanising")
        assert reply.ok and "Ladder at 3 points: cooling-off" in reply.text
        assert await world.moderator.points(handled.member.id) == 3
        timeouts = [a for a in await world.store.actions(case_id=handled.case_id)
                    if a.kind is ActionKind.TIMEOUT]
        assert [(a.user, a.payload["duration"]) for a in timeouts] == [(MEMBER.id, "1h")]
        audit = await world.store.audit_entries(action="resolve:uphold")
        assert audit and audit[-1]["case_id"] == handled.case_id


async def test_unreviewed_points_count_after_the_policy_time(
        world_under: Under, test_policy: Policy) -> None:
    policy = replace(test_policy, strikes=replace(test_policy.strikes,
                                                  unreviewed_after=timedelta(days=3)))
    async with world_under(policy) as world:
        handled = await world.post(ABUSE)
        world.clock.now = START + timedelta(days=2, hours=23)
        assert await world.moderator.points(handled.member.id) == 0
        world.clock.now = START + timedelta(days=3)
        assert await world.moderator.points(handled.member.id) == pytest.approx(2.436, abs=0.01)


async def test_dismissal_lifts_a_discord_timeout_already_applied(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(at_once(test_policy)) as world:
        handled = await world.post(ABUSE)
        assert handled.ladder is not None  # at once: the ladder fires before any review
        port = ConsolePort(Platform.DISCORD)
        await world.moderator.run_outbox(port)
        assert [a.kind for a in port.performed][-1] is ActionKind.TIMEOUT

        await world.run(OMAR, f"resolve {handled.case_id} dismiss not abuse on review")
        await world.moderator.run_outbox(port)
        restore, notice = port.performed[-2:]
        assert restore.kind is ActionKind.RESTORE and restore.payload["lift"] is True
        assert restore.user == MEMBER.id
        assert notice.kind is ActionKind.NOTIFY
        assert "The timeout it caused has been lifted." in notice.payload["text"]
        assert await world.moderator.points(handled.member.id) == 0


async def test_dismissal_cancels_a_timeout_not_yet_sent(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(at_once(test_policy)) as world:
        handled = await world.post(ABUSE)
        await world.run(KAREN, f"resolve {handled.case_id} dismiss satire, read the thread")
        timeout = next(a for a in await world.store.actions(case_id=handled.case_id)
                       if a.kind is ActionKind.TIMEOUT)
        assert timeout.status is ActionStatus.CANCELLED
        port = ConsolePort(Platform.DISCORD)
        await world.moderator.run_outbox(port)
        assert ActionKind.TIMEOUT not in {a.kind for a in port.performed}
        assert ActionKind.RESTORE not in {a.kind for a in port.performed}


async def test_pardon_brings_a_slack_return_forward(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(test_policy) as world:
        reply = await world.run(KAREN, f"timeout {OMAR.platform}:{OMAR.id} 2d pile-on")
        case_id = int(reply.text.split()[1].rstrip(";"))
        # what the Slack adapter leaves after kicking the member: a return at the timeout's end
        await world.store.enqueue([Action(kind=ActionKind.RESTORE, platform=Platform.SLACK,
                                          user=OMAR.id, payload={"channels": ["C1"]})],
                                  case_id=case_id, not_before=START + timedelta(days=2))
        await world.store.mark_action(
            next(a.id for a in await world.store.actions(case_id=case_id)
                 if a.kind is ActionKind.TIMEOUT and a.id is not None),
            status=ActionStatus.DONE)
        due = await world.store.pending_actions(platform=Platform.SLACK)
        assert [a.kind for a in due] == [ActionKind.NOTIFY]  # the timeout's notice; no return
        reply = await world.run(KAREN, f"pardon {case_id} the thread was misread")
        assert reply.ok and "The timeout it caused has been lifted." in reply.text
        twice = await world.run(KAREN, f"pardon {case_id} again")
        assert not twice.ok and twice.text == (f"Case {case_id} was already pardoned (the "
                                               "thread was misread)")
        due = await world.store.pending_actions(platform=Platform.SLACK)
        assert [a.kind for a in due] == [ActionKind.NOTIFY, ActionKind.RESTORE,
                                         ActionKind.NOTIFY]
        assert due[2].payload["text"] == (f"Case {case_id} has been pardoned: the thread was "
                                          "misread. The timeout it caused has been lifted.")


async def test_resolving_an_appeal_tells_the_member_the_outcome(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(test_policy) as world:
        first = await world.post(ABUSE)
        second = await world.post("vermin, all of them")
        for case_id in (first.case_id, second.case_id):
            assert (await world.run(MEMBER, f"appeal {case_id} I was quoting a leaflet")).ok
        await world.run(KAREN, f"resolve {first.case_id} uphold the leaflet line was yours")
        await world.run(KAREN, f"resolve {second.case_id} dismiss checked the leaflet")
        first_notice, second_notice = [
            [a.payload["text"] for a in await world.store.actions(case_id=c)
             if a.kind is ActionKind.NOTIFY][-1] for c in (first.case_id, second.case_id)]
        assert first_notice == (f"Your appeal of case {first.case_id} was rejected: the "
                                "leaflet line was yours. The decision stands.")
        assert second_notice.startswith(f"Your appeal of case {second.case_id} was granted: "
                                        "checked the leaflet.")
        assert "strike points no longer count" in second_notice
        cases = [await world.store.get_case(c) for c in (first.case_id, second.case_id)]
        assert [c.state for c in cases if c] == [CaseState.UPHELD, CaseState.DISMISSED]
        # the rejected appeal confirmed the points; the granted one never counted
        assert await world.moderator.points(first.member.id) == 3


def test_policy_refuses_unknown_escalation_points(tmp_path: Path) -> None:
    text = (ROOT / "tests" / "fixtures" / "policy.toml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("[strikes]\n", '[strikes]\nescalation_points = "later"\n'),
                   encoding="utf-8")
    with pytest.raises(PolicyError, match=r"strikes.escalation_points.*'on_uphold', "
                                          r"'at_once', not 'later'"):
        load_policy(bad)
    bad.write_text(text.replace("[strikes]\n", '[strikes]\nescalation_points = "at_once"\n'
                                               'unreviewed_after = "3d"\n'), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"unreviewed_after.*only with"):
        load_policy(bad)
    good = tmp_path / "good.toml"
    good.write_text(text.replace("[strikes]\n", '[strikes]\nunreviewed_after = "72h"\n'),
                    encoding="utf-8")
    assert load_policy(good).strikes.unreviewed_after == timedelta(hours=72)


# -- everything appealable ---------------------------------------------------------------------


async def test_every_automatic_action_is_a_case_its_notice_numbers(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(test_policy) as world:
        warned = await world.post("you idiot")
        escalated = await world.post(ABUSE)
        for handled, kind in ((warned, "warning"), (escalated, "escalation")):
            assert handled.case_id is not None
            case = await world.store.get_case(handled.case_id)
            assert case is not None and case.kind == kind and case.automatic
            (notice,) = [a for a in handled.actions if a.kind is ActionKind.NOTIFY]
            assert notice.payload["case"] == handled.case_id
            assert notice.payload["text"].endswith(
                f"This is case {handled.case_id}. If you think it is a mistake, appeal with "
                f"`/appeal {handled.case_id}` and say why; `/appeal` on its own lists your "
                "cases (policy test-1).")
        queue = await world.run(KAREN, "queue")
        assert queue.title == "1 case(s) waiting"  # the warning is decided, not queued


async def test_moderators_actions_are_cases_whose_notices_number_them(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(test_policy) as world:
        posted = await world.post("hello all", account=OMAR)
        for words in (f"warn {OMAR.platform}:{OMAR.id} keep it civil",
                      f"hide slack:{posted.message.id} off topic",
                      f"timeout {OMAR.platform}:{OMAR.id} 30m cooling off"):
            reply = await world.run(KAREN, words)
            case_id = int(reply.text.split()[1].rstrip(";"))
            (notice,) = [a for a in await world.store.actions(case_id=case_id)
                         if a.kind is ActionKind.NOTIFY]
            assert notice.user == OMAR.id
            assert f"This is case {case_id}." in notice.payload["text"], words
        texts = [a.payload["text"] for a in await world.store.actions()
                 if a.kind is ActionKind.NOTIFY]
        assert texts[0].startswith("A moderator has warned you: keep it civil.")
        assert texts[1].startswith("A moderator hid your message in #general: off topic.")
        assert texts[2].startswith("A moderator has stopped you posting for 30m, until ")


async def test_a_member_lists_their_cases_and_appeals_a_warning(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(test_policy) as world:
        assert (await world.run(MEMBER, "mycases")).title == "No cases about you"
        warned = await world.post("you idiot")
        await world.post("hello all", account=OMAR)
        listed = await world.run(MEMBER, "appeal")
        assert listed.title == "1 case(s) about you"
        assert f"#{warned.case_id} " in listed.text and "you can appeal" in listed.text
        refused = await world.run(MEMBER, f"appeal {warned.case_id}")
        assert not refused.ok and "Say why" in refused.text
        assert (await world.run(MEMBER, f"appeal {warned.case_id} it was a joke between "
                                        "friends")).ok
        assert "appealed, waiting for a moderator" in (await world.run(MEMBER, "mycases")).text
        queue = await world.run(KAREN, "queue")
        assert queue.text.startswith(f"#{warned.case_id} ")
        await world.run(KAREN, f"resolve {warned.case_id} dismiss friends joking")
        assert await world.moderator.points(warned.member.id) == 0
        notice = [a for a in await world.store.actions(case_id=warned.case_id)
                  if a.kind is ActionKind.NOTIFY][-1]
        assert notice.payload["text"] == (f"Your appeal of case {warned.case_id} was granted: "
                                          "friends joking. Its strike points no longer count.")
        assert "appeal granted: friends joking" in (await world.run(MEMBER, "mycases")).text


# -- sanctions that stick ----------------------------------------------------------------------


async def test_one_open_suspension_proposal_per_member_and_confirm_applies_it(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(test_policy) as world:
        await world.post("hello")  # the member exists
        first = await world.run(KAREN, f"suspend discord:{MEMBER.id} 3d heated thread")
        assert first.ok and "3d, until Mon 23 Nov 2026, 09:00 GMT if confirmed now" in first.text
        case_id = int(first.title.split("case ")[1].rstrip(")"))
        # a second proposal (the race that left the shorter one in force) is refused
        second = await world.run(OMAR, f"suspend discord:{MEMBER.id} 3mo repeated abuse")
        assert not second.ok
        assert second.text.startswith(f"Case {case_id} already proposes suspending")
        assert f"`resolve {case_id} dismiss REASON`" in second.text
        assert len([c for c in await world.store.member_cases(
            (await world.store.find_members(f"discord:{MEMBER.id}"))[0].id) if c.proposal]) == 1

        world.clock.now = START + timedelta(hours=2)
        confirmed = await world.run(OMAR, f"confirm {case_id}")
        assert confirmed.title.endswith("is suspended until Mon 23 Nov 2026, 11:00 GMT")
        assert confirmed.text == (f"Case {case_id}: 3d as proposed by Karen Lomax: heated "
                                  "thread.")
        notice = [a for a in await world.store.actions(case_id=case_id)
                  if a.kind is ActionKind.NOTIFY]
        assert [a.user for a in notice] == [MEMBER.id]
        assert notice[0].payload["text"].startswith(
            "You are suspended from the party's member forums until Mon 23 Nov 2026, 11:00 "
            "GMT: heated thread.")
        assert f"This is case {case_id}." in notice[0].payload["text"]

        # once that proposal is decided, a new one may be made
        await world.run(KAREN, f"reinstate discord:{MEMBER.id} served")
        assert (await world.run(KAREN, f"suspend discord:{MEMBER.id} 1y repeated abuse")).ok


async def test_suspension_durations_refuse_minutes_that_meant_months(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(test_policy) as world:
        await world.post("hello")
        reply = await world.run(KAREN, f"suspend discord:{MEMBER.id} 3m abuse")
        assert not reply.ok and reply.text == ("'3m' is ambiguous: write 3min for minutes or "
                                               "3mo for months")
        assert (await world.run(KAREN, f"timeout discord:{MEMBER.id} 30m cool off")).ok


def test_policy_refuses_an_unknown_time_zone(tmp_path: Path) -> None:
    text = (ROOT / "tests" / "fixtures" / "policy.toml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("[sanctions]\n", '[sanctions]\ntimezone = "Mars/Olympus"\n'),
                   encoding="utf-8")
    with pytest.raises(PolicyError, match="'Mars/Olympus' is not a time zone"):
        load_policy(bad)


async def test_reinstatement_undoes_the_suspension_on_every_platform(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(test_policy) as world:
        await world.run(KAREN, f"link M0002 discord {MEMBER.id}")  # Omar on both platforms
        # a timeout's return is waiting when a suspension starts: it must not let Omar back
        await world.store.enqueue([Action(kind=ActionKind.RESTORE, platform=Platform.SLACK,
                                          user=OMAR.id, payload={"channels": ["C1"]})],
                                  case_id=None, not_before=START + timedelta(hours=1))
        third = Account(Platform.CONSOLE, "priya")
        await world.store.import_member(
            membership_number="M0003", name="Priya Nair", status=MemberStatus.ACTIVE,
            roles={Role.MODERATOR}, reason=None, suspended_from=None, suspended_until=None,
            accounts=[(third.platform, third.id)], actor="test")
        proposal = await world.run(KAREN, "suspend M0002 2mo abuse")
        case_id = int(proposal.title.split("case ")[1].rstrip(")"))
        assert (await world.run(third, f"confirm {case_id}")).ok
        restores = [a for a in await world.store.actions() if a.kind is ActionKind.RESTORE]
        assert [a.status for a in restores] == [ActionStatus.CANCELLED]

        reply = await world.run(KAREN, "reinstate M0002 appeal upheld")
        assert reply.ok and "restored and they are told" in reply.text
        due = await world.store.pending_actions()
        lifts = [(a.platform, a.user) for a in due if a.kind is ActionKind.RESTORE]
        assert sorted(lifts) == sorted([(Platform.SLACK, OMAR.id),
                                        (Platform.DISCORD, MEMBER.id)])
        assert all(a.payload["lift"] for a in due if a.kind is ActionKind.RESTORE)
        notices = [a.payload["text"] for a in due if a.kind is ActionKind.NOTIFY]
        assert "You are reinstated in the party's member forums: appeal upheld." in notices


# -- nothing lost --------------------------------------------------------------------------------


async def test_a_failed_escalation_is_retried_then_sent_to_each_moderator(
        world_under: Under, test_policy: Policy) -> None:
    from bot.errors import Unavailable
    from bot.moderator import MAX_ATTEMPTS

    class Down(ConsolePort):
        async def escalate(self, action: Action, /) -> None:
            raise Unavailable("503 Service Unavailable", platform="discord",
                              action="escalate")

    async with world_under(test_policy) as world:
        await world.run(KAREN, "link M0001 discord 555000000000000001")  # Karen on Discord
        handled = await world.post(ABUSE)
        port = Down(Platform.DISCORD)
        waits = []
        for _ in range(MAX_ATTEMPTS):
            await world.moderator.run_outbox(port)
            (escalate,) = [a for a in await world.store.actions(case_id=handled.case_id)
                           if a.kind is ActionKind.ESCALATE]
            if escalate.status is not ActionStatus.PENDING:
                break
            due = await world.store.pending_actions()
            assert escalate.id not in {a.id for a in due}  # it waits before the next try
            before = world.clock.now
            while escalate.id not in {a.id for a in await world.store.pending_actions()}:
                world.clock.now += timedelta(seconds=15)
            waits.append(world.clock.now - before)
        assert escalate.status is ActionStatus.FAILED and escalate.attempts == MAX_ATTEMPTS
        assert waits == sorted(waits) and waits[0] >= timedelta(seconds=30)  # backing off
        (dm,) = [a for a in await world.store.pending_actions()
                 if a.kind is ActionKind.NOTIFY and a.user == "555000000000000001"]
        assert dm.payload["text"].startswith(
            f"Case {handled.case_id} could not be posted to the moderators' channel "
            "(Unavailable: 503 Service Unavailable)")
        assert f"`case {handled.case_id}`" in dm.payload["text"]


# -- data protection -------------------------------------------------------------------------------


async def test_erasure_leaves_no_copy_of_the_text_anywhere_on_disk(
        world_under: Under, test_policy: Policy, database: Target) -> None:
    marker = "Zqx7Marker"
    text = f"immigrants are vermin, and {marker} lives at 12 Acacia Avenue, Leeds LS6 2AB"
    async with world_under(test_policy) as world:
        handled = await world.post(text)
        assert "doxxing:street_address" in handled.verdict.rule_ids
        await world.moderator.run_outbox(ConsolePort(Platform.DISCORD))
        (notice,) = [a for a in handled.actions if a.kind is ActionKind.NOTIFY]
        # the notice gives the member their words back, but never the address
        assert "12 Acacia Avenue" not in notice.payload["text"]
        assert "[personal details removed]" in notice.payload["text"]
        assert marker in notice.payload["text"]
        export = await world.store.member_export(handled.member.id)
        payloads = " ".join(row["payload"] for row in export["outbox"])
        assert marker in payloads  # the export includes every copy: notice and excerpt

        await world.store.erase_member_text(handled.member.id, actor="test", reason="request")
        export = await world.store.member_export(handled.member.id)
        assert marker not in repr(export)
        if not world.store.postgres:  # a PostgreSQL server's files are the server's own
            # on disk too, while the bot runs: the database file and its write-ahead log
            path = Path(database)
            assert await asyncio.to_thread(on_disk, path, marker) == {
                path.name: False, f"{path.name}-shm": False, f"{path.name}-wal": False}


def on_disk(database: Path, marker: str) -> dict[str, bool]:
    """Which of the database's files hold `marker` anywhere in their bytes."""
    return {path.name: marker.encode() in path.read_bytes()
            for path in sorted(database.parent.glob(f"{database.name}*"))}


async def test_retention_also_clears_the_outbox_copies(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(test_policy) as world:
        handled = await world.post("immigrants are vermin Zqx7Old")
        world.clock.now = START + timedelta(days=400)
        await world.store.apply_retention(evidence=timedelta(days=365),
                                          audit=timedelta(days=3650))
        assert all("Zqx7Old" not in str(a.payload)
                   for a in await world.store.actions(case_id=handled.case_id))
        (escalate,) = [a for a in await world.store.actions(case_id=handled.case_id)
                       if a.kind is ActionKind.ESCALATE]
        assert "excerpt" not in escalate.payload and escalate.payload["clause"] == "1.2"


# -- moderator ergonomics ------------------------------------------------------------------------


async def test_the_queue_pages_and_filters(world_under: Under, test_policy: Policy) -> None:
    from bot.commands import QUEUE_PAGE

    async with world_under(test_policy) as world:
        for n in range(QUEUE_PAGE + 3):
            await world.post(f"immigrants are vermin {n}",
                             channel="general" if n % 2 else "north-west")
        first = await world.run(KAREN, "queue")
        assert first.title == f"{QUEUE_PAGE + 3} case(s) waiting"
        assert first.text.splitlines()[-1] == (f"Showing 1-{QUEUE_PAGE} of {QUEUE_PAGE + 3}. "
                                               "`queue page:2` for more.")
        second = await world.run(KAREN, "queue page:2")
        assert len(second.text.splitlines()) == 4
        assert second.text.splitlines()[-1] == f"Showing 51-53 of {QUEUE_PAGE + 3}."
        north = await world.run(KAREN, "queue channel:#north-west")
        assert north.title == "27 case(s) waiting"
        await world.run(KAREN, "assign 1")
        assert (await world.run(KAREN, "queue mine")).title == "1 case(s) waiting"
        assert (await world.run(KAREN, "queue unassigned")).title == \
            f"{QUEUE_PAGE + 2} case(s) waiting"
        assert (await world.run(KAREN, "queue platform:slack")).title == "0 case(s) waiting"
        assert (await world.run(KAREN, "queue clause:1.2 platform:discord")).title == \
            f"{QUEUE_PAGE + 3} case(s) waiting"
        bad = await world.run(KAREN, "queue urgent")
        assert not bad.ok and "'urgent' is not a queue filter" in bad.text


async def test_a_case_shows_why_the_bot_acted_and_when(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(test_policy) as world:
        handled = await world.post(ABUSE)
        shown = await world.run(KAREN, f"case {handled.case_id}")
        assert "posted Fri 20 Nov 2026, 09:00 GMT" in shown.text
        why = next(line for line in shown.text.splitlines() if line.startswith("  why:"))
        assert "identity_attack 0.97 reached escalate" in why
        assert "Scores: identity_attack 0.97, severe_toxicity 0.90" in why
        assert "keyword-test 1, policy test-1" in why


async def test_unlink_pardon_refusals_curly_quotes_and_rounded_points(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(test_policy) as world:
        warned = await world.post("you idiot")
        world.clock.now += timedelta(minutes=1)
        history = await world.run(KAREN, f"history discord:{MEMBER.id}")
        assert ("points now", "1") in history.fields  # 0.99995..., shown rounded

        assert (await world.run(KAREN, f"pardon {warned.case_id} fair enough")).ok
        again = await world.run(KAREN, f"pardon {warned.case_id} twice")
        assert not again.ok and again.text == (f"Case {warned.case_id} was already pardoned "
                                               "(fair enough)")
        proposal = await world.run(KAREN, f"suspend discord:{MEMBER.id} 3d abuse")
        proposed = int(proposal.title.split("case ")[1].rstrip(")"))
        nothing = await world.run(OMAR, f"pardon {proposed} nothing to pardon")
        assert not nothing.ok and "has no strike points or timeout to pardon" in nothing.text

        # curly quotes, as phones type them, group words like straight ones
        quoted = await world.run(KAREN, "history \u201cOmar Haddad\u201d")
        assert quoted.ok and quoted.title.startswith("Omar Haddad (")

        unlinked = await world.run(KAREN, f"unlink discord:{MEMBER.id}")
        assert unlinked.ok and "its history stays with them" in unlinked.text
        assert await world.store.member_by_account(MEMBER.platform, MEMBER.id) is None
        again = await world.run(KAREN, f"unlink discord:{MEMBER.id}")
        assert not again.ok and "is not linked to any member" in again.text
        for words in ("unlink discord:", 'link M0002 console ""', 'link M0002 console " x"'):
            empty = await world.run(KAREN, words)
            assert not empty.ok, words  # an empty or padded id is never linked
        assert await world.store.audit_entries(action="unlink")


async def test_the_digest_counts_only_points_that_count(
        world_under: Under, test_policy: Policy) -> None:
    from bot.digest import build_digest

    async with world_under(test_policy) as world:
        await world.post("you idiot")  # 1 point, at once
        escalated = await world.post(ABUSE)  # 3 points, awaiting review
        world.clock.now = START + timedelta(days=4)  # the week has ended
        (offender,) = (await build_digest(world.store, "2026-W47")).repeat_offenders
        assert (offender.points, offender.points_total) == (1, 1)
        await world.run(KAREN, f"resolve {escalated.case_id} uphold dehumanising")
        (offender,) = (await build_digest(world.store, "2026-W47")).repeat_offenders
        assert (offender.points, offender.points_total) == (4, 4)


async def test_a_refused_escalation_goes_to_the_moderators_at_once(
        world_under: Under, test_policy: Policy) -> None:
    from bot.errors import PermissionDenied

    class Refusing(ConsolePort):
        async def escalate(self, action: Action, /) -> None:
            raise PermissionDenied("Missing Access", platform="discord", action="escalate")

    async with world_under(test_policy) as world:
        await world.run(KAREN, "link M0001 discord 555000000000000001")
        handled = await world.post(ABUSE)
        await world.moderator.run_outbox(Refusing(Platform.DISCORD))
        (escalate,) = [a for a in await world.store.actions(case_id=handled.case_id)
                       if a.kind is ActionKind.ESCALATE]
        assert escalate.status is ActionStatus.FAILED and escalate.attempts == 1  # no retries
        (dm,) = [a for a in await world.store.pending_actions()
                 if a.kind is ActionKind.NOTIFY and a.user == "555000000000000001"]
        assert "(PermissionDenied: Missing Access)" in dm.payload["text"]
