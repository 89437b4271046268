"""The transparency report against a real store on each backend (a SQLite file, a PostgreSQL
database), filled the way the bot fills it: messages through the Moderator (keyword scorer,
the stable test policy), moderators' commands, members' appeals, and a channel in shadow mode
beside them.

Every figure is checked against a tally this test keeps of what it did; every format is
searched for the names, ids and words put in on purpose (marker strings).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import statistics
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from bot.cli import main
from bot.database import Target
from bot.models import (
    Account,
    MemberStatus,
    Message,
    Mode,
    Platform,
    Role,
    VerdictAction,
)
from bot.policy import ChannelOverride, Policy, load_policy
from bot.store import Store
from bot.store.copy import TABLES
from bot.transparency import Cell, Report, build_report, to_csv, to_html, to_json, to_markdown
from tests.conftest import ROOT
from tests.postgres import BACKENDS, PostgresServer
from tests.scenarios.test_members import KAREN, OMAR, World, open_world

POLICY = ROOT / "tests" / "fixtures" / "policy.toml"
SHADOW_CHANNEL = "shadow-trial"
#: Strings that must never reach a report: names, ids, handles, words members and
#: moderators wrote, channel names.
MARKERS = ("zqname", "zqacct", "zqnum", "zqtext", "zqmsg", "zqchan", "zqreason",
           "zqappeal", "lomax", "haddad", "karen", "omar")
Q4_START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@dataclass
class Tally:
    """What the test did in 2026-Q4 (London), counted here, not by the report."""

    checked: int = 0
    bot: Counter[str] = field(default_factory=Counter)
    bot_clause: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    ladder_timeouts: int = 0
    moderators: Counter[str] = field(default_factory=Counter)
    escalation_waits: dict[str, list[float]] = field(default_factory=dict)
    appeals: Counter[str] = field(default_factory=Counter)
    appeal_waits: list[float] = field(default_factory=list)
    shadow: Counter[str] = field(default_factory=Counter)
    member_ids: list[str] = field(default_factory=list)


def account(i: int) -> Account:
    return Account(Platform.CONSOLE, f"zqacct{i}")


async def post(world: World, tally: Tally | None, who: int, text: str, *,
               channel: str = "zqchan-general") -> int | None:
    """Post as member `who`; counted in `tally` (None: outside the quarter)."""
    world.n += 1
    message = Message(Platform.CONSOLE, f"zqmsg-{world.n}", channel,
                      account(who).id, f"{text} zqtext{world.n}", world.clock(),
                      channel_name=channel, author_name=f"Zq zqname{who}")
    handled = await world.moderator.handle(message)
    assert handled is not None
    world.clock.now += timedelta(minutes=1)
    verdict = handled.verdict
    if tally is not None:
        tally.checked += 1
        if verdict.mode is Mode.SHADOW:
            tally.shadow["checked"] += 1
            if verdict.action is not VerdictAction.ALLOW:
                tally.shadow[verdict.action] += 1
        elif verdict.action is not VerdictAction.ALLOW:
            tally.bot[verdict.action] += 1
            tally.bot_clause[verdict.clause or "none"] += 1
            tally.categories.update(verdict.categories)
        if handled.ladder is not None and handled.ladder.timeout is not None:
            tally.ladder_timeouts += 1
    return handled.case_id


async def run(world: World, who: Account, words: str) -> str:
    reply = await world.run(who, words)
    assert reply.ok, (words, reply)
    return reply.text


async def fill(world: World) -> Tally:
    """A quarter of moderation, with one message either side of its London start."""
    tally = Tally()
    for i in range(1, 6):
        await world.store.import_member(
            membership_number=f"ZQNUM{i}", name=f"Zq zqname{i}", status=MemberStatus.ACTIVE,
            roles=set[Role](), reason=None, suspended_from=None, suspended_until=None,
            accounts=[(Platform.CONSOLE, account(i).id)], actor="test")
        member = await world.store.member_for(Platform.CONSOLE, account(i).id)
        tally.member_ids.append(member.id)

    # 23:30 BST on 30 September is Q3 in London; 00:30 BST on 1 October is Q4.
    world.clock.now = datetime(2026, 9, 30, 22, 30, tzinfo=UTC)
    await post(world, None, 3, "you idiot")
    world.clock.now = datetime(2026, 9, 30, 23, 30, tzinfo=UTC)
    await post(world, tally, 3, "you idiot")

    world.clock.now = Q4_START
    for _ in range(5):
        await post(world, tally, 1, "you idiot")       # warn (1.1); the ladder times out
    for _ in range(4):
        await post(world, tally, 2, "what an idiot")   # warn (1.1)
    for _ in range(4):
        await post(world, tally, 3, "bleeding nonsense")  # warn (1.6)
    escalations = [await post(world, tally, 4, "immigrants are vermin") for _ in range(3)]
    for i in range(30):
        await post(world, tally, 5, f"hello friends {i}")  # allowed
    # The shadow-mode channel: 8 would-be warnings, 4 would-be escalations, 2 allowed.
    shadow_cases = [await post(world, tally, 5, text, channel=SHADOW_CHANNEL)
                    for text in ["you idiot"] * 8 + ["immigrants are vermin"] * 4
                    + ["good evening"] * 2]
    assert tally.shadow == Counter(checked=14, warn=8, escalate=4)
    shadow_cases = [c for c in shadow_cases if c is not None]
    assert len(shadow_cases) == 4  # would-be escalations are put to the moderators

    # Moderators' decisions on the escalations: 2 upheld, 1 dismissed, hours after each.
    for case_id, outcome, hours in zip(escalations, ("uphold", "uphold", "dismiss"),
                                       (2, 5, 9), strict=True):
        case = await world.store.get_case(case_id or 0)
        assert case is not None
        world.clock.now = case.opened_at + timedelta(hours=hours)
        await run(world, KAREN, f"resolve {case_id} {outcome} zqreason")
        tally.escalation_waits.setdefault(outcome, []).append(float(hours))
    # A shadow case decided by a moderator is no escalation decision: nothing was done.
    await run(world, KAREN, f"resolve {shadow_cases[0]} dismiss zqreason")

    world.clock.now += timedelta(days=1)
    for words in ("warn ZQNUM1 zqreason", "warn ZQNUM1 zqreason again",
                  "hide console:zqmsg-20 zqreason", "timeout ZQNUM3 1h zqreason"):
        await run(world, KAREN, words)
    tally.moderators.update(warning=2, hide=1, timeout=1)
    proposed = await world.run(KAREN, "suspend ZQNUM4 30d zqreason")
    case_id = proposed.buttons[0].command.split()[-1]
    await run(world, OMAR, f"confirm {case_id}")
    tally.moderators.update(suspension=1, proposed=1)
    await post(world, tally, 4, "hello again")  # a suspended member's post is escalated

    # Appeals: member 1 appeals all 7 cases (5 the bot's, 2 moderators'), member 2 all 4.
    mine = {1: [c.id for c in await world.store.member_cases(tally.member_ids[0])],
            2: [c.id for c in await world.store.member_cases(tally.member_ids[1])]}
    assert [len(mine[1]), len(mine[2])] == [7, 4]
    appealed = []
    for who, cases in mine.items():
        for case_id_ in cases:
            await run(world, account(who), f"appeal {case_id_} zqappeal I was quoting")
            case = await world.store.get_case(case_id_)
            assert case is not None
            tally.appeals["bot" if case.automatic else "moderators"] += 1
            appealed.append((case_id_, world.clock()))
    # Ten are decided, each a different number of hours after it was made: 4 granted.
    for i, (case_id_, made) in enumerate(appealed[:10]):
        world.clock.now = max(world.clock.now, made) + timedelta(hours=i + 1)
        outcome = "dismiss" if i % 5 in (0, 3) else "uphold"
        await run(world, OMAR, f"resolve {case_id_} {outcome} zqreason")
        tally.appeals["granted" if outcome == "dismiss" else "rejected"] += 1
        tally.appeal_waits.append((world.clock.now - made).total_seconds() / 3600)
    return tally


def trial_policy() -> Policy:
    """The test policy with one channel in shadow mode."""
    policy = load_policy(POLICY)
    trial = ChannelOverride(SHADOW_CHANNEL, frozenset({SHADOW_CHANNEL}), "", {},
                            mode=Mode.SHADOW)
    return replace(policy, channels=(*policy.channels, trial))


async def filled(target: Target) -> Tally:
    async with open_world(target, trial_policy()) as world:
        return await fill(world)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                   ) -> AsyncIterator[tuple[Target, Tally]]:
    """The quarter on each backend in turn, filled once for the module: a SQLite file, then
    a PostgreSQL database of its own."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("transparency") / "db.sqlite3"
        yield path, await filled(path)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    async with server.database() as url:
        yield url, await filled(url)


