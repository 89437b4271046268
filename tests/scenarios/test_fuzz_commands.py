"""`Commands.run` never raises: any words from any account become a Reply (issue 11, point 6).

Anyone on Discord or Slack can type a command, so the parser sees whatever they type.
Through Commands with a real temporary SQLite store, the test policy and a keyword scorer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.commands import COMMANDS, Commands, Reply
from bot.models import Account, MemberStatus, Message, Platform, Role
from bot.moderator import Moderator
from bot.policy import Policy
from bot.scoring import Batcher
from bot.store import Store
from tests.conftest import KeywordScorer

KAREN = Account(Platform.CONSOLE, "karen")  # a moderator
ANN = Account(Platform.DISCORD, "100000000000000001")  # a member with cases
STRANGER = Account(Platform.SLACK, "UNKNOWN01")


@pytest.fixture
async def commands(store: Store, test_policy: Policy,
                   scorer: KeywordScorer) -> AsyncIterator[Commands]:
    async with Batcher(scorer) as batcher:
        moderator = Moderator(store=store, policy=test_policy, scorer=batcher)
        for number, name, account, roles in (("M0001", "Karen Lomax", KAREN, {Role.MODERATOR}),
                                             ("M0003", "Ann Member", ANN, set())):
            await store.import_member(membership_number=number, name=name,
                                      status=MemberStatus.ACTIVE, roles=roles, reason=None,
                                      suspended_from=None, suspended_until=None,
                                      accounts=[(account.platform, account.id)], actor="test")
        for i, text in enumerate(["you idiot", "immigrants are vermin"]):
            await moderator.handle(Message(ANN.platform, f"m{i}", "general", ANN.id, text,
                                           datetime(2026, 11, 20, 10, i, tzinfo=UTC)))
        yield Commands(moderator)


async def refused(commands: Commands, account: Account, words: str | list[str]) -> str:
    reply = await commands.run(account, words)
    assert not reply.ok and reply.title != "Something went wrong", reply
    return reply.text


@pytest.mark.parametrize(("account", "words", "expected"), [
    (ANN, "appeal ² x", "'²' is not a case number"),
    (ANN, "appeal ١٢ x", "'١٢' is not a case number"),
    (KAREN, "case 99999999999999999999", "'99999999999999999999' is not a case number"),
    (KAREN, "case 9223372036854775808", "'9223372036854775808' is not a case number"),
    (KAREN, "note #999999999999999999 hello", "There is no case 999999999999999999"),
    (KAREN, "suspend M0003 999999999999y spam", "'999999999999y' is longer than 100 years"),
    (KAREN, "timeout M0003 99999999999999999999d spam", "is not a duration"),
    (KAREN, "queue page:99999999999999999999", "is not a queue filter"),
    (KAREN, 'warn "M0003 spam', "No closing quotation (check your quotation marks)"),
    (KAREN, "warn \ud800 spam", "It contains U+D800, which is not text"),
    (STRANGER, ["appeal", "1", "a\udfffb"], "It contains U+DFFF, which is not text"),
    (Account(Platform.CONSOLE, "bad\udcff"), "help", "It contains U+DCFF, which is not text"),
])
async def test_bad_input_is_a_clear_refusal(commands: Commands, account: Account,
                                            words: str | list[str], expected: str) -> None:
    assert expected in await refused(commands, account, words)


async def test_unreadable_words_are_audited_with_the_bad_character_replaced(
        commands: Commands) -> None:
    await refused(commands, KAREN, "warn \ud800 spam")
    entry = (await commands.store.audit_entries(limit=1))[0]
    assert entry["action"] == "refused:?" and "U+D800" in entry["reason"]
    assert json.loads(entry["detail"])["args"] == ["warn \ufffd spam"]


async def test_a_bug_in_a_command_is_answered_and_logged(
        commands: Commands, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    async def broken(number: int) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(commands.store, "get_case", broken)
    with caplog.at_level(logging.ERROR, logger="bot.commands"):
        reply = await commands.run(KAREN, "case 1")
    assert not reply.ok and reply.title == "Something went wrong"
    assert "disk on fire" not in reply.text  # internals stay in the log
    assert "RuntimeError: disk on fire" in caplog.text and "'case 1'" in caplog.text


ARGS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["1", "2", "#1", "²", "99999999999999999999", "9223372036854775808", "-1",
                     "3d", "999999999999y", "0d", "indefinite", "M0003", "Karen Lomax",
                     "discord:100000000000000001", "console:", ":", "uphold", "dismiss",
                     "page:0", "page:2", "mine", "clause:1.1", '"', "“", "\ud800", "\x1b[2J"]),
)
WORDS = st.tuples(st.sampled_from([*COMMANDS, "nope", "", "CASE"]),
                  st.lists(ARGS, max_size=4))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(account=st.sampled_from([KAREN, ANN, STRANGER]), words=WORDS, as_list=st.booleans())
async def test_any_words_from_anyone_are_answered(commands: Commands, account: Account,
                                                  words: tuple[str, list[str]],
                                                  as_list: bool) -> None:
    typed: str | list[str] = [words[0], *words[1]] if as_list else " ".join(
        [words[0], *words[1]])
    reply = await commands.run(account, typed)
    assert isinstance(reply, Reply) and reply.title != "Something went wrong", reply
    assert "\n" not in reply.title
