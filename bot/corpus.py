"""Labelled text for training and evaluation: the shared conduct data and the forum corpus.

Two kinds of labelled text feed the model and `bot.py eval`:

- the shared conduct data (``../shared/data/dev/conduct_dev.csv``, never copied into this
  repository), split per row into train, validation and test by a hash of its source and id;
- the project's own forum corpus (``corpus/forum/<writer>.jsonl``), written by several
  independent writers, split per *writer*: one writer's text is the validation part and
  another's the test part, so figures measure the phenomena and not one writer's voice.

Thresholds are chosen on validation; figures are reported on test; training sees neither.
"""

from __future__ import annotations

__all__ = [
    "CATEGORIES",
    "FORUM_DIR",
    "FORUM_SPLITS",
    "PHENOMENA",
    "SPLITS",
    "ForumLine",
    "forum_split",
    "read_forum",
    "read_forum_dir",
    "row_split",
]

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bot.errors import InputError

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")

#: Where the forum corpus lives in the repository.
FORUM_DIR = Path(__file__).resolve().parent.parent / "corpus" / "forum"
#: Writers held out of training: validation (thresholds) and test (reported figures).
FORUM_SPLITS: dict[str, Split] = {"w5": "val", "w6": "test"}

CATEGORIES = ("none", "toxicity", "severe_toxicity", "obscene", "threat", "insult",
              "identity_attack", "sexual_explicit")
#: Every phenomenon tag with the severity its lines carry.
PHENOMENA: dict[str, int] = {
    "threat_direct": 2, "threat_veiled": 2, "wish_harm": 2, "self_harm_incitement": 2,
    "dehumanising": 2, "slur": 2, "antisemitic_trope": 2, "holocaust_denial": 2,
    "sexist_abuse": 2, "sexual_harassment": 2,
    "british_insult": 1, "belittling": 1, "f_off": 1, "pile_on": 1,
    "quote_report": 0, "explain_trope": 0, "discuss_topic": 0, "research_abuse": 0,
    "criticise_record": 0, "israel_criticism": 0, "jewish_identity": 0, "violent_idiom": 0,
    "swearing_untargeted": 0, "heated_debate": 0, "ordinary": 0,
}
FORMS = ("plain", "evasive", "long")
_KEYS = frozenset({"text", "severity", "category", "phenomenon", "form"})


def row_split(source: str, id: str, /) -> Split:
    """The split of one row of the shared data: 70% train, 10% validation, 20% test.

    Deterministic: sha1 of ``"{source}:{id}"`` modulo 10; 0 and 5 are test (the same rows as
    the earlier 20% held-out split), 1 is validation, the rest train.
    """
    bucket = int(hashlib.sha1(f"{source}:{id}".encode()).hexdigest(), 16) % 10
    if bucket in (0, 5):
        return "test"
    return "val" if bucket == 1 else "train"


def forum_split(writer: str, /) -> Split:
    """The split of one writer's forum lines."""
    return FORUM_SPLITS.get(writer, "train")


@dataclass(frozen=True, slots=True)
class ForumLine:
    """One labelled forum post."""

    writer: str
    line: int
    text: str
    severity: int
    category: str
    phenomenon: str
    form: str

    @property
    def id(self) -> str:
        """A stable id: writer and line number."""
        return f"{self.writer}:{self.line}"


def _parse(writer: str, number: int, raw: str) -> ForumLine:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if set(obj) != _KEYS:
        missing, extra = sorted(_KEYS - set(obj)), sorted(set(obj) - _KEYS)
        raise ValueError(f"keys must be {', '.join(sorted(_KEYS))}"
                         + (f"; missing {', '.join(missing)}" if missing else "")
                         + (f"; unknown {', '.join(extra)}" if extra else ""))
    text, severity, category = obj["text"], obj["severity"], obj["category"]
    phenomenon, form = obj["phenomenon"], obj["form"]
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string")
    if isinstance(severity, bool) or severity not in (0, 1, 2):
        raise ValueError(f"severity must be 0, 1 or 2, not {severity!r}")
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}")
    if (severity == 0) != (category == "none"):
        raise ValueError("category is 'none' exactly when severity is 0")
    if phenomenon not in PHENOMENA:
        raise ValueError(f"unknown phenomenon {phenomenon!r}")
    if PHENOMENA[phenomenon] != severity:
        raise ValueError(f"phenomenon {phenomenon} has severity {PHENOMENA[phenomenon]}, "
                         f"not {severity}")
    if form not in FORMS:
        raise ValueError(f"form must be one of {', '.join(FORMS)}, not {form!r}")
    return ForumLine(writer, number, text, severity, category, phenomenon, form)


def read_forum(path: Path, /) -> list[ForumLine]:
    """Read one writer's JSON-lines file; any bad line is an InputError naming file and line."""
    writer = path.stem
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read forum corpus file {path}: {exc}") from None
    lines: list[ForumLine] = []
    problems: list[str] = []
    # JSON lines end at "\n" only: str.splitlines() would also break at characters such as
    # U+001E or U+2028 inside a text and misnumber every later line.
    for number, raw in enumerate(content.split("\n"), start=1):
        raw = raw.removesuffix("\r")
        if not raw.strip():
            continue
        try:
            lines.append(_parse(writer, number, raw))
        except ValueError as exc:
            problems.append(f"{path}:{number}: {exc}")
    if problems:
        shown = "\n".join(problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise InputError(f"{len(problems)} bad line(s) in the forum corpus:\n{shown}{more}")
    return lines


def read_forum_dir(folder: Path = FORUM_DIR, /, *,
                   splits: tuple[Split, ...] = SPLITS) -> list[ForumLine]:
    """Every writer's lines in `folder` whose writer belongs to one of `splits`."""
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise InputError(f"no forum corpus files (*.jsonl) in {folder}")
    return [line for f in files if forum_split(f.stem) in splits for line in read_forum(f)]
