"""Load and validate a conduct policy (TOML); every problem names file, line, key path and rule."""

from __future__ import annotations

__all__ = [
    "AIMED_CATEGORIES",
    "CategoryPolicy",
    "ChannelOverride",
    "Clause",
    "DoxxingPolicy",
    "Policy",
    "ProtectedPerson",
    "ProtectedPolicy",
    "Rule",
    "SanctionPolicy",
    "SpamPolicy",
    "StatusTreatment",
    "Thresholds",
    "Window",
    "load_policy",
    "parse_policy",
    "phone_digits",
]

import math
import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import PolicyError, PolicyProblem
from bot.models import MODEL_CATEGORIES, Category, MemberStatus, Mode, Role, VerdictAction
from bot.scoring.patterns import UnsafePattern, compile_rule_pattern
from bot.standing import ESCALATION_POINTS, LadderStep, StrikePolicy, parse_duration

E = TypeVar("E")

LEVELS = ("warn", "hide", "escalate")
_LEVEL_ACTION = {
    "warn": VerdictAction.WARN,
    "hide": VerdictAction.HIDE,
    "escalate": VerdictAction.ESCALATE,
}
DOXXING_DETECTORS = ("uk_phone", "email", "street_address")
RULE_KINDS = ("keyword", "regex")


@dataclass(frozen=True, slots=True)
class Clause:
    """One clause of the code of conduct; rules and verdicts cite it by id."""

    id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Score levels at which a category warns, hides and escalates (None: never)."""

    warn: float | None = None
    hide: float | None = None
    escalate: float | None = None

    def action_for(self, score: float, /) -> VerdictAction:
        """The harshest level this score reaches."""
        for level in reversed(LEVELS):
            limit = getattr(self, level)
            if limit is not None and score >= limit:
                return _LEVEL_ACTION[level]
        return VerdictAction.ALLOW

    def as_dict(self) -> dict[str, float]:
        """The levels that are set, for the verdict record."""
        return {lv: v for lv in LEVELS if (v := getattr(self, lv)) is not None}


@dataclass(frozen=True, slots=True)
class CategoryPolicy:
    """How one model category is treated: its clause and thresholds."""

    category: str
    clause: str
    thresholds: Thresholds


@dataclass(frozen=True, slots=True)
class Rule:
    """A keyword or regex rule matched against normalised text."""

    id: str
    clause: str
    kind: str
    patterns: tuple[str, ...]
    action: VerdictAction
    category: Category
    description: str = ""
    regex: re.Pattern[str] = field(default=re.compile("(?!)"), repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ChannelOverride:
    """Per-channel changes to category thresholds (e.g. a debate channel tolerates swearing)."""

    name: str
    match: frozenset[str]
    description: str
    thresholds: Mapping[str, Thresholds]
    skip_rules: frozenset[str] = frozenset()
    #: The channel's own mode; None follows the policy's.
    mode: Mode | None = None


@dataclass(frozen=True, slots=True)
class ProtectedPerson:
    """An MP, councillor or member of staff whose harassment is escalated."""

    id: str
    name: str
    role: Role
    aliases: tuple[str, ...]


#: Findings that make a message naming a protected person abuse aimed at them. Toxicity and
#: obscenity alone do not: harsh criticism of a representative's record is not harassment.
AIMED_CATEGORIES = (Category.THREAT, Category.INSULT, Category.IDENTITY_ATTACK,
                    Category.SEXUAL_EXPLICIT, Category.SEVERE_TOXICITY, Category.HARASSMENT,
                    Category.DOXXING)


@dataclass(frozen=True, slots=True)
class ProtectedPolicy:
    """What happens when a message naming a protected person reaches `min_action` with an
    abusive finding (`categories`: insult, threat, identity or sexual abuse by default)."""

    clause: str
    action: VerdictAction
    min_action: VerdictAction
    persons: tuple[ProtectedPerson, ...]
    categories: frozenset[Category] = frozenset(AIMED_CATEGORIES)
    #: A model finding counts as aimed abuse only from this score: a low insult score on
    #: "useless on housing, should resign" must not make criticism harassment.
    min_score: float = 0.5


@dataclass(frozen=True, slots=True)
class DoxxingPolicy:
    """Detection of personal contact details posted about someone."""

    clause: str
    action: VerdictAction
    detect: frozenset[str]
    allow_email_domains: frozenset[str]
    allow_phone_numbers: frozenset[str] = frozenset()  # digits only


@dataclass(frozen=True, slots=True)
class StatusTreatment:
    """How posts by members of a given status are treated."""

    status: MemberStatus
    action: VerdictAction
    clause: str
    priority: int


@dataclass(frozen=True, slots=True)
class SanctionPolicy:
    """How moderators' sanctions work."""

    two_person_suspension: bool = True
    max_timeout: timedelta = timedelta(days=28)
    retention: timedelta = timedelta(days=365)
    audit_retention: timedelta = timedelta(days=6 * 365)
    #: The party's time zone: sanctions' end times are shown in it.
    timezone: str = "Europe/London"


@dataclass(frozen=True, slots=True)
class Window:
    """At most `count` events in `seconds`: one more is a breach."""

    count: int
    seconds: float


