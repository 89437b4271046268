"""The forum corpus and the data splits: parsing, refusals, and what the corpus must cover."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.corpus import (
    CATEGORIES,
    FORMS,
    FORUM_DIR,
    FORUM_SPLITS,
    PHENOMENA,
    forum_split,
    read_forum,
    read_forum_dir,
    row_split,
)
from bot.errors import InputError

GOOD = {"text": "Leaflets are in the office.", "severity": 0, "category": "none",
        "phenomenon": "ordinary", "form": "plain"}


def write(tmp_path: Path, *objs: object, name: str = "w9.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(o if isinstance(o, str) else json.dumps(o) for o in objs) + "\n",
                    encoding="utf-8")
    return path


def test_reads_a_line_with_writer_and_line_number(tmp_path: Path) -> None:
    [line] = read_forum(write(tmp_path, GOOD))
    assert (line.writer, line.line, line.id) == ("w9", 1, "w9:1")
    assert (line.text, line.severity, line.phenomenon) == (GOOD["text"], 0, "ordinary")


@pytest.mark.parametrize(("change", "message"), [
    ({"severity": 3}, "severity must be 0, 1 or 2"),
    ({"severity": True}, "severity must be"),
    ({"category": "rude"}, "unknown category"),
    ({"category": "insult"}, "exactly when severity is 0"),
    ({"phenomenon": "spam"}, "unknown phenomenon"),
    ({"phenomenon": "slur"}, "phenomenon slur has severity 2"),
    ({"form": "short"}, "form must be one of"),
    ({"text": "  "}, "text must be a non-empty string"),
    ({"extra": 1}, "unknown extra"),
])
def test_bad_lines_are_refused_with_file_and_line(tmp_path: Path, change: dict[str, object],
                                                  message: str) -> None:
    path = write(tmp_path, GOOD, GOOD | change)
    with pytest.raises(InputError) as err:
        read_forum(path)
    assert f"{path}:2: " in str(err.value) and message in str(err.value)


def test_every_bad_line_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "not json", GOOD, {"text": "x"}, "[1]")
    with pytest.raises(InputError) as err:
        read_forum(path)
    text = str(err.value)
    assert "3 bad line(s)" in text and ":1: not JSON" in text and ":4: not a JSON object" in text
    assert "missing category, form, phenomenon, severity" in text


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no forum corpus files"):
        read_forum_dir(tmp_path)


_valid = st.sampled_from(sorted(PHENOMENA)).flatmap(lambda p: st.fixed_dictionaries({
    "text": st.text(min_size=1, max_size=80).filter(str.strip),
    "severity": st.just(PHENOMENA[p]),
    "category": st.sampled_from(CATEGORIES[1:] if PHENOMENA[p] else ("none",)),
    "phenomenon": st.just(p),
    "form": st.sampled_from(FORMS),
}))
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                     lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=10), kids, max_size=5), max_leaves=10)


@settings(max_examples=60, deadline=None)
@given(objs=st.lists(_valid, min_size=1, max_size=5))
def test_valid_lines_round_trip(tmp_path_factory: pytest.TempPathFactory,
                                objs: list[dict[str, object]]) -> None:
    path = write(tmp_path_factory.mktemp("c"), *objs)
    lines = read_forum(path)
    assert [(x.text, x.severity, x.category, x.phenomenon, x.form) for x in lines] == [
        (o["text"], o["severity"], o["category"], o["phenomenon"], o["form"]) for o in objs]


@settings(max_examples=80, deadline=None)
@given(raw=st.one_of(_json.map(json.dumps), st.text(max_size=60)))
def test_any_line_parses_or_is_refused_clearly(tmp_path_factory: pytest.TempPathFactory,
                                               raw: str) -> None:
    path = tmp_path_factory.mktemp("c") / "w9.jsonl"
    path.write_text(raw.replace("\n", " ").replace("\r", " ") + "\n", encoding="utf-8")
    try:
        lines = read_forum(path)
    except InputError as exc:
        assert f"{path}:1: " in str(exc)
    else:
        assert len(lines) <= 1


def test_row_split_is_deterministic_and_70_10_20() -> None:
    ids = [str(i) for i in range(20000)]
    splits = [row_split("edos", i) for i in ids]
    assert splits == [row_split("edos", i) for i in ids]
    share = {k: v / len(ids) for k, v in Counter(splits).items()}
    assert share["train"] == pytest.approx(0.7, abs=0.02)
    assert share["val"] == pytest.approx(0.1, abs=0.02)
    assert share["test"] == pytest.approx(0.2, abs=0.02)
    # The source is part of the key.
    assert splits != [row_split("isca", i) for i in ids]


def test_forum_writers_split_by_writer() -> None:
    assert forum_split("w5") == "val" and forum_split("w6") == "test"
    assert forum_split("w1") == "train"
    assert sorted(FORUM_SPLITS.values()) == ["test", "val"]


def test_the_shipped_corpus_covers_every_phenomenon_in_every_split() -> None:
    lines = read_forum_dir(FORUM_DIR)
    assert len(lines) >= 3000
    writers = {line.writer for line in lines}
    assert len(writers) >= 5 and set(FORUM_SPLITS) <= writers
    for split in ("train", "val", "test"):
        part = read_forum_dir(FORUM_DIR, splits=(split,))
        counts = Counter(line.phenomenon for line in part)
        assert set(counts) == set(PHENOMENA), split
        assert min(counts.values()) >= 20, (split, counts.most_common()[-3:])
        forms = Counter(line.form for line in part)
        assert forms["evasive"] >= 0.05 * len(part) and forms["long"] >= 0.05 * len(part)
    texts = [line.text for line in lines]
    assert len(set(texts)) > 0.99 * len(texts)


def test_line_numbers_count_newlines_only(tmp_path: Path) -> None:
    # U+2028 and U+001E are line breaks to str.splitlines() but not to JSON lines.
    odd = json.dumps(GOOD | {"text": "one\u2028two\u001ethree"}, ensure_ascii=False)
    path = write(tmp_path, odd, GOOD | {"severity": 9})
    with pytest.raises(InputError, match=r"w9.jsonl:2: severity must be"):
        read_forum(path)
    path = write(tmp_path, odd, name="w8.jsonl")
    assert read_forum(path)[0].text == "one\u2028two\u001ethree"
