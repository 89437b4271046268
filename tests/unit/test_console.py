"""JSON-lines input: every kind of bad line is reported with its line number."""

from __future__ import annotations

import json

import pytest

from adapters.console import LineError, parse_line, read_messages
from bot.errors import InputError
from bot.models import Platform

GOOD = {"id": "m1", "channel": "general", "author": "ann", "text": "hello",
        "ts": "2026-11-20T10:00:00Z"}


def line(**changes: object) -> str:
    data = {**GOOD, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not None})


def test_good_line() -> None:
    message, warnings = parse_line(line(platform="slack", revision=2, reply_to="m0"), line=1)
    assert message.platform is Platform.SLACK and message.revision == 2
    assert message.reply_to == "m0" and message.sent_at.tzinfo is not None
    assert message.channel_name == "general" and warnings == []


def test_defaults_to_console_platform_and_revision_zero() -> None:
    message, _ = parse_line(line(), line=1)
    assert message.platform is Platform.CONSOLE and message.revision == 0


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("{not json", "f.jsonl:7: not valid JSON"),
        ("[1, 2]", "f.jsonl:7: expected a JSON object, got list"),
        (line(text=None), "f.jsonl:7: missing field(s): text"),
        (line(author=None, ts=None), "f.jsonl:7: missing field(s): author, ts"),
        (line(text=5), "f.jsonl:7: field 'text' must be a string"),
        (line(platform="teams"), "f.jsonl:7: unknown platform 'teams'"),
        (line(revision=-1), "f.jsonl:7: field 'revision' must be a non-negative integer"),
        (line(ts="yesterday"), "f.jsonl:7: field 'ts' is not an ISO 8601 time"),
        (line(id=" "), "f.jsonl:7: field 'id' is empty"),
    ],
)
def test_bad_lines_name_file_and_line(raw: str, error: str) -> None:
    with pytest.raises(InputError) as info:
        parse_line(raw, line=7, source="f.jsonl")
    assert str(info.value).startswith(error)
    assert info.value.line == 7


def test_control_characters_are_removed_with_a_warning() -> None:
    message, warnings = parse_line(line(text="he\x00ll\x07o\nthere"), line=3, source="f")
    assert message.text == "hello\nthere"
    assert warnings == ["f:3: removed 2 control character(s) from the text"]


def test_read_messages_keeps_going_after_bad_lines() -> None:
    lines = [line(id="a"), "garbage", "", line(id="b")]
    items = list(read_messages(lines, source="f"))
    assert [n for n, _, _ in items] == [1, 2, 4]
    assert isinstance(items[1][1], LineError) and items[1][1].line == 2
    assert [getattr(i, "id", None) for _, i, _ in items] == ["a", None, "b"]