@dataclass(frozen=True, slots=True)
class SpamPolicy:
    """Floods, copy-paste campaigns, mass mentions and pile-ons, link spam and raids (`[spam]`);
    a check whose window or action is absent is off."""

    clause: str
    #: One member's messages in one channel, and across every channel.
    rate_channel: Window | None = None
    rate_overall: Window | None = None
    rate_action: VerdictAction = VerdictAction.HIDE
    #: The same text (normalised) from one member (`repeats`) or from several accounts
    #: (`accounts`) within `seconds`; texts shorter than `min_chars` never count.
    duplicate_repeats: int | None = None
    duplicate_accounts: int | None = None
    duplicate_seconds: float = 600.0
    duplicate_min_chars: int = 12
    duplicate_action: VerdictAction = VerdictAction.HIDE
    #: Users mentioned in one message; @everyone / @here / @channel by a non-moderator.
    mention_max: int | None = None
    mention_action: VerdictAction = VerdictAction.HIDE
    mass_mention_action: VerdictAction | None = None
    #: Accounts mentioning or naming one protected person within `seconds`.
    pile_on: Window | None = None
    pile_on_action: VerdictAction = VerdictAction.ESCALATE
    #: Links: server invites, link shorteners, denied domains, and any link from a new account.
    invites: bool = False
    shorteners: frozenset[str] = frozenset()
    deny_domains: frozenset[str] = frozenset()
    link_action: VerdictAction = VerdictAction.HIDE
    new_account_links: bool = False
    #: An account created or joined this recently, or (unknown dates) never seen before and
    #: not in the membership register, is new.
    new_account_age: timedelta = timedelta(days=7)
    #: More than `raid.count` new accounts posting in one channel within `raid.seconds`.
    raid: Window | None = None
    #: "slowmode" (Discord; Slack alerts only) or "alert"; new accounts' posts in a channel
    #: under a raid get `raid_action`; `raid_timeout` times the raid's accounts out.
    raid_response: str = "alert"
    raid_slowmode_seconds: int = 30
    raid_action: VerdictAction = VerdictAction.HIDE
    raid_timeout: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated conduct policy."""

    file: str
    version: str
    name: str
    clauses: Mapping[str, Clause]
    categories: Mapping[str, CategoryPolicy]
    rules: tuple[Rule, ...]
    channels: tuple[ChannelOverride, ...]
    protected: ProtectedPolicy
    doxxing: DoxxingPolicy
    statuses: Mapping[MemberStatus, StatusTreatment]
    strikes: StrikePolicy = field(default_factory=lambda: StrikePolicy({}, None, None, ()))
    sanctions: SanctionPolicy = field(default_factory=SanctionPolicy)
    #: enforce: verdicts are carried out; shadow: recorded (and, with `shadow_review`, put to
    #: the moderators as "would have ..."), nothing done to members. Channels may differ.
    mode: Mode = Mode.ENFORCE
    shadow_review: bool = True
    #: Published figures below this count read "fewer than N" (the transparency report).
    transparency_min_count: int = 10
    #: Floods, spam and raids; None: no `[spam]` section, no such checks.
    spam: SpamPolicy | None = None

    def mode_for(self, *channels: str | None) -> Mode:
        """The mode in force in a channel (its override's, else the policy's)."""
        override = self.override_for(*channels)
        return override.mode if override is not None and override.mode else self.mode

    def override_for(self, *channels: str | None) -> ChannelOverride | None:
        """The first override whose `match` names one of the channel's ids or names."""
        keys = {c.lstrip("#").casefold() for c in channels if c}
        for override in self.channels:
            if keys & override.match:
                return override
        return None

    def thresholds_for(self, category: str, /, *, override: ChannelOverride | None) -> Thresholds:
        """Effective thresholds for a category in a channel."""
        if override is not None and category in override.thresholds:
            return override.thresholds[category]
        return self.categories[category].thresholds

    def clause_title(self, clause_id: str | None, /) -> str | None:
        """The short title of a clause, if it exists."""
        clause = self.clauses.get(clause_id) if clause_id else None
        return clause.title if clause else None


# ---------------------------------------------------------------------------------------------
# Locating keys in the TOML source, so errors can name a line (tomllib keeps no positions).

# One way to match each line (no nested quantifiers over the same characters): a locator
# that backtracks is cubic on a long unclosed '[' line.
_HEADER = re.compile(r"^\s*(\[\[?)([^\]]*)\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]+"|'[^']+'|[A-Za-z0-9_\-.]+)\s*=""")


def _split_key(raw: str) -> list[str]:
    parts = re.findall(r""""[^"]*"|'[^']*'|[^.\s]+""", raw)
    return [p.strip("\"'") for p in parts]


def _locate(source: str) -> dict[str, int]:
    """Map key paths ('rules[2].action', 'categories.threat.warn') to 1-based line numbers."""
    lines: dict[str, int] = {}
    counters: dict[str, int] = {}
    current = ""
    for number, line in enumerate(source.splitlines(), start=1):
        if line.lstrip().startswith("#"):
            continue
        header = _HEADER.match(line)
        if header:
            parts = _split_key(header.group(2))
            if not parts:
                continue
            array = header.group(1) == "[["
            # A sub-table of an array of tables belongs to the array's latest element.
            path = ""
            for i, part in enumerate(parts):
                path = f"{path}.{part}" if path else part
                last = i == len(parts) - 1
                if path in counters and not (array and last):
                    path = f"{path}[{counters[path] - 1}]"
            if array:
                counters[path] = counters.get(path, 0) + 1
                path = f"{path}[{counters[path] - 1}]"
            current = path
            lines.setdefault(current, number)
            continue
        key = _KEY.match(line)
        if key:
            path = ".".join([current, *_split_key(key.group(1))]) if current else ".".join(
                _split_key(key.group(1)))
            lines.setdefault(path, number)
    return lines


