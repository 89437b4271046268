"""The register reader: odd input is a located error, never a crash; names shown to moderators
carry no invisible or control characters (issue 11, part of point 10)."""

from __future__ import annotations

import csv
import io
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import InputError
from bot.register import COLUMNS, Register, clean_name, parse_register

HEADER = ",".join(COLUMNS)


def row(**cells: str) -> str:
    out = io.StringIO()
    base = {"membership_number": "M0001", "name": "Ann Smith", "status": "active", **cells}
    csv.writer(out, lineterminator="").writerow([base.get(c, "") for c in COLUMNS])
    return out.getvalue()


def read(*lines: str) -> Register:
    return parse_register("\n".join((HEADER, *lines)) + "\n", source="r.csv")


@pytest.mark.parametrize(("cells", "expected"), [
    ({"status": "suspended", "suspended_from": "2026-01-01",
      "suspended_until": "9999-12-31T23:59:59-14:00"},
     "column suspended_until: '9999-12-31T23:59:59-14:00' is out of range (years 1970 to 9000)"),
    ({"status": "suspended", "suspended_from": "0001-01-01T00:00:00+14:00"},
     "column suspended_from: '0001-01-01T00:00:00+14:00' is out of range"),
    ({"status": "suspended", "suspended_until": "99999-01-01"}, "is not an ISO date"),
    ({"console_id": "karen\u200b"}, "column console_id: contains invisible character(s) "
     "U+200B ZERO WIDTH SPACE; an id must be typed exactly"),
    ({"name": "\u200b\u2060"}, "column name: holds only invisible characters U+200B ZERO "
     "WIDTH SPACE, U+2060 WORD JOINER"),
    ({"name": "Karen\x1b[2J Lomax"}, "column name: contains control character U+001B"),
    ({"name": "Karen\x9b Lomax"}, "column name: contains control character U+009B"),
    ({"name": "Karen \u202eLomax"}, "column name: contains control character U+202E"),
])
def test_odd_cells_are_refused_on_their_line(cells: dict[str, str], expected: str) -> None:
    register = read(row(**cells))
    assert not register.rows
    assert [(e.line, expected in e.message) for e in register.errors] == [(2, True)], \
        register.errors


def test_invisible_characters_are_removed_from_names_with_a_warning() -> None:
    # Zero-width characters let 'Karen\u200bLomax' look exactly like the moderator Karen
    # Lomax while being another string: the stored name is what everyone sees.
    register = read(row(name="Karen\u200b Lo\u00admax\ufeff", reason="spam\u2060 twice"))
    assert [r.name for r in register.rows] == ["Karen Lomax"]
    assert register.rows[0].reason == "spam twice"
    assert [str(w) for w in register.warnings] == [
        "line 2: column name: removed invisible character(s) U+200B ZERO WIDTH SPACE, U+00AD "
        "SOFT HYPHEN, U+FEFF ZERO WIDTH NO-BREAK SPACE; it reads 'Karen Lomax'",
        "line 2: column reason: removed invisible character(s) U+2060 WORD JOINER; it reads "
        "'spam twice'",
    ]
    assert not register.errors


@pytest.mark.parametrize("name", [
    "محمد\u200cرضا",  # Persian: the non-joiner is part of the spelling
    "क्\u200dष",  # Devanagari: the joiner shapes the conjunct
    "Sam \U0001f469\u200d\U0001f4bb",  # an emoji sequence
    "Flag \U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
])
def test_joiners_that_shape_a_script_are_kept(name: str) -> None:
    register = read(row(name=name))
    assert [r.name for r in register.rows] == [name] and not register.warnings


def test_a_joiner_between_latin_letters_is_removed() -> None:
    assert clean_name("Kar\u200den\u200c") == ("Karen", ["\u200d", "\u200c"])


# -- properties ---------------------------------------------------------------------------------

CELLS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["M0001", "m0002", "active", "suspended", "expelled", "lapsed", "moderator",
                     "2026-11-20", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                     "99999-01-01", "100000000000000001", "U01234567", "karen", "",
                     "Karen\u200bLomax", "\x1b[2J", "\u202e", "\x85", '"', "a,b"]),
)


def shown(text: str) -> bool:
    """No character that hides, reorders or drives a terminal, bar joiners in a script."""
    return all(unicodedata.category(ch) not in ("Cc", "Cs")
               and (unicodedata.category(ch) != "Cf" or ch in "\u200c\u200d"
                    or 0xE0020 <= ord(ch) < 0xE0080) for ch in text)


def check(register: Register, text: str) -> None:
    last = text.count("\n") + text.count("\r") + 1
    for problem in (*register.errors, *register.warnings):
        assert 2 <= problem.line <= last and "\n" not in problem.message
    for r in register.rows:
        assert r.name and shown(r.name) and shown(r.reason or "")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(CELLS, max_size=len(COLUMNS) + 1), max_size=6))
def test_any_cells_give_rows_and_located_errors(rows: list[list[str]]) -> None:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    text = HEADER + "\n" + out.getvalue()
    check(parse_register(text, source="r.csv"), text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_register_or_a_located_input_error(text: str) -> None:
    try:
        register = parse_register(HEADER + "\n" + text, source="r.csv")
    except InputError as exc:
        assert exc.source == "r.csv" and exc.line is not None
        return
    check(register, HEADER + "\n" + text)
