"""Shadow mode and live policy reload, through Moderator and Commands with a real temporary
SQLite store and the stable test policy.

Shadow mode decides and records every verdict but does nothing to members: no deletion, no
notice, no strike, no timeout; what the bot would have hidden or escalated goes to the
moderators to uphold or dismiss, and their answers are reviews (the calibration figures).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path

import pytest

import adapters.runner
from bot.errors import PolicyError
from bot.models import ActionKind, CaseState, Mode
from bot.policy import Policy, parse_policy
from tests.conftest import ROOT
from tests.scenarios.test_members import KAREN, MEMBER, World, open_world

ABUSE = "immigrants are vermin"  # the keyword scorer escalates this (3 strike points)
RUDE = "you idiot"  # warn level
FIXTURE = ROOT / "tests" / "fixtures" / "policy.toml"

Under = Callable[[Policy], AbstractAsyncContextManager[World]]


@pytest.fixture
def world_under(tmp_path: Path) -> Under:
    return lambda policy: open_world(tmp_path / "db.sqlite3", policy)


def shadow(policy: Policy, **changes: object) -> Policy:
    return replace(policy, mode=Mode.SHADOW, **changes)  # type: ignore[arg-type]


async def member_rows(world: World) -> list[str]:
    """Outbox rows that do something to the member (anything but the moderators' post)."""
    return [str(a.kind) for a in await world.store.actions()
            if a.kind is not ActionKind.ESCALATE]


# -- shadow mode --------------------------------------------------------------------------------


async def test_shadow_mode_records_verdicts_and_touches_no_member(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(shadow(test_policy)) as world:
        handled = [await world.post(text) for text in (ABUSE, RUDE, ABUSE, ABUSE, ABUSE)]
        assert [h.verdict.action for h in handled] == [
            "escalate", "warn", "escalate", "escalate", "escalate"]
        assert all(h.verdict.mode is Mode.SHADOW for h in handled)
        # Four escalations would climb the test ladder (a timeout at 3 points) when enforced.
        assert await member_rows(world) == []
        assert await world.store.strikes(handled[0].member.id, include_pardoned=True) == []
        assert await world.moderator.points(handled[0].member.id) == 0
        assert all(h.ladder is None for h in handled)
        for h in handled:
            verdict = await world.store.verdict_for(h.message)
            assert verdict is not None and verdict["mode"] == "shadow"
        # What it would have hidden goes to the moderators, marked; a warning is only recorded.
        posts = [a for a in await world.store.actions() if a.kind is ActionKind.ESCALATE]
        assert len(posts) == 4 and all(p.payload["shadow"] is True for p in posts)
        assert handled[1].case_id is None and handled[1].actions == ()
        case = await world.store.get_case(handled[0].case_id or 0)
        assert case is not None and case.shadow and case.state is CaseState.OPEN
        assert case.summary.startswith("shadow mode: would have escalated under clause 1.2")
        queue = await world.run(KAREN, "queue")
        assert queue.title == "4 case(s) waiting" and "shadow open" in queue.text
        check = await world.run(KAREN, f"check {ABUSE}")
        assert check.title == "Would escalate (shadow mode: recorded, nothing done)"


async def test_shadow_reviews_feed_calibration_and_the_member_never_hears(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(shadow(test_policy)) as world:
        right, wrong = await world.post(ABUSE), await world.post(ABUSE)
        upheld = await world.run(KAREN, f"resolve {right.case_id} uphold clear abuse")
        assert upheld.ok and "the bot was right" in upheld.text
        dismissed = await world.run(KAREN, f"resolve {wrong.case_id} dismiss quoting it")
        assert dismissed.ok and "would have been wrong" in dismissed.text
        assert [(r["case_id"], r["outcome"]) for r in await world.store.reviews()] == [
            (right.case_id, "upheld"), (wrong.case_id, "dismissed")]
        # Nothing went to the member, before or after the reviews; no points either.
        assert await member_rows(world) == []
        assert await world.moderator.points(right.member.id) == 0
        # The member sees no case and cannot appeal one they were never told of.
        mine = await world.run(MEMBER, "mycases")
        assert mine.title == "No cases about you"
        appeal = await world.run(MEMBER, f"appeal {right.case_id} unfair")
        assert not appeal.ok and "not a decision about you" in appeal.text


async def test_shadow_without_review_records_only(
        world_under: Under, test_policy: Policy) -> None:
    async with world_under(shadow(test_policy, shadow_review=False)) as world:
        handled = await world.post(ABUSE)
        assert handled.verdict.action == "escalate" and handled.case_id is None
        assert await world.store.actions() == []
        verdict = await world.store.verdict_for(handled.message)
        assert verdict is not None and verdict["mode"] == "shadow"


async def test_a_shadow_channel_beside_enforced_ones(test_policy: Policy, tmp_path: Path) -> None:
    source = FIXTURE.read_text(encoding="utf-8").replace(
        "[channels.welcome]", '[channels.welcome]\nmode = "shadow"', 1)
    policy = parse_policy(source, file=str(FIXTURE))
    assert policy.mode is Mode.ENFORCE and policy.mode_for("welcome") is Mode.SHADOW
    async with open_world(tmp_path / "db.sqlite3", policy) as world:
        enforced = await world.post(ABUSE, channel="general")
        shadowed = await world.post(ABUSE, channel="welcome")
        assert enforced.verdict.mode is Mode.ENFORCE and shadowed.verdict.mode is Mode.SHADOW
        assert [str(a.kind) for a in enforced.actions] == ["delete", "notify", "escalate"]
        assert [str(a.kind) for a in shadowed.actions] == ["escalate"]
        assert shadowed.actions[0].payload["shadow"] is True
        strikes = await world.store.strikes(enforced.member.id, include_pardoned=True)
        assert [s["case_id"] for s in strikes] == [enforced.case_id]


def test_mode_problems_name_the_key_and_line() -> None:
    source = FIXTURE.read_text(encoding="utf-8")
    with pytest.raises(PolicyError) as bad:
        parse_policy(source.replace("[channels.welcome]",
                                    '[channels.welcome]\nmode = "quiet"', 1), file="p.toml")
    problem = str(bad.value)
    assert "channels.welcome.mode: must be one of enforce, shadow, not 'quiet'" in problem
    assert "line " in problem
    with pytest.raises(PolicyError, match="shadow_review: must be true or false"):
        parse_policy('shadow_review = "yes"\n' + source)
    with pytest.raises(PolicyError, match="min_count: must be a whole number from 1 to 1000"):
        parse_policy(source + "\n[transparency]\nmin_count = 0\n")
    assert parse_policy(source + "\n[transparency]\nmin_count = 25\n").transparency_min_count \
        == 25


# -- live reload --------------------------------------------------------------------------------


def write_policy(path: Path, *, version: str, change: tuple[str, str] | None = None) -> Path:
    source = FIXTURE.read_text(encoding="utf-8").replace('version = "test-1"',
                                                          f'version = "{version}"', 1)
    if change is not None:
        assert change[0] in source
        source = source.replace(*change, 1)
    path.write_text(source, encoding="utf-8")
    return path


async def reloads(world: World) -> list[tuple[str, str | None]]:
    entries = await world.store.audit_entries(action="policy:reload", limit=100)
    return [(e["action"], e["reason"]) for e in reversed(entries)]


async def test_reload_keeps_the_old_policy_on_a_broken_file_and_switches_on_a_good_one(
        tmp_path: Path) -> None:
    path = write_policy(tmp_path / "policy.toml", version="test-1")
    policy = parse_policy(path.read_text(encoding="utf-8"), file=str(path))
    async with open_world(tmp_path / "db.sqlite3", policy) as world:
        assert (await world.post(RUDE)).verdict.action == "warn"

        path.write_text(path.read_text(encoding="utf-8").replace("warn = 0.70", "warn = 7", 1),
                        encoding="utf-8")
        with pytest.raises(PolicyError, match=r"categories\.insult\.warn: threshold 7"):
            await world.moderator.reload_policy(actor="test")
        assert world.moderator.policy is policy
        assert (await world.post(RUDE)).verdict.policy_version == "test-1"

        # Changed but with the same version: verdicts could not tell the two apart.
        write_policy(path, version="test-1", change=("hide = 0.95", "hide = 0.75"))
        with pytest.raises(PolicyError, match="give it a new version"):
            await world.moderator.reload_policy(actor="test")
        assert world.moderator.policy is policy

        write_policy(path, version="test-2", change=("hide = 0.95", "hide = 0.75"))
        reloaded = await world.moderator.reload_policy(actor="test")
        assert world.moderator.policy is reloaded and reloaded.version == "test-2"
        after = await world.post(RUDE)  # insult 0.80 reaches the new hide level
        assert after.verdict.action == "hide" and after.verdict.policy_version == "test-2"
        assert (await world.store.verdict_for(after.message) or {})["policy_version"] == "test-2"
        assert [a for a, _ in await reloads(world)] == [
            "policy:reload-refused", "policy:reload-refused", "policy:reload"]
        assert (await reloads(world))[-1][1] == "test-1 -> test-2"


async def test_moderators_reload_by_command_and_see_why_it_was_refused(tmp_path: Path) -> None:
    path = write_policy(tmp_path / "policy.toml", version="test-1")
    async with open_world(tmp_path / "db.sqlite3",
                          parse_policy(path.read_text(encoding="utf-8"), file=str(path))) as world:
        path.write_text("version = \n", encoding="utf-8")
        refused = await world.run(KAREN, "policy reload")
        assert not refused.ok and refused.title == "Policy not reloaded"
        assert "test-1 stays in force" in refused.text and "line 1" in refused.text
        member = await world.run(MEMBER, "policy reload")
        assert not member.ok and "Only moderators" in member.text

        write_policy(path, version="test-2", change=("[channels.welcome]",
                                                     '[channels.welcome]\nmode = "shadow"'))
        done = await world.run(KAREN, "policy reload")
        assert done.ok and done.title == "Policy reloaded: test-1 -> test-2"
        assert "Mode: enforce (but welcome: shadow)" in done.text
        entry = (await world.store.audit_entries(action="policy:reload", limit=1))[0]
        assert "Karen" in entry["actor"]
        assert json.loads(entry["detail"])["to"] == "test-2"
        assert (await world.post(ABUSE, channel="welcome")).verdict.mode is Mode.SHADOW


async def test_sighup_reloads_and_sigterm_still_stops() -> None:
    reloaded = asyncio.Event()
    calls: list[str] = []

    async def reload() -> None:
        calls.append("reload")
        reloaded.set()
        raise PolicyError("p.toml", [])  # a refused reload must not stop the bot

    async def platform() -> None:
        await asyncio.Event().wait()

    serving = asyncio.create_task(adapters.runner._serve({"console": platform}, reload=reload))
    await asyncio.sleep(0.05)  # the handlers are installed
    for _ in range(2):
        reloaded.clear()
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.wait_for(reloaded.wait(), 5)
    assert calls == ["reload", "reload"] and not serving.done()
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(serving, 5) == []