def _line_of(path: str, lines: Mapping[str, int]) -> int | None:
    probe = path
    while probe:
        if probe in lines:
            return lines[probe]
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return None


# ---------------------------------------------------------------------------------------------
# Validation


class _Checker:
    """Collects problems while reading the parsed TOML; never raises until `finish`."""

    def __init__(self, file: str, source: str) -> None:
        self.file = file
        self.lines = _locate(source)
        self.problems: list[PolicyProblem] = []

    def problem(self, path: str, message: str, *, rule: str | None = None) -> None:
        # Located by the key as written; shown on one line whatever the file holds (keys, ids
        # and values quoted in a message may carry line breaks or terminal controls).
        self.problems.append(
            PolicyProblem(message=_one_line(message), path=_one_line(path),
                          line=_line_of(path, self.lines),
                          rule=None if rule is None else _one_line(rule))
        )

    def table(self, value: Any, path: str, allowed: Collection[str], *,
              required: Collection[str] = (), rule: str | None = None) -> dict[str, Any]:
        """Check a table's keys; returns it (or {} when it is not a table)."""
        if not isinstance(value, dict):
            self.problem(path, f"must be a table, not {_type(value)}", rule=rule)
            return {}
        for key in sorted(set(value) - set(allowed)):
            self.problem(_join(path, key), f"unknown key {key!r} (allowed: "
                         f"{', '.join(sorted(allowed))})", rule=rule)
        for key in sorted(set(required) - set(value)):
            self.problem(path or key, f"missing required key {key!r}", rule=rule)
        return value

    def string(self, table: Mapping[str, Any], key: str, path: str, *, default: str | None = None,
               rule: str | None = None) -> str:
        value = table.get(key, default)
        if value is None:
            return ""
        if not isinstance(value, str) or (default is None and not value.strip()):
            self.problem(_join(path, key), f"must be a non-empty string, not {_type(value)}",
                         rule=rule)
            return ""
        return value

    def strings(self, table: Mapping[str, Any], key: str, path: str, *,
                rule: str | None = None, required: bool = False) -> tuple[str, ...]:
        value = table.get(key, [] if not required else None)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(_join(path, key), "must be a list of non-empty strings", rule=rule)
            return ()
        if required and not value:
            self.problem(_join(path, key), "must not be empty", rule=rule)
        return tuple(value)

    def enum(self, table: Mapping[str, Any], key: str, path: str, enum: Callable[[str], E],
                choices: tuple[str, ...], *, default: str | None = None,
                rule: str | None = None) -> E | None:
        value = table.get(key, default)
        if not isinstance(value, str) or value not in choices:
            self.problem(_join(path, key), f"must be one of {', '.join(choices)}, not {value!r}",
                         rule=rule)
            return None
        return enum(value)

    def thresholds(self, value: Any, path: str, *, base: Thresholds | None = None) -> Thresholds:
        table = self.table(value, path, {*LEVELS, "clause"} if base is None else set(LEVELS))
        levels: dict[str, float | None] = {}
        for level in LEVELS:
            raw = table.get(level, getattr(base, level) if base else None)
            if raw is False:
                levels[level] = None  # explicitly never acts at this level
            elif raw is None:
                levels[level] = None
            elif isinstance(raw, bool) or not isinstance(raw, int | float):
                self.problem(_join(path, level), f"must be a number in [0, 1] or false, "
                             f"not {_type(raw)}")
                levels[level] = None
            elif not 0 <= raw <= 1:  # nan too; no float() first: a huge int overflows it
                self.problem(_join(path, level), f"threshold {_shown(raw)} is outside [0, 1]")
                levels[level] = None
            else:
                levels[level] = float(raw)
        set_levels = [(lv, v) for lv, v in levels.items() if v is not None]
        for (low, lv), (high, hv) in pairwise(set_levels):
            if lv > hv:
                self.problem(path, f"thresholds out of order: {low} ({lv}) must not exceed "
                             f"{high} ({hv})")
        return Thresholds(**levels)


