"""The weekly digest against a real store on each backend (a SQLite file, a PostgreSQL
database) filled by direct inserts.

Every figure is checked against counts computed independently here from the generated rows.
"""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.database import Target
from bot.digest import build_digest, last_complete_week, parse_week, to_markdown
from bot.policy import Policy
from bot.store import Store, iso
from bot.store.driver import Connection

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # Wednesday of W48: the last complete is W47
CATS = ("toxicity", "insult", "threat", "harassment")


def _week(moment: datetime) -> str:
    year, number, _ = moment.astimezone(LONDON).isocalendar()
    return f"{year}-W{number:02d}"


@asynccontextmanager
async def writing(target: Target) -> AsyncIterator[Connection]:
    """One transaction on the database (created and migrated if new), for direct inserts."""
    async with Store.open(target) as store, store.transaction() as db:
        yield db


async def insert_messages(target: Target, items: list[dict[str, Any]]) -> None:
    """Write members, messages and verdicts straight into the database."""
    async with writing(target) as db:
        for item in items:
            await db.execute("INSERT INTO members (id, display_name, status, "
                             "membership_number, created_at) VALUES (?,?,?,?,?) "
                             "ON CONFLICT DO NOTHING",
                             (item["member"], f"Name {item['member']}",
                              item.get("status", "active"), f"N{item['member']}", iso(NOW)))
            async with db.execute(
                    "INSERT INTO messages (platform, message_id, revision, channel, "
                    "channel_name, author, member_id, text, sent_at, received_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?) RETURNING id",
                    (item["platform"], item["id"], 0, item["channel"],
                     f"name-{item['channel']}", item["member"], item["member"],
                     item.get("text", "secret text"), iso(item["at"]), iso(item["at"]))) as cur:
                (message_row,) = await cur.fetchone()
            await db.execute(
                "INSERT INTO verdicts (message_row, action, severity, categories, rule_ids, "
                "clause, scores, thresholds, model, model_version, policy_version, reasons, "
                "decided_at, mode) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (message_row, item["action"], 1, json.dumps(item["cats"]),
                 json.dumps(item["rules"]), item.get("clause"), "{}", "{}", "t", "1", "1", "[]",
                 iso(item["at"]), item.get("mode", "enforce")))


