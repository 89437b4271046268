"""Text normalisation against evasion, for rule matching only.

The policy's keyword and regex rules run on the folded text this module produces; the model
scorer always sees the original text, and the doxxing detectors see `clean()` (invisibles stripped,
NFKC, case and digits kept), never the leet-folded form.

Pipeline of `normalize()`:

1. `clean()`: undo right-to-left override (U+202E) spans, which display reversed; strip invisible
   and format characters (zero-width, soft hyphen, bidi controls, U+180E, variation selectors, tag
   characters, Hangul fillers); NFKC (fullwidth, mathematical alphanumerics, circled letters,
   ligatures, NBSP); strip the generic combining marks left after NFKC composed the real accents
   (strike-through "s̶c̶u̶m̶", zalgo).
2. Look-alikes: words made only of Latin letters and Cyrillic/Greek/Armenian letters that look like
   Latin ones ("sсum" with a Cyrillic с) are mapped by shape, because anyascii transliterates by
   sound (с -> "s"); Lisu and Cherokee look-alikes are always mapped by shape; then `anyascii`
   folds everything else (small caps, accents, enclosed and regional-indicator letters, and real
   non-Latin words, which are transliterated by sound: acceptable for matching). Only letters and
   digits are transliterated: symbols such as "£", "€" and emoji are kept, so "£5" stays "£5",
   except a few emoji that stand for a word in abuse ("immigrants are 🐀" -> "rat", "🖕 you" ->
   "fuck you", "🤡" -> "clown"); weapon and rope emoji (🔪🔫💣⚰🪢) stay for rules to match.
3. `casefold`, curly quotes and dashes to ASCII.
4. Outside e-mail addresses, URLs and platform mentions (``<@U123>``), which pass through lowercased
   and otherwise untouched:

   a. Spaced-out letters: three or more single characters in a row separated by one kind of
      separator (spaces, or one of ``. - _ * / ~ + · •``) are joined ("s c u m", "s.c.u.m",
      "k-y-s" -> "scum", "kys") when at least two are letters; gaps of two or more spaces, where
      single spaces also occur, split words ("y o u  s c u m" -> "you scum"). Two single letters
      never join, so "I am a member", "a.m." and "U.K." stay. A run that starts with a one-letter
      word ("a k i k e") is also offered split ("a kike") by `fold_variants`.
   b. Leetspeak, only in tokens that contain a letter: 0 o, 1 i, 3 e, 4 a, 5 s, 7 t, 8 b, 9 g,
      @ a, $ s, ! i, | i. Exceptions that stay as written: tokens without letters ("07700 900123",
      "2026", "£5", "88"); a number with a unit suffix ("5pm", "1st", "10am", "5bn"); a road
      or identifier: one or two letters then digits, or letters then two or more digits ("A55",
      "M25", "mp3", "covid19"), while "wh0r3" and "whor3" fold.
      A "!" is a letter only inside a word or as a single leading "!" ("!diot", "b!tch"); a
      trailing "!" is punctuation. Known costs: a leading "@" is read as "a" ("@ss" -> "ass",
      so a plain-text "@alice" becomes "aalice"), and "well!done" becomes "wellidone".
   c. Masked words: a word with "*", "#", "%", "_" or "-" standing for letters, or with dots or
      hyphens pushed inside it ("n*gger", "c**t", "f-ck", "bell-end", "fu.ck"), is read as the one
      word of a `Lexicon` (swear words and slurs; the rule scorer adds the policy's keywords) that
      it can spell. A "." is only ever dropped, never read as a letter, and a word that fits no
      entry or two ("s**t") stays as written, so "e-mail", "co-op" and "ph.d" are left alone.
   d. Letters repeated three or more times collapse to one ("whooooore" -> "whore",
      "sooo" -> "so"); doubles stay ("good", "committee", "Leeds").
5. Runs of spaces and tabs become one space and runs of blank lines one newline: line breaks are
   kept, because the policy's regexes use them as sentence boundaries.

One form cannot serve every case: collapsing to one letter reaches "whore" from "whooore" but
turns "fagggot" into "fagot", and "1" reads as "i" in "b1tch" but as "l" in "s1ut". So
`fold_variants()` returns the distinct forms worth matching: the `normalize()` form, the form with
runs collapsed to two letters, and the form with 1 and | read as "l". **The rule matcher should
search every variant and count a rule once if any variant matches**; rule keywords are written in
their ordinary lowercase spelling (they can also be passed through `normalize()` at load).

Throughput. Most messages need few of these steps, and testing for each with Python's `re` cost
more than the steps themselves; for an ASCII text one Hyperscan pass (see "Which steps a text
needs" below) says which steps may change it and where their hints lie. On the bench's
realistic mix (300 messages, 25 of them 1,000-character posts; `scripts/benchmix.py`),
`fold_variants` takes about 11 microseconds a message, against 36 before that pass (best of 5,
the 2-core development machine, both measured in one session). A 70-character Unicode-heavy
evasion (NFKC, look-alikes, anyascii) skips that pass and takes about 36.
"""

