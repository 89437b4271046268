"""Rule scorer: the policy's keyword and regex rules, protected-person mentions and doxxing."""

from __future__ import annotations

__all__ = ["RuleScorer", "mask"]

import re
from dataclasses import dataclass

from bot.models import Category, RuleHit, VerdictAction
from bot.normalize import clean, fold_variants
from bot.policy import Policy, phone_digits

# UK numbers: mobiles (07xxx xxx xxx) and geographic/London landlines (01xxx, 02x), with or
# without +44; digits may be grouped with spaces or hyphens.
_UK_PHONE = re.compile(
    r"(?<![\d+])(?:\+44\s?\(?0?\)?\s?|0)"
    r"(?:7\d{3}[\s-]?\d{3}[\s-]?\d{3}|[12]\d{1,3}[\s-]?\d{3,4}[\s-]?\d{3,4})(?!\d)"
)
_EMAIL = re.compile(r"\b[\w.+-]+@([\w-]+(?:\.[\w-]+)+)\b")
_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.IGNORECASE)
_STREET = re.compile(
    r"\b\d{1,4}[a-z]?,?\s+(?:[A-Za-z'-]+\s+){1,3}"
    r"(?:road|rd|street|st|avenue|ave|lane|ln|close|drive|dr|way|crescent|grove|terrace|place"
    r"|gardens|court|square|hill|park|row|mews|view|walk|rise|parade)\b",
    re.IGNORECASE,
)
_ADDRESS_SPAN = 80  # a street and a postcode this close together make an address
# Quoting abuse in order to report or condemn it is not misconduct (clause 1.2 says so): a rule
# match that lies inside quotation marks, in a message with a reporting cue, does not act.
_QUOTED = re.compile(r"""(?:^|(?<=[\s(:=]))(["'])(.{1,200}?)\1(?=[\s).,!?:;]|$)""")
_REPORTING = re.compile(
    r"\b(report(ed|ing)?|flag(ged|ging)?|call(ed|ing) (her|him|them|me|us)|shout(ed|ing)|"
    r"screenshots?|disgusting|condemn(ed)?|unacceptable|police|spray-?painted|graffiti|"
    r"received|sent (me|her|him|them)|abuse|vile)\b"
)


def mask(value: str, /, *, keep: int = 4) -> str:
    """Hide all but the first `keep` characters, so evidence logs don't repeat the details."""
    shown = value[:keep]
    return shown + "*" * max(0, len(value) - keep)


@dataclass(frozen=True, slots=True)
class _Person:
    id: str
    pattern: re.Pattern[str]


class RuleScorer:
    """Matches a policy's rules against a message; cheap, synchronous, runs on the loop."""

    def __init__(self, policy: Policy, /) -> None:
        self.policy = policy
        self._people = tuple(
            _Person(p.id, _name_pattern((p.name, *p.aliases))) for p in policy.protected.persons
        )

    def hits(self, text: str, /) -> list[RuleHit]:
        """Every rule that matches, in policy order, each at most once."""
        variants = fold_variants(text)
        hits: list[RuleHit] = []
        for rule in self.policy.rules:
            for variant in variants:
                found = rule.regex.search(variant)
                if found:
                    if _reported_quote(variant, found.start(), found.end()):
                        hits.append(RuleHit(rule.id, rule.clause, VerdictAction.ALLOW,
                                            rule.category, "quoted", found.group(0)))
                    else:
                        hits.append(RuleHit(rule.id, rule.clause, rule.action, rule.category,
                                            rule.kind, found.group(0)))
                    break
        cleaned = clean(text)
        hits.extend(self.protected_mentions(cleaned, variants))
        hits.extend(self.doxxing(cleaned))
        return hits

    def protected_mentions(self, cleaned: str, variants: tuple[str, ...]) -> list[RuleHit]:
        """One hit per protected person named; these only act together with other findings."""
        found: list[RuleHit] = []
        pol = self.policy.protected
        for person in self._people:
            for candidate in (cleaned, *variants):
                m = person.pattern.search(candidate)
                if m:
                    found.append(RuleHit(f"protected:{person.id}", pol.clause,
                                         VerdictAction.ALLOW, Category.HARASSMENT, "protected",
                                         m.group(0)))
                    break
        return found

    def doxxing(self, cleaned: str) -> list[RuleHit]:
        """Personal contact details: UK phone numbers, emails, street addresses with postcodes."""
        dox = self.policy.doxxing
        found: list[RuleHit] = []

        def hit(detector: str, value: str) -> None:
            found.append(RuleHit(f"doxxing:{detector}", dox.clause, dox.action, Category.DOXXING,
                                 "doxxing", mask(value)))

        if "uk_phone" in dox.detect:
            for m in _UK_PHONE.finditer(cleaned):
                if phone_digits(m.group(0)) not in dox.allow_phone_numbers:
                    hit("uk_phone", m.group(0))
                    break
        if "email" in dox.detect:
            for m in _EMAIL.finditer(cleaned):
                if m.group(1).casefold() not in dox.allow_email_domains:
                    hit("email", m.group(0))
                    break
        if "street_address" in dox.detect:
            for street in _STREET.finditer(cleaned):
                window = cleaned[street.start():street.end() + _ADDRESS_SPAN]
                if _POSTCODE.search(window):
                    hit("street_address", street.group(0))
                    break
        return found


def _reported_quote(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] sits inside quotation marks in a message that reports abuse."""
    if not _REPORTING.search(text):
        return False
    return any(q.start(2) <= start and end <= q.end(2) for q in _QUOTED.finditer(text))


def _name_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = sorted({n.casefold().strip() for n in names if n.strip()}, key=len,
                          reverse=True)
    body = "|".join(r"\s+".join(re.escape(w) for w in n.split()) for n in alternatives)
    return re.compile(rf"(?<![\w@])(?:{body})(?!\w)", re.IGNORECASE)
