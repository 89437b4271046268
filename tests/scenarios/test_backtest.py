"""`bot.py backtest` on the demo (examples/register.csv and examples/forum.jsonl, as `make
demo` builds it) under a stricter and a looser copy of policies/default.toml.

Every figure is checked against decisions computed here, message by message, straight from
the database with `decide()`: the author's status and roles as stored (a suspension counting
only within its dates), replies to protected persons from the parent message's author. Most
tests score with a deterministic stand-in for the model (bit-exact, no model load); the last
runs the real offline scorer end to end.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.decide import decide
from bot.models import MemberStatus, Role, ScoreSet, Standing, Verdict, VerdictAction
from bot.policy import Policy, load_policy
from bot.scoring.rules import RuleScorer
from bot.store import Store
from tests.conftest import ROOT

DEFAULT = ROOT / "policies" / "default.toml"
REGISTER = ROOT / "examples" / "register.csv"
FORUM = ROOT / "examples" / "forum.jsonl"
MESSAGES = 286  # every line of the demo week, edits as new revisions
PROTECTED = {Role.MP, Role.COUNCILLOR, Role.STAFF}


class HashScorer:
    """A deterministic stand-in for the model: each category's score is a byte of the text's
    SHA-256, squared (mostly low, some high, like a real model's), whatever the batch."""

    name = "hash-test"
    version = "1"
    categories = ("toxicity", "severe_toxicity", "obscene", "threat", "insult",
                  "identity_attack", "sexual_explicit")

    def score_batch(self, texts: Sequence[str], /) -> list[dict[str, float]]:
        out = []
        for text in texts:
            digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
            out.append({c: (digest[i] / 255) ** 2 for i, c in enumerate(self.categories)})
        return out


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command of the test scores with HashScorer."""
    monkeypatch.setattr("bot.scoring.build_scorer", lambda settings: HashScorer())


def build_demo(db: Path) -> None:
    assert main(["members", "import", str(REGISTER), "--db", str(db)]) == 0
    assert main(["replay", str(FORUM), "--db", str(db), "--no-progress", "--json"]) == 0


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("bot.scoring.build_scorer", lambda settings: HashScorer())
        build_demo(db)
    return db


@pytest.fixture
def db(demo_db: Path, tmp_path: Path, hashed: None) -> Path:
    """A copy of the demo database for one test."""
    copy = tmp_path / "demo.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{demo_db}{suffix}").exists():
            shutil.copy(f"{demo_db}{suffix}", f"{copy}{suffix}")
    return copy


# -- the candidate policies ------------------------------------------------------------------


def variant(tmp_path: Path, name: str, scale: Callable[[float], float], *,
            drop_rule: str | None = None) -> Path:
    """A copy of the shipped policy with every numeric warn/hide/escalate threshold (the
    categories' and the channels') mapped through `scale`, optionally without one rule."""
    text = DEFAULT.read_text(encoding="utf-8")
    text, n = re.subn(r"^(warn|hide|escalate) = (0\.\d+)$",
                      lambda m: f"{m[1]} = {scale(float(m[2])):.4f}", text, flags=re.M)
    assert n >= 15
    text = re.sub(r'^version = "(.*)"$', rf'version = "\1-{name}"', text, count=1, flags=re.M)
    if drop_rule is not None:
        text, n = re.subn(rf'\[\[rules\]\]\nid = "{drop_rule}"\n.*?(?=\n\[\[rules\]\])', "",
                          text, flags=re.S)
        assert n == 1
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def stricter(tmp_path: Path) -> Path:
    return variant(tmp_path, "strict", lambda x: x * 0.8)


def looser(tmp_path: Path) -> Path:
    return variant(tmp_path, "loose", lambda x: 1 - (1 - x) * 0.5, drop_rule="insult-member")


# -- decisions computed here, independently of bot.backtest -----------------------------------


@dataclass(frozen=True)
class Expected:
    member: str
    stored: str
    review: str | None
    old: Verdict
    new: Verdict


def expected(db: Path, active: Policy, candidate: Policy, *,
             scores: Callable[[sqlite3.Row], ScoreSet] | None = None) -> list[Expected]:
    """Every message whose text is held, decided under both policies."""
    scorer = HashScorer()
    old_rules, new_rules = RuleScorer(active), RuleScorer(candidate)
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        members = {r["id"]: r for r in conn.execute("SELECT * FROM members")}
        rows = conn.execute("SELECT m.*, v.id AS verdict_id, v.action AS stored, v.scores, "
                            "v.model, v.model_version FROM messages m JOIN verdicts v ON "
                            "v.message_row = m.id ORDER BY m.revision").fetchall()
        reviews = {r["verdict_id"]: r["outcome"]
                   for r in conn.execute("SELECT * FROM reviews ORDER BY id")}
    latest = {(r["platform"], r["message_id"]): r for r in rows}  # the highest revision

    def roles(member_id: str) -> frozenset[Role]:
        return frozenset(Role(x) for x in members[member_id]["roles"].split(",") if x)

    out = []
    for row in rows:
        if row["text"] is None:
            continue
        member = members[row["member_id"]]
        status = MemberStatus(member["status"])
        sent = datetime.fromisoformat(row["sent_at"])
        if status is MemberStatus.SUSPENDED and not (
                (member["suspended_from"] is None
                 or datetime.fromisoformat(member["suspended_from"]) <= sent)
                and (member["suspended_until"] is None
                     or sent < datetime.fromisoformat(member["suspended_until"]))):
            status = MemberStatus.ACTIVE
        standing = Standing(status=status, roles=roles(row["member_id"]))
        parent = latest.get((row["platform"], row["reply_to"]))
        replies = parent is not None and bool(roles(parent["member_id"]) & PROTECTED)
        if scores is None:
            values = ScoreSet(scorer.score_batch([row["text"]])[0], scorer.name, scorer.version)
        else:
            values = scores(row)
        old, new = (decide(values, rules.hits(row["text"]), policy=policy, standing=standing,
                           channel=row["channel"], channel_name=row["channel_name"],
                           replies_to_protected=replies)
                    for policy, rules in ((active, old_rules), (candidate, new_rules)))
        out.append(Expected(row["member_id"], row["stored"], reviews.get(row["verdict_id"]),
                            old, new))
    return out


def matrix(decided: Sequence[Expected]) -> dict[str, dict[str, int]]:
    pairs = Counter((d.old.action, d.new.action) for d in decided)
    return {str(a): {str(b): pairs[(a, b)] for b in VerdictAction} for a in VerdictAction}


def acted(decided: Sequence[Expected], side: str) -> set[str]:
    return {d.member for d in decided if getattr(d, side).action is not VerdictAction.ALLOW}


def backtest(db: Path, candidate: Path, *extra: str, fmt: str = "json") -> Any:
    out = db.parent / f"report.{fmt}"
    assert main(["backtest", "--policy", str(candidate), "--db", str(db), "--format", fmt,
                 "--out", str(out), *extra]) == 0
    text = out.read_text(encoding="utf-8")
    return json.loads(text) if fmt == "json" else text


def check_counts(report: dict[str, Any], decided: Sequence[Expected]) -> None:
    """The report's figures against the decisions computed here."""
    assert report["redecided"] == len(decided)
    assert report["matrix"] == matrix(decided)
    assert report["changed"] == sum(d.old.action is not d.new.action for d in decided)
    assert report["harsher"] == sum(d.new.action.rank > d.old.action.rank for d in decided)
    assert report["milder"] == sum(d.new.action.rank < d.old.action.rank for d in decided)
    assert report["differ_from_stored"] == sum(d.stored != d.old.action for d in decided)
    assert report["clause_changed"] == sum(d.old.action is d.new.action
                                           and d.old.clause != d.new.clause for d in decided)
    clauses: Counter[tuple[str, int]] = Counter()
    for d in decided:
        for side, verdict in enumerate((d.old, d.new)):
            if verdict.action is not VerdictAction.ALLOW:
                clauses[(verdict.clause or "-", side)] += 1
    assert {c["clause"]: (c["old"], c["new"]) for c in report["clauses"]} == {
        clause: (clauses[(clause, 0)], clauses[(clause, 1)]) for clause, _ in clauses}
    assert set(report["newly_affected"]) == acted(decided, "new") - acted(decided, "old")
    assert set(report["no_longer_affected"]) == acted(decided, "old") - acted(decided, "new")


# -- the tests ---------------------------------------------------------------------------------


def test_a_stricter_policy_never_acts_less_and_its_counts_hold(db: Path,
                                                                tmp_path: Path) -> None:
    strict = stricter(tmp_path)
    report = backtest(db, strict)
    decided = expected(db, load_policy(DEFAULT), load_policy(strict))
    check_counts(report, decided)
    assert report["redecided"] == MESSAGES and report["skipped_erased"] == 0
    assert report["milder"] == 0 and report["harsher"] >= 10
    assert report["no_longer_affected"] == [] and report["newly_affected"]
    # Like for like: the active policy decides as the bot did when it stored the verdicts.
    assert report["differ_from_stored"] == 0 and report["stored_elsewhere"] == 0
    old = {a["action"]: a["old"] for a in report["actions"]}
    new = {a["action"]: a["new"] for a in report["actions"]}
    assert new["allow"] < old["allow"]
    assert report["candidate_policy"] == f"{load_policy(DEFAULT).version}-strict"
    assert len(report["sample"]) == min(20, report["changed"])


def test_a_looser_policy_never_acts_more_and_its_counts_hold(db: Path, tmp_path: Path) -> None:
    loose = looser(tmp_path)
    report = backtest(db, loose)
    decided = expected(db, load_policy(DEFAULT), load_policy(loose))
    check_counts(report, decided)
    assert report["harsher"] == 0 and report["milder"] >= 10
    assert report["newly_affected"] == [] and report["no_longer_affected"]
    # The dropped rule no longer cites anything: its messages are judged by the model alone.
    assert not any("insult-member" in r for s in report["sample"] for r in s["reasons"])


def test_names_instead_of_ids_and_the_markdown_report(db: Path, tmp_path: Path) -> None:
    strict = stricter(tmp_path)
    report = backtest(db, strict, "--show-names")
    ids = backtest(db, strict)["newly_affected"]
    with sqlite3.connect(db) as conn:
        names = {i: f"{n} ({i}, {num})" if num else f"{n} ({i})"
                 for i, n, num in conn.execute("SELECT id, display_name, membership_number "
                                               "FROM members")}
    assert ids and sorted(report["newly_affected"]) == sorted(names[i] for i in ids)
    md = backtest(db, strict, "--sample", "3", fmt="md")
    assert md.startswith(f"# Backtest: candidate policy {load_policy(strict).version} "
                         f"against the active {load_policy(DEFAULT).version}")
    assert f"Re-decided: {MESSAGES} message(s) whose text is held; 0 skipped" in md
    assert "as stored now" in md  # the standing used is stated
    assert re.search(r"^\| active \\ candidate \| allow \| warn \| hide \| escalate \| total \|$",
                     md, re.M)
    assert f"## Changed decisions (3 of {report['changed']})" in md
    assert md.count("\n   > ") == 3


def test_erased_text_is_skipped_and_counted(db: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["members", "erase", "A241066", "--reason", "erasure request", "--yes",
                 "--db", str(db)]) == 0  # Mick Walsh
    said = re.search(r"erased the text of (\d+) message", capsys.readouterr().out)
    assert said is not None
    erased = int(said[1])
    assert erased >= 3
    loose = looser(tmp_path)
    report = backtest(db, loose)
    assert report["skipped_erased"] == erased
    assert report["redecided"] == MESSAGES - erased
    check_counts(report, expected(db, load_policy(DEFAULT), load_policy(loose)))


def test_agreement_with_the_moderators_reviews(db: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(db) as conn:
        cases = [r[0] for r in conn.execute(
            "SELECT id FROM cases WHERE automatic=1 AND kind='escalation' AND state='open' "
            "ORDER BY id LIMIT 8")]
    assert len(cases) == 8
    for case, outcome in zip(cases, ["uphold"] * 4 + ["dismiss"] * 4, strict=True):
        assert main(["mod", "--db", str(db), "--as", "console:mod_karen", "resolve",
                     str(case), outcome, "reviewed for the backtest"]) == 0, \
            capsys.readouterr().out
    loose = looser(tmp_path)
    report = backtest(db, loose)
    decided = expected(db, load_policy(DEFAULT), load_policy(loose))
    check_counts(report, decided)
    reviewed = [d for d in decided if d.review]
    reviews = report["reviews"]
    assert reviews["reviewed"] == len(reviewed) >= 8
    assert reviews["upheld"] == sum(d.review == "upheld" for d in reviewed) >= 4
    assert reviews["dismissed"] == sum(d.review == "dismissed" for d in reviewed) >= 4
    for side, name in (("old", "active"), ("new", "candidate")):
        acts = {id(d): getattr(d, side).action is not VerdictAction.ALLOW for d in reviewed}
        agree = sum(acts[id(d)] == (d.review == "upheld") for d in reviewed)
        assert reviews[name]["agree"] == agree, name
        assert reviews[name]["share"] == pytest.approx(agree / len(reviewed))
        assert reviews[name]["allows_dismissed"] == sum(
            not acts[id(d)] for d in reviewed if d.review == "dismissed")
    # The active policy escalated every reviewed message: it agrees only with the upholds.
    assert reviews["active"]["agree"] == reviews["upheld"]


def test_a_status_changed_since_shows_as_a_difference_from_the_stored_verdicts(
        db: Path) -> None:
    async def expel() -> str:
        async with Store.open(db) as store:
            (kevin,) = await store.find_members("A149863")
            await store.set_status(kevin.id, status=MemberStatus.EXPELLED, actor="test",
                                   reason="expelled after the week")
            return kevin.id

    kevin = asyncio.run(expel())
    report = backtest(db, DEFAULT)  # the active policy against itself
    decided = expected(db, load_policy(DEFAULT), load_policy(DEFAULT))
    check_counts(report, decided)
    assert report["changed"] == 0
    his = [d for d in decided if d.member == kevin]
    assert report["differ_from_stored"] == sum(d.stored != "escalate" for d in his) >= 2


def test_a_reply_to_a_protected_person_counts_as_naming_them(db: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    # An insult (a rule) with nothing else the stand-in model finds, answering an MP.
    scorer = HashScorer()
    text = next(t for n in range(10_000) if max(scorer.score_batch(
        [t := f"What a numpty, honestly ({n})"])[0].values()) < 0.3)
    lines = db.parent / "reply.jsonl"
    lines.write_text("\n".join(json.dumps(line) for line in [
        {"id": "x-mp", "platform": "slack", "channel": "general", "author": "U03SWF9K2LM",
         "text": "Surgery on Saturday in Headingley, all welcome.", "ts": "2026-11-18T09:00Z"},
        {"id": "x-re", "platform": "slack", "channel": "general", "author": "U21918E82F2",
         "text": text, "ts": "2026-11-18T09:05Z", "reply_to": "x-mp"}]) + "\n")
    assert main(["replay", str(lines), "--db", str(db), "--json", "--no-progress"]) == 0
    reply = json.loads(capsys.readouterr().out.splitlines()[1])
    assert reply["action"] == "escalate" and "harassment" in reply["categories"]
    report = backtest(db, DEFAULT)
    assert report["redecided"] == MESSAGES + 2
    assert report["differ_from_stored"] == 0  # the reply is escalated again
    check_counts(report, expected(db, load_policy(DEFAULT), load_policy(DEFAULT)))


def test_windows_and_formats(db: Path, tmp_path: Path) -> None:
    strict = stricter(tmp_path)
    sent = [datetime.fromisoformat(json.loads(line)["ts"].replace("Z", "+00:00"))
            for line in FORUM.read_text(encoding="utf-8").splitlines() if line.strip()]
    since = datetime.fromisoformat("2026-11-20T00:00:00+00:00")
    assert backtest(db, strict, "--since", "2026-11-20")["redecided"] == sum(
        t >= since for t in sent) > 0
    week = backtest(db, strict, "--week", "2026-W47")
    assert week["window"] == "2026-W47 (Europe/London)" and week["redecided"] == MESSAGES
    assert backtest(db, strict, "--week", "2026-W48")["redecided"] == 0
    everything = backtest(db, strict)
    rows = list(csv.DictReader(io.StringIO(backtest(db, strict, fmt="csv"))))
    assert len(rows) == everything["changed"] > 20  # every change, not only the sample
    rank = {str(a): a.rank for a in VerdictAction}
    assert all(rank[r["candidate_action"]] > rank[r["active_action"]] for r in rows)


@pytest.fixture
def dump(db: Path) -> Iterator[Callable[[], list[str]]]:
    def contents() -> list[str]:
        with sqlite3.connect(db) as conn:
            return list(conn.iterdump())
    yield contents


def test_bad_input_is_a_clear_error_and_changes_nothing(
        db: Path, tmp_path: Path, dump: Callable[[], list[str]],
        capsys: pytest.CaptureFixture[str]) -> None:
    before = dump()
    broken = tmp_path / "broken.toml"
    broken.write_text(DEFAULT.read_text(encoding="utf-8").replace(
        "[categories.threat]\n", "[categories.threat]\nwarn = 0.99\n", 1).replace(
        "warn = 0.65\n", "", 1), encoding="utf-8")
    cases = [
        (["--policy", str(broken)], [str(broken), "categories.threat", "warn"]),
        (["--policy", str(tmp_path / "missing.toml")], ["missing.toml", "file not found"]),
        (["--policy", str(DEFAULT), "--week", "2026-W54"], ["not an ISO week", "2026-W54"]),
        (["--policy", str(DEFAULT), "--week", "2026-W47", "--tz", "Leeds"],
         ["unknown time zone 'Leeds'"]),
        (["--policy", str(DEFAULT), "--sample", "-1"], ["--sample must be 0 or more"]),
    ]
    for args, says in cases:
        assert main(["backtest", "--db", str(db), *args]) == 2, args
        err = " ".join(capsys.readouterr().err.split())
        for words in says:
            assert words in err, (args, err)
    assert main(["backtest", "--policy", str(DEFAULT), "--db", str(tmp_path / "nope.db")]) == 2
    assert "there is no database at" in capsys.readouterr().err
    assert not (tmp_path / "nope.db").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["backtest", "--policy", str(DEFAULT), "--db", str(db), "--since", "Tuesday"])
    assert exit_.value.code == 2
    assert "'Tuesday' is not an ISO date or time" in capsys.readouterr().err
    # A backtest that runs writes nothing either.
    assert main(["backtest", "--policy", str(stricter(tmp_path)), "--db", str(db),
                 "--quiet"]) == 0
    assert "# Backtest" in capsys.readouterr().out
    assert dump() == before


def test_the_global_policy_is_the_active_one(db: Path, tmp_path: Path) -> None:
    strict, loose = stricter(tmp_path), looser(tmp_path)
    out = tmp_path / "r.json"
    assert main(["--policy", str(strict), "backtest", "--policy", str(loose), "--db", str(db),
                 "--format", "json", "--out", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["active_policy"].endswith("-strict")
    assert report["candidate_policy"].endswith("-loose")
    check_counts(report, expected(db, load_policy(strict), load_policy(loose)))
    assert report["harsher"] == 0 and report["differ_from_stored"] > 0


@pytest.mark.model
def test_the_demo_with_the_offline_scorer(tmp_path: Path) -> None:
    """End to end with the real model: like for like with the stored verdicts, and the
    counts those verdicts' own scores give under each policy."""
    db = tmp_path / "demo.sqlite3"
    build_demo(db)
    active = load_policy(DEFAULT)

    def stored_scores(row: sqlite3.Row) -> ScoreSet:
        return ScoreSet(json.loads(row["scores"]), row["model"], row["model_version"])

    for candidate, direction in ((stricter(tmp_path), "harsher"),
                                 (looser(tmp_path), "milder")):
        report = backtest(db, candidate)
        assert report["scorer"].startswith("conduct-minilm")
        assert report["differ_from_stored"] == 0 and report["stored_elsewhere"] == 0
        assert report[direction] > 0 and report["changed"] == report[direction]
        check_counts(report, expected(db, active, load_policy(candidate),
                                      scores=stored_scores))