from __future__ import annotations

__all__ = ["DEFAULT_LEXICON", "Lexicon", "clean", "fold_variants", "normalize",
           "strip_invisible"]

import re
import string
import unicodedata
from collections.abc import Callable, Iterable
from functools import lru_cache
from itertools import groupby

from anyascii import anyascii

from bot import multiscan
from bot.multiscan import Multiscan, ScanStopped

# --------------------------------------------------------------------------------------------
# Invisible characters and combining marks

# Every format (Cf) character except the visible prepended number signs (Arabic U+0600-0605,
# U+06DD, Syriac U+070F, U+0890-0891, U+08E2, Kaithi U+110BD/U+110CD) and Egyptian
# hieroglyph controls, plus invisible characters of other categories: Mongolian free variation
# selectors, Khmer inherent vowels, Hangul fillers, variation selectors, musical format marks.
_INVISIBLE_RANGES = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark
    (0x115F, 0x1160),  # Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors, vowel separator
    (0x200B, 0x200F),  # zero width space, ZWNJ, ZWJ, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x2064),  # word joiner, invisible operators
    (0x2066, 0x206F),  # bidi isolates, deprecated format characters
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # zero width no-break space, byte order mark
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF9, 0xFFFB),  # interlinear annotation
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format marks
    (0xE0000, 0xE007F),  # tag characters
    (0xE0100, 0xE01EF),  # variation selectors supplement
)

# Generic combining blocks: after NFKC has composed real accents into precomposed letters, what
# remains of these is overlay or stacking used to disguise (strike-through, zalgo). Script-specific
# marks (Devanagari, Arabic, Hebrew points) are left for anyascii.
_COMBINING_RANGES = (
    (0x0300, 0x036F),
    (0x0483, 0x0489),
    (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF),
    (0x20D0, 0x20FF),
    (0xFE20, 0xFE2F),
)


def _char_class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


_INVISIBLE_RE = re.compile(f"[{_char_class(_INVISIBLE_RANGES)}]+")
_COMBINING_RE = re.compile(f"[{_char_class(_COMBINING_RANGES)}]+")
_RLO_SPAN_RE = re.compile("\u202e([^\u202c\u202d\n]*)")
# Braille blank renders as empty space and is used as a spacer.
_BRAILLE_BLANK = "\u2800"  # an "empty" Braille cell used as a space

# --------------------------------------------------------------------------------------------
# Look-alikes

