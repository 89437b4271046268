"""`bot.py eval`: how well the scorer and policy together match human labels, per source."""

from __future__ import annotations

__all__ = [
    "BinaryCounts",
    "ForumResult",
    "SourceResult",
    "evaluate_forum",
    "evaluate_rows",
    "read_rows",
    "run_eval",
]

import csv
import hashlib
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.corpus import PHENOMENA, SPLITS, ForumLine, read_forum_dir, row_split
from bot.decide import decide
from bot.errors import InputError
from bot.models import ScoreSet, Standing, Verdict, VerdictAction
from bot.policy import Policy, load_policy
from bot.scoring.base import Scorer
from bot.scoring.rules import RuleScorer

COLUMNS = ("source", "id", "text", "severity", "category", "label")
_BATCH = 64
_TEMPLATES = "identity_templates"


@dataclass(frozen=True, slots=True)
class Row:
    """One labelled text."""

    source: str
    id: str
    text: str
    severity: int


@dataclass(slots=True)
class BinaryCounts:
    """Confusion counts for one yes/no task."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, *, truth: bool, predicted: bool) -> None:
        """Count one decision."""
        if truth and predicted:
            self.tp += 1
        elif predicted:
            self.fp += 1
        elif truth:
            self.fn += 1
        else:
            self.tn += 1

    @staticmethod
    def _f1(p: float, r: float) -> float:
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def precision(self) -> float:
        """Of the texts flagged, the share that should have been."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """Of the texts that should be flagged, the share that were."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        """F1 of the positive class."""
        return self._f1(self.precision, self.recall)

    @property
    def macro_f1(self) -> float:
        """Mean of the positive and negative classes' F1."""
        neg_p = self.tn / (self.tn + self.fn) if self.tn + self.fn else 0.0
        neg_r = self.tn / (self.tn + self.fp) if self.tn + self.fp else 0.0
        return (self.f1 + self._f1(neg_p, neg_r)) / 2

    def as_dict(self) -> dict[str, float | int]:
        """Figures for JSON output."""
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4), "macro_f1": round(self.macro_f1, 4),
                "positives": self.tp + self.fn, "flagged": self.tp + self.fp}


@dataclass(slots=True)
class SourceResult:
    """Evaluation figures for one source."""

    source: str
    rows: int = 0
    violation: BinaryCounts = field(default_factory=BinaryCounts)
    any_action: BinaryCounts = field(default_factory=BinaryCounts)
    benign: int = 0
    benign_flagged: int = 0
    benign_hidden: int = 0

    @property
    def false_positive_rate(self) -> float:
        """Share of severity-0 rows that got any action."""
        return self.benign_flagged / self.benign if self.benign else 0.0

    @property
    def benign_hidden_rate(self) -> float:
        """Share of severity-0 rows that were hidden or escalated."""
        return self.benign_hidden / self.benign if self.benign else 0.0


@dataclass(slots=True)
class ForumResult:
    """Actions on the forum corpus lines of one phenomenon (or one severity)."""

    name: str
    severity: int
    rows: int = 0
    acted: int = 0
    warned: int = 0
    hidden: int = 0

    def add(self, action: VerdictAction) -> None:
        """Count one decision."""
        self.rows += 1
        self.acted += action is not VerdictAction.ALLOW
        self.warned += action is VerdictAction.WARN
        self.hidden += action in (VerdictAction.HIDE, VerdictAction.ESCALATE)

    @property
    def caught(self) -> float:
        """The share handled as its severity asks: hidden (2), any action (1), allowed (0)."""
        if not self.rows:
            return 0.0
        good = {2: self.hidden, 1: self.acted, 0: self.rows - self.acted}[self.severity]
        return good / self.rows

    def as_dict(self) -> dict[str, Any]:
        """Figures for JSON output."""
        def share(n: int) -> float:
            return round(n / self.rows, 4) if self.rows else 0.0

        return {"name": self.name, "severity": self.severity, "rows": self.rows,
                "acted": share(self.acted), "warned": share(self.warned),
                "hidden": share(self.hidden), "as_labelled": round(self.caught, 4)}


