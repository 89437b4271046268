"""The replay reader: a bad line is reported with its number and skipped, never takes the other
lines down, and what it accepts can be stored (issue 11, part of point 10)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.console import MAX_REVISION, LineError, parse_line, read_messages
from bot.errors import InputError
from bot.models import Message

GOOD = {"id": "m1", "channel": "general", "author": "ann", "text": "hello",
        "ts": "2026-11-20T10:00:00Z"}


def line(**changes: object) -> str:
    return json.dumps({**GOOD, **changes})


@pytest.mark.parametrize(("raw", "error"), [
    (line(author_name=5), "f:4: field 'author_name' must be a string"),
    (line(author_name=["Ann"]), "f:4: field 'author_name' must be a string"),
    (line(revision=2**63), "f:4: field 'revision' must be a non-negative integer of at most "
     "9223372036854775807 (2^63 - 1)"),
    (line(revision=-1), "f:4: field 'revision' must be a non-negative integer"),
    (line(revision=1.5), "f:4: field 'revision' must be a non-negative integer"),
    (line(ts="99999-01-01T00:00:00"), "f:4: field 'ts' is not an ISO 8601 time"),
    (line(ts="9999-12-31T23:59:59-14:00"), "f:4: field 'ts' is out of range: "
     "'9999-12-31T23:59:59-14:00' (a message's time must fall between 1970 and 9000)"),
    (line(ts="0001-01-01T00:00:00+14:00"), "f:4: field 'ts' is out of range"),
    (line(ts=1e300), "f:4: field 'ts' must be a string"),
    ('{"id": "m1", "channel": "general", "author": "ann", "ts": "2026-11-20T10:00:00Z", '
     '"text": "a\\ud800b"}', "f:4: field 'text' is not valid Unicode: a lone surrogate (U+D800) "
     "at character 2"),
    (line(author_name="\udfff"), "f:4: field 'author_name' is not valid Unicode"),
    (line(reply_to="\ud800"), "f:4: field 'reply_to' is not valid Unicode"),
    ("[" * 100_000 + "]" * 100_000, "f:4: not valid JSON (nested too deeply to read)"),
    ('{"a": ' + "9" * 5000 + "}", "f:4: not valid JSON (a number too long to read)"),
    (line(platform=["discord"]), "f:4: unknown platform ['discord']"),
    (line(platform="x" * 100), "f:4: unknown platform 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..."),
    (line(channel="gen\x1b[2Jeral"), "f:4: field 'channel' contains control character U+001B "
     "at character 4"),
    (line(author="ann\u202e"), "f:4: field 'author' contains control character U+202E"),
])
def test_a_bad_line_says_where_and_why(raw: str, error: str) -> None:
    with pytest.raises(InputError) as info:
        parse_line(raw, line=4, source="f")
    assert str(info.value).startswith(error), str(info.value)
    assert "\n" not in str(info.value)


def test_display_names_lose_controls_and_invisible_characters_with_a_warning() -> None:
    message, warnings = parse_line(line(author_name="Karen\u200b Lomax\x1b[31m\u202e"), line=2,
                                   source="f")
    assert message.author_name == "Karen Lomax"  # the whole escape sequence goes
    assert warnings == ["f:2: removed 7 control or invisible character(s) from the author's "
                        "name"]


def test_c1_controls_are_removed_from_the_text() -> None:
    message, warnings = parse_line(line(text="clear\x9b2J screen\x85"), line=2, source="f")
    assert message.text == "clear2J screen"
    assert warnings == ["f:2: removed 2 control character(s) from the text"]


def test_bytes_that_are_not_utf8_are_replaced_with_a_warning() -> None:
    # bot.py replay reads with errors="surrogateescape": a stray byte arrives as U+DCxx.
    raw = line(text="caf\udce9 open").replace("\\udce9", "\udce9")
    message, warnings = parse_line(raw, line=9, source="f")
    assert message.text == "caf\ufffd open"
    assert warnings == ["f:9: replaced 1 byte(s) that are not UTF-8"]


def test_times_are_utc() -> None:
    message, _ = parse_line(line(ts="2026-11-20T10:00:00+01:00"), line=1)
    assert message.sent_at == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert message.sent_at.utcoffset() is not None and message.sent_at.tzinfo is UTC


def test_one_bad_line_never_takes_the_others_down() -> None:
    lines = [line(id="a"), line(id="b", revision=2**64), "[" * 50_000, line(id="c", text="\ud800"),
             line(id="d")]
    items = list(read_messages(lines, source="f"))
    assert [(n, getattr(i, "id", None)) for n, i, _ in items] == [
        (1, "a"), (2, None), (3, None), (4, None), (5, "d")]
    assert [i.line for _, i, _ in items if isinstance(i, LineError)] == [2, 3, 4]


# -- properties ---------------------------------------------------------------------------------

JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
              st.floats(), st.text(max_size=12),
              st.sampled_from(["2026-11-20T10:00:00Z", "9999-12-31T23:59:59-14:00",
                               "0001-01-01T00:00:00+14:00", "99999-01-01", "discord", "slack",
                               "\ud800", "\x1b[2J", "\u200b", "\x9b", " "])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6)
FIELDS = st.sampled_from(["id", "channel", "author", "author_name", "text", "ts", "platform",
                          "revision", "reply_to"])


@st.composite
def lines(draw: st.DrawFn) -> str:
    data: dict[str, Any] = dict(GOOD)
    for key, value in draw(st.dictionaries(FIELDS, JSON, max_size=4)).items():
        data[key] = value
    for key in draw(st.lists(FIELDS, max_size=2)):
        data.pop(key, None)
    raw = json.dumps(data, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        cut = draw(st.integers(min_value=0, max_value=len(raw)))
        raw = raw[:cut] + draw(st.text(max_size=4)) + raw[cut:]
    return raw


def storable(message: Message) -> None:
    """What the store and the console need of an accepted line."""
    for text in (message.id, message.channel, message.author, message.author_name or "",
                 message.text, message.reply_to or ""):
        text.encode("utf-8")  # no lone surrogate
    assert message.author_name and not any(ch < " " or "\x7f" <= ch <= "\x9f"
                                           for ch in message.author_name)
    assert 0 <= message.revision <= MAX_REVISION
    assert message.sent_at.tzinfo is UTC and 1970 <= message.sent_at.year < 9000


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(lines(), st.text(max_size=30)), min_size=1, max_size=5))
def test_every_line_is_a_storable_message_or_a_located_error(raw: list[str]) -> None:
    items = list(read_messages(raw, source="f"))
    assert [n for n, _, _ in items] == [n for n, text in enumerate(raw, start=1)
                                        if text.strip()]
    for number, item, warnings in items:
        if isinstance(item, LineError):
            assert item.line == number and item.message.startswith(f"f:{number}: ")
        else:
            storable(item)
        assert all(w.startswith(f"f:{number}: ") for w in warnings)
