#!/usr/bin/env python3
"""A seeded fuzzing pass over the inputs anyone can hand the bot; not part of `make test`.

Feeds mutated inputs to the policy loader (`parse_policy`), the command parser
(`Commands.run`, as a moderator, a member and a stranger), the register reader
(`parse_register`) and the replay reader (`read_messages`, then each line it accepts through
`Moderator.handle_many` as `bot.py replay` does). An input may be refused with the project's own
error (PolicyError, InputError, a Reply with ok=False, a skipped line); anything else is an
unhandled exception. Prints how many inputs ran and the unhandled exceptions grouped by root
cause (exception type and innermost frame in bot/ or adapters/), with one example each.
Exit status 1 when any input was unhandled. Nothing touches the network.

    .venv/bin/python scripts/fuzz.py                 # ~40,000 inputs, seed 11
    .venv/bin/python scripts/fuzz.py --count 2000 --only policy,replay --seed 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.console import LineError, read_messages  # noqa: E402
from bot.commands import COMMANDS, Commands, Reply  # noqa: E402
from bot.errors import ConductError, InputError, PolicyError  # noqa: E402
from bot.models import Account, MemberStatus, Message, Platform, Role  # noqa: E402
from bot.moderator import Moderator  # noqa: E402
from bot.policy import load_policy, parse_policy  # noqa: E402
from bot.register import parse_register  # noqa: E402
from bot.scoring import Batcher  # noqa: E402
from bot.store import Store  # noqa: E402

TARGETS = ("policy", "commands", "register", "replay")
#: Share of the inputs each target gets (commands and replay touch SQLite, so cost more).
WEIGHTS = {"policy": 0.3, "commands": 0.2, "register": 0.3, "replay": 0.2}
POLICY_SEEDS = (ROOT / "tests" / "fixtures" / "policy.toml", ROOT / "policies" / "default.toml")

# -- interesting values -------------------------------------------------------------------------

#: Strings that have broken parsers before: invisible and control characters, surrogates,
#: huge numbers, odd digits, quotes, escapes.
NASTY = [
    "", " ", "\t", "\x00", "\x1b[31mred\x1b[0m", "\x1b]0;title\x07", "\x9b2J", "\x85", "\x7f",
    "\u202eevil", "\u2066x\u2069", "\u200b", "Karen\u200bLomax", "\ufeff", "\u00ad", "\ud800",
    "\udfff", "a\ud83dz", "²", "١٢٣", "1e400", "nan", "inf", "-1", "0", "00", "#0", "#", "##1",
    "9223372036854775807", "9223372036854775808", "18446744073709551616", "9" * 30, "9" * 5000,
    "1" * 19, "-9223372036854775809", '"', "“", "”", '""', "'", "\\", "%s", "{}", "[", "]",
    "(?i)", "a(?i)b", "(", "*", "x" * 300, "é" * 50, "𝕏", "🏴󠁧󠁢󠁥󠁮󠁧󠁿", "0x10", "1_000",
    "Ⅻ", "３", "1.5", "+1", " 1", "1 ", "None", "null", "true",
]
DURATIONS = ["1h", "30m", "3d", "2w", "3mo", "1y", "999999999999y", "99999999999999999999d",
             "0d", "-1d", "1M", "3m", "indefinite", "forever", "1e9d", "١d", "²d", "1 d",
             "28d", "29d", "36500d", "36501d", "nan", "inf", "9" * 5000 + "d", "1 year"]
NUMBERS = ["0", "1", "-1", "0.5", "1.5", "nan", "inf", "-inf", "+inf", "1e400", "-0.0",
           "9" * 30, "9" * 5000, "9223372036854775808", "0x7fffffffffffffffffff", "1_0",
           "true", "false", '""', "[]", "{}", '"0.5"', "1979-05-27", "07:32:00",
           "1979-05-27T07:32:00Z"]
TOML_VALUES = [
    *NUMBERS, '"warn"', '"hide"', '"escalate"', '"allow"', '"keyword"', '"regex"', '"1.1"',
    '"9.9"', '""', '" "', '"\\u0000"', '"\\u001b[2J"', '"\\u202e"', '"\\u200b"', '["", ""]',
    '[" "]', '["  ", "x"]', '["(?i)x"]', '["a(?i)b"]', '["(", ")"]', '["[" ]', '["*"]',
    '["x", 1]', "[[1]]", "{a = 1}", '{warn = "x"}', '["(?x) a b"]', '["a{1,99999999999}"]',
    '["(a*)*b"]', '["\\\\"]', '["\\\\b"]', '"(?i)threat"', '"Europe/Nowhere"', '"UTC"',
    '"../../etc/passwd"', '"\\ud800"',
    *(f'"{d}"' for d in DURATIONS),
    "[" * 400 + "]" * 400, "[" * 5000 + "]" * 5000, "{a = " * 300 + "1" + "}" * 300,
]
TOML_LINES = [
    "[members.foo]", "[members.active]", "[members.suspended]", "[members]\nfoo = 1",
    "[members.suspended]\naction = \"hide\"\nclause = \"1.1\"\npriority = 99",
    "[categories.foo]", "[categories.toxicity]\nwarn = nan", "[categories.insult]\nhide = inf",
    "[channels.x]\nmatch = [\"\"]", "[channels.x.categories.toxicity]\nwarn = nan",
    "[channels.y.categories.foo]\nwarn = 0.5", "[channels.z]\nskip_rules = [\"nope\"]",
    "[[rules]]\nid = \"x\"\nclause = \"1.1\"\nkind = \"keyword\"\npatterns = [\" \"]\n"
    "action = \"warn\"\ncategory = \"insult\"",
    "[[rules]]\nid = \"y\"\nclause = \"1.1\"\nkind = \"regex\"\npatterns = [\"a(?i)b\"]\n"
    "action = \"warn\"\ncategory = \"insult\"",
    "[[rules]]\nid = \"z\"\nclause = \"1.1\"\nkind = \"regex\"\npatterns = [\"(?i)b\", \"c\"]\n"
    "action = \"hide\"\ncategory = \"threat\"",
    "[[rules]]\nid = \"w\"\nclause = \"1.1\"\nkind = \"keyword\"\npatterns = [\"\\t\"]\n"
    "action = \"warn\"\ncategory = \"insult\"",
    "[strikes]\nwarn = nan", "[strikes]\nhalf_life = \"999999999999y\"",
    "[strikes]\nexpire_after = \"99999999999d\"", "[[strikes.ladder]]\npoints = nan",
    "[[strikes.ladder]]\npoints = inf\ntimeout = \"99999999y\"",
    "[[strikes.ladder]]\npoints = 1e308\ntimeout = \"1h\"",
    "[sanctions]\nmax_timeout = \"999999999999y\"", "[sanctions]\nretention = \"0d\"",
    "[sanctions]\naudit_retention = \"100y\"\nretention = \"99y\"",
    "[sanctions]\ntimezone = \"../../etc\"", "[sanctions]\ntimezone = \"\"",
    "[protected]\nmin_score = nan", "[[protected.persons]]\nid = 1",
    "[doxxing]\ndetect = [\"x\"]", "[[clauses]]\nid = \"\"", "[[clauses]]",
    "x = " + "[" * 2000, "x = " + "{a = " * 1500, "[" + " " * 3000, "[[" + "a." * 2000 + "a]]",
    "[" + ".".join(["a"] * 1500) + "]", "a" * 5000 + " = 1", "\"" + "k" * 3000 + "\" = 2",
    "version = " + "9" * 5000, "version = 1e400", "version = nan", "version = true",
    "version = 1979-05-27", "= 1", "[]", "[[]]", "[a]\n[a]", "[[a]]\n[a]",
    "x = \"\"\"", "x = '''", "x = \"\\ud800\"", "x = \"\\U0010FFFF\"", "\x00", "\ufeff",
]
CSV_CELLS = [
    *NASTY, "M0001", "M0002", "m0003", "ABCD", "ABC", "A" * 13, "active", "suspended",
    "expelled", "lapsed", "ACTIVE", "moderator", "moderator;mp", "moderator,mp", "staff;;",
    "2026-11-20", "2026-11-20T09:30:00Z", "2026-11-20 09:30", "99999-01-01", "0001-01-01",
    "0001-01-01T00:00:00+14:00", "9999-12-31", "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59", "2026-02-30", "2026-11-20T25:00", "2026-11-20Tnonsense",
    "100000000000000001", "012345678901234567", "1" * 21, "U01234567", "W0123456789A",
    "u01234567", "karen", "has space", "k" * 65, "Karen Lomax", "Karen\u200b Lomax",
    "\u200bKaren Lomax", "Kar\u00aden", "Mohammad\u200cReza", "محمد\u200cرضا", "\u202eamol",
    "Ann\x1b[2J", "Ann\x9b", "\u2067x", "Ann\r\nBob", '"quoted, comma"', "x" * 200_000,
]
JSON_VALUES: list[object] = [
    None, True, False, 0, -1, 1, 2**63 - 1, 2**63, 2**64, -(2**63), 1.5, float("inf"),
    float("nan"), "", " ", "\ud800", "a\udfffb", "\x00", "\x1b[2J", "\u202e", "\u200b", "²",
    [], {}, [1], {"a": 1}, "x" * 5000, "99999-01-01T00:00:00", "+99999-01-01T00:00:00",
    "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "0001-01-01", "2026-11-20",
    "2026-11-20T10:00:00Z", "2026-11-20T10:00:00+01:00", "2026-13-40T99:00:00Z", "1e400",
    "discord", "slack", "console", "teams", "Karen Lomax", "Karen\u200bLomax",
]
RAW_JSON = ["1" * 5000, "[" * 100_000 + "]" * 100_000, "1e400", "-1e400", "NaN", "Infinity",
            '"\\ud800"', '"\\udfff\\ud800"', '{"a":' * 3000 + "1" + "}" * 3000]

# -- mutation ---------------------------------------------------------------------------------


def mutate_text(rng: random.Random, text: str, *, lines: Sequence[str], values: Sequence[str],
                cells: bool = False) -> str:
    """One to four random edits: lines dropped, doubled, swapped or inserted, values replaced,
    characters inserted, the text cut short."""
    rows = text.split("\n")
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(rows)) if rows else 0
        op = rng.randrange(9)
        if op == 0 and rows:
            del rows[i]
        elif op == 1 and rows:
            rows.insert(i, rows[i])
        elif op == 2 and len(rows) > 1:
            j = rng.randrange(len(rows))
            rows[i], rows[j] = rows[j], rows[i]
        elif op == 3:
            rows.insert(i, rng.choice(lines))
        elif op in (4, 5) and rows:
            sep = "," if cells else "="
            if sep in rows[i]:
                parts = rows[i].split(sep)
                k = rng.randrange(1, len(parts)) if not cells else rng.randrange(len(parts))
                parts[k] = rng.choice(values) if not cells else _csv_cell(rng)
                rows[i] = sep.join(parts)
        elif op == 6 and rows:
            row = rows[i]
            k = rng.randrange(len(row) + 1)
            rows[i] = row[:k] + rng.choice([*NASTY, "[", "]", "=", '"', "'", "#", "{", ","]) + \
                row[k:]
        elif op == 7 and rows:
            rows = rows[:i]
        elif op == 8 and rows:
            row = rows[i]
            k = rng.randrange(len(row) + 1)
            rows[i] = row[:k] + "".join(chr(rng.randrange(0x110000)) for _ in range(3)) + row[k:]
    return "\n".join(rows)


def _csv_cell(rng: random.Random) -> str:
    cell = rng.choice(CSV_CELLS)
    if any(ch in cell for ch in ',"\r\n') and rng.random() < 0.7:
        cell = '"' + cell.replace('"', '""') + '"'
    return cell


# -- targets ----------------------------------------------------------------------------------


@dataclass
class Tally:
    """Inputs run, refusals seen and unhandled exceptions grouped by root cause."""

    ran: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    causes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def unhandled(self, target: str, exc: BaseException, example: object) -> None:
        key = (f"{target}: {type(exc).__name__}", _frame(exc))
        self.counts[key] += 1
        if key not in self.causes:
            text = repr(example)
            self.causes[key] = [text if len(text) <= 300 else text[:300] + "...",
                                f"{type(exc).__name__}: {str(exc)[:200]}"]


def _frame(exc: BaseException) -> str:
    """The innermost frame in the project's own code (else the innermost of all)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/bot/" in f.filename or "/adapters/" in f.filename]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "?"
    path = Path(frame.filename)
    try:
        name = str(path.relative_to(ROOT))
    except ValueError:
        name = path.name
    return f"{name}:{frame.lineno} in {frame.name}"


