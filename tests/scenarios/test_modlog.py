"""The moderators' log: one line per action by the bot or a moderator, in order, each once,
read from the audit log through a cursor in the store (a real store on each backend, the test
policy)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from adapters.console import ConsolePort
from bot.commands import Commands
from bot.database import Target
from bot.models import ActionKind, Mode, Platform
from bot.moderator import Moderator
from bot.modlog import modlog_lines
from bot.policy import Policy
from tests.scenarios.test_members import KAREN, MEMBER, open_world

ABUSE = "immigrants are vermin"  # escalated by the keyword scorer
RUDE = "you idiot"  # warned


async def posted(port: ConsolePort) -> list[str]:
    return [line for a in port.performed if a.kind is ActionKind.POST
            for line in str(a.payload["text"]).splitlines()]


async def test_every_action_is_logged_once_in_order(database: Target,
                                                    test_policy: Policy) -> None:
    async with open_world(database, test_policy) as world:
        await world.post("before the log was switched on: you idiot")
        # A restart a minute later with the log switched on: it starts there, not in the past.
        world.clock.now += timedelta(minutes=1)
        world.moderator = Moderator(store=world.store, policy=test_policy,
                                    scorer=world.moderator.scorer)
        world.commands = Commands(world.moderator)
        world.moderator.modlog_channels[Platform.DISCORD] = "modlog"
        port = ConsolePort(Platform.DISCORD)
        await world.moderator.run_outbox(port)
        assert await posted(port) == []

        warned = await world.post(RUDE)
        await world.post("Lovely canvassing in Leeds today")  # allowed: not logged
        escalated = await world.post(ABUSE)
        await world.run(KAREN, f"resolve {escalated.case_id} uphold clear abuse")
        await world.run(KAREN, f"pardon {warned.case_id} first offence")
        await world.run(KAREN, "policy reload")
        await world.moderator.run_outbox(port)
        lines = await posted(port)
        who = f"discord:{MEMBER.id}"  # an account the register does not know
        moderator = await world.store.member_by_account(KAREN.platform, KAREN.id)
        assert moderator is not None
        karen = f"Karen Lomax ({moderator.id})"  # as the audit log names her
        assert [line.split(" · ", 1)[1] for line in lines] == [
            f"bot warned a message by {who} in #general: "
            f"{'; '.join(warned.verdict.reasons)} · case {warned.case_id}",
            f"bot hid and escalated a message by {who} in #general: "
            f"{'; '.join(escalated.verdict.reasons)} · case {escalated.case_id}",
            f"{karen} upheld the case: clear abuse · case {escalated.case_id}",
            f"{karen} pardoned the case: first offence · case {warned.case_id}",
            f"{karen} reloaded the policy: test-1 -> test-1",
        ]
        assert lines[0].startswith("20 Nov 09:01 · ")  # the party's time zone (GMT in Nov)

        await world.moderator.run_outbox(port)
        assert len(await posted(port)) == len(lines)  # each entry once


async def test_shadow_verdicts_say_nothing_was_done(database: Target,
                                                    test_policy: Policy) -> None:
    async with open_world(database, replace(test_policy, mode=Mode.SHADOW)) as world:
        world.moderator.modlog_channels[Platform.DISCORD] = "modlog"
        port = ConsolePort(Platform.DISCORD)
        await world.moderator.run_outbox(port)
        handled = await world.post(ABUSE)
        await world.moderator.run_outbox(port)
        (line,) = await posted(port)
        assert "bot would have escalated a message by" in line
        assert line.endswith(f"(shadow mode: nothing was done) · case {handled.case_id}")


async def test_a_long_log_is_split_into_messages_a_platform_takes(
        database: Target, test_policy: Policy) -> None:
    async with open_world(database, test_policy) as world:
        world.moderator.modlog_channels[Platform.SLACK] = "CLOG"
        port = ConsolePort(Platform.SLACK)
        await world.moderator.run_outbox(port)
        for _ in range(40):
            await world.post(RUDE)
        await world.moderator.run_outbox(port)
        posts = [a for a in port.performed if a.kind is ActionKind.POST]
        assert len(posts) > 1 and all(len(str(p.payload["text"])) <= 1900 for p in posts)
        assert all(p.channel == "CLOG" for p in posts)
        assert sum(len(str(p.payload["text"]).splitlines()) for p in posts) == 40


def test_lines_skip_what_is_not_an_action() -> None:
    entries = [
        {"at": "2026-11-20T09:00:00+00:00", "actor": "bot", "action": "verdict:allow",
         "case_id": None, "reason": None, "detail": None, "member": "Ann"},
        {"at": "2026-11-20T09:01:00+00:00", "actor": "Karen", "action": "refused:warn",
         "case_id": None, "reason": "not allowed", "detail": None, "member": None},
        {"at": "2026-11-20T09:02:00+00:00", "actor": "operator", "action": "link",
         "case_id": None, "reason": None, "detail": None, "member": "Ann"},
        {"at": "2026-11-20T09:03:00+00:00", "actor": "Karen", "action": "timeout",
         "case_id": 7, "reason": "cool off " + "x" * 300, "member": "Ann",
         "detail": json.dumps({"until": "later"})},
    ]
    (line,) = modlog_lines(entries)
    assert line.startswith("20 Nov 09:03 · Karen timed out Ann: cool off x")
    assert line.endswith("… · case 7") and len(line) < 220