def _one_line(text: str) -> str:
    """`text` with every character that is not printable escaped (\\n, \\x1b, ...)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _shown(value: Any) -> str:
    """A value for an error line: a 400-digit number is shown by its start."""
    text = repr(value)
    if len(text) <= 40:
        return text
    size = f"{len(text)} digits" if isinstance(value, int) else f"{len(text)} characters"
    return f"{text[:20]}... ({size})"


def _type(value: Any) -> str:
    return {str: "string", int: "integer", float: "number", bool: "boolean", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)


_ACTIONS = tuple(a.value for a in VerdictAction)
_MODES = tuple(m.value for m in Mode)
_ACTING = tuple(a.value for a in VerdictAction if a is not VerdictAction.ALLOW)
_CATEGORIES = tuple(c.value for c in Category)
_ROLES = (Role.MP.value, Role.COUNCILLOR.value, Role.STAFF.value)
_STATUSES = frozenset(s.value for s in MemberStatus if s is not MemberStatus.ACTIVE)


def _blank_patterns(c: _Checker, kind: str | None, patterns: tuple[str, ...], path: str,
                    rid: str | None) -> tuple[str, ...]:
    """The patterns, or () when one is blank: a blank keyword (only spaces) becomes a bare
    word boundary and would act on nearly every message."""
    blank = [i for i, pattern in enumerate(patterns)
             if not (pattern.split() if kind != "regex" else pattern.strip())]
    for i in blank:
        c.problem(f"{path}.patterns[{i}]", f"{kind or 'rule'} pattern {patterns[i]!r} is blank: "
                  "it would act on nearly every message", rule=rid)
    return () if blank else patterns


def _compile_checked(c: _Checker, kind: str | None, patterns: tuple[str, ...], path: str,
                     rid: str | None) -> re.Pattern[str] | None:
    """`_compile_rule`, with what it lets through reported at the pattern: a pattern can
    compile alone yet not as part of the rule's alternation (an inline flag such as (?i) is
    only allowed at the very start of the whole expression)."""
    try:
        return _compile_rule(c, kind, patterns, path, rid)
    except (re.error, ValueError, OverflowError, RecursionError) as exc:
        for i, pattern in enumerate(patterns):
            try:
                re.compile("|".join(rule_parts(kind or "keyword", (pattern,))))
            except (re.error, ValueError, OverflowError, RecursionError) as one:
                c.problem(f"{path}.patterns[{i}]", _regex_trouble(pattern, one), rule=rid)
                return None
        c.problem(f"{path}.patterns", f"the patterns do not compile together: {exc}", rule=rid)
        return None


def _regex_trouble(pattern: str, exc: BaseException) -> str:
    if isinstance(exc, re.error) and "global flags" in str(exc):
        return (f"regex {pattern!r} uses an inline flag such as (?i) that applies to the "
                "whole expression: rules already ignore case; scope a flag to a group, "
                "like (?s:...)")
    if isinstance(exc, RecursionError):
        return f"regex {pattern[:40]!r}... nests groups too deeply to compile"
    return f"regex {pattern[:80]!r} does not compile: {exc}"


_TOML_WHERE = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")
#: Python refuses to read integers longer than this (a denial-of-service guard).
_MAX_DIGITS = 4300
#: Deeper nesting than this is no policy; tomllib recurses per level.
_MAX_DEPTH = 100


def _toml_problem(exc: tomllib.TOMLDecodeError, source: str) -> PolicyProblem:
    """A TOML syntax error, located: tomllib says 'at end of document' for an unclosed value."""
    text = str(exc)
    where = _TOML_WHERE.search(text)
    message = text[:where.start()] if where else text
    if where and where.group(1):
        return PolicyProblem(f"not valid TOML: {message} (column {where.group(2)})",
                             line=int(where.group(1)))
    last = max(1, len(source.splitlines()))
    return PolicyProblem(f"not valid TOML: {message} (at the end of the file: something "
                         "opened earlier is never closed)", line=last)


def _first_line(source: str, test: Callable[[str], bool]) -> int | None:
    return next((n for n, line in enumerate(source.splitlines(), start=1) if test(line)), None)


def _deep_line(source: str) -> int | None:
    """The first line where brackets and braces nest deeper than `_MAX_DEPTH` (a rough count:
    quoted text is not skipped, which can only make it find the line sooner)."""
    depth = 0
    for number, line in enumerate(source.splitlines(), start=1):
        for ch in line:
            depth += (ch in "[{") - (ch in "]}")
            if depth > _MAX_DEPTH:
                return number
    return None


def _read_toml(source: str, file: str) -> dict[str, Any]:
    """tomllib.loads, with every failure a located PolicyError (tomllib raises plain
    ValueError for a huge integer and RecursionError for deep nesting)."""
    try:
        return tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(file, [_toml_problem(exc, source)]) from None
    except ValueError:  # an integer of more than 4300 digits
        digits = re.compile(rf"\d{{{_MAX_DIGITS + 1}}}")
        line = _first_line(source, lambda text: digits.search(text) is not None)
        raise PolicyError(file, [PolicyProblem(f"not valid TOML: a number of more than "
                                               f"{_MAX_DIGITS} digits", line=line)]) from None
    except RecursionError:
        raise PolicyError(file, [PolicyProblem(f"not valid TOML: arrays or tables nested more "
                                               f"than {_MAX_DEPTH} deep", line=_deep_line(source))]
                          ) from None


def parse_policy(source: str, /, *, file: str = "<policy>") -> Policy:
    """Validate TOML text as a policy; raises PolicyError listing every problem."""
    data = _read_toml(source, file)
    c = _Checker(file, source)
    top = c.table(data, "", {"version", "name", "description", "clauses", "categories", "rules",
                             "channels", "protected", "doxxing", "members", "strikes",
                             "sanctions", "mode", "shadow_review", "transparency", "spam"},
                  required={"version", "clauses", "categories"})
    version = top.get("version")
    if "version" not in top:
        pass  # reported as missing
    elif not isinstance(version, str | int | float) or isinstance(version, bool) or not str(
            version).strip() or (isinstance(version, float) and not math.isfinite(version)):
        c.problem("version", f"must be a non-empty string, not {_type(version)}")
    name = c.string(top, "name", "", default="")

    # Clauses
    clauses: dict[str, Clause] = {}
    raw_clauses = top.get("clauses", [])
    if not isinstance(raw_clauses, list):
        c.problem("clauses", "must be an array of tables ([[clauses]])")
        raw_clauses = []
    for i, raw in enumerate(raw_clauses):
        path = f"clauses[{i}]"
        t = c.table(raw, path, {"id", "title", "text"}, required={"id", "title", "text"})
        cid = c.string(t, "id", path)
        if cid in clauses:
            c.problem(_join(path, "id"), f"duplicate clause id {cid!r}")
        elif cid:
            clauses[cid] = Clause(cid, c.string(t, "title", path), c.string(t, "text", path))

    def cite(table: Mapping[str, Any], path: str, rule: str | None = None) -> str:
        clause = c.string(table, "clause", path, rule=rule)
        if clause and clause not in clauses:
            c.problem(_join(path, "clause"), f"cites clause {clause!r}, which the policy does not "
                      f"define (clauses: {', '.join(sorted(clauses)) or 'none'})", rule=rule)
        return clause

    # Model categories
    categories: dict[str, CategoryPolicy] = {}
    raw_cats = c.table(top.get("categories", {}), "categories", set(MODEL_CATEGORIES))
    for cat in MODEL_CATEGORIES:
        if cat not in raw_cats:
            continue
        path = f"categories.{cat}"
        thresholds = c.thresholds(raw_cats[cat], path)
        clause = cite(raw_cats[cat] if isinstance(raw_cats[cat], dict) else {}, path)
        categories[cat] = CategoryPolicy(cat, clause, thresholds)

    # Rules
    rules: list[Rule] = []
    seen_rules: set[str] = set()
    raw_rules = top.get("rules", [])
    if not isinstance(raw_rules, list):
        c.problem("rules", "must be an array of tables ([[rules]])")
        raw_rules = []
    for i, raw in enumerate(raw_rules):
        path = f"rules[{i}]"
        rid = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        t = c.table(raw, path, {"id", "clause", "kind", "patterns", "action", "category",
                                "description"},
                    required={"id", "clause", "kind", "patterns", "action", "category"}, rule=rid)
        rid = c.string(t, "id", path)
        if rid in seen_rules:
            c.problem(_join(path, "id"), f"duplicate rule id {rid!r}", rule=rid)
        seen_rules.add(rid)
        clause = cite(t, path, rid)
        kind = c.enum(t, "kind", path, str, RULE_KINDS, rule=rid)
        patterns = c.strings(t, "patterns", path, rule=rid, required=True)
        action = c.enum(t, "action", path, VerdictAction, _ACTING, rule=rid)
        category = c.enum(t, "category", path, Category, _CATEGORIES, rule=rid)
        regex = _compile_checked(c, kind, _blank_patterns(c, kind, patterns, path, rid), path,
                                 rid)
        if rid and clause and kind and action and category and regex is not None:
            rules.append(Rule(rid, clause, kind, patterns, action, category,
                              c.string(t, "description", path, default="", rule=rid), regex))

    # Channel overrides
    overrides: list[ChannelOverride] = []
    raw_channels = c.table(top.get("channels", {}), "channels",
                           set(top.get("channels", {})) if isinstance(top.get("channels"), dict)
                           else set())
    for cname, raw in raw_channels.items():
        path = f"channels.{cname}"
        t = c.table(raw, path, {"match", "description", "categories", "skip_rules", "mode"})
        match = c.strings(t, "match", path) if "match" in t else (cname,)
        cats = c.table(t.get("categories", {}), _join(path, "categories"), set(MODEL_CATEGORIES))
        merged: dict[str, Thresholds] = {}
        for name_c, value in cats.items():
            if name_c in categories:
                merged[name_c] = c.thresholds(value, f"{path}.categories.{name_c}",
                                              base=categories[name_c].thresholds)
            elif name_c in MODEL_CATEGORIES:
                c.problem(f"{path}.categories.{name_c}",
                          f"overrides {name_c!r}, which [categories] does not define")
        skip = c.strings(t, "skip_rules", path)
        for i, rule_id in enumerate(skip):
            if rule_id not in seen_rules:
                c.problem(f"{path}.skip_rules[{i}]", f"names rule {rule_id!r}, which the policy "
                          "does not define", rule=rule_id)
        overrides.append(ChannelOverride(cname, frozenset(m.lstrip("#").casefold() for m in match),
                                         c.string(t, "description", path, default=""),
                                         MappingProxyType(merged), frozenset(skip),
                                         c.enum(t, "mode", path, Mode, _MODES)
                                         if "mode" in t else None))

    # Protected persons
    t = c.table(top.get("protected", {}), "protected",
                {"clause", "action", "min_action", "persons", "categories", "min_score"})
    p_clause = cite(t, "protected") if t else ""
    p_categories = t.get("categories", [c.value for c in AIMED_CATEGORIES])
    if not isinstance(p_categories, list) or not p_categories or any(
            v not in _CATEGORIES for v in p_categories):
        c.problem("protected.categories", f"must be a non-empty list of categories from "
                  f"{', '.join(_CATEGORIES)}")
        p_categories = [c.value for c in AIMED_CATEGORIES]
    p_min_score = t.get("min_score", 0.5)
    if isinstance(p_min_score, bool) or not isinstance(p_min_score, int | float) or not (
            0.0 <= p_min_score <= 1.0):
        c.problem("protected.min_score",
                  f"must be a number from 0 to 1, not {_shown(p_min_score)}")
        p_min_score = 0.5
    p_action = c.enum(t, "action", "protected", VerdictAction, _ACTING, default="escalate")
    p_min = c.enum(t, "min_action", "protected", VerdictAction, _ACTING, default="warn")
    persons: list[ProtectedPerson] = []
    seen_people: set[str] = set()
    raw_people = t.get("persons", [])
    if not isinstance(raw_people, list):
        c.problem("protected.persons", "must be an array of tables ([[protected.persons]])")
        raw_people = []
    for i, raw in enumerate(raw_people):
        path = f"protected.persons[{i}]"
        pt = c.table(raw, path, {"id", "name", "role", "aliases"}, required={"id", "name", "role"})
        pid = c.string(pt, "id", path)
        if pid in seen_people:
            c.problem(_join(path, "id"), f"duplicate protected person id {pid!r}")
        seen_people.add(pid)
        role = c.enum(pt, "role", path, Role, _ROLES)
        name_ = c.string(pt, "name", path)
        aliases = c.strings(pt, "aliases", path)
        if pid and role and name_:
            persons.append(ProtectedPerson(pid, name_, role, aliases))
    if persons and not p_clause:
        c.problem("protected", "missing required key 'clause'")

    # Doxxing
    t = c.table(top.get("doxxing", {}), "doxxing",
                {"clause", "action", "detect", "allow_email_domains", "allow_phone_numbers"})
    d_clause = cite(t, "doxxing") if t else ""
    d_action = c.enum(t, "action", "doxxing", VerdictAction, _ACTING, default="escalate")
    detect = c.strings(t, "detect", "doxxing") if "detect" in t else ()
    for i, name_d in enumerate(detect):
        if name_d not in DOXXING_DETECTORS:
            c.problem(f"doxxing.detect[{i}]", f"unknown detector {name_d!r} (known: "
                      f"{', '.join(DOXXING_DETECTORS)})")
    if detect and not d_clause:
        c.problem("doxxing", "missing required key 'clause'")
    allow_domains = c.strings(t, "allow_email_domains", "doxxing")
    allow_numbers = c.strings(t, "allow_phone_numbers", "doxxing")

    # Member statuses
    statuses: dict[MemberStatus, StatusTreatment] = {}
    t = c.table(top.get("members", {}), "members",
                {s.value for s in MemberStatus if s is not MemberStatus.ACTIVE})
    for status_name, raw in t.items():
        if status_name not in _STATUSES:
            continue  # reported by c.table as an unknown key
        path = f"members.{status_name}"
        st = c.table(raw, path, {"action", "clause", "priority"}, required={"action", "clause"})
        s_action = c.enum(st, "action", path, VerdictAction, _ACTIONS)
        s_clause = cite(st, path)
        priority = st.get("priority", 1)
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
            c.problem(_join(path, "priority"), "must be an integer from 0 to 9")
            priority = 1
        if s_action and s_clause:
            status = MemberStatus(status_name)
            statuses[status] = StatusTreatment(status, s_action, s_clause, priority)

    strikes = _strikes(c, top.get("strikes", {}))
    sanctions = _sanctions(c, top.get("sanctions", {}))
    spam = _spam(c, top["spam"], cite) if "spam" in top else None
    mode = c.enum(top, "mode", "", Mode, _MODES, default=Mode.ENFORCE.value)
    shadow_review = top.get("shadow_review", True)
    if not isinstance(shadow_review, bool):
        c.problem("shadow_review", f"must be true or false, not {_type(shadow_review)}")
    transparency = c.table(top.get("transparency", {}), "transparency", {"min_count"})
    min_count = transparency.get("min_count", 10)
    if isinstance(min_count, bool) or not isinstance(min_count, int) or \
            not 1 <= min_count <= 1000:
        c.problem("transparency.min_count", f"must be a whole number from 1 to 1000, not "
                  f"{_shown(min_count)}")

    if c.problems:
        raise PolicyError(file, c.problems)
    return Policy(
        file=file,
        version=str(version),
        name=name,
        clauses=MappingProxyType(clauses),
        categories=MappingProxyType(categories),
        rules=tuple(rules),
        channels=tuple(overrides),
        protected=ProtectedPolicy(p_clause, p_action or VerdictAction.ESCALATE,
                                  p_min or VerdictAction.WARN, tuple(persons),
                                  frozenset(Category(v) for v in p_categories),
                                  float(p_min_score)),
        doxxing=DoxxingPolicy(d_clause, d_action or VerdictAction.ESCALATE, frozenset(detect),
                              frozenset(d.casefold() for d in allow_domains),
                              frozenset(phone_digits(n) for n in allow_numbers)),
        statuses=MappingProxyType(statuses),
        strikes=strikes,
        sanctions=sanctions,
        mode=mode or Mode.ENFORCE,
        shadow_review=bool(shadow_review),
        transparency_min_count=int(min_count),
        spam=spam,
    )


#: Strike points beyond this are a typo (and inf and nan break the ladder's arithmetic).
_MAX_NUMBER = 1e6


def _number(c: _Checker, table: Mapping[str, Any], key: str, path: str, default: float, *,
            low: float = 0.0) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            low <= value <= _MAX_NUMBER):  # refuses nan and inf too
        c.problem(_join(path, key), f"must be a number from {low:g} to {_MAX_NUMBER:g}, "
                  f"not {_shown(value)}")
        return default
    return float(value)


def _duration(c: _Checker, table: Mapping[str, Any], key: str, path: str,
              default: str | None) -> timedelta | None:
    value = table.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str):
        c.problem(_join(path, key), f"must be a duration string like \"1h\" or \"30d\", "
                  f"not {_type(value)}")
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        c.problem(_join(path, key), str(exc))
        return None


def _strikes(c: _Checker, raw: Any) -> StrikePolicy:
    t = c.table(raw, "strikes", {"warn", "hide", "escalate", "half_life", "expire_after",
                                 "ladder", "escalation_points", "unreviewed_after"})
    points = {VerdictAction(a): _number(c, t, a, "strikes", d)
              for a, d in (("warn", 1.0), ("hide", 2.0), ("escalate", 3.0))}
    half_life = _duration(c, t, "half_life", "strikes", None)
    expire_after = _duration(c, t, "expire_after", "strikes", None)
    escalation_points = t.get("escalation_points", "on_uphold")
    if escalation_points not in ESCALATION_POINTS:
        c.problem("strikes.escalation_points", f"must be one of "
                  f"{', '.join(map(repr, ESCALATION_POINTS))}, not {escalation_points!r}")
        escalation_points = "on_uphold"
    unreviewed_after = _duration(c, t, "unreviewed_after", "strikes", None)
    if unreviewed_after is not None and escalation_points == "at_once":
        c.problem("strikes.unreviewed_after", "applies only with escalation_points = "
                  "\"on_uphold\" (with \"at_once\" nothing waits for review)")
    steps: list[LadderStep] = []
    raw_ladder = t.get("ladder", [])
    if not isinstance(raw_ladder, list):
        c.problem("strikes.ladder", "must be an array of tables ([[strikes.ladder]])")
        raw_ladder = []
    for i, raw_step in enumerate(raw_ladder):
        path = f"strikes.ladder[{i}]"
        st = c.table(raw_step, path, {"points", "timeout", "escalate", "note"},
                     required={"points"})
        escalate = st.get("escalate", False)
        if not isinstance(escalate, bool):
            c.problem(_join(path, "escalate"), "must be true or false")
            escalate = False
        timeout = _duration(c, st, "timeout", path, None)
        if timeout is None and not escalate and "timeout" not in st:
            c.problem(path, "a ladder step must set a timeout, escalate = true, or both")
        steps.append(LadderStep(_number(c, st, "points", path, 0.0, low=0.1), timeout,
                                escalate, c.string(st, "note", path, default="")))
    seen: set[float] = set()
    for i, step in enumerate(steps):
        if step.points in seen:
            c.problem(f"strikes.ladder[{i}].points", f"two ladder steps at {step.points:g} points")
        seen.add(step.points)
    return StrikePolicy(points, half_life, expire_after,
                        tuple(sorted(steps, key=lambda s: s.points, reverse=True)),
                        escalation_points, unreviewed_after)


_SPAM_WINDOW_MAX = 86_400.0
_SPAM_KEYS = {"clause", "rate", "duplicates", "mentions", "links", "raid"}
_RAID_RESPONSES = ("slowmode", "alert")


def _spam(c: _Checker, raw: Any, cite: Callable[[Mapping[str, Any], str], str]) -> SpamPolicy:
    t = c.table(raw, "spam", _SPAM_KEYS, required={"clause"})
    clause = cite(t, "spam")

    def section(name: str, keys: set[str]) -> dict[str, Any]:
        return c.table(t.get(name, {}), f"spam.{name}", keys)

    def count(table: Mapping[str, Any], key: str, path: str) -> int | None:
        value = table.get(key)
        if value is None or value is False:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
            c.problem(_join(path, key), f"must be a whole number from 1 to 10000 or false, "
                      f"not {_shown(value)}")
            return None
        return int(value)

    def window(table: Mapping[str, Any], path: str) -> Window | None:
        if not table:
            return None
        w = c.table(table, path, {"messages", "accounts", "seconds"})
        n = count(w, "messages", path) or count(w, "accounts", path)
        seconds = _number(c, w, "seconds", path, 0.0, low=1.0) if "seconds" in w else None
        if seconds is not None and seconds > _SPAM_WINDOW_MAX:
            c.problem(_join(path, "seconds"), f"must be at most {_SPAM_WINDOW_MAX:g} (a day: the "
                      "spam checks remember messages that long)")
            seconds = None
        if n is None or seconds is None:
            c.problem(path, "needs a count (messages or accounts) and seconds")
            return None
        return Window(n, seconds)

    def action(table: Mapping[str, Any], key: str, path: str, default: VerdictAction
               ) -> VerdictAction:
        if key not in table:
            return default
        return c.enum(table, key, path, VerdictAction, _ACTIONS[1:]) or default

    rate = section("rate", {"action", "per_channel", "overall"})
    dup = section("duplicates", {"action", "repeats", "accounts", "seconds", "min_chars"})
    men = section("mentions", {"action", "max_users", "mass", "pile_on", "pile_on_action"})
    links = section("links", {"action", "invites", "shorteners", "deny", "from_new_accounts"})
    raid = section("raid", {"new_account_days", "accounts", "seconds", "response",
                            "slowmode_seconds", "action", "timeout"})
    flags = {}
    for key in ("invites", "from_new_accounts"):
        value = links.get(key, False)
        if not isinstance(value, bool):
            c.problem(f"spam.links.{key}", f"must be true or false, not {_type(value)}")
            value = False
        flags[key] = value
    mass = men.get("mass", False)
    mass_action = None if mass is False else action(men, "mass", "spam.mentions",
                                                    VerdictAction.ESCALATE)
    raid_window = None
    if "accounts" in raid or "seconds" in raid:
        raid_window = window({k: raid[k] for k in ("accounts", "seconds") if k in raid},
                             "spam.raid")
    response = raid.get("response", "alert")
    if response not in _RAID_RESPONSES:
        c.problem("spam.raid.response", f"must be one of {', '.join(_RAID_RESPONSES)}, "
                  f"not {_shown(response)}")
        response = "alert"
    slow = raid.get("slowmode_seconds", 30)
    if isinstance(slow, bool) or not isinstance(slow, int) or not 1 <= slow <= 21_600:
        c.problem("spam.raid.slowmode_seconds", "must be a whole number of seconds from 1 to "
                  f"21600 (Discord's limit), not {_shown(slow)}")
        slow = 30
    days = _number(c, raid, "new_account_days", "spam.raid", 7.0)
    dup_seconds = _number(c, dup, "seconds", "spam.duplicates", 600.0, low=1.0)
    if dup_seconds > _SPAM_WINDOW_MAX:
        c.problem("spam.duplicates.seconds", f"must be at most {_SPAM_WINDOW_MAX:g} (a day: the "
                  "spam checks remember messages that long)")
        dup_seconds = 600.0
    timeout = None if raid.get("timeout", False) is False else _duration(
        c, raid, "timeout", "spam.raid", None)

    def domains(key: str) -> frozenset[str]:
        return frozenset(d.casefold().removeprefix("www.")
                         for d in c.strings(links, key, "spam.links"))

    return SpamPolicy(
        clause=clause,
        rate_channel=window(rate.get("per_channel", {}), "spam.rate.per_channel"),
        rate_overall=window(rate.get("overall", {}), "spam.rate.overall"),
        rate_action=action(rate, "action", "spam.rate", VerdictAction.HIDE),
        duplicate_repeats=count(dup, "repeats", "spam.duplicates"),
        duplicate_accounts=count(dup, "accounts", "spam.duplicates"),
        duplicate_seconds=dup_seconds,
        duplicate_min_chars=int(_number(c, dup, "min_chars", "spam.duplicates", 12.0)),
        duplicate_action=action(dup, "action", "spam.duplicates", VerdictAction.HIDE),
        mention_max=count(men, "max_users", "spam.mentions"),
        mention_action=action(men, "action", "spam.mentions", VerdictAction.HIDE),
        mass_mention_action=mass_action,
        pile_on=window(men.get("pile_on", {}), "spam.mentions.pile_on"),
        pile_on_action=action(men, "pile_on_action", "spam.mentions", VerdictAction.ESCALATE),
        invites=flags["invites"],
        shorteners=domains("shorteners"),
        deny_domains=domains("deny"),
        link_action=action(links, "action", "spam.links", VerdictAction.HIDE),
        new_account_links=flags["from_new_accounts"],
        new_account_age=timedelta(days=days),
        raid=raid_window,
        raid_response=response,
        raid_slowmode_seconds=int(slow),
        raid_action=action(raid, "action", "spam.raid", VerdictAction.HIDE),
        raid_timeout=timeout,
    )


def _sanctions(c: _Checker, raw: Any) -> SanctionPolicy:
    t = c.table(raw, "sanctions", {"two_person_suspension", "max_timeout", "retention",
                                   "audit_retention", "timezone"})
    two_person = t.get("two_person_suspension", True)
    if not isinstance(two_person, bool):
        c.problem("sanctions.two_person_suspension", "must be true or false")
        two_person = True
    max_timeout = _duration(c, t, "max_timeout", "sanctions", "28d") or timedelta(days=28)
    if max_timeout > timedelta(days=28):
        c.problem("sanctions.max_timeout", "Discord times members out for at most 28 days")
    retention = _duration(c, t, "retention", "sanctions", "365d") or timedelta(days=365)
    audit_retention = _duration(c, t, "audit_retention", "sanctions", "2190d") or \
        timedelta(days=2190)
    if audit_retention < retention:
        c.problem("sanctions.audit_retention", "the audit trail must be kept at least as long "
                  "as the evidence it explains (retention)")
    timezone = c.string(t, "timezone", "sanctions", default="Europe/London")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        c.problem("sanctions.timezone", f"{timezone!r} is not a time zone (e.g. Europe/London)")
        timezone = "Europe/London"
    return SanctionPolicy(two_person, max_timeout, retention, audit_retention, timezone)


def _compile_rule(c: _Checker, kind: str | None, patterns: tuple[str, ...], path: str,
                  rid: str | None) -> re.Pattern[str] | None:
    """One alternation per rule (see `rule_parts`)."""
    ok = True
    if kind == "regex":
        for i, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                c.problem(f"{path}.patterns[{i}]", f"regex {pattern!r} does not compile: {exc}",
                          rule=rid)
                ok = False
                continue
            try:
                # Refused: patterns that can backtrack catastrophically ((a+)+, (a|ab)*c, ...).
                compile_rule_pattern(pattern, label=rid or "")
            except UnsafePattern as exc:
                c.problem(f"{path}.patterns[{i}]", f"regex {pattern!r} is refused: {exc.reason}",
                          rule=rid)
                ok = False
    if not ok or not patterns:
        return None
    return re.compile("|".join(rule_parts(kind or "keyword", patterns)), re.IGNORECASE)


def rule_parts(kind: str, patterns: tuple[str, ...], /) -> list[str]:
    """A rule's alternatives as regex source, matched case-insensitively against normalised
    text: regexes as written, keywords as whole words (spaces inside may be dropped)."""
    if kind == "regex":
        return [f"(?:{pattern})" for pattern in patterns]
    return [r"\b" + r"\s*".join(re.escape(w) for w in pattern.casefold().split()) + r"\b"
            for pattern in patterns]


def phone_digits(number: str) -> str:
    """A phone number reduced to its national digits, for comparison."""
    digits = re.sub(r"\D", "", number)
    return "0" + digits[2:] if digits.startswith("44") else digits


def load_policy(path: str | Path, /) -> Policy:
    """Read and validate a policy file."""
    p = Path(path)
    try:
        source = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PolicyError(str(p), [PolicyProblem("file not found")]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(p), [PolicyProblem(f"cannot read: {exc}")]) from exc
    return parse_policy(source, file=str(p))