def fuzz_policy(rng: random.Random, n: int, tally: Tally) -> None:
    seeds = [p.read_text(encoding="utf-8") for p in POLICY_SEEDS]
    for i in range(n):
        # Mostly the small test policy: the shipped one is big and slower to validate.
        source = seeds[1 if i % 10 == 0 else 0]
        text = mutate_text(rng, source, lines=TOML_LINES, values=TOML_VALUES)
        tally.ran["policy"] += 1
        try:
            parse_policy(text, file="fuzz.toml")
        except PolicyError:
            tally.refused["policy"] += 1
        except Exception as exc:
            tally.unhandled("policy", exc, text)


CSV_HEADER = ("membership_number,name,status,suspended_from,suspended_until,reason,"
              "discord_id,slack_id,console_id,roles")
CSV_ROWS = [
    "M0001,Karen Lomax,active,,,,100000000000000001,,karen,moderator",
    "M0002,Omar Haddad,active,,,,,UOMAR0001,,moderator;staff",
    'M0003,"Smith, Ann",suspended,2026-11-01,2026-12-01,"spam, twice",,,ann,',
    "M0004,Bob Jones,expelled,2026-10-01,,conduct,,,bob,",
    "M0005,Cat Wu,lapsed,,,,,,,",
]


def register_row(rng: random.Random) -> str:
    """A plausible row with a few cells swapped for nasty ones."""
    cells = rng.choice(CSV_ROWS).split(",")
    for _ in range(rng.randint(1, 3)):
        cells[rng.randrange(len(cells))] = _csv_cell(rng)
    return ",".join(cells)


