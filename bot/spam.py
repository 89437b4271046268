"""Floods, copy-paste campaigns, mass mentions and pile-ons, link spam and raids (`[spam]`).

Evaluated with every message, beside the model and the rules, in the order messages are
decided. What each message counts towards (its channel, its text's fingerprint, a protected
person it names, a new account's post) is recorded with it in the store (`spam_events`), at the
message's own time, so a window survives a restart and a replayed week is judged as it
happened. A breach is a `RuleHit` of category `spam` citing the policy's `[spam]` clause, so
it goes through the same verdicts, cases, strikes, outbox and audit as any conduct finding.

This module holds the pure parts: which events a message makes, what counts as a new
account, the links in a text, and which findings a set of counts means. The counting is one
query (`Store.spam_counts`); the raid's response is planned here and recorded by the
Moderator.
"""

from __future__ import annotations

__all__ = [
    "RAID_ALERT",
    "SpamCheck",
    "SpamCounts",
    "SpamKeys",
    "fingerprint",
    "is_new_account",
    "link_hosts",
    "plan_raid",
    "plan_raid_end",
    "plan_raid_join",
    "replayed",
    "spam_check",
    "spam_keys",
    "windows",
]

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.models import (
    Action,
    ActionKind,
    Category,
    Member,
    Message,
    Platform,
    Role,
    RuleHit,
    VerdictAction,
)
from bot.normalize import normalize
from bot.policy import SpamPolicy
from bot.standing import format_duration

#: What a raid's alert to the moderators says first.
RAID_ALERT = "Raid"

#: Links as people type them: with a scheme, or a bare host with a path ("bit.ly/x").
_LINK = re.compile(r"(?i)\b(?:https?://)?((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
                   r"[a-z]{2,24})(?::\d+)?(?=[/?#]|\b)(/[^\s<>\"')\]]*)?")
#: Discord server invites (discord.gg/..., discord.com/invite/...).
_INVITE = re.compile(r"(?i)\b(?:discord(?:app)?\.com/invite|discord\.gg)/[a-z0-9-]+")
#: Platforms where a raid's response acts (slowmode, timeouts); elsewhere it alerts only.
_RAID_RESPONDERS = frozenset({Platform.DISCORD})
#: Roles that speak for the party: their mass mentions are announcements, not spam.
_ANNOUNCERS = frozenset({Role.MODERATOR, Role.STAFF})


@dataclass(frozen=True, slots=True)
class SpamCounts:
    """What the store holds before this message, within each window (other members only
    where the check is about several accounts)."""

    channel_posts: int = 0
    all_posts: int = 0
    same_text_mine: int = 0
    same_text_others: int = 0
    pile_on: int = 0  # other accounts naming the most-named protected person here
    new_in_channel: int = 0  # other new accounts posting in this channel
    raid: int | None = None  # the channel's raid in progress
    first_seen: datetime | None = None  # the member's first message (None: this is it)
    #: The first message the bot holds at all: before it has watched for the new-account
    #: age, "first seen" cannot tell a newcomer from a member it never had the chance to see.
    history_start: datetime | None = None


@dataclass(frozen=True, slots=True)
class SpamKeys:
    """What a message's counts are looked up by: its channel, its text's fingerprint, the
    protected people it names or mentions."""

    channel: str
    fingerprint: str | None
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SpamCheck:
    """The findings for a message, and what it counts towards."""

    events: tuple[tuple[str, str], ...]
    new_account: bool
    hits: tuple[RuleHit, ...] = field(default=())
    #: This message makes the new accounts posting in its channel a raid.
    starts_raid: bool = False
    #: The raid in progress in its channel, if any.
    raid: int | None = None


