"""Core value types: frozen, slotted dataclasses and StrEnums shared by every layer."""

from __future__ import annotations

__all__ = [
    "MODEL_CATEGORIES",
    "SHADOW_CASE",
    "Account",
    "Action",
    "ActionKind",
    "ActionStatus",
    "Case",
    "CaseState",
    "Category",
    "Member",
    "MemberStatus",
    "Message",
    "Mode",
    "Platform",
    "Role",
    "RuleHit",
    "ScoreSet",
    "Severity",
    "Standing",
    "Verdict",
    "VerdictAction",
]

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Platform(StrEnum):
    """Where a message came from."""

    DISCORD = "discord"
    SLACK = "slack"
    CONSOLE = "console"


class Category(StrEnum):
    """What kind of misconduct a score or rule is about."""

    TOXICITY = "toxicity"
    SEVERE_TOXICITY = "severe_toxicity"
    OBSCENE = "obscene"
    THREAT = "threat"
    INSULT = "insult"
    IDENTITY_ATTACK = "identity_attack"
    SEXUAL_EXPLICIT = "sexual_explicit"
    # Categories only rules produce.
    DOXXING = "doxxing"
    HARASSMENT = "harassment"
    # Posting while suspended or expelled.
    SANCTIONED = "sanctioned"
    # Floods, copy-paste campaigns, mass mentions and pile-ons, link spam, raids.
    SPAM = "spam"


#: The categories a model scores (detoxify's label set); policies set thresholds for these.
MODEL_CATEGORIES: tuple[Category, ...] = (
    Category.TOXICITY,
    Category.SEVERE_TOXICITY,
    Category.OBSCENE,
    Category.THREAT,
    Category.INSULT,
    Category.IDENTITY_ATTACK,
    Category.SEXUAL_EXPLICIT,
)


#: The kind of case a shadow-mode verdict opens for review.
SHADOW_CASE = "shadow"


class Mode(StrEnum):
    """Whether verdicts are carried out (enforce) or only recorded for review (shadow)."""

    ENFORCE = "enforce"
    SHADOW = "shadow"


class VerdictAction(StrEnum):
    """What the bot does about a message, mildest first."""

    ALLOW = "allow"
    WARN = "warn"
    HIDE = "hide"
    ESCALATE = "escalate"

    @property
    def rank(self) -> int:
        """Position in the ladder allow < warn < hide < escalate."""
        return _ACTION_ORDER.index(self)

    def at_least(self, other: VerdictAction) -> VerdictAction:
        """The harsher of the two."""
        return self if self.rank >= other.rank else other


_ACTION_ORDER = (
    VerdictAction.ALLOW, VerdictAction.WARN, VerdictAction.HIDE, VerdictAction.ESCALATE,
)


class Severity(IntEnum):
    """How serious a verdict is: 0 acceptable, 1 uncivil, 2 conduct violation, 3 urgent."""

    NONE = 0
    UNCIVIL = 1
    VIOLATION = 2
    URGENT = 3


