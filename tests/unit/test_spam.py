"""The `[spam]` policy section and the detector's pure parts (bot/spam.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import PolicyError
from bot.models import Member, Message, Platform, Role, VerdictAction
from bot.policy import SpamPolicy, load_policy, parse_policy
from bot.spam import (
    SpamCounts,
    fingerprint,
    is_new_account,
    link_hosts,
    spam_check,
    spam_keys,
)
from tests.conftest import ROOT

T0 = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)
DEFAULT = ROOT / "policies" / "default.toml"
SPAM = load_policy(DEFAULT).spam
assert SPAM is not None
OLD = Member(id="m-old", display_name="Ann", membership_number="M0001")
STRANGER = Member(id="m-new", display_name="discord:1")


def message(text: str = "hello all", **fields: object) -> Message:
    return Message(Platform.DISCORD, "1", "general", "1", text, T0,  # type: ignore[arg-type]
                   channel_name="general", **fields)


def kinds(text: str = "hello all", member: Member = OLD, counts: SpamCounts | None = None,
          policy: SpamPolicy = SPAM, **fields: object) -> list[str]:
    m = message(text, **fields)
    keys = spam_keys(m, policy=policy)
    return [h.rule_id for h in spam_check(m, member, keys, counts or SpamCounts(),
                                          policy=policy).hits]


# -- the policy section -----------------------------------------------------------------------


def test_the_default_policy_reads_its_spam_section() -> None:
    assert SPAM.clause == "1.7" and SPAM.rate_channel is not None
    assert SPAM.raid is not None and SPAM.raid_response == "slowmode"
    assert SPAM.raid_timeout == timedelta(hours=1)
    assert "bit.ly" in SPAM.shorteners and SPAM.invites and SPAM.new_account_links
    assert load_policy(ROOT / "tests" / "fixtures" / "policy.toml").spam is None


@pytest.mark.parametrize(("change", "says"), [
    ('per_channel = { messages = 8, seconds = 15 }', None),
    ('per_channel = { messages = 0, seconds = 15 }', "spam.rate.per_channel.messages: must be "
                                                     "a whole number from 1 to 10000"),
    ('per_channel = { messages = 8, seconds = 90000 }', "spam.rate.per_channel.seconds: must be "
                                                        "at most 86400"),
    ('per_channel = { messages = 8 }', "spam.rate.per_channel: needs a count"),
    ('response = "slowmode"', None),
    ('response = "ban"', "spam.raid.response: must be one of slowmode, alert"),
    ('slowmode_seconds = 30', None),
    ('slowmode_seconds = 30000', "slowmode_seconds: must be a whole number of seconds from 1"),
    ('mass = "escalate"', None),
    ('mass = "shout"', "spam.mentions.mass: must be one of warn, hide, escalate"),
    ('invites = true', None),
    ('invites = "yes"', "spam.links.invites: must be true or false"),
    ('clause = "1.7"', None),
    ('clause = "9.9"', "cites clause '9.9', which the policy does not define"),
])
def test_spam_section_problems_name_the_key(change: str, says: str | None) -> None:
    source = DEFAULT.read_text(encoding="utf-8")
    key = change.split(" = ", 1)[0]
    lines = source.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"{key} = ")
              and i > next(j for j, x in enumerate(lines) if x == "[spam]"))
    lines[at] = change
    if says is None:
        assert parse_policy("\n".join(lines)).spam is not None
        return
    with pytest.raises(PolicyError) as bad:
        parse_policy("\n".join(lines), file="p.toml")
    assert says in str(bad.value) and "line " in str(bad.value)


# -- the pure checks --------------------------------------------------------------------------


def test_limits_allow_the_count_and_act_on_one_more() -> None:
    assert SPAM.rate_channel is not None and SPAM.raid is not None
    limit = SPAM.rate_channel.count
    assert kinds(counts=SpamCounts(channel_posts=limit - 1)) == []
    assert kinds(counts=SpamCounts(channel_posts=limit)) == ["spam:rate-channel"]
    assert SPAM.duplicate_repeats is not None and SPAM.duplicate_accounts is not None
    text = "Sign the petition to deselect the whole council now"
    assert kinds(text, counts=SpamCounts(same_text_mine=SPAM.duplicate_repeats - 2)) == []
    assert kinds(text, counts=SpamCounts(same_text_mine=SPAM.duplicate_repeats - 1)) == [
        "spam:duplicate"]
    assert kinds(text, counts=SpamCounts(same_text_others=SPAM.duplicate_accounts - 1)) == [
        "spam:campaign"]
    assert kinds("+1", counts=SpamCounts(same_text_others=50)) == []  # too short to count
    # The 11th new account in the window starts a raid, and its own post is hidden.
    raid = SpamCounts(new_in_channel=SPAM.raid.count, first_seen=None)
    m = message(account_created_at=T0 - timedelta(days=1))
    check = spam_check(m, STRANGER, spam_keys(m, policy=SPAM), raid, policy=SPAM)
    assert check.starts_raid and [h.rule_id for h in check.hits] == ["spam:raid"]
    assert not spam_check(m, OLD, spam_keys(m, policy=SPAM),
                          SpamCounts(new_in_channel=SPAM.raid.count - 1),
                          policy=SPAM).starts_raid


def test_mentions_links_and_who_may_mention_everyone() -> None:
    assert SPAM.mention_max is not None
    many = tuple(str(i) for i in range(SPAM.mention_max + 1))
    assert kinds(mentions=many) == ["spam:mentions"]
    assert kinds(mentions=many[:-1]) == []
    assert kinds(mass_mention=True) == ["spam:mass-mention"]
    moderator = Member(id="m-mod", display_name="Karen", roles=frozenset({Role.MODERATOR}))
    assert kinds(mass_mention=True, member=moderator) == []
    assert kinds("join us at discord.gg/abc123") == ["spam:invite"]
    assert kinds("read this https://bit.ly/3xYz first") == ["spam:shortener"]
    assert kinds("our leaflet: https://example.org/leaflet.pdf") == []
    assert kinds("our leaflet: https://example.org/leaflet.pdf", member=STRANGER,
                 account_created_at=T0 - timedelta(days=1)) == ["spam:new-account-link"]


def test_a_new_account_is_recent_by_its_dates_or_unknown_and_unseen() -> None:
    week = SPAM.new_account_age
    watched = T0 - week * 4  # the bot has held messages for four weeks

    def new(m: Message, member: Member, first_seen: datetime | None,
            history_start: datetime | None = watched) -> bool:
        return is_new_account(m, member, policy=SPAM, first_seen=first_seen,
                              history_start=history_start)

    recent = message(account_created_at=T0 - week + timedelta(hours=1))
    old = message(account_created_at=T0 - week - timedelta(days=300),
                  joined_at=T0 - week - timedelta(days=2))
    joined = message(account_created_at=T0 - timedelta(days=900), joined_at=T0)
    assert new(recent, STRANGER, T0) and new(joined, STRANGER, T0)
    assert not new(old, STRANGER, None)
    # A member in the party's register is never a newcomer, whatever the platform says.
    assert not new(recent, OLD, T0) and not new(joined, OLD, T0)
    plain = message()  # Slack: no dates
    assert not new(plain, OLD, None)
    assert new(plain, STRANGER, None)
    assert new(plain, STRANGER, T0 - timedelta(days=1))
    assert not new(plain, STRANGER, T0 - week * 2)
    # Until the bot has watched for the new-account age, "never seen" says nothing.
    assert not new(plain, STRANGER, None, history_start=T0 - timedelta(days=1))
    assert not new(plain, STRANGER, None, history_start=None)


def test_a_pile_on_counts_hostile_pings_of_a_protected_account_not_names() -> None:
    assert SPAM.pile_on is not None
    m = message("@rachel resign", mentions=("900",))
    assert spam_keys(m, policy=SPAM, protected_accounts=["900"]).targets == ()  # friendly
    keys = spam_keys(m, policy=SPAM, protected_accounts=["900"], hostile=True)
    assert keys.targets == ("discord:900",)
    counts = SpamCounts(pile_on=SPAM.pile_on.count)
    assert [h.rule_id for h in spam_check(m, OLD, keys, counts, policy=SPAM).hits] == [
        "spam:pile-on"]
    assert spam_check(m, OLD, keys, SpamCounts(pile_on=SPAM.pile_on.count - 1),
                      policy=SPAM).hits == ()
    named = message("Rachel Adler should resign over the housing vote")
    assert spam_keys(named, policy=SPAM, protected_accounts=["900"], hostile=True).targets == ()


def test_actions_follow_the_policy() -> None:
    from dataclasses import replace

    gentle = replace(SPAM, rate_action=VerdictAction.WARN)
    assert SPAM.rate_channel is not None
    m = message()
    hits = spam_check(m, OLD, spam_keys(m, policy=gentle),
                      SpamCounts(channel_posts=SPAM.rate_channel.count), policy=gentle).hits
    assert [(h.action, h.clause, h.category) for h in hits] == [("warn", "1.7", "spam")]


# -- properties of the parsers ----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=80), pad=st.sampled_from(["", " ", "  ", "\n"]))
def test_fingerprints_fold_case_spacing_and_punctuation(text: str, pad: str) -> None:
    base = fingerprint(text, min_chars=1)
    assert fingerprint(pad + text.upper() + pad + "!!", min_chars=1) == \
        fingerprint(text.upper(), min_chars=1)
    if base is not None:
        assert len(base) == 24


@settings(max_examples=60, deadline=None)
@given(before=st.text(max_size=30), after=st.text(max_size=30),
       host=st.from_regex(r"[a-z]{1,10}\.(org|co\.uk|ly)", fullmatch=True))
def test_a_link_is_found_wherever_it_is(before: str, after: str, host: str) -> None:
    text = f"{before} https://{host}/path?q=1 {after}"
    assert host in link_hosts(text)
    link_hosts(before + after)  # never raises


def test_a_backtest_carries_stored_spam_findings_over_as_each_policy_acts() -> None:
    from dataclasses import replace

    from bot.spam import replayed

    stored = ["insult-phrases", "spam:rate-channel", "spam:mass-mention", "spam:unknown-kind"]
    assert replayed(stored, policy=None) == ()
    assert [(h.rule_id, h.action) for h in replayed(stored, policy=SPAM)] == [
        ("spam:rate-channel", "hide"), ("spam:mass-mention", "escalate")]
    gentler = replace(SPAM, rate_action=VerdictAction.WARN, mass_mention_action=None)
    assert [(h.rule_id, h.action) for h in replayed(stored, policy=gentler)] == [
        ("spam:rate-channel", "warn")]