# Letters that look like Latin ones; anyascii would transliterate them by sound.
# fmt: off
_CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "і": "i", "ї": "i", "ј": "j", "к": "k", "м": "m",
    "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "һ": "h",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y", "ѵ": "v",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "І": "I", "Ї": "I", "Ј": "J", "К": "K", "М": "M",
    "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "Һ": "H",
    "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W", "Ӏ": "I", "Ү": "Y", "Ѵ": "V",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C", "Ϳ": "J",
    # Armenian
    "օ": "o", "ս": "u", "հ": "h", "ո": "n", "ց": "g", "զ": "q", "ւ": "i",
    # Latin letters anyascii reads oddly
    "ǃ": "!",
}
# Lisu and Cherokee capitals are near-identical to Latin capitals; no forum writes in them, so
# they are always read by shape.
_ALWAYS_BY_SHAPE: dict[str, str] = {
    "ꓐ": "B", "ꓑ": "P", "ꓓ": "D", "ꓔ": "T", "ꓖ": "G", "ꓗ": "K", "ꓙ": "J", "ꓚ": "C",
    "ꓜ": "Z", "ꓝ": "F", "ꓟ": "M", "ꓠ": "N", "ꓡ": "L", "ꓢ": "S", "ꓣ": "R", "ꓦ": "V",
    "ꓧ": "H", "ꓪ": "W", "ꓫ": "X", "ꓬ": "Y", "ꓮ": "A", "ꓰ": "E", "ꓲ": "I", "ꓳ": "O", "ꓴ": "U",
    "Ꭺ": "A", "Ᏼ": "B", "Ꮯ": "C", "Ꭰ": "D", "Ꭼ": "E", "Ꮐ": "G", "Ꮋ": "H", "Ꭻ": "J",
    "Ꮶ": "K", "Ꮮ": "L", "Ꮇ": "M", "Ꮲ": "P", "Ꮪ": "S", "Ꭲ": "T", "Ꮩ": "V", "Ꮃ": "W", "Ꮓ": "Z",
}
# fmt: on
_BY_SHAPE = str.maketrans({**_CONFUSABLES, **_ALWAYS_BY_SHAPE})
_ALWAYS_BY_SHAPE_TABLE = str.maketrans(_ALWAYS_BY_SHAPE)

# A word holding a Cyrillic, Greek or Armenian letter with no Latin look-alike is a real word of
# that script and is transliterated by sound.
_FOREIGN_LETTERS = frozenset(
    ch
    for lo, hi in ((0x0370, 0x03FF), (0x0400, 0x052F), (0x0531, 0x058F), (0x1C80, 0x1C8F),
                   (0x1F00, 0x1FFF), (0xA640, 0xA69F))
    for ch in map(chr, range(lo, hi + 1))
    if ch not in _CONFUSABLES and unicodedata.category(ch).startswith("L")
)

# Symbol (not \w) characters that spell letters: squared, negative circled and negative squared
# Latin capitals, and regional indicators.
_LETTER_SYMBOLS = str.maketrans({
    chr(cp): anyascii(chr(cp))
    for lo, hi in ((0x1F130, 0x1F189), (0x1F1E6, 0x1F1FF))
    for cp in range(lo, hi + 1)
    if len(anyascii(chr(cp))) == 1 and anyascii(chr(cp)).isalpha()
})
_PUNCTUATION = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-",
})
_SYMBOLS = _LETTER_SYMBOLS | _PUNCTUATION
_SYMBOL_CHARS = frozenset(map(chr, _SYMBOLS))

# Emoji that stand for a word in abuse ("immigrants are 🐀", "🖕 you", "you 🤡"); a skin-tone
# modifier after one goes with it. Weapon emoji (🔪🔫💣) are kept as they are: rules match them.
_EMOJI_WORDS = {
    "🐀": "rat", "🐁": "rat", "🪳": "cockroach", "🐍": "snake", "🐖": "pig", "🐷": "pig",
    "🐽": "pig", "🐒": "monkey", "🐵": "monkey", "🦍": "ape", "🦠": "virus", "🤡": "clown",
    "🖕": "fuck", "💩": "shit",
}
_EMOJI_RE = re.compile(f"[{''.join(_EMOJI_WORDS)}][\U0001F3FB-\U0001F3FF]?")

# Symbols and punctuation kept as written (currency, arrows, emoji, ...); any other non-ASCII
# character (letters, digits, marks) is part of a word to transliterate.
_SYMBOL_RANGES = (
    (0x00A1, 0x00BF), (0x00D7, 0x00D7), (0x00F7, 0x00F7), (0x2000, 0x2BFF), (0x3000, 0x303F),
    (0xFE30, 0xFE4F), (0xFFE0, 0xFFFF), (0x1F000, 0x1FBFF),
)
_WORDISH = rf"[^\s\x00-\x7f{_char_class(_SYMBOL_RANGES)}]"
# Whole words (starting at a word boundary, so matching stays linear) with a non-ASCII letter.
_NON_ASCII_WORD_RE = re.compile(
    rf"(?<!\w)(?<!{_WORDISH})(?:\w|{_WORDISH})*{_WORDISH}(?:\w|{_WORDISH})*"
)