def fingerprint(text: str, /, *, min_chars: int) -> str | None:
    """The text as a copy-paste campaign repeats it: folded (case, look-alikes, spacing,
    punctuation) and hashed; None for a text too short to count (\"+1\", \"agreed\")."""
    folded = " ".join(re.sub(r"[^\w\s]", " ", normalize(text)).split())
    if len(folded) < min_chars:
        return None
    return hashlib.blake2b(folded.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def link_hosts(text: str, /) -> tuple[str, ...]:
    """The hosts of the links in a text, lower case, without "www."."""
    return tuple(dict.fromkeys(m[1].casefold().removeprefix("www.")
                               for m in _LINK.finditer(text)
                               if m[0].casefold().startswith(("http", "www.")) or m[2]))


def is_new_account(message: Message, member: Member, *, policy: SpamPolicy,
                   first_seen: datetime | None, history_start: datetime | None) -> bool:
    """A member the party's register does not know whose account was created or joined the
    server within the policy's age, or, where the platform does not say (Slack), who first
    posted within it, once the bot has watched that long. A registered member is never new:
    party members joining the server on results night are not raiders."""
    if member.membership_number is not None:
        return False
    cutoff = message.sent_at - policy.new_account_age
    dates = [d for d in (message.account_created_at, message.joined_at) if d is not None]
    if dates:
        return max(dates) > cutoff
    watched = history_start is not None and history_start <= cutoff
    return watched and (first_seen is None or first_seen > cutoff)


def spam_keys(message: Message, /, *, policy: SpamPolicy,
              protected_accounts: Iterable[str] = (), hostile: bool = False) -> SpamKeys:
    """The keys a message's counts are looked up by. A pile-on counts hostile pings of a
    protected person's account (the message already deserves at least a warning), not their
    name in the text nor friendly pings: members naming an MP to criticise their record, or
    congratulating her, are not piling on."""
    protected = set(protected_accounts) if hostile else set()
    targets = [f"{message.platform}:{a}" for a in message.mentions if a in protected]
    return SpamKeys(f"{message.platform}:{message.channel}",
                    fingerprint(message.text, min_chars=policy.duplicate_min_chars),
                    tuple(dict.fromkeys(targets)))


def spam_check(message: Message, member: Member, keys: SpamKeys, counts: SpamCounts, /, *,
               policy: SpamPolicy) -> SpamCheck:
    """The findings `counts` mean for this message, and the events it records."""
    text, fp, targets = message.text, keys.fingerprint, keys.targets
    new = is_new_account(message, member, policy=policy, first_seen=counts.first_seen,
                         history_start=counts.history_start)
    events = [("post", keys.channel)] + ([("fp", fp)] if fp else []) + \
        [("target", t) for t in targets] + ([("new", keys.channel)] if new else [])
    found: list[RuleHit] = []

    def hit(rule: str, action: VerdictAction, matched: str) -> None:
        found.append(RuleHit(f"spam:{rule}", policy.clause, action, Category.SPAM, "spam",
                             matched))

    # A count at the limit is allowed; one more (this message) is a breach.
    if policy.rate_channel and counts.channel_posts >= policy.rate_channel.count:
        hit("rate-channel", policy.rate_action,
            f"more than {policy.rate_channel.count} messages in "
            f"#{message.channel_name or message.channel} in {policy.rate_channel.seconds:g} s")
    if policy.rate_overall and counts.all_posts >= policy.rate_overall.count:
        hit("rate-overall", policy.rate_action,
            f"more than {policy.rate_overall.count} messages in "
            f"{policy.rate_overall.seconds:g} s")
    announcer = bool(member.roles & _ANNOUNCERS)  # staff cross-post announcements
    if fp and not announcer and policy.duplicate_repeats and counts.same_text_mine + 1 >= \
            policy.duplicate_repeats:
        hit("duplicate", policy.duplicate_action,
            f"the same text {counts.same_text_mine + 1} times in "
            f"{policy.duplicate_seconds:g} s")
    if fp and not announcer and policy.duplicate_accounts and counts.same_text_others + 1 >= \
            policy.duplicate_accounts:
        hit("campaign", policy.duplicate_action,
            f"the same text from {counts.same_text_others + 1} accounts in "
            f"{policy.duplicate_seconds:g} s")
    if policy.mention_max and len(message.mentions) + message.role_mentions > \
            policy.mention_max:
        hit("mentions", policy.mention_action,
            f"{len(message.mentions) + message.role_mentions} mentions in one message")
    if policy.mass_mention_action and message.mass_mention and not announcer:
        hit("mass-mention", policy.mass_mention_action, "mentions everyone")
    if targets and policy.pile_on and counts.pile_on + 1 > policy.pile_on.count:
        hit("pile-on", policy.pile_on_action,
            f"{counts.pile_on + 1} accounts naming or mentioning a protected person in "
            f"{policy.pile_on.seconds:g} s")
    hosts = link_hosts(text)
    invite = policy.invites and bool(_INVITE.search(text))
    if invite:
        hit("invite", policy.link_action, "an invite to another Discord server")
    short = [h for h in hosts if h in policy.shorteners]
    if short:
        hit("shortener", policy.link_action, f"a shortened link ({short[0]})")
    denied = [h for h in hosts if _within(h, policy.deny_domains)]
    if denied:
        hit("denied-link", policy.link_action, f"a link to {denied[0]}")
    if hosts and new and policy.new_account_links and not (invite or short or denied):
        hit("new-account-link", policy.link_action, f"a link ({hosts[0]}) from a new account")
    starts = (policy.raid is not None and new and counts.raid is None
              and counts.new_in_channel + 1 > policy.raid.count)
    if new and (counts.raid is not None or starts):
        hit("raid", policy.raid_action,
            f"a new account in #{message.channel_name or message.channel} during a raid")
    return SpamCheck(tuple(events), new, tuple(found), starts, counts.raid)


def windows(policy: SpamPolicy, /) -> dict[str, float]:
    """Each check's window in seconds, as `Store.spam_counts` takes them."""
    return {"channel": policy.rate_channel.seconds if policy.rate_channel else 0.0,
            "overall": policy.rate_overall.seconds if policy.rate_overall else 0.0,
            "duplicates": policy.duplicate_seconds,
            "pile_on": policy.pile_on.seconds if policy.pile_on else 0.0,
            "raid": policy.raid.seconds if policy.raid else 0.0}


def plan_raid(message: Message, accounts: Sequence[tuple[str, str]], /, *, raid_id: int,
              policy: SpamPolicy, now: datetime) -> list[Action]:
    """A raid's response: one alert to the moderators naming the accounts (member label,
    platform account); on Discord, slowmode on the channel where the policy says so and
    timeouts of the accounts where it sets one. Slack has no slowmode and its "timeout"
    removes members from channels, too blunt to do to a crowd unseen: there, an alert only."""
    where = f"#{message.channel_name or message.channel}"
    window = policy.raid.seconds if policy.raid else 0
    acts = message.platform in _RAID_RESPONDERS
    slowmode = acts and policy.raid_response == "slowmode"
    timeout = policy.raid_timeout if acts else None
    response = []
    if slowmode:
        response.append(f"slowmode {policy.raid_slowmode_seconds} s on the channel")
    if timeout is not None:
        response.append(f"the accounts timed out for {format_duration(timeout)}")
    response.append(f"new accounts' posts there {_done(policy.raid_action)}")
    names = ", ".join(label for label, _ in accounts)
    text = (f"{RAID_ALERT} {raid_id} in {where} on {message.platform}: {len(accounts)} new "
            f"accounts posted within {window:g} s ({names}). Response: "
            f"{'; '.join(response)}. `raid end {raid_id}` ends it and undoes the slowmode "
            "and timeouts.")
    base = {"raid": raid_id, "policy_clause": policy.clause}
    actions = [Action(kind=ActionKind.ALERT, platform=message.platform, channel=message.channel,
                      payload={**base, "text": text})]
    if slowmode:
        actions.append(Action(kind=ActionKind.SLOWMODE, platform=message.platform,
                              channel=message.channel,
                              payload={**base, "seconds": policy.raid_slowmode_seconds,
                                       "reason": f"raid {raid_id}"}))
    return actions + [a for _, account in accounts
                      for a in plan_raid_join(message, account, raid_id=raid_id,
                                              policy=policy, now=now)]


def plan_raid_join(message: Message, account: str, /, *, raid_id: int, policy: SpamPolicy,
                   now: datetime) -> list[Action]:
    """What a raid does to one of its accounts (one that made it, or a new account posting
    there while it lasts): a timeout where the platform and the policy give one."""
    if message.platform not in _RAID_RESPONDERS or policy.raid_timeout is None:
        return []
    return [Action(kind=ActionKind.TIMEOUT, platform=message.platform, channel=message.channel,
                   user=account,
                   payload={"raid": raid_id, "policy_clause": policy.clause,
                            "until": (now + policy.raid_timeout).isoformat(),
                            "duration": format_duration(policy.raid_timeout),
                            "reason": f"raid {raid_id} in "
                                      f"#{message.channel_name or message.channel}"})]


def replayed(rule_ids: Iterable[str], /, *, policy: SpamPolicy | None) -> tuple[RuleHit, ...]:
    """A verdict's stored spam findings (`spam:KIND` rule ids) as `policy` would act on them
    (none without a `[spam]` section, or where it switches that check off): how a backtest
    carries them over, since the counts behind them are not re-run."""
    if policy is None:
        return ()
    actions = {"rate-channel": policy.rate_action, "rate-overall": policy.rate_action,
               "duplicate": policy.duplicate_action, "campaign": policy.duplicate_action,
               "mentions": policy.mention_action, "mass-mention": policy.mass_mention_action,
               "pile-on": policy.pile_on_action, "invite": policy.link_action,
               "shortener": policy.link_action, "denied-link": policy.link_action,
               "new-account-link": policy.link_action, "raid": policy.raid_action}
    hits = []
    for rule_id in rule_ids:
        action = actions.get(rule_id.removeprefix("spam:")) if rule_id.startswith(
            "spam:") else None
        if action is not None:
            hits.append(RuleHit(rule_id, policy.clause, action, Category.SPAM, "spam"))
    return tuple(hits)


def plan_raid_end(raid: Mapping[str, Any], /, *, reason: str) -> list[Action]:
    """What ending a raid undoes: the channel's slowmode and the accounts' timeouts."""
    platform, channel = Platform(raid["platform"]), str(raid["channel"])
    used = set(str(raid["response"]).split(","))
    base = {"raid": raid["id"], "reason": f"raid {raid['id']} ended: {reason}"}
    actions = []
    if "slowmode" in used:
        actions.append(Action(kind=ActionKind.SLOWMODE, platform=platform, channel=channel,
                              payload={**base, "seconds": 0}))
    if "timeout" in used:
        actions += [Action(kind=ActionKind.RESTORE, platform=platform, channel=channel,
                           user=account, payload={**base, "lift": True})
                    for _, account in raid["accounts"]]
    return actions


def _within(host: str, domains: frozenset[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def _done(action: VerdictAction) -> str:
    return {VerdictAction.WARN: "warned", VerdictAction.HIDE: "hidden",
            VerdictAction.ESCALATE: "hidden and escalated"}.get(action, str(action))