class MemberStatus(StrEnum):
    """A member's standing with the party."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    EXPELLED = "expelled"
    LAPSED = "lapsed"

    @property
    def strictness(self) -> int:
        """How far the status keeps a member out: active < lapsed < suspended < expelled."""
        return (MemberStatus.ACTIVE, MemberStatus.LAPSED, MemberStatus.SUSPENDED,
                MemberStatus.EXPELLED).index(self)


class Role(StrEnum):
    """Roles that change how the bot treats a member."""

    MODERATOR = "moderator"
    EXEMPT = "exempt"
    MP = "mp"
    COUNCILLOR = "councillor"
    STAFF = "staff"


@dataclass(frozen=True, slots=True)
class Message:
    """One message (or one revision of an edited message) as the core sees it."""

    platform: Platform
    id: str
    channel: str
    author: str
    text: str
    sent_at: datetime
    revision: int = 0
    channel_name: str | None = None
    reply_to: str | None = None
    thread: str | None = None
    author_name: str | None = None
    #: What the platform knows of the author's account, for the spam and raid checks: when
    #: it was created and when it joined this server (Discord); None when unknown (Slack).
    account_created_at: datetime | None = None
    joined_at: datetime | None = None
    #: Accounts (platform ids) the message mentions, role mentions, and whether it mentions
    #: everyone (@everyone, @here, @channel).
    mentions: tuple[str, ...] = ()
    role_mentions: int = 0
    mass_mention: bool = False
    raw: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.sent_at.tzinfo is None:
            raise ValueError("Message.sent_at must be timezone-aware")

    @property
    def key(self) -> tuple[str, str, int]:
        """The deduplication key: platform, message id, revision."""
        return (str(self.platform), self.id, self.revision)


@dataclass(frozen=True, slots=True)
class Account:
    """A platform account: (platform, id) is unique."""

    platform: Platform
    id: str


@dataclass(frozen=True, slots=True)
class Standing:
    """What decide() needs to know about the author."""

    status: MemberStatus = MemberStatus.ACTIVE
    points: float = 0.0
    roles: frozenset[Role] = frozenset()


@dataclass(frozen=True, slots=True)
class Member:
    """A party member, possibly with accounts on several platforms."""

    id: str
    display_name: str
    status: MemberStatus = MemberStatus.ACTIVE
    roles: frozenset[Role] = frozenset()
    accounts: tuple[Account, ...] = ()
    membership_number: str | None = None
    status_reason: str | None = None
    suspended_from: datetime | None = None
    suspended_until: datetime | None = None

    def standing(self, *, points: float = 0.0) -> Standing:
        """The part of the member that decisions use."""
        return Standing(status=self.status, points=points, roles=self.roles)

    @property
    def label(self) -> str:
        """How moderators see the member: name, membership number, internal id."""
        number = f", {self.membership_number}" if self.membership_number else ""
        return f"{self.display_name} ({self.id}{number})"


@dataclass(frozen=True, slots=True)
class ScoreSet:
    """Per-category scores in [0, 1] for one text, with the model that produced them."""

    values: Mapping[str, float]
    model: str
    version: str

    def get(self, category: str) -> float:
        """The score for a category, 0.0 when the model does not score it."""
        return float(self.values.get(category, 0.0))


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A policy rule (keyword, regex, protected person, doxxing) that matched a message."""

    rule_id: str
    clause: str
    action: VerdictAction
    category: Category
    kind: str
    matched: str = ""
    #: The match is in quotation marks, or the message reports or explains abuse elsewhere:
    #: it may be a report rather than abuse, so it acts only if the model agrees.
    reported: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision about one message, with everything a notice or a case must cite."""

    action: VerdictAction
    severity: Severity
    categories: tuple[str, ...]
    rule_ids: tuple[str, ...]
    clause: str | None
    clause_title: str | None
    scores: Mapping[str, float]
    thresholds: Mapping[str, Mapping[str, float]]
    model: str
    model_version: str
    policy_version: str
    reasons: tuple[str, ...] = ()
    priority: int = 0
    #: In shadow mode the verdict is recorded and may be reviewed, but nothing is done to the
    #: member: no hiding, no notice, no strike.
    mode: Mode = Mode.ENFORCE


class ActionKind(StrEnum):
    """A platform operation the outbox asks an adapter to perform."""

    DELETE = "delete"
    NOTIFY = "notify"
    ESCALATE = "escalate"
    TIMEOUT = "timeout"
    SUSPEND = "suspend"
    RESTORE = "restore"
    POST = "post"
    #: Slow a channel down (payload 'seconds'; 0 lifts it): a raid's response.
    SLOWMODE = "slowmode"
    #: A plain alert to the moderators' channel (payload 'text'): a raid.
    ALERT = "alert"


class ActionStatus(StrEnum):
    """Where an outbox row stands."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    UNSUPPORTED = "unsupported"
    CANCELLED = "cancelled"  # never sent: the case that queued it was dismissed or pardoned


@dataclass(frozen=True, slots=True)
class Action:
    """One outbox row: an operation for a platform, written with the verdict that caused it."""

    kind: ActionKind
    platform: Platform
    channel: str | None = None
    message_id: str | None = None
    user: str | None = None
    payload: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    id: int | None = None
    status: ActionStatus = ActionStatus.PENDING
    attempts: int = 0
    error: str | None = None


class CaseState(StrEnum):
    """Where a case stands."""

    OPEN = "open"
    ASSIGNED = "assigned"
    UPHELD = "upheld"
    DISMISSED = "dismissed"
    APPEALED = "appealed"
    CLOSED = "closed"

    @property
    def active(self) -> bool:
        """Whether the case still waits for a moderator."""
        return self in (CaseState.OPEN, CaseState.ASSIGNED, CaseState.APPEALED)


@dataclass(frozen=True, slots=True)
class Case:
    """A disciplinary case: an escalation, a sanction or a proposed suspension."""

    id: int
    member_id: str
    kind: str
    state: CaseState
    priority: int
    clause: str | None
    summary: str
    automatic: bool
    opened_by: str
    opened_at: datetime
    updated_at: datetime
    assignee: str | None = None
    proposal: Mapping[str, Any] | None = None
    appeal: str | None = None
    appeal_outcome: str | None = None
    resolution: str | None = None
    resolved_at: datetime | None = None

    @property
    def shadow(self) -> bool:
        """A shadow-mode verdict put to the moderators: nothing was done to the member, who
        is not told of it and cannot appeal it."""
        return self.kind == SHADOW_CASE