@pytest.fixture(scope="module")
def existing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite store, for what the command refuses before it opens the database."""
    path = tmp_path_factory.mktemp("empty") / "db.sqlite3"

    async def create() -> None:
        async with Store.open(path):
            pass

    asyncio.run(create())
    return path


async def report_of(target: Target, *, min_count: int, tz: str | None = None) -> Report:
    policy = replace(trial_policy(), transparency_min_count=min_count)
    async with Store.open(target) as store:
        return await build_report(store, "2026-Q4", policy=policy, tz=tz)


def figures(report: Report) -> dict[str, Cell]:
    """Every cell by 'section.row' (and '.column' index beyond the first)."""
    out = {}
    for section in report.sections:
        for row in section.rows:
            for i, cell in enumerate(row.cells):
                out[f"{section.key}.{row.key}" + (f".{i}" if i else "")] = cell
    return out


def expected(tally: Tally) -> dict[str, float]:
    bot_total = sum(tally.bot.values())
    moderators = sum(tally.moderators[k] for k in ("warning", "hide", "timeout", "suspension"))
    decided = tally.appeals["granted"] + tally.appeals["rejected"]
    escalations = sum(len(v) for v in tally.escalation_waits.values())
    return {
        "summary.messages_checked": tally.checked,
        "summary.bot_actions": bot_total,
        "summary.moderator_actions": moderators,
        "summary.suspensions": tally.moderators["suspension"],
        "summary.appeals_made": tally.appeals["bot"] + tally.appeals["moderators"],
        "summary.shadow_would_have_acted": tally.shadow["warn"] + tally.shadow["escalate"],
        **{f"bot.{a}": tally.bot[a] for a in ("warn", "hide", "escalate")},
        "bot.total": bot_total,
        "bot.ladder_timeouts": tally.ladder_timeouts,
        **{f"moderators.{k}": tally.moderators[k]
           for k in ("warning", "hide", "timeout", "suspension")},
        "moderators.total": moderators,
        "moderators.suspensions_proposed": tally.moderators["proposed"],
        "moderators.suspensions_rejected": 0,
        **{f"clauses.{c}": tally.bot_clause[c] for c in ("1.1", "1.2", "1.3", "1.6", "2.1")},
        "clauses.none.1": moderators,
        "clauses.total": bot_total,
        "clauses.total.1": moderators,
        **{f"categories.{c}": n for c, n in tally.categories.items()},
        "platforms.console": tally.checked,
        "platforms.console.1": bot_total,
        "escalations.decided": escalations,
        "escalations.upheld": len(tally.escalation_waits["uphold"]),
        "escalations.dismissed": len(tally.escalation_waits["dismiss"]),
        "escalations.dismissed_share": round(len(tally.escalation_waits["dismiss"])
                                             / escalations, 4),
        "escalations.median_hours_to_decision": statistics.median(
            h for v in tally.escalation_waits.values() for h in v),
        "appeals.against_bot": tally.appeals["bot"],
        "appeals.against_moderators": tally.appeals["moderators"],
        "appeals.made": tally.appeals["bot"] + tally.appeals["moderators"],
        "appeals.decided": decided,
        "appeals.granted": tally.appeals["granted"],
        "appeals.rejected": tally.appeals["rejected"],
        "appeals.overturn_rate": round(tally.appeals["granted"] / decided, 4),
        "appeals.median_hours_to_decision": statistics.median(tally.appeal_waits),
        **{f"shadow.{k}": tally.shadow[k] for k in ("checked", "warn", "hide", "escalate")},
        "shadow.total": tally.shadow["warn"] + tally.shadow["escalate"],
    }


def test_every_figure_matches_what_happened(database: tuple[Target, Tally]) -> None:
    path, tally = database
    report = asyncio.run(report_of(path, min_count=1))  # nothing suppressed
    got = figures(report)
    want = expected(tally)
    assert {k: got[k].value for k in want} == pytest.approx(want)
    assert tally.bot["warn"] >= 10 and tally.bot["escalate"] >= 1
    assert tally.ladder_timeouts >= 1 and tally.appeals["granted"] >= 1
    # the message at 00:30 BST on 1 October is in the London quarter, not in the UTC one
    utc = figures(asyncio.run(report_of(path, min_count=1, tz="UTC")))
    assert utc["summary.messages_checked"].value == tally.checked - 1
    assert report.models == ("keyword-test 1",) and report.policy_versions == ("test-1",)
    assert report.start == "2026-10-01" and report.end == "2026-12-31"


def test_shadow_verdicts_are_not_actions(database: tuple[Target, Tally]) -> None:
    path, tally = database
    got = figures(asyncio.run(report_of(path, min_count=1)))
    # 8 would-be warnings and 4 would-be escalations in the shadow channel, one of them
    # dismissed on review: none is an action or an escalation decided, each a message checked
    assert (got["shadow.warn"].value, got["shadow.escalate"].value) == (8, 4)
    assert got["bot.warn"].value == tally.bot["warn"] == 14
    assert got["bot.escalate"].value == tally.bot["escalate"] == 4
    assert got["summary.bot_actions"].value == sum(tally.bot.values()) == 18
    assert got["escalations.decided"].value == 3
    assert got["summary.messages_checked"].value == tally.checked
    assert got["summary.shadow_would_have_acted"].value == 12


def test_small_counts_are_suppressed_and_large_ones_exact(
        database: tuple[Target, Tally]) -> None:
    path, tally = database
    report = asyncio.run(report_of(path, min_count=10))
    got, want = figures(report), expected(tally)
    counts = {k: v for k, v in want.items() if isinstance(v, int)}
    for key, n in counts.items():
        cell = got[key]
        if 0 < n < 10:
            assert (cell.value, cell.suppressed, cell.text) == (None, True, "fewer than 10"), key
        elif cell.suppressed:  # withheld so that a small count cannot be worked out
            assert (cell.value, cell.text) == (None, "withheld"), key
        else:
            assert (cell.value, cell.text) == (n, f"{n:,}"), key
    # 14 warnings and 4 escalations make 18 actions (no hides): the warnings would give the
    # escalations away, so they are withheld; the total stays.
    assert want["bot.warn"] >= 10 and 0 < want["bot.escalate"] < 10
    assert got["bot.warn"].text == "withheld" and got["bot.escalate"].text == "fewer than 10"
    assert got["bot.total"].text == str(want["bot.total"])
    assert got["summary.messages_checked"].value == tally.checked
    # shares and medians from a small count are withheld with it
    for key in ("appeals.overturn_rate", "escalations.dismissed_share",
                "escalations.median_hours_to_decision"):
        assert (got[key].value, got[key].text) == (None, "withheld"), key
    # ... and shown once the counts are large enough (min_count 3)
    three = figures(asyncio.run(report_of(path, min_count=3)))
    share = want["appeals.overturn_rate"]
    assert three["appeals.overturn_rate"].text == f"{share * 100:.1f}%"
    assert three["appeals.median_hours_to_decision"].value == pytest.approx(
        want["appeals.median_hours_to_decision"])


async def everything_held(target: Target) -> str:
    """Every value of every row of every table, as text."""
    rows = []
    async with Store.open(target) as store:
        for table, _ in TABLES:
            rows += [repr(tuple(row)) for row in await store._read(f"SELECT * FROM {table}")]
    return "\n".join(rows)


def test_no_name_id_or_text_in_any_format(database: tuple[Target, Tally]) -> None:
    path, tally = database
    held = asyncio.run(everything_held(path)).casefold()  # the markers are all in the database
    assert [m for m in (*MARKERS, *tally.member_ids) if m not in held] == []
    for min_count in (1, 10):
        report = asyncio.run(report_of(path, min_count=min_count))
        for render in (to_markdown, to_html, to_json, to_csv):
            text = render(report).casefold()
            assert "2026-q4" in text
            leaked = [m for m in (*MARKERS, *tally.member_ids) if m.casefold() in text]
            assert leaked == [], (render.__name__, leaked)


def test_the_method_is_generated_from_the_policy(database: tuple[Target, Tally]) -> None:
    path, _ = database
    policy = load_policy(POLICY)
    shadowed = replace(policy, channels=tuple(
        replace(c, mode=Mode.SHADOW) if c.name == "debate" else c for c in policy.channels),
        transparency_min_count=5)

    async def build() -> Report:
        async with Store.open(path) as store:
            return await build_report(store, "2026-Q4", policy=shadowed)

    method = " ".join(asyncio.run(build()).method)
    assert "made by the model keyword-test 1, under policy version test-1" in method
    assert "runs in enforce mode" in method and "In #policy-debate it runs in shadow" in method
    assert "The bot warns by itself (a private notice" in method
    assert "the rules profanity (1.1)" in method
    assert ("abuse aimed at the MPs, councillors and staff the policy protects (1 person, not "
            "named here; clause 1.4)") in method
    assert "Adler" not in method  # protected persons are counted, never named
    assert "any post by a member who is suspended or expelled (clause 2.1)" in method
    assert "Every escalation is reviewed by a moderator" in method
    assert "At 3 strike points: a timeout of 1 hour, set automatically." in method
    assert 'Figures from 1 to 4 are shown as "fewer than 5"' in method


def test_cli_writes_every_format(database: tuple[Target, Tally], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    path, tally = database
    base = ["--policy", str(POLICY), "transparency", "--db", str(path), "--quarter", "2026-Q4"]
    capsys.readouterr()
    assert main(base) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Transparency report 2026-Q4\n")
    assert "| Messages checked by the bot | " + str(tally.checked) + " |" in out
    assert "| Appeals decided | 10 |" in out and "fewer than 10" in out

    assert main([*base, "--format", "json", "--out", str(tmp_path / "r.json")]) == 0
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    summary = next(s for s in data["sections"] if s["key"] == "summary")
    cells = {r["key"]: r["cells"][0] for r in summary["rows"]}
    assert cells["messages_checked"] == {"value": tally.checked, "suppressed": False,
                                         "text": str(tally.checked)}
    assert cells["suspensions"] == {"value": None, "suppressed": True,
                                    "text": "fewer than 10"}

    assert main([*base, "--format", "csv", "--out", str(tmp_path / "r.csv")]) == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text(encoding="utf-8"))))
    shown = {(r["section"], r["row"], r["column"]): r for r in rows}
    assert shown[("summary", "messages_checked", "2026-Q4")]["value"] == str(tally.checked)
    small = shown[("summary", "suspensions", "2026-Q4")]
    assert (small["value"], small["suppressed"], small["shown"]) == ("", "true",
                                                                     "fewer than 10")

    assert main([*base, "--format", "html", "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<h2>How moderation works</h2>" in page
    for text in (out, page, (tmp_path / "r.csv").read_text(encoding="utf-8"),
                 (tmp_path / "r.json").read_text(encoding="utf-8")):
        assert not [m for m in (*MARKERS, *tally.member_ids) if m in text.casefold()]


@pytest.mark.parametrize("quarter", ["2026-Q5", "Q4", "2026-Q0", "2026Q4", "26-Q4", "2026-W47"])
def test_cli_refuses_a_bad_quarter_naming_the_form(
        existing: Path, quarter: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transparency", "--db", str(existing), "--quarter", quarter]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"not a quarter: '{quarter}'" in err and "YEAR-QN, e.g. 2026-Q4" in err


def test_cli_refuses_a_missing_database_and_an_unknown_zone(
        existing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.sqlite3"
    assert main(["transparency", "--db", str(missing), "--quarter", "2026-Q4"]) == 2
    assert not missing.exists()
    assert "there is no database" in capsys.readouterr().err
    assert main(["transparency", "--db", str(existing), "--tz", "Mars/Olympus"]) == 2
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err


def test_an_empty_quarter_reads_zero_with_nothing_to_compute(
        database: tuple[Target, Tally]) -> None:
    path, _ = database

    async def build() -> Report:
        async with Store.open(path) as store:
            return await build_report(store, "2025-Q1", policy=load_policy(POLICY))

    report = asyncio.run(build())
    got = figures(report)
    assert got["summary.messages_checked"] == Cell(0, False, "0")
    assert got["appeals.overturn_rate"] == Cell(None, False, "–")
    assert "No messages were checked this quarter." in report.method