# --------------------------------------------------------------------------------------------
# Folding

# Spans that must keep their @, dots and digits: e-mail addresses, URLs, platform mentions.
# An address is matched from the start of its run of address characters only: tried from
# every position of "aaaa...a@" the scan would be quadratic (seconds on 40,000 characters).
_PROTECTED_RE = re.compile(
    r"((?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|(?:https?://|www\.)[^\s<>\"]+"
    r"|<[@#!][^<>\s]*>)"
)

_SEP = r"(?:[ \t]+|[ \t]*[./*~+·•_-][ \t]*)"
_SINGLE = r"[a-z0-9@$]"
_ALONE_BEFORE = r"(?<![^\W_])(?<![@$])"
_ALONE_AFTER = r"(?![^\W_]|[@$])"
_SPACED_RE = re.compile(
    rf"{_ALONE_BEFORE}{_SINGLE}(?:{_SEP}{_SINGLE}{_ALONE_AFTER}){{2,}}"
)
_SEP_SPLIT_RE = re.compile(r"([ \t]*[./*~+·•_-][ \t]*|[ \t]+)")
# One-letter words that may stand before a spaced-out word ("a k i k e", "u r a c u n t").
_ONE_LETTER_WORDS = frozenset("aiur")
_WIDE_GAP_RE = re.compile(r"[ \t]{2,}")
_NARROW_GAP_RE = re.compile(r"(?<![ \t])[ \t](?![ \t])")
_LETTER_RE = re.compile(r"[a-z]")
#: Per-token results kept for repeated words in long messages (evasion folds are pure).
_CACHE_SIZE = 4096
# Words holding a digit or symbol that may stand for a letter (matched from a word start only,
# so the scan stays linear); inside them a single leading "!" (not after another "!") and single
# inner "!"s belong to the word, other "!"s are punctuation.
# A word with no letter at all ("12", "2026") is left alone without a call per word.
_LEET_WORD_RE = re.compile(r"(?<![\w@$|!])(?=[\w@$|!]*[a-z])[\w@$|!]*[0-9@$|!][\w@$|!]*")
_TOKEN_RE = re.compile(r"(?:(?<!!)!)?[\w@$|]+(?:![\w@$|]+)*")
# What a leetspeak word must hold to read differently (see `_leet_folder`); never a space.
_LEET_HINT_RE = re.compile(r"[0-9@$|]|!\w")
_PROTECT_HINTS = ("@", "://", "www.", "<#", "<!")
_KEEP_TOKEN_RE = re.compile(
    r"[$]?\d+(?:[.,]\d+)*"
    r"(?:st|nd|rd|th|s|am|pm|k|m|bn|tn|p|x|g|kg|km|mph|ft|cm|mm|ml|gb|mb|tb|hrs?|mins?|yo|yrs?)"
    r"|[a-z_]{1,2}\d+|[a-z_]+\d{2,}"
)
# A plain-text handle ("@racheladler"): "@" and four or more characters; shorter ones ("@ss")
# are leetspeak.
_HANDLE_RE = re.compile(r"@[a-z][a-z0-9_]{3,}")
_LEET_I = str.maketrans({
    "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
    "@": "a", "$": "s", "!": "i", "|": "i",
})
_LEET_L = str.maketrans({
    "0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
    "@": "a", "$": "s", "!": "i", "|": "l",
})

_RUN_RE = re.compile(r"([a-z])\1{2,}")
# Whether any letter runs three times: the back-reference searches about three times faster
# than the 26-way literal alternation it replaced (2.6 against 7.7 microseconds a message on
# the realistic mix, 0.7 against 1.4 ms on the slowest crafted 40,000-character message).
_RUN_HINT_RE = re.compile(r"([a-z])\1\1")


# --------------------------------------------------------------------------------------------
# Masked words