def generate(seed: int = 7) -> list[dict[str, Any]]:
    """A few hundred messages across W46 and W47 of 2026 (and a few outside them)."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # Monday of W45
    items = []
    for i in range(600):
        at = start + timedelta(seconds=rng.randrange(21 * 86400))
        member = f"m{rng.randrange(25)}"
        status = "suspended" if member == "m3" else "expelled" if member == "m4" else "active"
        roll = rng.random()
        if status != "active":
            action = rng.choice(("hide", "escalate"))
            cats, rules = ["sanctioned"], ["sanctioned"]
        elif roll < 0.7:
            action, cats, rules = "allow", [], []
        else:
            action = rng.choice(("warn", "hide", "escalate"))
            cats = rng.sample(CATS, rng.choice((1, 2)))
            rules = [f"protected:{rng.choice(('mp-a', 'cllr-b'))}"] \
                if action == "escalate" and rng.random() < 0.6 else []
        items.append({"id": f"x{i}", "at": at, "member": member, "status": status,
                      "platform": rng.choice(("discord", "slack")),
                      "channel": f"c{rng.randrange(6)}", "action": action, "cats": cats,
                      "rules": rules})
    return items


def _expected(items: list[dict[str, Any]], week: str) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {k: Counter() for k in
                                    ("actions", "cats", "channels", "platforms", "acted_by",
                                     "protected", "sanctioned_attempted", "sanctioned_hidden",
                                     "sanctioned_escalated", "platform_acted")}
    for item in items:
        if _week(item["at"]) != week:
            continue
        out["actions"][item["action"]] += 1
        out["channels"][f"#name-{item['channel']} ({item['platform']})"] += 1
        out["platforms"][item["platform"]] += 1
        if item["action"] != "allow":
            out["acted_by"][item["member"]] += 1
            out["platform_acted"][item["platform"]] += 1
            for c in item["cats"]:
                out["cats"][c] += 1
        if item["action"] == "escalate":
            for r in item["rules"]:
                if r.startswith("protected:"):
                    out["protected"][r.removeprefix("protected:")] += 1
        if "sanctioned" in item["cats"]:
            out["sanctioned_attempted"][item["member"]] += 1
            out["sanctioned_hidden"][item["member"]] += item["action"] == "hide"
            out["sanctioned_escalated"][item["member"]] += item["action"] == "escalate"
    return out


async def test_figures_match_independent_counts(database: Target) -> None:
    items = generate()
    await insert_messages(database, items)
    this, last = _expected(items, "2026-W47"), _expected(items, "2026-W46")
    async with Store.open(database, clock=lambda: NOW) as store:
        d = await build_digest(store)  # default: the last complete week
    assert d.week == "2026-W47" and d.start == "2026-11-16" and d.end == "2026-11-22"
    assert d.messages.this_week == sum(this["actions"].values()) > 100
    assert d.messages.last_week == sum(last["actions"].values()) > 100
    assert {f.key: (f.this_week, f.last_week) for f in d.actions} == {
        a: (this["actions"][a], last["actions"][a]) for a in ("allow", "warn", "hide",
                                                             "escalate")}
    assert {f.key: (f.this_week, f.last_week) for f in d.categories} == {
        k: (this["cats"][k], last["cats"][k]) for k in set(this["cats"]) | set(last["cats"])}
    assert {f.key: f.this_week for f in d.channel_messages} == dict(this["channels"])
    assert {f.key: f.last_week for f in d.channel_messages} == dict(last["channels"])
    assert {f.key: f.this_week for f in d.platform_messages} == dict(this["platforms"])
    assert {f.key: f.this_week for f in d.platform_actions} == dict(this["platform_acted"])
    assert sum(f.this_week for f in d.channel_actions) == sum(this["acted_by"].values())
    repeat = {m: n for m, n in this["acted_by"].items() if n >= 2}
    assert {r.member: (r.acted, r.acted_last_week) for r in d.repeat_offenders} == {
        m: (n, last["acted_by"][m]) for m, n in repeat.items()}
    assert {s.member: (s.status, s.attempted, s.hidden, s.escalated)
            for s in d.sanctioned} == {
        m: ({"m3": "suspended", "m4": "expelled"}[m], n, this["sanctioned_hidden"][m],
            this["sanctioned_escalated"][m]) for m, n in this["sanctioned_attempted"].items()}
    assert {f.key: (f.this_week, f.last_week) for f in d.protected} == {
        k: (this["protected"][k], last["protected"][k])
        for k in set(this["protected"]) | set(last["protected"])}
    assert sum(x.messages for x in d.days) == d.messages.this_week
    assert sum(x.escalate for x in d.days_last_week) == last["actions"]["escalate"]
    # Names and text stay out unless asked for.
    text = d.to_json()
    assert "Name m" not in text and "secret text" not in text


async def test_names_only_when_allowed(database: Target) -> None:
    await insert_messages(database, generate())
    async with Store.open(database, clock=lambda: NOW) as store:
        d = await build_digest(store, "2026-W47", show_names=True)
    assert d.repeat_offenders and all(r.member.startswith("Name m") and "(Nm" in r.member
                                      for r in d.repeat_offenders)


def _at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def test_week_boundaries_follow_london_summer_time(database: Target) -> None:
    assert date(2026, 6, 29).weekday() == 0  # Monday of 2026-W27, in British Summer Time
    base = {"member": "m1", "platform": "discord", "channel": "c", "action": "allow",
            "cats": [], "rules": []}
    await insert_messages(database, [
        {**base, "id": "before", "at": _at(2026, 6, 28, 22, 30)},   # Sun 23:30 BST: W26
        {**base, "id": "first", "at": _at(2026, 6, 28, 23, 30)},    # Mon 00:30 BST: W27
        {**base, "id": "last", "at": _at(2026, 7, 5, 22, 59)},      # Sun 23:59 BST: W27
        {**base, "id": "next", "at": _at(2026, 7, 5, 23, 30)},      # Mon 00:30 BST: W28
    ])
    async with Store.open(database) as store:
        london = await build_digest(store, "2026-W27")
        utc = await build_digest(store, "2026-W27", tz="UTC")
        following = await build_digest(store, "2026-W28")
    assert (london.messages.this_week, london.messages.last_week) == (2, 1)
    assert london.days[0].messages == 1 and london.days[6].messages == 1
    assert (utc.messages.this_week, utc.messages.last_week) == (2, 2)
    assert utc.days[6].messages == 2  # both Sunday-evening messages are Sunday in UTC
    assert following.messages.this_week == 1


async def test_cases_appeals_calibration_and_evidence(database: Target) -> None:
    week = parse_week("2026-W47")
    assert week == date(2026, 11, 16)
    t0 = _at(2026, 11, 16, 9)
    base = {"member": "m1", "platform": "slack", "channel": "c", "action": "escalate",
            "cats": ["threat"], "rules": []}
    await insert_messages(database, [{**base, "id": f"e{i}", "at": t0,
                                      "text": f"evidence {i}"} for i in range(4)])
    end = _at(2026, 11, 23, 0)
    cases = [  # (opened, resolved, appeal outcome)
        (t0, t0 + timedelta(hours=2), None),
        (t0, t0 + timedelta(hours=10), "upheld"),
        (t0, t0 + timedelta(hours=30), None),
        (t0 - timedelta(days=3), None, None),               # still open, opened in W46
        (t0, end + timedelta(hours=1), None),               # resolved after the week: open then
    ]
    async with writing(database) as db:
        for i, (opened, resolved, outcome) in enumerate(cases, start=1):
            await db.execute("INSERT INTO cases (id, member_id, kind, state, priority, "
                             "summary, automatic, opened_by, appeal_outcome, opened_at, "
                             "updated_at, resolved_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                             (i, "m1", "escalation", "open" if resolved is None else "upheld",
                              i, "s", 1, "bot", outcome, iso(opened), iso(opened),
                              iso(resolved) if resolved else None))
        await db.execute("INSERT INTO case_messages (case_id, message_row, verdict_id) "
                         "VALUES (4, 1, 1)")
        # A shadow case reviewed in the week is calibration, not a case resolved.
        await db.execute("INSERT INTO cases (id, member_id, kind, state, priority, summary, "
                         "automatic, opened_by, opened_at, updated_at, resolved_at) "
                         "VALUES (6, 'm1', 'shadow', 'dismissed', 1, 's', 1, 'bot', ?, ?, ?)",
                         (iso(t0), iso(t0), iso(t0 + timedelta(hours=1))))
        for case_id, at in ((2, t0 + timedelta(hours=20)), (3, t0 + timedelta(days=2))):
            await db.execute("INSERT INTO case_events (case_id, at, actor, event) "
                             "VALUES (?,?,?,?)", (case_id, iso(at), "m1", "appealed"))
        reviews = [("dismissed", ["threat"]), ("upheld", ["threat"]), ("upheld", ["threat"]),
                   ("dismissed", ["insult", "threat"])]
        for outcome, cats in reviews:
            await db.execute("INSERT INTO reviews (verdict_id, case_id, outcome, moderator, "
                             "categories, at) VALUES (1, 1, ?, 'mod', ?, ?)",
                             (outcome, json.dumps(cats), iso(t0)))
    async with Store.open(database) as store:
        d = await build_digest(store, "2026-W47", quote_evidence=True)
        plain = await build_digest(store, "2026-W47")
    assert [e.case for e in d.open_escalations] == [5, 4]  # priority first
    assert d.open_escalations[1].age_hours == pytest.approx(
        (end - (t0 - timedelta(days=3))).total_seconds() / 3600)
    assert d.open_escalations[1].evidence == ("evidence 0",)
    assert plain.open_escalations[1].evidence == ()
    assert d.resolved.this_week == 3
    assert d.median_resolution_hours == statistics.median([2, 10, 30])
    assert d.appeals.this_week == 2
    assert {f.key: f.this_week for f in d.appeal_outcomes} == {"upheld": 1, "pending": 1}
    calibration = {c.category: (c.reviewed, c.dismissed, c.share_dismissed)
                   for c in d.calibration}
    assert calibration == {"threat": (4, 2, 0.5), "insult": (1, 1, 1.0)}
    assert "evidence 0" in d.to_json() and "evidence 0" not in plain.to_json()


async def test_repeat_offenders_net_of_dismissals_and_pardons_shadow_apart(
        database: Target, test_policy: Policy) -> None:
    t0 = _at(2026, 11, 17, 9)
    base = {"platform": "discord", "channel": "c", "action": "warn", "cats": ["insult"],
            "rules": [], "clause": "1.1"}
    counts = {"dismissed": 3, "pardoned": 3, "pardoned-once": 2, "shadowed": 3, "kept": 2}
    await insert_messages(database, [
        {**base, "id": f"{member}{i}", "member": member, "at": t0 + timedelta(hours=i),
         "mode": "shadow" if member == "shadowed" else "enforce"}
        for member, n in counts.items() for i in range(n)])
    async with writing(database) as db:
        verdicts = await db.execute_fetchall("SELECT v.id, m.member_id, m.message_id "
                                             "FROM verdicts v JOIN messages m "
                                             "ON m.id = v.message_row")
        for verdict_id, member, message_id in verdicts:
            if member == "shadowed":
                continue  # shadow mode: no strike
            pardoned = iso(t0 + timedelta(days=9)) if message_id in (
                "pardoned0", "pardoned-once0") else None  # long after the week: still counts
            await db.execute("INSERT INTO strikes (member_id, verdict_id, points, reason, at, "
                             "pardoned_at) VALUES (?,?,1,'warn',?,?)",
                             (member, verdict_id, iso(t0), pardoned))
            if member == "dismissed":
                state = "dismissed" if message_id != "dismissed2" else "upheld"
                async with db.execute(
                        "INSERT INTO cases (member_id, kind, state, summary, automatic, "
                        "opened_by, opened_at, updated_at) VALUES (?, 'warning', ?, 's', 1, "
                        "'bot', ?, ?) RETURNING id", (member, state, iso(t0), iso(t0))) as cur:
                    (case_id,) = await cur.fetchone()
                await db.execute("INSERT INTO case_messages (case_id, message_row, verdict_id) "
                                 "SELECT ?, message_row, id FROM verdicts WHERE id = ?",
                                 (case_id, verdict_id))
    async with Store.open(database) as store:
        d = await build_digest(store, "2026-W47", policy=test_policy)
    # Two of "dismissed"'s three warnings were dismissed and one of "pardoned-once"'s two
    # pardoned: one offence each is no repeat; "pardoned" keeps two, and two points.
    assert {r.member: (r.acted, r.points, r.points_total) for r in d.repeat_offenders} == {
        "pardoned": (2, 2, 2), "kept": (2, 2, 2)}
    # What was done still happened: the action counts are every enforced verdict.
    assert {f.key: f.this_week for f in d.actions}["warn"] == 3 + 3 + 2 + 2
    assert (d.clauses[0].clause, d.clauses[0].warn) == ("1.1", 10)
    assert d.clauses[0].label == "1.1 Treat others with respect"
    assert {f.key: f.this_week for f in d.shadow} == {"warn": 3, "hide": 0, "escalate": 0}
    assert [(c.label, c.warn) for c in d.shadow_clauses] == [
        ("1.1 Treat others with respect", 3)]
    assert "## Shadow mode: would have acted" in to_markdown(d)


async def test_open_case_age_of_a_week_in_progress_runs_to_now(database: Target) -> None:
    opened = _at(2026, 11, 18, 12, 0)  # Wednesday of W47
    clock = [opened + timedelta(minutes=10)]
    async with writing(database) as db:
        await db.execute("INSERT INTO members (id, display_name, created_at) "
                         "VALUES ('m1', 'M', ?)", (iso(opened),))
        await db.execute("INSERT INTO cases (member_id, kind, state, priority, summary, "
                         "automatic, opened_by, opened_at, updated_at) VALUES ('m1', "
                         "'escalation', 'open', 2, 's', 1, 'bot', ?, ?)",
                         (iso(opened), iso(opened)))
    async with Store.open(database, clock=lambda: clock[0]) as store:
        now = await build_digest(store, "2026-W47")
        clock[0] = _at(2026, 12, 1, 9)
        after = await build_digest(store, "2026-W47")
    assert now.in_progress and now.open_escalations[0].age_hours == pytest.approx(1 / 6, 0.05)
    assert "| 10 minutes |" in to_markdown(now)
    assert not after.in_progress
    assert after.open_escalations[0].age_hours == (_at(2026, 11, 23) - opened).total_seconds(
    ) / 3600
    assert "| 4 days 12 hours |" in to_markdown(after)


def test_last_complete_week_in_london() -> None:
    # Monday 00:30 BST is still Sunday in UTC: the week that just ended is already complete.
    assert last_complete_week(_at(2026, 7, 5, 23, 30), tz="Europe/London") == date(2026, 6, 29)
    assert last_complete_week(_at(2026, 7, 5, 23, 30), tz="UTC") == date(2026, 6, 22)
    with pytest.raises(ValueError):
        parse_week("2026-47")


def test_cli_digest_writes_every_format(database: Target, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio
    import csv

    from bot.cli import main
    from bot.digest import Digest

    asyncio.run(insert_messages(database, generate()))
    week = ["digest", "--db", str(database), "--week", "2026-W47"]
    assert main([*week, "--format", "json", "--out", str(tmp_path / "d.json")]) == 0
    d = Digest.from_json((tmp_path / "d.json").read_text(encoding="utf-8"))
    assert d.week == "2026-W47" and d.messages.this_week > 100
    assert main([*week, "--format", "csv", "--out", str(tmp_path / "d.csv")]) == 0
    rows = list(csv.reader((tmp_path / "d.csv").open(encoding="utf-8")))
    assert rows[1] == ["messages", "total", str(int(d.messages.this_week)),
                       str(int(d.messages.last_week)), str(int(d.messages.change))]
    assert main([*week, "--format", "html", "--out", str(tmp_path / "d.html")]) == 0
    page = (tmp_path / "d.html").read_text(encoding="utf-8")
    assert 'src="data:image/png;base64,' in page
    assert "<td>1.4 No harassment of members, representatives or staff</td>" in page
    capsys.readouterr()
    assert main(week) == 0
    assert capsys.readouterr().out.startswith("# Weekly moderation digest 2026-W47")
    assert main(["digest", "--db", str(tmp_path / "missing.sqlite3")]) == 2
    assert not (tmp_path / "missing.sqlite3").exists()
    assert main([*week[:3], "--week", "2026-47"]) == 2


async def test_floods_spam_and_raids_counted_by_kind(database: Target, policy: Policy) -> None:
    rng = random.Random(15)
    kinds = ("rate-channel", "rate-overall", "campaign", "pile-on", "invite", "raid")
    start = _at(2026, 11, 9, 0)  # Monday of W46: last week, then W47, then a few days of W48
    items: list[dict[str, Any]] = []
    for i in range(400):
        at = start + timedelta(seconds=rng.randrange(17 * 86400))
        found = rng.sample(kinds, rng.choice((0, 0, 1, 1, 2)))
        rules = [f"spam:{k}" for k in found]
        if rng.random() < 0.2:  # other findings alongside, or alone
            rules.append(rng.choice(("insult-member", "protected:adler")))
        action = rng.choice(("warn", "hide", "escalate")) if rules else "allow"
        items.append({"id": f"s{i}", "at": at, "member": f"m{rng.randrange(30)}",
                      "platform": "discord", "channel": "c1", "action": action,
                      "cats": ["spam"] if found else [], "rules": rules,
                      "clause": "1.7" if found else None,
                      "mode": "shadow" if rng.random() < 0.1 else "enforce"})
    await insert_messages(database, items)
    raids = [  # (started, ended, accounts, response)
        (_at(2026, 11, 12, 20), _at(2026, 11, 12, 21), 11, "slowmode,timeout"),  # W46
        (_at(2026, 11, 17, 20), _at(2026, 11, 17, 20, 40), 14, "slowmode,timeout"),
        (_at(2026, 11, 21, 23, 30), None, 12, "alert"),  # W47, still going
        (_at(2026, 11, 23, 9), None, 30, "alert"),  # W48
    ]
    async with writing(database) as db:
        for i, (started, ended, accounts, response) in enumerate(raids, start=1):
            await db.execute("INSERT INTO raids (id, platform, channel, channel_name, "
                             "started_at, ended_at, ended_by, accounts, response) "
                             "VALUES (?,?,?,?,?,?,?,?,?)",
                             (i, "discord" if response != "alert" else "slack", f"C{i}",
                              "general", iso(started), iso(ended) if ended else None,
                              "Karen (m1)" if ended else None,
                              json.dumps([[f"raider {n}", str(n)] for n in range(accounts)]),
                              response))
    async with Store.open(database, clock=lambda: NOW) as store:
        d = await build_digest(store, "2026-W47", policy=policy)
        quiet = await build_digest(store, "2026-W44", policy=policy)

    def expected(week: str) -> tuple[Counter[str], int]:
        by_kind: Counter[str] = Counter()
        messages = 0
        for item in items:
            spam = [r for r in item["rules"] if r.startswith("spam:")]
            if _week(item["at"]) == week and item["mode"] == "enforce" and spam:
                messages += 1
                by_kind.update(r.removeprefix("spam:") for r in spam)
        return by_kind, messages

    (this, n_this), (last, n_last) = expected("2026-W47"), expected("2026-W46")
    assert n_this > 30 and n_last > 30 and len(this) == len(kinds)
    assert {f.key: (f.this_week, f.last_week) for f in d.spam} == {
        k: (this[k], last[k]) for k in kinds}
    assert (d.spam_messages.this_week, d.spam_messages.last_week) == (n_this, n_last)
    assert {f.key: f.label for f in d.spam}["campaign"] == "Copy-paste campaign"
    assert (d.raids_started.this_week, d.raids_started.last_week) == (2, 1)
    assert [(r.raid, r.channel, r.accounts, r.response, r.ended_at is None)
            for r in d.raids] == [(2, "#general (Discord)", 14, "slowmode,timeout", False),
                                  (3, "#general (Slack)", 12, "alert", True)]
    assert d.has_spam and not quiet.has_spam
    text = to_markdown(d)
    assert "## Floods, spam and raids" in text
    assert f"| Copy-paste campaign | {this['campaign']} | {last['campaign']} |" in text
    assert "| 2 | #general (Discord) | Tue 17 Nov 2026 20:00 | 14 | alert, slowmode and " \
           "timeouts | Tue 17 Nov 2026 20:40 |" in text
    assert "| 3 | #general (Slack) | Sat 21 Nov 2026 23:30 | 12 | alert only | not ended |" \
        in text
    assert "clause 1.7 No spam, floods or raids" in text
    assert "## Floods, spam and raids" not in to_markdown(quiet)
