"""Floods, copy-paste campaigns, pile-ons, link spam and raids, through Moderator and Commands.

A real store on each backend (a SQLite file, a PostgreSQL database), the shipped policy
(policies/default.toml: every window and count is read from its `[spam]` section, so the
scenarios follow the policy when it is re-tuned), the deterministic KeywordScorer, and
messages built with the fields the adapters fill (account dates, mentions). Each scenario
works out from the policy's numbers which messages breach which limit, and checks that exactly
those members, and no others, were acted on, with which kind of spam.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.commands import Commands
from bot.database import Target
from bot.models import (
    Account,
    Action,
    ActionKind,
    MemberStatus,
    Message,
    Mode,
    Platform,
    Role,
)
from bot.moderator import Handled, Moderator
from bot.policy import Policy, SpamPolicy, Window
from bot.scoring import Batcher
from bot.store import Store
from tests.conftest import KeywordScorer
from tests.scenarios.test_members import Clock

T0 = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)  # election night
LONG_AGO = T0 - timedelta(days=3 * 365)
YESTERDAY = T0 - timedelta(days=1)
KAREN = Account(Platform.DISCORD, "100000000000000042")  # a moderator
OMAR = Account(Platform.SLACK, "UOMAR0001")               # a moderator
MP = Account(Platform.DISCORD, "300000000000000001")      # Rachel Adler MP


@dataclass(frozen=True, slots=True)
class Who:
    """An author as an adapter describes them: the account and what the platform says of it."""

    platform: Platform
    id: str
    name: str
    created: datetime | None = None
    joined: datetime | None = None

    @property
    def account(self) -> Account:
        return Account(self.platform, self.id)


def old(i: int, name: str = "member") -> Who:
    """A Discord account years old, on the server for a year: established."""
    return Who(Platform.DISCORD, f"1{i:017d}", f"{name}{i}", LONG_AGO,
               LONG_AGO + timedelta(days=700))


def newcomer(i: int) -> Who:
    """A Discord account created yesterday that joined the server an hour ago."""
    return Who(Platform.DISCORD, f"2{i:017d}", f"raider{i}", YESTERDAY, T0 - timedelta(hours=1))


def slack(i: int, prefix: str = "U") -> Who:
    """A Slack account: Slack says nothing of its age."""
    return Who(Platform.SLACK, f"{prefix}{i:08d}", f"{prefix.lower()}{i}")


@dataclass
class World:
    moderator: Moderator
    commands: Commands
    clock: Clock
    posted: list[Handled] = field(default_factory=list)
    n: int = 0

    @property
    def store(self) -> Store:
        return self.moderator.store

    @property
    def spam(self) -> SpamPolicy:
        assert self.moderator.policy.spam is not None
        return self.moderator.policy.spam

    async def post(self, who: Who, text: str, *, at: datetime, channel: str = "results",
                   mentions: Iterable[str] = (), mass: bool = False) -> Handled:
        self.clock.now = max(self.clock.now, at)
        self.n += 1
        message = Message(who.platform, f"msg{self.n}", f"C-{channel}", who.id, text, at,
                          channel_name=channel, author_name=who.name,
                          account_created_at=who.created, joined_at=who.joined,
                          mentions=tuple(mentions), mass_mention=mass)
        handled = await self.moderator.handle(message)
        assert handled is not None
        self.posted.append(handled)
        return handled

    async def register(self, number: str, who: Who, *, roles: Iterable[Role] = ()) -> None:
        await self.store.import_member(
            membership_number=number, name=who.name, status=MemberStatus.ACTIVE,
            roles=set(roles), reason=None, suspended_from=None, suspended_until=None,
            accounts=[(who.platform, who.id)], actor="test")

    async def outbox(self, *kinds: ActionKind) -> list[Action]:
        return [a for a in await self.store.actions() if a.kind in kinds]


@asynccontextmanager
async def open_world(target: Target, policy: Policy, *, n: int = 0) -> AsyncIterator[World]:
    """The store at `target` under `policy`, with two moderators (Karen on Discord, Omar on
    Slack) and Rachel Adler MP in the register; `n` continues message ids after a restart."""
    clock = Clock(T0)
    async with Store.open(target, clock=clock) as store, Batcher(KeywordScorer()) as batcher:
        moderator = Moderator(store=store, policy=policy, scorer=batcher)
        world = World(moderator, Commands(moderator), clock, n=n)
        for number, who, roles in (
                ("M0001", Who(KAREN.platform, KAREN.id, "Karen Lomax"), {Role.MODERATOR}),
                ("M0002", Who(OMAR.platform, OMAR.id, "Omar Haddad"), {Role.MODERATOR}),
                ("M0900", Who(MP.platform, MP.id, "Rachel Adler"), {Role.MP})):
            await world.register(number, who, roles=roles)
        yield world


@pytest.fixture
async def world(database: Target, policy: Policy) -> AsyncIterator[World]:
    assert policy.spam is not None, "the shipped policy has a [spam] section"
    async with open_world(database, policy) as opened:
        yield opened


def kinds(handled: Handled) -> frozenset[str]:
    """The spam kinds a verdict cites."""
    return frozenset(r.removeprefix("spam:") for r in handled.verdict.rule_ids
                     if r.startswith("spam:"))


def acted(posted: Sequence[Handled]) -> dict[str, list[tuple[str, frozenset[str]]]]:
    """Per author account, the (action, spam kinds) of each of their messages acted on."""
    out: dict[str, list[tuple[str, frozenset[str]]]] = {}
    for h in posted:
        if h.verdict.action != "allow":
            out.setdefault(h.message.author, []).append((str(h.verdict.action), kinds(h)))
    return out


def flood_spacing(spam: SpamPolicy) -> timedelta:
    """Messages this far apart are twice as fast as both rate limits allow."""
    assert spam.rate_channel is not None and spam.rate_overall is not None
    return min(timedelta(seconds=w.seconds) / (2 * w.count)
               for w in (spam.rate_channel, spam.rate_overall))


def breaches(times: Sequence[datetime], at: datetime, window: Window | None) -> bool:
    """Whether one more event at `at` makes more than `window.count` within `window.seconds`
    (the events before it in `times`; a window is `seconds` long and ends at `at`)."""
    if window is None:
        return False
    start = at - timedelta(seconds=window.seconds)
    return sum(start < t <= at for t in times) >= window.count


# -- a flood ----------------------------------------------------------------------------------


async def test_a_flood_is_hidden_after_the_limit_and_a_member_chatting_alongside_is_not(
        world: World) -> None:
    spam = world.spam
    assert spam.rate_channel is not None and spam.rate_overall is not None
    flooder, chatter = old(1), old(2)
    # The flooder: different messages twice as fast as either limit allows, past both; the
    # chatter, in the same channel meanwhile: half as fast as the channel's limit.
    n = max(spam.rate_channel.count, spam.rate_overall.count) + 5
    spacing = flood_spacing(spam)
    calm = timedelta(seconds=spam.rate_channel.seconds) / (spam.rate_channel.count / 2)
    schedule = sorted([(T0 + i * spacing, flooder, f"VOTE COUNT UPDATE {i} from the hall")
                       for i in range(n)] +
                      [(T0 + i * calm + spacing / 2, chatter, f"Turnout looks good in ward {i}")
                       for i in range(int(n * spacing / calm) + 1)],
                      key=lambda x: x[0])
    expected: dict[str, frozenset[str]] = {}
    seen: dict[str, list[datetime]] = {}
    for at, who, text in schedule:
        before = seen.setdefault(who.id, [])
        found = {kind for kind, window in (("rate-channel", spam.rate_channel),
                                           ("rate-overall", spam.rate_overall))
                 if breaches(before, at, window)}
        before.append(at)
        handled = await world.post(who, text, at=at)
        expected[handled.message.id] = frozenset(found)
        assert (handled.message.id, kinds(handled)) == (handled.message.id, frozenset(found))
        assert handled.verdict.action == (spam.rate_action if found else "allow")
    # In this flood: the first `count` messages stand, every one after is hidden.
    mine = [h for h in world.posted if h.message.author == flooder.id]
    assert [bool(kinds(h)) for h in mine] == [i >= spam.rate_channel.count for i in range(n)]
    assert any("rate-overall" in kinds(h) for h in mine)  # past the overall limit, too
    assert set(acted(world.posted)) == {flooder.id}
    hidden = {h.message.id for h in world.posted if expected[h.message.id]}
    assert {a.message_id for a in await world.outbox(ActionKind.DELETE)} == hidden
    # Every hidden message is a case citing the spam clause. The burst earns strike points
    # once, not once a message: one flood does not take the member up the whole ladder.
    assert {h.verdict.clause for h in mine if kinds(h)} == {spam.clause}
    assert all(h.case_id is not None for h in mine if kinds(h))
    strikes = await world.store.strikes(mine[0].member.id)
    assert [s["points"] for s in strikes] == [
        world.moderator.policy.strikes.points[spam.rate_action]]
    # That one strike times the flooder out only if it reaches a ladder step with a timeout.
    ladder = world.moderator.policy.strikes.ladder
    reached = any(step.timeout is not None and step.points <= strikes[0]["points"]
                  for step in ladder)
    assert {a.user for a in await world.outbox(ActionKind.TIMEOUT)} == (
        {flooder.id} if reached else set())


async def test_a_restart_in_the_middle_of_a_flood_does_not_reset_the_count(
        database: Target, policy: Policy) -> None:
    assert policy.spam is not None and policy.spam.rate_channel is not None
    limit = policy.spam.rate_channel.count
    spacing = flood_spacing(policy.spam)
    flooder = old(1)
    results: list[Handled] = []
    async with open_world(database, policy) as world:
        for i in range(limit - 2):
            results.append(await world.post(flooder, f"Recount requested in ward {i}",
                                            at=T0 + i * spacing))
        n = world.n
    async with open_world(database, policy, n=n) as world:  # a new process, the same store
        for i in range(limit - 2, limit + 3):
            results.append(await world.post(flooder, f"Recount requested in ward {i}",
                                            at=T0 + i * spacing))
    assert [str(h.verdict.action) for h in results] == \
        ["allow"] * limit + [str(policy.spam.rate_action)] * 3
    assert all(kinds(h) == {"rate-channel"} for h in results[limit:])


# -- copy-paste campaigns and repeats ---------------------------------------------------------


CAMPAIGN = ["Sign the petition: deselect the council leadership NOW!",
            "sign the petition - deselect the council leadership now",
            "Sign  the petition, deselect the Council leadership now!!!",
            "SIGN THE PETITION deselect the council leadership now.",
            "Sign the petition... deselect the council leadership now",
            "sign the petition: Deselect The Council Leadership Now",
            "Sign the petition; deselect the council leadership now ✊"]


async def test_a_cross_channel_copy_paste_campaign_and_a_member_repeating_themselves(
        world: World) -> None:
    spam = world.spam
    assert spam.duplicate_accounts is not None and spam.duplicate_repeats is not None
    assert len(CAMPAIGN) > spam.duplicate_accounts
    window = timedelta(seconds=spam.duplicate_seconds)
    channels = ["general", "housing", "results", "branch-news"]
    campaigners = [old(10 + i, "campaigner") for i in range(len(CAMPAIGN))]
    for i, (who, text) in enumerate(zip(campaigners, CAMPAIGN, strict=True)):
        await world.post(who, text, at=T0 + i * window / 20, channel=channels[i % 4])
    # After the window has passed since the last copy, the same text is a new start.
    late = old(30, "latecomer")
    last = T0 + (len(CAMPAIGN) - 1) * window / 20
    await world.post(late, CAMPAIGN[0], at=last + window + timedelta(seconds=1))
    # One member asking the same question in one channel after another, a minute apart: the
    # first `repeats - 1` asks stand, the `repeats`th and any after are hidden. A short "+1"
    # from many members never counts.
    asker = old(40, "asker")
    question = "Has anyone got the leaflets for Saturday's canvass in Ashton ward?"
    for i in range(spam.duplicate_repeats + 1):
        await world.post(asker, question if i % 2 else question.upper(),
                         at=T0 + timedelta(minutes=1 + i), channel=channels[i % 3])
    for i in range(spam.duplicate_accounts * 2):
        await world.post(old(50 + i, "agreer"), "+1", at=T0 + timedelta(minutes=2, seconds=i))

    hide = str(spam.duplicate_action)
    expected = {who.id: [(hide, frozenset({"campaign"}))]
                for who in campaigners[spam.duplicate_accounts - 1:]}
    expected[asker.id] = [(hide, frozenset({"duplicate"}))] * 2
    assert acted(world.posted) == expected
    # The campaign's messages were taken down in every channel they reached.
    deleted = {a.channel for a in await world.outbox(ActionKind.DELETE)
               if a.user in {c.id for c in campaigners}}
    assert deleted == {f"C-{channels[i % 4]}"
                       for i in range(spam.duplicate_accounts - 1, len(CAMPAIGN))}


# -- a pile-on on an MP -----------------------------------------------------------------------


async def test_a_pile_on_on_an_mp_is_escalated_and_naming_her_in_criticism_is_not(
        world: World) -> None:
    spam = world.spam
    assert spam.pile_on is not None
    spacing = timedelta(seconds=spam.pile_on.seconds) / (spam.pile_on.count + 4)
    pingers = [old(60 + i, "pinger") for i in range(spam.pile_on.count + 3)]
    critics = [old(80 + i, "critic") for i in range(12)]
    complaints = ["why did you vote against the rent cap", "answer the question on the bus cuts",
                  "where were you for the housing vote", "explain the library closures",
                  "you promised a new school", "what about the hospital car park fees",
                  "reply to your constituents", "the green belt deal stinks",
                  "we are still waiting on the flooding report"]
    # A pile-on is hostile pings: each of these already earns a warning on its own.
    for i, who in enumerate(pingers):
        await world.post(who, f"@Rachel Adler {complaints[i]}, you idiot", at=T0 + i * spacing,
                         mentions=[MP.id])
        # Meanwhile members criticise her record by name, without pinging her.
        for j in (2 * i, 2 * i + 1):
            if j < len(critics):
                await world.post(critics[j], f"Rachel Adler's record on housing is poor: she "
                                 f"voted against the rent cap {j + 2} times",
                                 at=T0 + i * spacing + timedelta(seconds=10 + j))
    # A ping once the window has passed since the last is no pile-on.
    after = T0 + (len(pingers) - 1) * spacing + timedelta(seconds=spam.pile_on.seconds + 1)
    calm = old(99, "constituent")
    await world.post(calm, "@Rachel Adler thank you for the surgery on Friday", at=after,
                     mentions=[MP.id])

    escalate = str(spam.pile_on_action)
    assert acted(world.posted) == {
        # (naming a protected person with an insult is escalated as harassment anyway)
        **{who.id: [(escalate, frozenset())] for who in pingers[:spam.pile_on.count]},
        **{who.id: [(escalate, frozenset({"pile-on"}))] for who in pingers[spam.pile_on.count:]}}
    escalations = await world.outbox(ActionKind.ESCALATE)
    assert {a.user for a in escalations} == {who.id for who in pingers}


async def test_members_congratulating_their_mp_by_mention_are_not_a_pile_on(
        world: World) -> None:
    spam = world.spam
    assert spam.pile_on is not None
    cheers = ["congratulations!!", "well deserved 🎉", "brilliant result", "so proud of you",
              "what a night", "fantastic win", "thank you for all your work", "get in!!",
              "amazing campaign"]
    for i, text in enumerate(cheers):
        await world.post(old(60 + i, "cheer"), f"@Rachel Adler {text}",
                         at=T0 + timedelta(seconds=20 * i), mentions=[MP.id])
    assert len(cheers) > spam.pile_on.count
    assert acted(world.posted) == {}


# -- a raid of 30 new accounts ----------------------------------------------------------------


async def test_a_raid_of_thirty_new_discord_accounts(world: World) -> None:
    spam = world.spam
    assert spam.raid is not None and spam.raid_timeout is not None
    raiders = [newcomer(i) for i in range(1, 31)]
    regulars = [old(i, "regular") for i in range(1, 6)]
    step = timedelta(seconds=spam.raid.seconds) / 60  # all 30 well within the window
    for i, who in enumerate(raiders):
        await world.post(who, f"lol get rekt {i}", at=T0 + i * step, channel="general")
        if i % 6 == 0:
            await world.post(regulars[i // 6], f"what is going on in here? ({i})",
                             at=T0 + i * step + step / 2, channel="general")
    # The new account that makes them more than `count` starts the raid: the ones before it
    # were posted before anyone could tell, the rest are hidden.
    first = spam.raid.count  # index of the (count + 1)th new account
    in_raid = raiders[:first + 1]
    hide = str(spam.raid_action)
    assert acted(world.posted) == {who.id: [(hide, frozenset({"raid"}))]
                                   for who in raiders[first:]}

    alerts = await world.outbox(ActionKind.ALERT)
    assert len(alerts) == 1
    (alert,) = alerts
    assert alert.platform is Platform.DISCORD and alert.channel == "C-general"
    text = str(alert.payload["text"])
    assert text.startswith(f"Raid {alert.payload['raid']} in #general on discord: "
                           f"{len(in_raid)} new accounts")
    named = {who.name for who in raiders if f"{who.name} (" in text}
    assert named == {who.name for who in in_raid}
    assert not any(f"{who.name} (" in text for who in regulars)
    (slowmode,) = await world.outbox(ActionKind.SLOWMODE)
    assert (slowmode.channel, slowmode.payload["seconds"]) == (
        "C-general", spam.raid_slowmode_seconds)
    # The accounts that made it a raid are timed out when it starts, those that post in it
    # later when they do.
    timeouts = {a.user: a.payload["until"] for a in await world.outbox(ActionKind.TIMEOUT)
                if "raid" in a.payload}
    assert timeouts == {who.id: (T0 + max(i, first) * step + spam.raid_timeout).isoformat()
                        for i, who in enumerate(raiders)}
    raid = alert.payload["raid"]

    # While the raid lasts: the raiders' and other new accounts' posts in that channel are
    # hidden, the regulars' are not, and a new account elsewhere is left alone.
    later = T0 + 31 * step
    world.posted.clear()
    for i, who in enumerate([*raiders[:3], newcomer(77)]):
        await world.post(who, f"still here {i}", at=later + i * step, channel="general")
    for i, who in enumerate(regulars):
        await world.post(who, f"can a moderator sort this out {i}", at=later + i * step,
                         channel="general")
    await world.post(newcomer(78), "hello, just joined the branch", at=later,
                     channel="introductions")
    assert set(acted(world.posted)) == {who.id for who in [*raiders[:3], newcomer(77)]}
    assert {k for h in world.posted for k in kinds(h)} == {"raid"}
    assert len(await world.outbox(ActionKind.ALERT)) == 1  # still the one alert

    listed = await world.commands.run(OMAR, "raid")
    assert listed.ok and listed.title == "1 raid(s) in progress"
    assert f"#{raid} in #general on discord" in listed.text

    # Only a moderator ends it; ending it lifts the slowmode and exactly the raid's timeouts.
    refused = await world.commands.run(raiders[0].account, f"raid end {raid} all fine")
    assert not refused.ok and "Only moderators" in refused.text
    before = {a.id for a in await world.store.actions()}
    ended = await world.commands.run(KAREN, f"raid end {raid} the channel is quiet again")
    assert ended.ok and ended.title == f"Raid {raid} ended"
    assert ended.text == "the channel is quiet again. Slowmode lifted and timeouts lifted."
    queued = [a for a in await world.store.actions() if a.id not in before]
    assert [(a.kind, a.channel, a.payload.get("seconds")) for a in queued
            if a.kind is ActionKind.SLOWMODE] == [(ActionKind.SLOWMODE, "C-general", 0)]
    lifted = [a for a in queued if a.kind is ActionKind.RESTORE]
    in_it = [*raiders, newcomer(77)]  # every new account that posted in the raid
    assert sorted(a.user or "" for a in lifted) == sorted(w.id for w in in_it)
    assert all(a.payload.get("lift") is True for a in lifted)
    assert len(queued) == 1 + len(in_it)
    (audit,) = await world.store.audit_entries(action="raid:end")
    assert "Karen Lomax" in audit["actor"] and audit["reason"] == "the channel is quiet again"

    again = await world.commands.run(OMAR, f"raid end {raid} once more")
    assert not again.ok and again.title == "Refused"
    assert again.text.startswith(f"raid {raid} ended at ") and "Karen Lomax" in again.text
    assert {a.id for a in await world.store.actions()} == before | {a.id for a in queued}
    missing = await world.commands.run(OMAR, "raid end 999 typo")
    assert not missing.ok and "there is no raid 999" in missing.text
    assert (await world.commands.run(OMAR, "raid")).title == "0 raid(s) in progress"

    # Once the raid is over and its window has passed, a new account's post stands.
    quiet = later + timedelta(seconds=spam.raid.seconds + 1)
    world.posted.clear()
    await world.post(newcomer(90), "hi all, new member from Tameside", at=quiet,
                     channel="general")
    assert acted(world.posted) == {}
    assert len(await world.outbox(ActionKind.ALERT)) == 1


async def test_accounts_joining_a_raid_in_progress_are_timed_out_with_it(
        world: World) -> None:
    spam = world.spam
    assert spam.raid is not None
    raiders = [newcomer(i) for i in range(1, 31)]
    step = timedelta(seconds=spam.raid.seconds) / 60
    for i, who in enumerate(raiders):
        await world.post(who, f"lol get rekt {i}", at=T0 + i * step, channel="general")
    timeouts = [a for a in await world.outbox(ActionKind.TIMEOUT) if "raid" in a.payload]
    assert sorted(a.user or "" for a in timeouts) == sorted(w.id for w in raiders)


async def test_a_raid_ended_by_a_moderator_does_not_start_again_from_the_same_accounts(
        world: World) -> None:
    spam = world.spam
    assert spam.raid is not None
    step = timedelta(seconds=spam.raid.seconds) / 60
    for i in range(spam.raid.count + 1):
        await world.post(newcomer(i), f"hello from the new members' evening {i}",
                         at=T0 + i * step, channel="welcome")
    (alert,) = await world.outbox(ActionKind.ALERT)
    reply = await world.commands.run(KAREN, f"raid end {alert.payload['raid']} these are "
                                     "new members from tonight's event")
    assert reply.ok
    world.posted.clear()
    await world.post(newcomer(50), "hello everyone, also from the event",
                     at=T0 + (spam.raid.count + 2) * step, channel="welcome")
    assert acted(world.posted) == {}
    assert len(await world.outbox(ActionKind.ALERT)) == 1


async def test_the_same_raid_on_slack_alerts_the_moderators_only(world: World) -> None:
    spam = world.spam
    assert spam.raid is not None
    members = [slack(i, "UREG") for i in range(3)]  # in the register: not new
    for i, who in enumerate(members):
        await world.register(f"M01{i:02d}", who)
    raiders = [slack(i, "URAID") for i in range(1, 31)]  # never seen, not in the register
    # The bot has watched this workspace for longer than an account stays new.
    await world.post(members[0], "minutes of the last meeting are up",
                     at=T0 - spam.new_account_age - timedelta(days=1), channel="general")
    step = timedelta(seconds=spam.raid.seconds) / 60
    for i, who in enumerate(raiders):
        await world.post(who, f"lol get rekt {i}", at=T0 + i * step, channel="general")
        if i % 10 == 5:
            await world.post(members[i // 10], f"who are all these people {i}",
                             at=T0 + i * step + step / 2, channel="general")
    first = spam.raid.count
    assert acted(world.posted) == {who.id: [(str(spam.raid_action), frozenset({"raid"}))]
                                   for who in raiders[first:]}
    (alert,) = await world.outbox(ActionKind.ALERT)
    assert alert.platform is Platform.SLACK
    assert f"{first + 1} new accounts" in str(alert.payload["text"])
    assert await world.outbox(ActionKind.SLOWMODE, ActionKind.TIMEOUT) == []
    (raid,) = await world.store.raids(active=True)
    assert raid["response"] == "alert"
    before = len(await world.store.actions())
    ended = await world.commands.run(OMAR, f"raid end {raid['id']} over")
    assert ended.ok and ended.text == "over."  # nothing to lift
    assert len(await world.store.actions()) == before


# -- ordinary busy conversation ---------------------------------------------------------------


async def test_forty_members_replying_quickly_in_a_live_results_thread_are_left_alone(
        world: World) -> None:
    spam = world.spam
    rng = random.Random(15)
    discord = [old(i, "voter") for i in range(25)]           # accounts years old
    registered = [slack(i, "UMEM") for i in range(15)]       # Slack: in the register
    for i, who in enumerate(registered):
        await world.register(f"M02{i:02d}", who)
    everyone = discord + registered
    short = ["yes!!", "YES", "brilliant", "+1", "get in!", "wow", "come on!!", "amazing 🎉",
             "yesss", "Brilliant!", "+1 +1", "what a night", "huge", "👏👏👏"]
    at = T0
    for _round in range(5):
        for who in rng.sample(everyone, len(everyone)):
            at += timedelta(seconds=rng.uniform(0.2, 1.2))
            roll = rng.random()
            if roll < 0.5:
                text = rng.choice(short)
            elif roll < 0.8:
                ward = rng.randrange(1, 40)
                text = f"Ward {ward} declared, we held it with {rng.randrange(200, 3000)} votes"
            else:
                text = (f"Turnout in ward {rng.randrange(1, 40)} was {rng.randrange(20, 60)}%, "
                        "see https://www.bbc.co.uk/news/election/2026/results")
            peers = [p.id for p in everyone if p.platform is who.platform and p != who]
            mentions = rng.sample(peers, rng.choice((0, 0, 0, 1, 2, 3)))
            await world.post(who, text, at=at, mentions=mentions)
    # The premise: a busy thread (200 messages in a few minutes, most of them short and alike,
    # many mentioning someone), yet nobody past any limit of the policy.
    assert len(world.posted) == 200 and at - T0 < timedelta(minutes=4)
    assert sum(bool(h.message.mentions) for h in world.posted) > 40
    assert sum(h.message.text in short for h in world.posted) > 80
    per_member: dict[str, list[datetime]] = {}
    for h in world.posted:
        times = per_member.setdefault(h.message.author, [])
        assert not breaches(times, h.message.sent_at, spam.rate_channel)
        times.append(h.message.sent_at)
    assert acted(world.posted) == {}
    assert await world.store.actions() == []
    assert await world.store.raids(active=False) == []


async def test_registered_members_new_to_the_discord_server_are_not_a_raid(
        world: World) -> None:
    spam = world.spam
    assert spam.raid is not None
    members = [Who(Platform.DISCORD, f"4{i:017d}", f"newjoiner{i}", LONG_AGO,
                   T0 - timedelta(days=1)) for i in range(spam.raid.count + 5)]
    for i, who in enumerate(members):
        await world.register(f"M03{i:02d}", who)
    for i, who in enumerate(members):
        await world.post(who, f"first time on here, what a result in ward {i}",
                         at=T0 + timedelta(seconds=10 * i))
    assert acted(world.posted) == {}
    assert await world.store.raids(active=False) == []


async def test_a_busy_slack_channel_in_the_bots_first_week_is_not_a_raid(world: World) -> None:
    spam = world.spam
    assert spam.raid is not None
    # Long-standing members of the workspace the register does not list; the bot has just
    # been installed, so it has never seen them post.
    members = [slack(i, "UOLD") for i in range(spam.raid.count + 5)]
    for i, who in enumerate(members):
        await world.post(who, f"great turnout at the count tonight, ward {i}",
                         at=T0 + timedelta(seconds=10 * i), channel="general")
    assert acted(world.posted) == {}
    assert await world.store.raids(active=False) == []


# -- links and mentions -----------------------------------------------------------------------


async def test_invites_shorteners_and_new_accounts_links_are_hidden(world: World) -> None:
    spam = world.spam
    regular, fresh = old(1), newcomer(1)
    leaflet = "Our leaflet for Saturday: https://example-party.org.uk/leaflets/ashton.pdf"
    cases = [
        (regular, "Come and join our new server discord.gg/ab12CD", {"invite"}),
        (regular, "Full results here https://bit.ly/3xYzAbc", {"shortener"}),
        (fresh, leaflet, {"new-account-link"}),
        (fresh, "Join us at https://discord.com/invite/xyz789", {"invite"}),
        (regular, leaflet, set()),
        (regular, "BBC live page: www.bbc.co.uk/news/election", set()),
        (fresh, "Hello, I joined the party last week", set()),
    ]
    for i, (who, text, _) in enumerate(cases):
        await world.post(who, text, at=T0 + timedelta(minutes=i), channel=f"links{i}")
    assert [kinds(h) for h in world.posted] == [frozenset(k) for _, _, k in cases]
    assert [str(h.verdict.action) for h in world.posted] == [
        str(spam.link_action) if k else "allow" for _, _, k in cases]


async def test_too_many_mentions_and_everyone_from_a_member(world: World) -> None:
    spam = world.spam
    assert spam.mention_max is not None and spam.mass_mention_action is not None
    member = old(1)
    peers = [old(100 + i).id for i in range(spam.mention_max + 1)]
    await world.post(member, "canvass team for Saturday, see you at ten", at=T0,
                     mentions=peers[:-1])
    await world.post(member, "canvass team for Sunday, see you at ten",
                     at=T0 + timedelta(minutes=1), mentions=peers)
    await world.post(member, "@everyone vote for me as branch chair",
                     at=T0 + timedelta(minutes=2), mass=True)
    await world.post(Who(KAREN.platform, KAREN.id, "Karen Lomax"),
                     "@everyone polls close at ten: last call for tellers",
                     at=T0 + timedelta(minutes=3), mass=True)
    assert [(str(h.verdict.action), kinds(h)) for h in world.posted] == [
        ("allow", frozenset()), (str(spam.mention_action), {"mentions"}),
        (str(spam.mass_mention_action), {"mass-mention"}), ("allow", frozenset())]


# -- edits --------------------------------------------------------------------------------------


async def test_editing_ones_own_messages_is_neither_a_flood_nor_a_repeat(world: World) -> None:
    spam = world.spam
    assert spam.rate_channel is not None and spam.duplicate_repeats is not None
    member = old(1)
    posts = []
    # As many messages as the limit allows in the window, then typos fixed in a few of them:
    # an edit arrives as a new revision of the message, sent when the message was.
    for i in range(spam.rate_channel.count):
        posts.append(await world.post(member, f"Counting agent report from box {i}: we lead",
                                      at=T0 + timedelta(seconds=i)))
    for h in posts[:spam.duplicate_repeats]:
        for fix in range(2):
            edited = replace(h.message, text=h.message.text.upper() + "!" * (fix + 1),
                             revision=fix + 1)
            world.clock.now = T0 + timedelta(seconds=30 + fix)
            handled = await world.moderator.handle(edited)
            assert handled is not None
            world.posted.append(handled)
    assert acted(world.posted) == {}


# -- shadow mode ----------------------------------------------------------------------------------


async def test_a_raid_in_shadow_mode_does_nothing_to_members(database: Target,
                                                              policy: Policy) -> None:
    shadow = replace(policy, mode=Mode.SHADOW)
    assert shadow.spam is not None and shadow.spam.raid is not None
    step = timedelta(seconds=shadow.spam.raid.seconds) / 60
    async with open_world(database, shadow) as world:
        for i in range(shadow.spam.raid.count + 5):
            await world.post(newcomer(i), f"lol get rekt {i}", at=T0 + i * step,
                             channel="general")
        assert all(h.verdict.mode is Mode.SHADOW for h in world.posted)
        assert await world.outbox(ActionKind.DELETE, ActionKind.NOTIFY) == []
        assert await world.outbox(ActionKind.SLOWMODE, ActionKind.TIMEOUT) == []


# -- the weekly digest ------------------------------------------------------------------------


async def test_the_weeks_floods_campaigns_and_raids_are_in_the_digest_by_kind(
        world: World, policy: Policy) -> None:
    from collections import Counter

    from bot.digest import build_digest, to_markdown

    spam = world.spam
    assert spam.raid is not None and spam.rate_channel is not None
    step = timedelta(seconds=spam.raid.seconds) / 60
    for i in range(spam.raid.count + 4):
        await world.post(newcomer(i), f"lol get rekt {i}", at=T0 + i * step, channel="general")
    for i, text in enumerate(CAMPAIGN):
        await world.post(old(10 + i), text, at=T0 + timedelta(minutes=20, seconds=i))
    for i in range(spam.rate_channel.count + 3):
        await world.post(old(1), f"Box {i} counted, see the sheet", at=T0 + timedelta(
            minutes=30, seconds=i))
    expected = Counter(k for h in world.posted for k in kinds(h))
    assert set(expected) == {"raid", "campaign", "rate-channel"}
    d = await build_digest(world.store, "2026-W47", now=T0 + timedelta(days=1), policy=policy)
    assert {f.key: f.this_week for f in d.spam} == dict(expected)
    assert d.spam_messages.this_week == sum(bool(kinds(h)) for h in world.posted)
    assert d.raids_started.this_week == 1
    (raid,) = d.raids
    assert (raid.channel, raid.accounts, raid.response) == (
        "#general (Discord)", spam.raid.count + 4, "slowmode,timeout")  # 3 joined it later
    assert f"| Copy-paste campaign | {expected['campaign']} | 0 | +{expected['campaign']} |" \
        in to_markdown(d)