# Characters that stand in for letters ("n*gger", "c**t", "f#ck") or are pushed into a word
# ("bell-end", "fu.ck"). A "." or "-" is only ever dropped, never read as a letter, so initials
# and abbreviations ("F.G.", "a.m.", "e-mail") cannot turn into a word.
_MASKS = frozenset("*#%_.-")
_LETTER_MASKS = frozenset("*#%_-")
_DROP_MASKS = str.maketrans(dict.fromkeys(_MASKS, None))
# A word with masks inside it, or trailing "*#%" ("f***"); matched from a word start only.
_MASKED_RE = re.compile(
    r"(?<![\w*#%.-])[a-z]+(?:[*#%_.-]+[a-z]+)+[*#%]*|(?<![\w*#%.-])[a-z]+[*#%]+"
)
# What every masked word holds (each match of `_MASKED_RE` holds one, and no space).
_MASKED_HINT_RE = re.compile(r"[a-z][*#%]|[a-z][*#%_.-]+[a-z]")

# Swear words and slurs whose masked spellings are common. The rule scorer adds the policy's
# own keywords (see `Lexicon.extended`).
_MASKABLE = (
    "fuck fucks fucking fucked fucker fuckers motherfucker shit shite shitty bullshit cunt cunts "
    "twat twats wanker wankers tosser prick pricks dick dickhead bellend knobhead bastard "
    "bastards bollocks bitch bitches whore whores slut sluts slag slags skank nigger niggers "
    "faggot faggots fag kike kikes yid yids paki pakis wog wogs raghead ragheads tranny trannies "
    "retard retards spastic"
)


class Lexicon:
    """Words a masked spelling may stand for; a masked word is read as one only if it is unique.

    Each of "*", "#", "%", "_" and "-" in a word stands for one letter ("n*gger", "c**t",
    "f-ck") or for none ("fu*ck", "bell-end"); "." for none only. A word that fits no entry,
    or more than one ("s**t": shit or slut?), is left as written.
    """

    __slots__ = ("_by_shape", "_read_cache", "words")

    def __init__(self, words: Iterable[str], /) -> None:
        self.words = frozenset(w for w in (w.casefold() for w in words)
                               if len(w) >= 3 and w.isalpha() and w.isascii())
        by_shape: dict[tuple[str, int], list[str]] = {}
        for word in sorted(self.words):
            by_shape.setdefault((word[0], len(word)), []).append(word)
        self._by_shape = {k: tuple(v) for k, v in by_shape.items()}
        # A long message repeats its masked words: each is read once (bounded).
        self._read_cache: dict[str, str] = {}

    def extended(self, words: Iterable[str], /) -> Lexicon:
        """This lexicon with more words (those that are not plain lowercase letters are skipped)."""
        return Lexicon(self.words | frozenset(words))

    def read(self, token: str, /) -> str:
        """The one word a masked token stands for, or the token as it is."""
        found = set()
        dropped = token.translate(_DROP_MASKS)
        if dropped in self.words:
            found.add(dropped)
        # A hyphen or underscore read as a letter needs a longer word ("f-g" may be anything).
        loose = "-" in token or "_" in token
        if "." not in token and (not loose or (len(token) >= 4
                                                and sum(c.isalpha() for c in token) >= 2)):
            for word in self._by_shape.get((token[0], len(token)), ()):
                if all(t == w or t in _LETTER_MASKS for t, w in zip(token, word, strict=True)):
                    found.add(word)
        return found.pop() if len(found) == 1 else token

    def _read_match(self, m: re.Match[str]) -> str:
        token = m.group()
        cache = self._read_cache
        found = cache.get(token)
        if found is None:
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            found = cache[token] = self.read(token)
        return found

    def unmask(self, pieces: list[str], /, steps: frozenset[int] | None = None) -> list[str]:
        """Read the masked words in the free (even) pieces (`steps`: see `_steps`)."""
        if steps is not None and _MASKED not in steps:
            return pieces
        return [_read_hinted(_MASKED, _MASKED_RE, self._read_match, p) if i % 2 == 0 else p
                for i, p in enumerate(pieces)]


DEFAULT_LEXICON = Lexicon(_MASKABLE.split())


# --------------------------------------------------------------------------------------------
# Which steps a text needs

