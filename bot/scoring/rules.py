"""Rule scorer: the policy's keyword and regex rules, protected-person mentions and doxxing."""

from __future__ import annotations

__all__ = ["RuleScorer", "mask", "personal_details", "redact_personal"]

import logging
import re
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from bot.models import Category, RuleHit, VerdictAction
from bot.normalize import DEFAULT_LEXICON, clean, fold_variants
from bot.policy import DoxxingPolicy, Policy, phone_digits, rule_parts
from bot.scoring.literals import Prefilter, fold
from bot.scoring.patterns import Match, PatternTimeout

log = logging.getLogger(__name__)

# UK numbers: mobiles (07xxx xxx xxx) and geographic/London landlines (01xxx, 02x), with or
# without +44; digits may be grouped with spaces or hyphens.
_UK_PHONE = re.compile(
    r"(?<![\d+])(?:\+44\s?\(?0?\)?\s?|0)"
    r"(?:7\d{3}[\s-]?\d{3}[\s-]?\d{3}|[12]\d{1,3}[\s-]?\d{3,4}[\s-]?\d{3,4})(?!\d)"
)
# Matched from the start of a run of address characters (leading dots, pluses and hyphens
# skipped, as "\b" would), never from every position in it: "a.a.a...@" would be quadratic.
_EMAIL = re.compile(r"(?<![\w.+-])[.+-]*+(\b[\w.+-]+@([\w-]+(?:\.[\w-]+)+)\b)")
_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.IGNORECASE)
_STREET = re.compile(
    r"\b\d{1,4}[a-z]?,?\s+(?:[A-Za-z'-]+\s+){1,3}"
    r"(?:road|rd|street|st|avenue|ave|lane|ln|close|drive|dr|way|crescent|grove|terrace|place"
    r"|gardens|court|square|hill|park|row|mews|view|walk|rise|parade)\b",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
_ADDRESS_SPAN = 80  # a street and a postcode this close together make an address
# Quoting abuse in order to report or condemn it is not misconduct (clause 1.2 says so), and nor
# is explaining what a trope or a slur means. A rule match does not act when its own sentence
# reports or explains abuse and the match is either inside quotation marks or introduced as what
# someone said or claimed ("the idea that ...", "being told they were only selected because ...").
# The cue must be in the match's sentence, so a report elsewhere in the message excuses nothing.
_QUOTED = re.compile(r"""(?:^|(?<=[\s(:=]))(["'])(.{1,200}?)\1(?=[\s).,!?:;]|$)""")
_REPORTING = re.compile(
    r"\b(report(ed|ing)?|flag(ged|ging)?|call(ed|ing) (her|him|them|me|us)|shout(ed|ing)|"
    r"screenshots?|disgusting|condemn(ed)?|unacceptable|police|spray-?painted|graffiti|"
    r"received|sent (me|her|him|them)|abuse|vile|block(ed|ing)?|"
    r"(messages|comments|tweets|dms|emails|posts) like|"
    r"jailed|arrested|convicted|charged|sacked|suspended|expelled|investigated|"
    r"describ(e|es|ed|ing)|scream(ed|ing)|yell(ed|ing)|chant(ed|ing)|threaten(ed|ing))\b"
)
_EXPLAINING = re.compile(
    r"\b(tropes?|dog-?whistles?|conspiracy theor(y|ies)|antisemiti(c|sm)|anti-semiti(c|sm)|ihra|"
    r"is a classic|are a classic|code ?words?|canards?|blood libel|myths?|smears?|sexis[mt]|"
    r"misogyn(y|ist|istic)|racis[mt]|homophobi[ac]|transphobi[ac]|islamophobi[ac]|bigot(ed|ry)?|"
    r"hate speech|offensive|prejudice|stands? for|short for|code for|refers? to|neo-?nazis?|"
    r"nazi (codes?|salutes?|symbols?|slogans?)|white supremac(y|ist|ists))\b"
)
# "That's not antisemitic", "it isn't a trope": a denial is no explanation.
_DENIED = re.compile(
    r"\b(not|isn'?t|aren'?t|wasn'?t|no|nothing|never)\s+(\w+\s+){0,2}?"
    r"(tropes?|dog-?whistles?|conspiracy theor(y|ies)|antisemiti(c|sm)|anti-semiti(c|sm)|myths?|"
    r"smears?|sexis[mt]|misogyn\w*|racis[mt]|homophobi[ac]|transphobi[ac]|islamophobi[ac]|"
    r"bigot\w*|offensive|prejudice)\b"
)
# Words that introduce the matched words as someone else's claim, just before the match.
_FRAMED = re.compile(
    r"\b(the (idea|claim|notion|myth|lie|trope|smear|accusation|suggestion|slur|canard|theory|"
    r"insinuation|charge) (that|of)|(saying|claiming|suggesting|implying|insinuating|alleging|"
    r"accus(e|es|ed|ing)|accusations? of|claims? of|told|tell(ing)?|hear(ing)?|heard|"
    r"say|says|said|claim|claims|claimed|suggests?|implies|the word|the phrase|phrases like|"
    r"terms like|words like|such as|imagines|imagining|portrays|portraying|depicts|depicting|"
    r"called|calling|screaming|shouting|yelling|chanting|stands? for|short for|code for|"
    r"means)( that)?)\s+"
    r"((?!this\b|but\b|and\b|so\b|though\b|anyway\b|honestly\b|frankly\b|you\b|u\b|ya\b)"
    r"\w+\s+){0,3}$"
)
# Matches examined per rule and form: bounds the work on a long message full of quotations.
_MAX_EXCUSED = 20
_SENTENCE_END = re.compile(r"[.!?;:]\s|\n")
_PUNCT_BEFORE_SPACE = re.compile(r"[.!?;:](?=\s)")
_NEWLINE = re.compile(r"\n")
# Characters before a match in which `_FRAMED` looks for "saying that" and up to three words.
_FRAME_SPAN = 300
# CPU time (this thread's own: waiting for a busy machine or for the GIL never counts) that
# the rules may take on one message, everything included. Ordinary messages take well under a
# millisecond and a long ordinary one a few; only a message crafted to be slow comes near.
# When it is spent the checks stop, and what they did not read is not taken for harmless: the
# message is escalated for a moderator to read ("unfinished").
MESSAGE_BUDGET_S = 0.035
# A long message is checked in windows of this many characters, overlapping by WINDOW_OVERLAP
# (more than any rule's reach), with the budget looked at between windows: the worst message
# costs the budget plus one window.
WINDOW = 3_000
WINDOW_OVERLAP = 400


def _unfinished(rule_id: str, clause: str, category: Category, detail: str) -> RuleHit:
    """The checks ran out of time (`detail` says where): escalate, so a moderator reads what
    they did not. Logged with the place, never the text."""
    log.warning("rules stopped (%s): the message's %.0f ms budget was spent; it is escalated "
                "for a moderator to read", detail, MESSAGE_BUDGET_S * 1000)
    return RuleHit(f"unfinished:{rule_id}", clause, VerdictAction.ESCALATE, category,
                   "unfinished", detail)


def _windows(text: str) -> Iterator[tuple[int, str]]:
    """Overlapping windows of a long text, each starting after a space where one is near."""
    start = 0
    while True:
        end = min(start + WINDOW, len(text))
        yield start, text[start:end]
        if end == len(text):
            return
        start = end - WINDOW_OVERLAP
        space = text.find(" ", start, start + 50)
        start = space + 1 if space != -1 else start


def mask(value: str, /, *, keep: int = 4) -> str:
    """Hide all but the first `keep` characters, so evidence logs don't repeat the details."""
    shown = value[:keep]
    return shown + "*" * max(0, len(value) - keep)


@dataclass(frozen=True, slots=True)
class _Person:
    id: str
    pattern: re.Pattern[str]


class RuleScorer:
    """Matches a policy's rules against a message: synchronous and CPU-bound, so the moderator
    runs it in a worker thread, never on the event loop."""

    def __init__(self, policy: Policy, /) -> None:
        self.policy = policy
        # Masked spellings ("n*gger", "f-a-g") are read as the policy's own keywords too.
        self._lexicon = DEFAULT_LEXICON.extended(
            p for rule in policy.rules if rule.kind == "keyword" for p in rule.patterns
        )
        # Most messages hold none of the words a rule needs: one Aho-Corasick pass finds which
        # rule alternatives can match at all, and only those run.
        self._prefilter = Prefilter([rule_parts(rule.kind, rule.patterns)
                                     for rule in policy.rules],
                                    names=[rule.id for rule in policy.rules])
        self._people = tuple(
            _Person(p.id, _name_pattern((p.name, *p.aliases))) for p in policy.protected.persons
        )
        # The same names through the literal prefilter: tried at every position, the names'
        # lookbehind made a 40,000-character message cost tens of milliseconds per form.
        self._names = Prefilter([[person.pattern.pattern] for person in self._people],
                                names=[f"protected:{person.id}" for person in self._people])

    def hits(self, text: str, /) -> list[RuleHit]:
        """Every rule that matches, in policy order, each at most once."""
        started = self._clock()
        if len(text) <= WINDOW:
            return self._hits(text, started)
        found: dict[str, RuleHit] = {}
        for offset, window in _windows(text):
            if self._clock() - started >= MESSAGE_BUDGET_S:
                # No rule was being checked: cite the code's first clause (its general one).
                first = next(iter(self.policy.clauses))
                found.setdefault("unfinished", _unfinished(
                    "window", first, Category.TOXICITY,
                    f"at character {offset:,} of {len(text):,}"))
                break
            for hit in self._hits(window, started):
                key = "unfinished" if hit.kind == "unfinished" else hit.rule_id
                kept = found.get(key)
                # An acting match anywhere outweighs a quoted one elsewhere.
                if kept is None or (kept.action is VerdictAction.ALLOW
                                    and hit.action is not VerdictAction.ALLOW):
                    found[key] = hit
        order = {rule.id: i for i, rule in enumerate(self.policy.rules)}
        return sorted(found.values(), key=lambda h: order.get(h.rule_id, len(order)))

    def _clock(self) -> float:
        """This thread's CPU seconds, less those spent compiling patterns on first use."""
        return time.thread_time() - self._prefilter.compiling - self._names.compiling

    def _hits(self, text: str, started: float) -> list[RuleHit]:
        variants = fold_variants(text, lexicon=self._lexicon)
        candidates = tuple(self._prefilter.candidates(fold(v)) for v in variants)
        hits: list[RuleHit] = []
        # Rules none of whose words occurs in any form cannot match: only the others run.
        for r in sorted(frozenset().union(*candidates)):
            rule = self.policy.rules[r]
            excused: str | None = None
            acting: Match | None = None
            try:
                for variant, may_match in zip(variants, candidates, strict=True):
                    left = MESSAGE_BUDGET_S - (self._clock() - started)
                    # Every match, not only the first: a quoted example must not excuse the
                    # same words said for real later in the message.
                    for n, found in enumerate(self._prefilter.finditer(r, variant, may_match,
                                                                       timeout=left)):
                        if n == _MAX_EXCUSED:
                            break
                        if _excused(variant, found.start(), found.end()):
                            excused = excused or found.group(0)
                        else:
                            acting = found
                            break
                    if acting is not None:
                        break
            except PatternTimeout:
                # Rules that RE2 runs in linear time still go on; one note is enough.
                if not any(h.kind == "unfinished" for h in hits):
                    hits.append(_unfinished(rule.id, rule.clause, rule.category,
                                            f"at rule {rule.id}"))
                continue
            if acting is not None:
                hits.append(RuleHit(rule.id, rule.clause, rule.action, rule.category, rule.kind,
                                    acting.group(0), _reported(acting)))
            elif excused is not None:
                hits.append(RuleHit(rule.id, rule.clause, VerdictAction.ALLOW, rule.category,
                                    "quoted", excused))
        cleaned = clean(text)
        hits.extend(self.protected_mentions(cleaned, variants))
        hits.extend(self.doxxing(cleaned))
        return hits

    def protected_mentions(self, cleaned: str, variants: tuple[str, ...]) -> list[RuleHit]:
        """One hit per protected person named; these only act together with other findings."""
        found: list[RuleHit] = []
        pol = self.policy.protected
        if not self._people:
            return found
        texts = (cleaned, *variants)
        # Forms that fold alike (a plain message and its normalised form) are scanned once.
        keys = [fold(candidate) for candidate in texts]
        found_in = {key: self._names.candidates(key) for key in dict.fromkeys(keys)}
        may_name = [found_in[key] for key in keys]
        # Only the people some form may name (in policy order): the rest cannot match.
        for i in sorted(frozenset().union(*may_name)):
            person = self._people[i]
            for candidate, may in zip(texts, may_name, strict=True):
                try:
                    m = next(self._names.finditer(i, candidate, may, timeout=MESSAGE_BUDGET_S),
                             None)
                except PatternTimeout:  # logged; a name alone never acts
                    m = None
                if m:
                    found.append(RuleHit(f"protected:{person.id}", pol.clause,
                                         VerdictAction.ALLOW, Category.HARASSMENT, "protected",
                                         m.group(0)))
                    break
        return found

    def doxxing(self, cleaned: str) -> list[RuleHit]:
        """Personal contact details: UK phone numbers, emails, street addresses with postcodes
        (one hit per kind of detail)."""
        dox = self.policy.doxxing
        found: dict[str, RuleHit] = {}
        for detector, start, end in personal_details(cleaned, dox):
            found.setdefault(detector, RuleHit(f"doxxing:{detector}", dox.clause, dox.action,
                                               Category.DOXXING, "doxxing",
                                               mask(cleaned[start:end])))
        return list(found.values())


def personal_details(text: str, dox: DoxxingPolicy, /) -> Iterator[tuple[str, int, int]]:
    """(detector, start, end) of every personal detail the policy detects in `text`: a UK
    phone number, an email address outside the allowed domains, a street with a postcode
    (the span runs from the street to the end of the postcode)."""
    # A phone number and a street address need a digit, an email address an "@": most
    # messages have neither, and these two scans in C spare them the three patterns.
    digits = _DIGIT.search(text) is not None
    if "uk_phone" in dox.detect and digits:
        for m in _UK_PHONE.finditer(text):
            if phone_digits(m.group(0)) not in dox.allow_phone_numbers:
                yield "uk_phone", m.start(), m.end()
    if "email" in dox.detect and "@" in text:
        for m in _EMAIL.finditer(text):
            if m.group(2).casefold() not in dox.allow_email_domains:
                yield "email", m.start(1), m.end(1)
    if "street_address" in dox.detect and digits:
        for street in _STREET.finditer(text):
            postcode = _POSTCODE.search(text, street.start(), street.end() + _ADDRESS_SPAN)
            if postcode is not None:
                yield "street_address", street.start(), max(street.end(), postcode.end())


def redact_personal(text: str, dox: DoxxingPolicy, /, *,
                    placeholder: str = "[personal details removed]") -> str:
    """`text` with every personal detail the policy detects replaced by `placeholder`."""
    spans = sorted((start, end) for _, start, end in personal_details(text, dox))
    out, at = [], 0
    for start, end in spans:
        if start < at:  # overlapping details: the earlier replacement covers it
            start = at
            if start >= end:
                continue
        out += [text[at:start], placeholder]
        at = end
    return "".join(out) + text[at:]


@lru_cache(maxsize=16)
def _sentence_marks(text: str) -> tuple[list[int], list[int]]:
    """Where `_SENTENCE_END` matches in `text` could start, and where they end, sorted: found
    once per text, so each match's sentence is a binary search and not a scan from the start
    (which on a long message with many matches was quadratic)."""
    puncts = [m.start() for m in _PUNCT_BEFORE_SPACE.finditer(text)]
    newlines = [m.start() for m in _NEWLINE.finditer(text)]
    starts = sorted({*puncts, *newlines})
    ends = sorted({*(p + 2 for p in puncts), *(q + 1 for q in newlines)})
    return starts, ends


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    """The bounds of the sentence around text[start:end] (punctuation, line breaks, dashes):
    from the end of the last `_SENTENCE_END` before `start` to the next one from `end`."""
    starts, ends = _sentence_marks(text)
    i = bisect_right(ends, start)
    begin = ends[i - 1] if i else 0
    j = bisect_left(starts, end)
    return begin, starts[j] if j < len(starts) else len(text)


@lru_cache(maxsize=16)
def _quoted_spans(text: str) -> tuple[tuple[int, int], ...]:
    """The insides of `_QUOTED` quotations, once per text."""
    return tuple((q.start(2), q.end(2)) for q in _QUOTED.finditer(text))


def _in_quotes(text: str, start: int, end: int) -> bool:
    return any(qs <= start and end <= qe for qs, qe in _quoted_spans(text))


@lru_cache(maxsize=64)
def _cues(text: str, begin: int, stop: int) -> tuple[bool, bool]:
    """Whether text[begin:stop] explains abuse, and whether it reports it (once per sentence,
    however many matches it holds)."""
    sentence = text[begin:stop]
    return _explains(sentence), bool(_REPORTING.search(sentence))


def _excused(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is reported or explained rather than said (see `_EXPLAINING`)."""
    begin, stop = _sentence(text, start, end)
    explains, reports = _cues(text, begin, stop)
    # A question about what someone said ("is he saying gays are a disease?") reports it too.
    asks = text[stop:stop + 1] == "?" or text[begin:stop].rstrip().endswith("?")
    if not (explains or reports or asks):
        if begin == 0 or not _framed(text, begin, start):
            return False
        before, _ = _sentence(text, max(0, begin - 2), max(0, begin - 2))
        return _cues(text, before, begin)[0]
    if _in_quotes(text, start, end):
        return True
    # Unquoted, the words must be introduced as someone's claim ("saying that ..."); then the
    # explanation may also be the sentence before ("That's a trope. It suggests Jews ...").
    return _framed(text, begin, start)


def _framed(text: str, begin: int, start: int) -> bool:
    """Whether the words just before `start` (in the sentence from `begin`) introduce what
    follows as someone's claim. The cue and three words fit in `_FRAME_SPAN` characters, so
    the search starts there and not at the top of a sentence that may be 40,000 long."""
    return bool(_FRAMED.search(text, max(begin, start - _FRAME_SPAN), start))


def _reported(found: Match) -> bool:
    """Whether a match that no sentence excuses may still be a report: it is in quotation marks,
    or the message reports or explains abuse somewhere. The model, which reads the whole
    message, then decides (see `bot.decide`)."""
    text = found.string
    if _in_quotes(text, found.start(), found.end()):
        return True
    explains, reports = _cues(text, 0, len(text))
    return reports or explains


def _explains(sentence: str) -> bool:
    return bool(_EXPLAINING.search(sentence)) and not _DENIED.search(sentence)

def _name_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = sorted({n.casefold().strip() for n in names if n.strip()}, key=len,
                          reverse=True)
    body = "|".join(r"\s+".join(re.escape(w) for w in n.split()) for n in alternatives)
    return re.compile(rf"(?<![\w@])(?:{body})(?!\w)", re.IGNORECASE)