def fuzz_register(rng: random.Random, n: int, tally: Tally) -> None:
    base = "\n".join([CSV_HEADER, *CSV_ROWS]) + "\n"
    for i in range(n):
        if i % 2:
            text = "\n".join([CSV_HEADER, *(register_row(rng)
                                            for _ in range(rng.randint(1, 6)))]) + "\n"
        else:
            text = mutate_text(rng, base, lines=[register_row(rng), *CSV_ROWS, CSV_HEADER, '"',
                                                 '"""', ",,,,"], values=CSV_CELLS, cells=True)
        tally.ran["register"] += 1
        try:
            if parse_register(text, source="fuzz.csv").errors:
                tally.refused["register"] += 1  # rows left out, each with its line
        except InputError:
            tally.refused["register"] += 1
        except Exception as exc:
            tally.unhandled("register", exc, text)


class WordScorer:
    """A deterministic stand-in for the model (the fuzz is about input handling, not scores)."""

    name = "fuzz"
    version = "1"
    categories = ("toxicity", "severe_toxicity", "obscene", "threat", "insult",
                  "identity_attack", "sexual_explicit")

    def score_batch(self, texts: Sequence[str], /) -> list[dict[str, float]]:
        out = []
        for text in texts:
            scores = dict.fromkeys(self.categories, 0.01)
            if "idiot" in text:
                scores["insult"] = scores["toxicity"] = 0.8
            if "vermin" in text:
                scores["identity_attack"], scores["severe_toxicity"] = 0.97, 0.9
            out.append(scores)
        return out