# Most messages are plain ASCII that no step changes, yet each step's own test (the hints above)
# is a pass of Python's `re` over the whole text. For an ASCII text one Hyperscan pass (Intel's
# multi-pattern engine, in C) tells them all at once; a step it does not report cannot change
# the text. The answer holds for the text as it came in: once a step has changed the text, the
# later steps test for themselves again, and so does spacing in the pieces a mention or link
# splits off (a piece's end may end spaced letters).
_PROTECT, _SPACED, _LEET, _MASKED, _RUN = range(5)
_STEP_PATTERNS = {
    _PROTECT: "|".join(re.escape(hint) for hint in _PROTECT_HINTS),
    # `_SPACED_RE` with its look-arounds spelled as characters (Hyperscan has none); an inner
    # letter is followed by a separator, so only the first and last need saying.
    _SPACED: rf"(?:^|[^a-z0-9@$]){_SINGLE}(?:{_SEP}{_SINGLE}){{2,}}(?:[^a-z0-9@$]|$)",
    _LEET: _LEET_HINT_RE.pattern,
    _MASKED: _MASKED_HINT_RE.pattern,
    _RUN: "|".join(letter * 3 for letter in string.ascii_lowercase),  # no back-references
}
_ALL_STEPS = frozenset(_STEP_PATTERNS)
_STEP_SCAN = Multiscan([(step, pattern, multiscan.SINGLEMATCH)
                        for step, pattern in _STEP_PATTERNS.items()])


def _steps(text: str) -> frozenset[int]:
    """The steps that may change `text` (casefolded); all of them for a non-ASCII text."""
    if not text.isascii():
        return _ALL_STEPS
    return frozenset(_STEP_SCAN.ids(text))


# A leetspeak or masked word lies between spaces and holds its step's hint; the rest of the
# text cannot change. In a long post Python's `re` spends most of its time trying the word
# patterns at every position, so for an ASCII text Hyperscan finds the hints (every match,
# not the first) and only the space-delimited chunks around them are read. Past a few dozen
# hints reading the whole text costs less than collecting them; below a few dozen characters
# (an email address split out of a long list of them) so does `re`.
_HINTS = {_LEET: _LEET_HINT_RE, _MASKED: _MASKED_HINT_RE}
_HINT_SCANS = {step: Multiscan([(step, hint.pattern, 0)]) for step, hint in _HINTS.items()}
_HINTS_AT_MOST = 32
_HINTS_SCANNED_FROM = 64  # characters


def _note_hint(_step: int, _start: int, end: int, _flags: int, ends: list[int]) -> bool:
    ends.append(end)
    return len(ends) > _HINTS_AT_MOST  # true stops the scan


def _read_hinted(step: int, words: re.Pattern[str], read: Callable[[re.Match[str]], str],
                 text: str) -> str:
    """``words.sub(read, text)``, given that every match of `words` holds the step's hint and
    no space, and that its look-behind is never a space."""
    if len(text) < _HINTS_SCANNED_FROM or not text.isascii():
        return words.sub(read, text) if _HINTS[step].search(text) else text
    ends: list[int] = []
    try:
        _HINT_SCANS[step].scan(text, _note_hint, ends)
    except ScanStopped:
        return words.sub(read, text)
    out: list[str] = []
    at = 0
    for end in ends:  # in order
        if end <= at:
            continue  # in the chunk just read
        # The chunk's bounds are spaces (or the text's ends), which no match includes.
        start = text.rfind(" ", at, end - 1) + 1 or at
        stop = text.find(" ", end)
        stop = len(text) if stop == -1 else stop
        out += (text[at:start], words.sub(read, text[start:stop]))
        at = stop
    if not out:
        return text
    out.append(text[at:])
    return "".join(out)


def strip_invisible(text: str, /) -> str:
    """Remove zero-width, format and other invisible characters; reverse right-to-left overrides."""
    if text.isascii():
        return text
    if "\u202e" in text:
        # An override displays the following Latin text reversed: "\u202emucs" reads "scum".
        text = _RLO_SPAN_RE.sub(lambda m: m.group(1)[::-1], text)
    return _INVISIBLE_RE.sub("", text).replace(_BRAILLE_BLANK, " ")


def clean(text: str, /) -> str:
    """Strip invisibles, apply NFKC and drop disguising combining marks; case and digits kept.

    This is the form for detectors that need the text as written (phone numbers, e-mail
    addresses, postcodes), free of invisible padding and fancy-font letters.
    """
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", strip_invisible(text))
    return _COMBINING_RE.sub("", text)


def _by_shape_or_sound(m: re.Match[str]) -> str:
    return _transliterate(m.group())