def read_rows(path: Path, /) -> list[Row]:
    """Read a labelled CSV with the conduct data's columns; bad rows are refused by line."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        raise InputError(f"labelled data not found: {path}. The project's data lives in "
                         "../shared/data/dev/conduct_dev.csv; pass --data FILE with the columns "
                         f"{', '.join(COLUMNS)}") from None
    rows: list[Row] = []
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("source", "id", "text", "severity") if c not in
                   (reader.fieldnames or [])]
        if missing:
            raise InputError(f"missing column(s): {', '.join(missing)}", source=str(path), line=1)
        for record in reader:
            try:
                severity = int(record["severity"])
            except (TypeError, ValueError):
                raise InputError(f"severity {record['severity']!r} is not 0, 1 or 2",
                                 source=str(path), line=reader.line_num) from None
            if severity not in (0, 1, 2):
                raise InputError(f"severity {severity} is not 0, 1 or 2", source=str(path),
                                 line=reader.line_num)
            rows.append(Row(record["source"], record["id"], record["text"] or "", severity))
    return rows


def _select(rows: Sequence[Row], *, split: str, per_source: int) -> list[Row]:
    if split != "all":
        rows = [r for r in rows if row_split(r.source, r.id) == split]
    if per_source > 0:
        by_source: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            by_source[row.source].append(row)
        rows = [r for group in by_source.values() for r in sorted(
            group, key=lambda r: hashlib.sha1(f"{r.source}:{r.id}".encode()).hexdigest()
        )[:per_source]]
    return list(rows)


def _verdicts(texts: Sequence[str], /, *, scorer: Scorer, policy: Policy,
              progress: Callable[[int], None] | None) -> list[Verdict]:
    """Decide every text as a message in a general channel by a member in good standing."""
    rules = RuleScorer(policy)
    verdicts: list[Verdict] = []
    for start in range(0, len(texts), _BATCH):
        batch = texts[start:start + _BATCH]
        verdicts += [decide(ScoreSet(values, scorer.name, scorer.version), rules.hits(text),
                            policy=policy, standing=Standing(), channel="general")
                     for text, values in zip(batch, scorer.score_batch(batch), strict=True)]
        if progress:
            progress(len(batch))
    return verdicts


def evaluate_forum(lines: Sequence[ForumLine], /, *, scorer: Scorer, policy: Policy,
                   progress: Callable[[int], None] | None = None) -> dict[str, ForumResult]:
    """Per phenomenon, then per severity ("violation", "incivility", "legitimate")."""
    results = {name: ForumResult(name, severity) for name, severity in PHENOMENA.items()}
    totals = {2: ForumResult("violation", 2), 1: ForumResult("incivility", 1),
              0: ForumResult("legitimate", 0)}
    verdicts = _verdicts([line.text for line in lines], scorer=scorer, policy=policy,
                         progress=progress)
    for line, verdict in zip(lines, verdicts, strict=True):
        results[line.phenomenon].add(verdict.action)
        totals[line.severity].add(verdict.action)
    return {name: r for name, r in results.items() if r.rows} | {
        r.name: r for r in totals.values()}


def evaluate_rows(rows: Sequence[Row], /, *, scorer: Scorer, policy: Policy,
                  progress: Callable[[int], None] | None = None) -> dict[str, SourceResult]:
    """Decide every row as a message in a general channel by a member in good standing."""
    results: dict[str, SourceResult] = {}
    overall = SourceResult("ALL")
    verdicts = _verdicts([r.text for r in rows], scorer=scorer, policy=policy,
                         progress=progress)
    for row, verdict in zip(rows, verdicts, strict=True):
        flagged = verdict.action is not VerdictAction.ALLOW
        hidden = verdict.action in (VerdictAction.HIDE, VerdictAction.ESCALATE)
        for result in (results.setdefault(row.source, SourceResult(row.source)), overall):
            result.rows += 1
            result.violation.add(truth=row.severity == 2, predicted=hidden)
            result.any_action.add(truth=row.severity >= 1, predicted=flagged)
            if row.severity == 0:
                result.benign += 1
                result.benign_flagged += flagged
                result.benign_hidden += hidden
    results["ALL"] = overall
    return results


def run_eval(settings: Settings, /, *, data: Path, split: str, per_source: int,
             as_json: bool, forum: Path | None = None) -> int:
    """Evaluate and print tables (or JSON lines); returns the exit status.

    The shared data is evaluated per source, the forum corpus per phenomenon; either is
    skipped with a note when absent (the shared data lives outside the repository).
    """
    from rich.console import Console
    from rich.progress import Progress

    from bot.scoring import build_scorer

    err = Console(stderr=True)
    policy = load_policy(settings.policy)
    rows: list[Row] = []
    if data.is_file():
        rows = _select(read_rows(data), split=split, per_source=per_source)
    else:
        err.print(f"[yellow]labelled data not found: {data}; evaluating the forum corpus only")
    lines: list[ForumLine] = []
    if forum is not None:
        wanted = tuple(s for s in SPLITS if split in (s, "all"))
        lines = read_forum_dir(forum, splits=wanted)
    if not rows and not lines:
        raise InputError(f"no rows to evaluate in {data} or the forum corpus (split {split})")
    scorer = build_scorer(settings)
    err.print(f"evaluating {len(rows):,} rows and {len(lines):,} forum lines ({split} split) "
              f"with {scorer.name} {scorer.version}, policy {policy.version}")
    with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("scoring", total=len(rows) + len(lines))
        results = evaluate_rows(rows, scorer=scorer, policy=policy,
                                progress=lambda n: bar.advance(task, n)) if rows else {}
        phenomena = evaluate_forum(lines, scorer=scorer, policy=policy,
                                   progress=lambda n: bar.advance(task, n)) if lines else {}
    meta = {"scorer": scorer.name, "scorer_version": scorer.version,
            "policy_version": policy.version, "split": split}
    if as_json:
        for result in results.values():
            print(json.dumps(_as_json(result) | meta | {"data": str(data)}))
        for forum_result in phenomena.values():
            print(json.dumps({"forum": forum_result.as_dict()} | meta))
        return 0
    title = f"{scorer.name} {scorer.version}, policy {policy.version}, {split} split"
    if results:
        _print_sources(results, title=f"eval: {title} of {data.name}")
    if phenomena:
        _print_forum(phenomena, title=f"forum corpus: {title} "
                     f"(writers {', '.join(sorted({line.writer for line in lines}))})")
    sys.stdout.flush()
    return 0


def _print_sources(results: dict[str, SourceResult], *, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("source", "rows", "sev2 P", "sev2 R", "sev2 F1", "sev2 macroF1",
                   "any P", "any R", "any F1", "FPR sev0", "sev0 hidden"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for result in results.values():
        v, a = result.violation, result.any_action
        table.add_row(result.source, f"{result.rows:,}", *(f"{x:.3f}" for x in (
            v.precision, v.recall, v.f1, v.macro_f1, a.precision, a.recall, a.f1,
            result.false_positive_rate, result.benign_hidden_rate)))
    Console(width=max(140, Console().width)).print(table)
    templates = results.get(_TEMPLATES)
    if templates is not None:
        print(f"false-positive rate on {_TEMPLATES} severity-0 rows: "
              f"{templates.false_positive_rate:.3f} ({templates.benign_flagged} of "
              f"{templates.benign})")


def _print_forum(results: dict[str, ForumResult], *, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("phenomenon", "severity", "rows", "acted", "warned", "hidden",
                   "as labelled"):
        table.add_column(column, justify="left" if column == "phenomenon" else "right")
    for result in results.values():
        if result.name == "violation":
            table.add_section()
        table.add_row(result.name, str(result.severity), str(result.rows),
                      *(f"{n / result.rows:.1%}" for n in (result.acted, result.warned,
                                                          result.hidden)),
                      f"{result.caught:.1%}")
    Console(width=max(100, Console().width)).print(table)
    print("as labelled: violations hidden or escalated, incivility acted on, legitimate "
          "posts allowed")


def _as_json(result: SourceResult) -> dict[str, Any]:
    return {"source": result.source, "rows": result.rows,
            "severity2": result.violation.as_dict(), "any_action": result.any_action.as_dict(),
            "false_positive_rate_sev0": round(result.false_positive_rate, 4),
            "hidden_rate_sev0": round(result.benign_hidden_rate, 4)}

