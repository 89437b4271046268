"""`bot.py eval`: figures computed right, any CSV with the columns, clean skips without data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.corpus import ForumLine
from bot.errors import InputError
from bot.evaluate import BinaryCounts, Row, evaluate_forum, evaluate_rows, read_rows
from bot.policy import Policy, load_policy
from tests.conftest import KeywordScorer, needs_data


def write_csv(path: Path, rows: list[tuple[str, str, str, int]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "id", "text", "severity", "category", "label"])
        for source, rid, text, severity in rows:
            writer.writerow([source, rid, text, severity, "none", "x"])
    return path


def test_binary_counts() -> None:
    counts = BinaryCounts(tp=3, fp=1, fn=1, tn=5)
    assert counts.precision == 0.75 and counts.recall == 0.75 and counts.f1 == 0.75
    # negative class: precision 5/6, recall 5/6
    assert counts.macro_f1 == pytest.approx((0.75 + 5 / 6) / 2)
    assert BinaryCounts().f1 == 0.0  # no division by zero on an empty source


def test_evaluate_rows_counts_per_source(test_policy: Policy) -> None:
    rows = [
        Row("a", "1", "you are vermin", 2),      # violation, escalated: TP for both tasks
        Row("a", "2", "you idiot", 1),           # warned: not a violation, any-action TP
        Row("a", "3", "lovely day", 0),          # allowed: TN
        Row("a", "4", "hello idiot", 0),         # warned though benign: FP for any action
        Row("b", "5", "we will win", 2),         # missed violation: FN
    ]
    results = evaluate_rows(rows, scorer=KeywordScorer(), policy=test_policy)
    a, b, everything = results["a"], results["b"], results["ALL"]
    assert (a.violation.tp, a.violation.fp, a.violation.fn, a.violation.tn) == (1, 0, 0, 3)
    assert (a.any_action.tp, a.any_action.fp, a.any_action.fn, a.any_action.tn) == (2, 1, 0, 1)
    assert a.false_positive_rate == 0.5 and a.benign_hidden_rate == 0.0
    assert b.violation.fn == 1 and b.violation.recall == 0.0
    assert everything.rows == 5 and everything.violation.recall == 0.5


def test_bad_csv_is_refused_with_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [("a", "1", "fine", 0), ("a", "2", "bad", 7)])
    with pytest.raises(InputError, match=r"d.csv:3: severity 7 is not 0, 1 or 2"):
        read_rows(path)
    no_columns = tmp_path / "e.csv"
    no_columns.write_text("text\nhello\n", encoding="utf-8")
    with pytest.raises(InputError, match="missing column"):
        read_rows(no_columns)
    with pytest.raises(InputError, match="labelled data not found"):
        read_rows(tmp_path / "absent.csv")


@pytest.mark.model
def test_eval_command_on_any_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_csv(tmp_path / "mine.csv", [
        ("forum", "1", "Canvassing in Headingley at 10am, all welcome", 0),
        ("forum", "2", "Thanks for the leaflets, see you Saturday", 0),
        ("forum", "3", "Her number is 07700 900123, ring her at home", 2),
        ("forum", "4", "Adler and her k1ke mates run the party", 2),
    ])
    assert main(["eval", "--data", str(data), "--split", "all", "--json", "--no-forum"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_source = {line["source"]: line for line in lines}
    forum = by_source["forum"]
    assert forum["rows"] == 4
    assert forum["severity2"]["recall"] == 1.0 and forum["severity2"]["precision"] == 1.0
    assert forum["false_positive_rate_sev0"] == 0.0
    shipped = load_policy(Path(__file__).resolve().parents[2] / "policies" / "default.toml")
    assert forum["policy_version"] == shipped.version and forum["scorer"] == "conduct-minilm"
    assert by_source["ALL"]["rows"] == 4


@pytest.mark.model
@pytest.mark.data
def test_eval_on_the_labelled_data(capsys: pytest.CaptureFixture[str]) -> None:
    data = needs_data()
    assert main(["eval", "--data", str(data), "--per-source", "40", "--json",
                 "--no-forum"]) == 0
    results = {r["source"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {"hatecheck", "edos", "isca", "identity_templates"} <= set(results)
    # test rows only; a broken scorer or policy would fall to chance or below
    assert results["hatecheck"]["severity2"]["f1"] > 0.7
    assert results["identity_templates"]["false_positive_rate_sev0"] < 0.2


def test_evaluate_forum_counts_per_phenomenon_and_severity(test_policy: Policy) -> None:
    def line(n: int, text: str, severity: int, phenomenon: str) -> ForumLine:
        category = {0: "none", 1: "insult", 2: "identity_attack"}[severity]
        return ForumLine("w9", n, text, severity, category, phenomenon, "plain")

    lines = [line(1, "you are vermin", 2, "dehumanising"),    # escalated
             line(2, "we will win", 2, "dehumanising"),       # missed
             line(3, "you idiot", 1, "british_insult"),       # warned
             line(4, "hello idiot", 0, "heated_debate"),      # warned though legitimate
             line(5, "lovely day", 0, "ordinary")]            # allowed
    results = evaluate_forum(lines, scorer=KeywordScorer(), policy=test_policy)
    assert set(results) == {"dehumanising", "british_insult", "heated_debate", "ordinary",
                            "violation", "incivility", "legitimate"}
    d = results["dehumanising"]
    assert (d.rows, d.hidden, d.caught) == (2, 1, 0.5)
    assert results["incivility"].caught == 1.0 and results["incivility"].warned == 1
    legit = results["legitimate"]
    assert (legit.rows, legit.acted, legit.hidden, legit.caught) == (2, 1, 0, 0.5)
    assert legit.as_dict() | {"name": "x"} == {"name": "x", "severity": 0, "rows": 2,
                                                "acted": 0.5, "warned": 0.5, "hidden": 0.0,
                                                "as_labelled": 0.5}


@pytest.mark.model
def test_eval_command_on_a_forum_corpus(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    forum = tmp_path / "forum"
    forum.mkdir()
    (forum / "w6.jsonl").write_text("\n".join(json.dumps(o) for o in [
        {"text": "Leaflets are in the office, grab a bundle.", "severity": 0,
         "category": "none", "phenomenon": "ordinary", "form": "plain"},
        {"text": "I know where you live and I will kill you.", "severity": 2,
         "category": "threat", "phenomenon": "threat_direct", "form": "plain"},
    ]) + "\n", encoding="utf-8")
    (forum / "w1.jsonl").write_text("", encoding="utf-8")  # a training writer: not evaluated
    absent = tmp_path / "absent.csv"
    assert main(["eval", "--data", str(absent), "--forum", str(forum), "--json"]) == 0
    captured = capsys.readouterr()
    assert "labelled data not found" in captured.err
    results = {r["forum"]["name"]: r["forum"] for r in map(json.loads,
                                                          captured.out.splitlines())}
    assert results["ordinary"]["acted"] == 0.0
    assert results["threat_direct"]["hidden"] == 1.0
    assert results["violation"]["rows"] == 1 and results["legitimate"]["rows"] == 1