@lru_cache(maxsize=_CACHE_SIZE)  # a long message repeats its words: each is read once
def _transliterate(word: str) -> str:
    if _FOREIGN_LETTERS.isdisjoint(word):
        return anyascii(word.translate(_BY_SHAPE))
    return anyascii(word.translate(_ALWAYS_BY_SHAPE_TABLE))


def _ascii_fold(text: str) -> str:
    """Look-alikes to Latin, then everything else transliterated; symbols kept."""
    # Translating costs about a microsecond a character, and `re` matches a class of astral
    # characters slowly: a set test first.
    if not _SYMBOL_CHARS.isdisjoint(text):
        text = text.translate(_SYMBOLS)
    text = _EMOJI_RE.sub(lambda m: f" {_EMOJI_WORDS[m.group()[0]]} ", text)
    return _NON_ASCII_WORD_RE.sub(_by_shape_or_sound, text)


def _sep_key(sep: str) -> tuple[str, bool, bool]:
    """What kind of separator this is: its mark and whether spaces stand before or after it."""
    mark = sep.strip(" \t")
    return (mark, sep[:1] in " \t", sep[-1:] in " \t")


#: At least two letters, anywhere (a group of single characters worth joining).
_TWO_LETTERS_RE = re.compile(r"[^\W\d_].*?[^\W\d_]", re.DOTALL)


@lru_cache(maxsize=_CACHE_SIZE)
def _join_piece(piece: str, min_singles: int, split_words: bool) -> tuple[str, bool]:
    """Join runs of single characters that share one kind of separator; keep the rest as written.

    Returns the text and whether a joined run began with a one-letter word ("a", "i", "u", "r")
    that `split_words` would have kept apart.
    """
    tokens = _SEP_SPLIT_RE.split(piece)
    singles, seps = tokens[0::2], tokens[1::2]
    if len(singles) < 2:
        return piece, False
    kinds = {sep: _sep_key(sep) for sep in set(seps)}  # few distinct separators
    keys = [kinds[sep] for sep in seps]
    out: list[str] = []
    splittable = False
    start = 0  # index of the first sep of the current group of identical separators
    for _, run in groupby(keys):
        end = start + sum(1 for _ in run) - 1
        group = singles[start:end + 2]
        if len(group) >= min_singles and _TWO_LETTERS_RE.search("".join(group)):
            if not out:
                out.append(group[0])
            lead = 1
            while (group[lead - 1] in _ONE_LETTER_WORDS and start == 0
                   and len(group) - lead >= 3):
                splittable = True
                if not split_words:
                    break
                out.append(" ")
                out.append(group[lead])
                lead += 1
            out.extend(group[lead:])
        else:
            if not out:
                out.append(group[0])
            for sep, single in zip(seps[start:end + 1], group[1:], strict=True):
                out.append(sep)
                out.append(single)
        start = end + 1
    return "".join(out), splittable


def _spaced_joiner(split_words: bool) -> tuple[Callable[[re.Match[str]], str], list[bool]]:
    seen: list[bool] = []

    def join(m: re.Match[str]) -> str:
        run = m.group()
        # Where single spaces separate letters, a wider gap separates words.
        wide = bool(_NARROW_GAP_RE.search(run)) and bool(_WIDE_GAP_RE.search(run))
        pieces = _WIDE_GAP_RE.split(run) if wide else [run]
        out = []
        for piece in pieces:
            joined, splittable = _join_piece(piece, 2 if wide else 3, split_words)
            if splittable:
                seen.append(True)
            out.append(joined)
        return " ".join(out)

    return join, seen


def _leet_folder(table: dict[int, str]) -> Callable[[re.Match[str]], str]:
    def fold_token(token: str) -> str:
        if (not _LETTER_RE.search(token) or _KEEP_TOKEN_RE.fullmatch(token)
                or _HANDLE_RE.fullmatch(token)):
            return token
        return token.translate(table)

    @lru_cache(maxsize=_CACHE_SIZE)  # a long message repeats its words: each is folded once
    def fold_text(word: str) -> str:
        if "!" in word:
            return _TOKEN_RE.sub(lambda m: fold_token(m.group()), word)
        return fold_token(word)

    def fold_word(m: re.Match[str]) -> str:
        return fold_text(m.group())

    return fold_word


