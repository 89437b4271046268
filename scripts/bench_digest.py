"""Benchmark: build the weekly digest over a store holding 1,000,000 messages in one week.

Generates the store directly with executemany in large batches (a realistic mix of verdicts,
categories, members, strikes, escalations and sanctioned members), then times `build_digest`
and prints the best of three runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.digest import build_digest, parse_week, week_bounds
from bot.store import Store, iso

WEEK = "2026-W47"
CATEGORIES = ("toxicity", "insult", "threat", "identity_attack", "obscene", "harassment")


def generate(path: Path, *, messages: int, members: int = 20_000, channels: int = 60) -> None:
    """Fill the (already migrated) database at `path` with one week of traffic."""
    rng = random.Random(47)
    start = week_bounds(parse_week(WEEK), tz="Europe/London")[7]
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA journal_mode=WAL")
    now = iso(start)
    db.executemany(
        "INSERT INTO members (id, display_name, status, membership_number, created_at) "
        "VALUES (?,?,?,?,?)",
        [(f"m{i}", f"Member {i}", "suspended" if i % 997 == 0 else "active", f"N{i:07d}", now)
         for i in range(members)])
    batch = 100_000
    row = 0
    for offset in range(0, messages, batch):
        msgs, verdicts, strikes = [], [], []
        for _ in range(min(batch, messages - offset)):
            row += 1
            at = iso(start + timedelta(seconds=rng.random() * 7 * 86400))
            member = rng.randrange(members)
            platform = "discord" if row % 3 else "slack"
            channel = f"C{rng.randrange(channels):03d}"
            msgs.append((row, platform, f"{row}", 0, channel, f"chan-{channel}", f"a{member}",
                         f"m{member}", None, at, at))
            r = rng.random()
            if member % 997 == 0:
                action, cats, rules = ("hide", ["sanctioned"], ["sanctioned"])
            elif r < 0.90:
                action, cats, rules = "allow", [], []
            else:
                action = "warn" if r < 0.96 else "hide" if r < 0.99 else "escalate"
                cats = rng.sample(CATEGORIES, rng.choice((1, 1, 2)))
                rules = [f"protected:mp-{rng.randrange(12)}"] if action == "escalate" and \
                    rng.random() < 0.5 else []
            verdicts.append((row, row, action, 1, json.dumps(cats), json.dumps(rules), "{}",
                             "{}", "bench", "1", "1", "[]", at))
            if action in ("warn", "hide", "escalate"):
                strikes.append((f"m{member}", row, {"warn": 1, "hide": 2}.get(action, 3),
                                action, at))
        db.executemany("INSERT INTO messages (id, platform, message_id, revision, channel, "
                       "channel_name, author, member_id, text, sent_at, received_at) "
                       "VALUES (?,?,?,?,?,?,?,?,?,?,?)", msgs)
        db.executemany("INSERT INTO verdicts (id, message_row, action, severity, categories, "
                       "rule_ids, scores, thresholds, model, model_version, policy_version, "
                       "reasons, decided_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", verdicts)
        db.executemany("INSERT INTO strikes (member_id, verdict_id, points, reason, at) "
                       "VALUES (?,?,?,?,?)", strikes)
        db.commit()
    cases = [(f"m{rng.randrange(members)}", "escalation", "open", 2, "s", 1, "bot",
              iso(start + timedelta(hours=i)), iso(start + timedelta(hours=i)))
             for i in range(150)]
    db.executemany("INSERT INTO cases (member_id, kind, state, priority, summary, automatic, "
                   "opened_by, opened_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)", cases)
    db.commit()
    db.execute("ANALYZE")
    db.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite3"
        async with Store.open(path):
            pass
        began = time.perf_counter()
        generate(path, messages=args.messages)
        print(f"generated {args.messages:,} messages in {time.perf_counter() - began:.1f} s")
        now = datetime(2026, 11, 24, 12, tzinfo=UTC)
        async with Store.open(path) as store:
            times = []
            for _ in range(args.runs):
                began = time.perf_counter()
                digest = await build_digest(store, WEEK, now=now)
                times.append(time.perf_counter() - began)
        print(f"build_digest {WEEK}: {digest.messages.this_week:,.0f} messages, "
              f"{sum(f.this_week for f in digest.actions[1:]):,.0f} acted on, "
              f"{len(digest.repeat_offenders):,} repeat offenders")
        print(f"build_digest best of {args.runs}: {min(times):.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    asyncio.run(main())