GOOD_LINE: dict[str, object] = {"id": "m1", "channel": "general", "author": "ann",
                                "text": "you idiot", "ts": "2026-11-20T10:00:00Z"}
FIELDS = ["id", "channel", "author", "author_name", "text", "ts", "platform", "revision",
          "reply_to"]


def replay_line(rng: random.Random, i: int) -> str:
    data: dict[str, object] = {**GOOD_LINE, "id": f"m{i}", "author": rng.choice(
        ["ann", "bob", "100000000000000001", "karen"])}
    for _ in range(rng.randint(0, 3)):
        key = rng.choice(FIELDS)
        if rng.random() < 0.15:
            data.pop(key, None)
        else:
            data[key] = rng.choice(JSON_VALUES)
    line = json.dumps(data, ensure_ascii=rng.random() < 0.5)
    if rng.random() < 0.15:
        key = rng.choice(FIELDS)
        line = line[:-1] + f', "{key}": {rng.choice(RAW_JSON)}}}'
    if rng.random() < 0.1:
        k = rng.randrange(len(line) + 1)
        line = line[:k] + rng.choice(NASTY) + line[k:]
    return line


async def fuzz_replay(rng: random.Random, n: int, tally: Tally, db: Path) -> None:
    policy = load_policy(POLICY_SEEDS[0])
    async with Store.open(db) as store, Batcher(WordScorer()) as batcher:
        moderator = Moderator(store=store, policy=policy, scorer=batcher)
        done = 0
        while done < n:
            lines = [replay_line(rng, done + k) for k in range(min(20, n - done))]
            done += len(lines)
            tally.ran["replay"] += len(lines)
            chunk: list[Message] = []
            try:
                for _, item, _warnings in read_messages(lines, source="fuzz.jsonl"):
                    if isinstance(item, LineError):
                        tally.refused["replay"] += 1
                        continue
                    try:
                        moderator.check(item)
                    except ConductError:
                        tally.refused["replay"] += 1
                        continue
                    chunk.append(item)
            except Exception as exc:
                culprit = next((line for line in lines if _fails_alone(line)), lines)
                tally.unhandled("replay", exc, culprit)
                continue
            # A line the reader accepted must go through the pipeline; when a chunk fails,
            # each line alone says which one caused it.
            try:
                await moderator.handle_many(chunk)
            except Exception:
                for message in chunk:
                    try:
                        await moderator.handle_many([message])
                    except Exception as exc:
                        tally.unhandled("replay", exc, message.raw)