_FOLD_I = _leet_folder(_LEET_I)
_FOLD_L = _leet_folder(_LEET_L)


def _prepare(text: str, *, split_words: bool = False
             ) -> tuple[list[str], bool, frozenset[int]]:
    """Clean, fold to ASCII lowercase, join spaced letters; alternate free and protected pieces.

    Also says whether a joined run began with a one-letter word that `split_words` keeps apart,
    and which later steps may change the pieces (see `_steps`).
    """
    if not text.isascii():
        text = _ascii_fold(clean(text))
    text = text.casefold()
    steps = _steps(text)
    if _PROTECT in steps and any(hint in text for hint in _PROTECT_HINTS):
        pieces = _PROTECTED_RE.split(text)
        if len(pieces) > 1:
            # A piece ends where a mention or link begins: spaced letters may end there too.
            steps |= {_SPACED}
    else:
        pieces = [text]
    join, seen = _spaced_joiner(split_words)
    if _SPACED in steps:
        for i in range(0, len(pieces), 2):
            joined = _SPACED_RE.sub(join, pieces[i])
            if joined != pieces[i]:
                pieces[i] = joined
                steps = _ALL_STEPS  # joined letters may form new runs: test again
    return pieces, bool(seen), steps


def _leet(pieces: list[str], fold: Callable[[re.Match[str]], str]) -> list[str]:
    return [_read_hinted(_LEET, _LEET_WORD_RE, fold, p) if i % 2 == 0 else p
            for i, p in enumerate(pieces)]


def _read_words(pieces: list[str], steps: frozenset[int], fold: Callable[[re.Match[str]], str],
                lexicon: Lexicon) -> tuple[list[str], frozenset[int]]:
    """Leetspeak and masked words read in the free pieces, and the steps left to test."""
    out = _leet(pieces, fold) if _LEET in steps else pieces
    if out != pieces:
        steps = _ALL_STEPS  # "c000l" holds a run only once read
    unmasked = lexicon.unmask(out, steps)
    return unmasked, (steps if unmasked == out else _ALL_STEPS)


def _collapse(pieces: list[str], runs_to: str, steps: frozenset[int] = _ALL_STEPS
              ) -> tuple[str, int]:
    """Collapse letter runs in the free pieces and tidy whitespace; also count the runs."""
    out = pieces.copy()
    runs = 0
    if _RUN in steps:
        for i in range(0, len(out), 2):
            if _RUN_HINT_RE.search(out[i]):
                out[i], n = _RUN_RE.subn(runs_to, out[i])
                runs += n
    text = "".join(out)
    if "\n" not in text:
        return " ".join(text.split()), runs
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line), runs


def normalize(text: str, /, *, lexicon: Lexicon | None = None) -> str:
    """The canonical form of a message for keyword and regex rules (see the module docstring)."""
    pieces, _, steps = _prepare(text)
    folded, steps = _read_words(pieces, steps, _FOLD_I, lexicon or DEFAULT_LEXICON)
    return _collapse(folded, r"\1", steps)[0]


def fold_variants(text: str, /, *, lexicon: Lexicon | None = None) -> tuple[str, ...]:
    """The distinct forms worth matching, `normalize(text)` first; a rule hits if any matches."""
    lexicon = lexicon or DEFAULT_LEXICON
    pieces, splittable, steps = _prepare(text)
    folded, after = _read_words(pieces, steps, _FOLD_I, lexicon)
    primary, runs = _collapse(folded, r"\1", after)
    forms = [primary]
    if runs:
        forms.append(_collapse(folded, r"\1\1", after)[0])
    # "1" and "|" are leetspeak: where there is none, the step said so.
    if _LEET in steps and any("1" in p or "|" in p for p in pieces[::2]):
        forms.append(_collapse(*_read_words(pieces, steps, _FOLD_L, lexicon)[:1], r"\1")[0])
    if splittable:
        split, _, split_steps = _prepare(text, split_words=True)
        forms.append(_collapse(*_read_words(split, split_steps, _FOLD_I, lexicon)[:1],
                               r"\1")[0])
    return tuple(dict.fromkeys(forms))