class _Caught(logging.Handler):
    """Keeps the exceptions logged with a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


def _fails_alone(line: str) -> bool:
    try:
        list(read_messages([line], source="fuzz.jsonl"))
    except Exception:
        return True
    return False


def command_words(rng: random.Random) -> str | list[str]:
    name = rng.choice([*COMMANDS, *COMMANDS, "", "HELP", "Case", "nope", "²", '"'])
    args: list[str] = []
    for _ in range(rng.randint(0, 4)):
        args.append(rng.choice([
            *NASTY, *DURATIONS, "1", "2", "3", "#1", "#2", "uphold", "dismiss", "karen",
            "Karen Lomax", "M0001", "M0003", "discord:100000000000000001", "console:karen",
            "console:", ":", "slack:UOMAR0001", "mine", "unassigned", "page:2", "page:0",
            "page:99999999999999999999", "clause:1.1", "channel:general", "platform:discord",
            "platform:x", "because", "spam", "discord", "console", "suspended",
        ]))
    if rng.random() < 0.3:  # a list of words, as buttons and adapters pass them
        return [name, *args]
    return " ".join([name, *args])


async def fuzz_commands(rng: random.Random, n: int, tally: Tally, db: Path) -> None:
    policy = load_policy(POLICY_SEEDS[0])
    accounts = [Account(Platform.CONSOLE, "karen"), Account(Platform.SLACK, "UOMAR0001"),
                Account(Platform.DISCORD, "100000000000000001"), Account(Platform.CONSOLE, "x")]
    async with Store.open(db) as store, Batcher(WordScorer()) as batcher:
        moderator = Moderator(store=store, policy=policy, scorer=batcher)
        for number, name, account, roles in (
                ("M0001", "Karen Lomax", accounts[0], {Role.MODERATOR}),
                ("M0002", "Omar Haddad", accounts[1], {Role.MODERATOR}),
                ("M0003", "Ann Member", accounts[2], set())):
            await store.import_member(membership_number=number, name=name,
                                      status=MemberStatus.ACTIVE, roles=roles, reason=None,
                                      suspended_from=None, suspended_until=None,
                                      accounts=[(account.platform, account.id)], actor="fuzz")
        for k, text in enumerate(["you idiot", "immigrants are vermin", "hello", "idiot"]):
            from datetime import UTC, datetime
            await moderator.handle(Message(Platform.DISCORD, f"d{k}", "general",
                                           accounts[2].id, text,
                                           datetime(2026, 11, 20, 10, k, tzinfo=UTC)))
        commands = Commands(moderator)
        # Commands.run answers a bug with "Something went wrong" and logs the traceback: that
        # is still an unhandled exception here.
        caught = _Caught()
        logging.getLogger("bot.commands").addHandler(caught)
        logging.getLogger("bot.commands").propagate = False
        for _ in range(n):
            account = rng.choice(accounts)
            words = command_words(rng)
            tally.ran["commands"] += 1
            caught.errors.clear()
            try:
                reply = await commands.run(account, words)
            except Exception as exc:
                tally.unhandled("commands", exc, (f"{account.platform}:{account.id}", words))
                continue
            if caught.errors:
                tally.unhandled("commands", caught.errors[0],
                                (f"{account.platform}:{account.id}", words))
                continue
            if not isinstance(reply, Reply):
                tally.unhandled("commands", TypeError(f"returned {type(reply).__name__}"),
                                words)
            elif not reply.ok:
                tally.refused["commands"] += 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=40_000, help="inputs in all (default 40000)")
    parser.add_argument("--seed", type=int, default=11, help="random seed (default 11)")
    parser.add_argument("--only", default=",".join(TARGETS),
                        help=f"comma-separated targets (default: {','.join(TARGETS)})")
    args = parser.parse_args(argv)
    only = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = sorted(set(only) - set(TARGETS))
    if unknown or not only:
        parser.error(f"unknown target(s) {', '.join(unknown) or '(none)'}; "
                     f"choose from {', '.join(TARGETS)}")
    if args.count < 1:
        parser.error("--count must be at least 1")
    share = sum(WEIGHTS[t] for t in only)
    tally = Tally()
    started = time.perf_counter()
    runs: dict[str, Callable[[random.Random, int], object]] = {}
    with tempfile.TemporaryDirectory(prefix="conductbot-fuzz-") as tmp:
        runs = {
            "policy": lambda rng, n: fuzz_policy(rng, n, tally),
            "register": lambda rng, n: fuzz_register(rng, n, tally),
            "replay": lambda rng, n: asyncio.run(
                fuzz_replay(rng, n, tally, Path(tmp) / "replay.sqlite3")),
            "commands": lambda rng, n: asyncio.run(
                fuzz_commands(rng, n, tally, Path(tmp) / "commands.sqlite3")),
        }
        for target in only:
            n = max(1, round(args.count * WEIGHTS[target] / share))
            t0 = time.perf_counter()
            runs[target](random.Random(f"{args.seed}:{target}"), n)
            print(f"{target:<9} {tally.ran[target]:>6} inputs, {tally.refused[target]:>6} "
                  f"refused with the project's own errors, "
                  f"{sum(c for k, c in tally.counts.items() if k[0].startswith(target + ':'))}"
                  f" unhandled ({time.perf_counter() - t0:.1f}s)", flush=True)
    total = sum(tally.counts.values())
    print(f"\n{sum(tally.ran.values())} inputs ran in {time.perf_counter() - started:.0f}s; "
          f"{total} unhandled exception(s) from {len(tally.counts)} root cause(s)")
    for (kind, frame), count in tally.counts.most_common():
        example, message = tally.causes[(kind, frame)]
        print(f"\n{count:>6}  {kind} at {frame}\n        {message}\n        e.g. {example}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
