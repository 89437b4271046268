"""Command line: replay, score, policy check, eval. `bot.py` and `conductbot` both land here."""

from __future__ import annotations

__all__ = ["main"]

import argparse
import asyncio
import io
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.config import Settings
from bot.corpus import FORUM_DIR
from bot.database import Target, described, is_url, parse_target
from bot.errors import ConductError, InputError, PolicyError, StoreError
from bot.models import Mode, Platform, Standing, Verdict, VerdictAction
from bot.policy import Policy, load_policy

log = logging.getLogger("bot.cli")

_STYLE = {"allow": "green", "warn": "yellow", "hide": "red", "escalate": "bold magenta"}
#: Messages a replay decides together. Their texts are scored as one batch, sorted by length
#: so each forward pass pads little: on the realistic mix (`make bench`) chunks of 256 score
#: about 1.7x faster than chunks of 32.
REPLAY_CHUNK = 256


def _db_path(text: str) -> Target:
    """A database for argparse: a SQLite file (not '-', not a folder) or a postgresql:// URL."""
    if text.strip() in ("", "-"):
        raise argparse.ArgumentTypeError("the database must be a file path or a "
                                         f"postgresql:// URL, not {text!r}")
    try:
        target = parse_target(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if isinstance(target, Path) and target.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: name the database file in it, "
                                         f"e.g. {target / 'conductbot.sqlite3'}")
    return target


def _existing(db: Target) -> Target:
    """The database of a command that reads one. A SQLite file must exist: opening it would
    create an empty database, and a mistyped path must not look empty. A server's database
    that does not exist is refused by the server when connecting."""
    if not is_url(db) and not Path(db).is_file():
        raise StoreError(f"there is no database at {db}")
    return db


def _out_path(text: str) -> Path | None:
    """A file to write for argparse: '-' is standard output; a folder is refused; missing
    folders on the way are created when writing."""
    if text == "-":
        return None
    if not text.strip():
        raise argparse.ArgumentTypeError("name a file to write, or '-' for standard output")
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: name a file in it")
    return path


def _write(path: Path, text: str) -> None:
    """Write `text` to `path`, creating missing folders; an OSError is an InputError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _aware_datetime(text: str) -> datetime:
    """An ISO date or time for argparse; a time without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date or time, e.g. "
                                         "2026-11-30 or 2026-11-30T18:00+00:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _offline_env() -> None:
    # The bot never downloads models: fail loudly instead of reaching for the hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="conductbot", description=(
        "Code-of-conduct moderation for party member forums on Discord and Slack."))
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    p.add_argument("--policy", type=Path, help="policy TOML (default: $CONDUCTBOT_POLICY or "
                   "policies/default.toml)")
    p.add_argument("--scorer", choices=("auto", "offline", "detoxify"),
                   help="which scorer (default: $CONDUCTBOT_SCORER or auto)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("replay", help="decide every message of a JSON-lines file (or - for stdin)")
    r.add_argument("file", help="JSON lines: {id, channel, author, text, ts[, platform, revision]}")
    r.add_argument("--db", type=_db_path, help="database (default: $CONDUCTBOT_DB or "
                   "data/conductbot.sqlite3)")
    r.add_argument("--json", action="store_true", help="one JSON object per message")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = sub.add_parser("score", help="score one text and show the verdict")
    s.add_argument("text")
    s.add_argument("--channel", default="general", help="channel name (overrides apply)")
    s.add_argument("--json", action="store_true")

    pol = sub.add_parser("policy", help="check or show a policy")
    psub = pol.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    chk = psub.add_parser("check", help="validate policy files; non-zero exit on errors")
    chk.add_argument("files", nargs="+", type=Path)
    psub.add_parser("show", help="the policy's version, clauses and rules")

    m = sub.add_parser("mod", help="run a moderator (or member) command as an account")
    m.add_argument("--as", dest="account", required=True, metavar="PLATFORM:ID",
                   help="who runs it, e.g. console:mod_karen or discord:1234")
    m.add_argument("--db", type=_db_path, help="database (default: $CONDUCTBOT_DB)")
    m.add_argument("--json", action="store_true", help="the reply as JSON")
    m.add_argument("words", nargs=argparse.REMAINDER, metavar="COMMAND ...",
                   help="e.g. queue; case 3; resolve 3 dismiss 'quoted to condemn'")

    mem = sub.add_parser("members", help="import the membership register or show a member")
    msub = mem.add_subparsers(dest="members_command", required=True, metavar="ACTION")
    imp = msub.add_parser("import", help="import a register CSV export (idempotent)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--db", type=_db_path)
    imp.add_argument("--exported-at", type=_aware_datetime, metavar="ISO",
                     help="when the register was exported (default: the file's modification "
                          "time); a status a moderator set in the bot after it is kept when "
                          "stricter, and a conflict opens a case")
    show = msub.add_parser("show", help="a member's record")
    show.add_argument("member", help="name, membership number, member id or PLATFORM:ID")
    show.add_argument("--db", type=_db_path)
    show.add_argument("--json", action="store_true")
    export = msub.add_parser("export", help="everything held about a member, as JSON "
                             "(subject access request)")
    export.add_argument("member")
    export.add_argument("--db", type=_db_path)
    export.add_argument("--out", type=_out_path, help="file to write (default: stdout)")
    erase = msub.add_parser("erase", help="erase the text of a member's messages (erasure "
                            "request); decisions and cases stay")
    erase.add_argument("member")
    erase.add_argument("--reason", required=True, help="recorded in the audit log")
    erase.add_argument("--yes", action="store_true", help="really erase (otherwise: count)")
    erase.add_argument("--db", type=_db_path)

    run = sub.add_parser("run", help="moderate live: start every adapter the environment "
                         "configures (DISCORD_TOKEN, ...)")
    run.add_argument("--db", type=_db_path, help="database (default: $CONDUCTBOT_DB)")
    run.add_argument("--platform", action="append", choices=("discord", "slack"),
                     help="run only this platform's adapter (repeatable): one process per "
                          "platform on a shared database")

    doc = sub.add_parser("doctor", help="check with the configured tokens that Discord and "
                         "Slack give the bot everything it needs (changes nothing)")
    doc.add_argument("--json", action="store_true", help="the checklist as JSON")
    doc.add_argument("--db", type=_db_path, help="database whose register names the "
                     "moderators (default: $CONDUCTBOT_DB)")

    ret = sub.add_parser("retention", help="erase evidence and audit entries past the policy's "
                         "retention periods")
    ret.add_argument("--db", type=_db_path)
    ret.add_argument("--dry-run", action="store_true", help="count, change nothing")

    dbp = sub.add_parser("db", help="the database's schema")
    dsub = dbp.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    mig = dsub.add_parser("migrate", help="bring the database's schema up to this version of "
                          "conductbot (run before starting several processes on it)")
    mig.add_argument("--db", type=_db_path, help="database (default: $CONDUCTBOT_DB)")
    mig.add_argument("--check", action="store_true", help="change nothing; exit 1 when "
                     "migrations are pending")
    cp = dsub.add_parser("copy", help="copy every row of one database into another, empty one "
                         "(SQLite to PostgreSQL to move a deployment, or back), verified by "
                         "row counts and checksums; stop the bot first")
    cp.add_argument("--from", dest="source", required=True, type=_db_path, metavar="DB",
                    help="the database to copy: a file, sqlite:///FILE or postgresql://...")
    cp.add_argument("--to", dest="target", required=True, type=_db_path, metavar="DB",
                    help="the database to fill: created and migrated if need be; it must "
                         "hold no rows")

    bk = sub.add_parser("backup", help="copy the database with SQLite's online backup API "
                        "(safe while the bot runs), verified before it is renamed into place")
    bk.add_argument("--db", type=_db_path, help="database (default: $CONDUCTBOT_DB)")
    bk.add_argument("--out", required=True, type=_backup_out, metavar="FILE|FOLDER/",
                    help="the copy to write; a folder (or a path ending in /): a new file in it "
                         "named conductbot-YYYYMMDDTHHMMSSZ.sqlite3")
    bk.add_argument("--force", action="store_true", help="replace FILE if it exists")
    bk.add_argument("--keep", type=int, metavar="N", help="with a folder: afterwards delete all "
                    "but the newest N backups named so in it")
    rs = sub.add_parser("restore", help="replace the database with a backup (stop the bot "
                        "first): checked first, the replaced database kept aside, erasures made "
                        "since the backup and the retention periods applied again")
    rs.add_argument("backup_file", type=Path, metavar="BACKUP")
    rs.add_argument("--db", type=_db_path, help="database (default: $CONDUCTBOT_DB)")

    dg = sub.add_parser("digest", help="the weekly digest of one ISO week, as a file")
    dg.add_argument("--week", help="ISO week, e.g. 2026-W47 (default: the last complete week)")
    dg.add_argument("--format", choices=("md", "html", "json", "csv"), default="md")
    dg.add_argument("--out", type=_out_path, help="write to FILE (default: standard output)")
    dg.add_argument("--db", type=_db_path, help="database (default: $CONDUCTBOT_DB)")
    dg.add_argument("--tz", default="Europe/London", help="time zone of the week (default: "
                    "Europe/London)")
    dg.add_argument("--show-names", action="store_true",
                    help="name members (display name and membership number), not internal ids")
    dg.add_argument("--quote-evidence", action="store_true",
                    help="quote the messages of open escalations")

    bt = sub.add_parser("backtest", help="re-decide stored messages under a candidate policy "
                        "and report what would change against the active policy")
    # dest: the global --policy (before the command) stays the active policy.
    bt.add_argument("--policy", dest="candidate", type=Path, required=True,
                    metavar="CANDIDATE.toml", help="the candidate policy (the active one is "
                    "the global --policy, default $CONDUCTBOT_POLICY or policies/default.toml)")
    bt.add_argument("--scorer", choices=("auto", "offline", "detoxify"),
                    default=argparse.SUPPRESS, help="which scorer (as the global --scorer)")
    when = bt.add_mutually_exclusive_group()
    when.add_argument("--week", help="only messages sent in this ISO week, e.g. 2026-W47")
    when.add_argument("--since", type=_aware_datetime, metavar="DATE",
                      help="only messages sent since DATE (ISO date or time; UTC unless it "
                           "says otherwise)")
    bt.add_argument("--tz", default="Europe/London", help="time zone of --week (default: "
                    "Europe/London)")
    bt.add_argument("--format", choices=("md", "json", "csv"), default="md",
                    help="md and json: the report; csv: every changed decision, one per row")
    bt.add_argument("--out", type=_out_path, metavar="FILE",
                    help="write to FILE (default: standard output)")
    bt.add_argument("--db", type=_db_path, help="database (default: $CONDUCTBOT_DB)")
    bt.add_argument("--sample", type=int, default=20, metavar="N",
                    help="changed decisions quoted in the report (default 20)")
    bt.add_argument("--show-names", action="store_true",
                    help="name members (display name, id and membership number), not only "
                         "their internal ids")
    bt.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true",
                    help="no progress bar (there is none when standard error is not a terminal)")

    tr = sub.add_parser("transparency", help="the quarterly transparency report: anonymous "
                        "counts, small ones suppressed, and how moderation works")
    tr.add_argument("--quarter", help="calendar quarter, e.g. 2026-Q4 (default: the last "
                    "complete quarter)")
    tr.add_argument("--format", choices=("md", "html", "json", "csv"), default="md")
    tr.add_argument("--out", type=_out_path, help="write to FILE (default: standard output)")
    tr.add_argument("--db", type=_db_path, help="database (default: $CONDUCTBOT_DB)")
    tr.add_argument("--tz", help="time zone of the quarter (default: the policy's "
                    "[sanctions] timezone)")

    e = sub.add_parser("eval", help="precision/recall/F1 per source on labelled data")
    e.add_argument("--data", type=Path, default=Path("../shared/data/dev/conduct_dev.csv"))
    e.add_argument("--split", choices=("test", "val", "train", "all"), default="test",
                   help="test (default): rows and forum writers the model never trained on "
                        "and thresholds were not chosen on; val: where thresholds are chosen")
    e.add_argument("--forum", type=Path, default=FORUM_DIR, metavar="DIR",
                   help="the forum corpus, evaluated per phenomenon (default corpus/forum)")
    e.add_argument("--no-forum", dest="forum", action="store_const", const=None,
                   help="evaluate the shared data only")
    e.add_argument("--per-source", type=int, default=0, metavar="N",
                   help="at most N rows per source (0: all), sampled deterministically")
    e.add_argument("--json", action="store_true", help="one JSON object per source")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    # Our own INFO lines (which scorer and policy are in use) always show; other libraries'
    # only with -v.
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for ours in ("bot", "adapters"):  # the ready lines and start-up checks say what runs
        logging.getLogger(ours).setLevel(logging.DEBUG if args.verbose > 1 else logging.INFO)
    # These libraries log at DEBUG what members wrote: aiosqlite every statement with its
    # parameters (message text, doxxed numbers, names), discord.py every gateway event and
    # request body, the Slack SDK every request and response. Never, at any verbosity.
    for chatty in ("aiosqlite", "discord.gateway", "discord.http", "discord.client",
                   "slack_sdk", "slack_bolt"):
        logging.getLogger(chatty).setLevel(logging.INFO)
    _offline_env()
    err = Console(stderr=True)
    try:
        settings = Settings.from_env()
        if args.policy:
            settings = replace(settings, policy=args.policy)
        if args.scorer:
            settings = replace(settings, scorer=args.scorer)
        if args.command == "policy":
            return _policy(args, settings)
        if getattr(args, "db", None):
            settings = replace(settings, db=args.db)
        if args.command == "replay":
            return _replay_command(args, settings)
        if args.command == "mod":
            return asyncio.run(_mod(args, settings))
        if args.command == "members":
            return asyncio.run(_members(args, settings))
        if args.command == "retention":
            return asyncio.run(_retention(args, settings))
        if args.command == "db":
            return _db_command(args, settings)
        if args.command == "backup":
            return _backup_command(args, settings)
        if args.command == "restore":
            return _restore_command(args, settings)
        if args.command == "digest":
            return _digest_command(args, settings)
        if args.command == "backtest":
            return _backtest_command(args, settings)
        if args.command == "transparency":
            return _transparency_command(args, settings)
        if args.command == "run":
            from adapters.runner import run

            asyncio.run(run(settings, only=args.platform or ()))
            return 0
        if args.command == "doctor":
            from adapters.doctor import doctor

            return doctor(settings, as_json=args.json)
        if args.command == "score":
            return _score(args, settings)
        if args.command == "eval":
            from bot.evaluate import run_eval

            return run_eval(settings, data=args.data, split=args.split,
                            per_source=args.per_source, as_json=args.json, forum=args.forum)
    except PolicyError as exc:
        err.print(f"[red]policy error[/red] {escape(str(exc))}")
        return 2
    except (ConductError, ValueError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    except KeyboardInterrupt:
        return 130
    return 2  # pragma: no cover - argparse requires a command


# -- policy ------------------------------------------------------------------------------------


def _policy(args: argparse.Namespace, settings: Settings) -> int:
    out = Console()
    if args.policy_command == "show":
        policy = load_policy(settings.policy)
        out.print(f"[bold]{escape(policy.name or policy.file)}[/bold] version {policy.version}")
        for clause in policy.clauses.values():
            out.print(f"  {clause.id}  {escape(clause.title)}")
        out.print(f"{len(policy.rules)} rules, {len(policy.protected.persons)} protected persons,"
                  f" {len(policy.channels)} channel overrides")
        return 0
    failed = 0
    for file in args.files:
        try:
            policy = load_policy(file)
        except PolicyError as exc:
            failed += 1
            out.print(f"[red]{escape(str(file))}: {len(exc.problems)} error(s)[/red]")
            for problem in exc.problems:
                out.print(f"  {escape(str(file))}: {escape(str(problem))}")
            continue
        out.print(f"{escape(str(file))}: OK (version {policy.version}, {len(policy.clauses)} "
                  f"clauses, {len(policy.rules)} rules)")
    return 1 if failed else 0


# -- score -------------------------------------------------------------------------------------


def _score(args: argparse.Namespace, settings: Settings) -> int:
    from bot.decide import decide
    from bot.models import ScoreSet
    from bot.scoring import build_scorer
    from bot.scoring.rules import RuleScorer

    policy = load_policy(settings.policy)
    scorer = build_scorer(settings)
    values = scorer.score_batch([args.text])[0]
    scores = ScoreSet(values, scorer.name, scorer.version)
    hits = RuleScorer(policy).hits(args.text)
    verdict = decide(scores, hits, policy=policy, standing=Standing(), channel=args.channel,
                     channel_name=args.channel)
    if args.json:
        print(json.dumps({**_verdict_json(verdict),
                          "hits": [{"rule_id": h.rule_id, "kind": h.kind, "category": h.category,
                                    "action": h.action, "matched": h.matched} for h in hits]},
                         ensure_ascii=False))
        return 0
    out = Console()
    table = Table(title=f"scores ({scorer.name} {scorer.version})")
    table.add_column("category")
    table.add_column("score", justify="right")
    table.add_column("warn / hide / escalate", justify="right")
    for category, value in sorted(values.items(), key=lambda kv: -kv[1]):
        limits = verdict.thresholds.get(category, {})
        levels = " / ".join(f"{limits[lv]:.2f}" if lv in limits else "-"
                            for lv in ("warn", "hide", "escalate"))
        table.add_row(category, f"{value:.3f}", levels)
    out.print(table)
    for hit in hits:
        out.print(f"rule [bold]{escape(hit.rule_id)}[/bold] ({hit.kind}, {hit.category}, "
                  f"{hit.action}) matched {escape(hit.matched)!r}")
    out.print(_verdict_line(verdict))
    for reason in verdict.reasons:
        out.print(f"  because {escape(reason)}")
    return 0


def _verdict_line(v: Verdict) -> str:
    style = _STYLE[v.action]
    clause = f" clause {v.clause} ({escape(v.clause_title or '')})" if v.clause else ""
    cats = f" [{', '.join(v.categories)}]" if v.categories else ""
    return f"verdict: [{style}]{v.action}[/{style}] severity {int(v.severity)}{clause}{cats}"


def _verdict_json(v: Verdict) -> dict[str, Any]:
    return {
        "action": v.action.value, "severity": int(v.severity), "categories": list(v.categories),
        "rule_ids": list(v.rule_ids), "clause": v.clause, "clause_title": v.clause_title,
        "scores": {k: round(x, 4) for k, x in v.scores.items()}, "priority": v.priority,
        "model": v.model, "model_version": v.model_version, "policy_version": v.policy_version,
        "reasons": list(v.reasons), "mode": v.mode.value,
    }


# -- replay ------------------------------------------------------------------------------------


def _replay_command(args: argparse.Namespace, settings: Settings) -> int:
    policy = load_policy(settings.policy)
    if args.file == "-":
        if isinstance(sys.stdin, io.TextIOWrapper):
            # A stray byte must not end the replay: its line says which bytes were replaced.
            sys.stdin.reconfigure(errors="surrogateescape")
        return asyncio.run(_replay(args, settings, policy, sys.stdin, None))
    path = Path(args.file)
    try:
        with path.open(encoding="utf-8", errors="surrogateescape") as f:
            total = sum(1 for line in f if line.strip())
        stream = path.open(encoding="utf-8", errors="surrogateescape")
    except (OSError, UnicodeDecodeError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] cannot read {escape(str(path))}: {exc}")
        return 2
    with stream:
        return asyncio.run(_replay(args, settings, policy, stream, total))


async def _replay(args: argparse.Namespace, settings: Settings, policy: Policy,
                  stream: TextIO, total: int | None) -> int:
    from adapters.console import ConsolePort, LineError, read_messages
    from bot.moderator import Moderator
    from bot.scoring import Batcher, build_scorer
    from bot.store import Store

    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True)
    scorer = build_scorer(settings)
    log.info("policy %s (%s); database %s", policy.version, policy.file,
             described(settings.db))
    tally: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    problems: list[str] = []
    async with Store.open(settings.db) as store, \
            Batcher(scorer, max_batch=REPLAY_CHUNK) as batcher:
        moderator = Moderator(store=store, policy=policy, scorer=batcher)
        progress = _progress(err, total, enabled=not args.no_progress and total is not None)
        with progress:
            task = progress.add_task("deciding", total=total)
            source = "<stdin>" if args.file == "-" else args.file

            def chunks() -> Iterator[list[Any]]:
                chunk: list[Any] = []
                for number, item, warnings in read_messages(stream, source=source):
                    problems.extend(warnings)
                    if isinstance(item, LineError):
                        problems.append(item.message)
                        tally["skipped"] += 1
                        progress.advance(task)
                        continue
                    try:
                        moderator.check(item)
                    except ConductError as exc:
                        problems.append(f"{source}:{number}: {exc}")
                        tally["skipped"] += 1
                        progress.advance(task)
                        continue
                    chunk.append(item)
                    if len(chunk) >= REPLAY_CHUNK:
                        yield chunk
                        chunk = []
                if chunk:
                    yield chunk

            # The next chunk is scored while this one is decided and recorded.
            async for chunk, results in moderator.handle_chunks(chunks()):
                _replay_results(chunk, results, args, out, tally, categories)
                progress.advance(task, len(chunk))
        performed = 0
        for platform in Platform:
            performed += len(await moderator.run_outbox(ConsolePort(platform), limit=10**9))
    for problem in problems:
        err.print(f"[yellow]skipped/warning[/yellow] {escape(problem)}")
    _summary(err if args.json else out, tally, categories, performed)
    return 0


def _progress(console: Console, total: int | None, *, enabled: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress("[progress.description]{task.description}", BarColumn(),
                    MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                    transient=True, disable=not enabled)


def _replay_results(chunk: Sequence[Any], results: Sequence[Any], args: argparse.Namespace,
                    out: Console, tally: Counter[str], categories: Counter[str]) -> None:
    for message, handled in zip(chunk, results, strict=True):
        if handled is None:
            tally["duplicate"] += 1
            if args.json:
                print(json.dumps({"id": message.id, "platform": message.platform,
                                  "revision": message.revision, "duplicate": True}))
            else:
                out.print(f"{escape(message.id):<8} [dim]duplicate: revision "
                          f"{message.revision} already decided[/dim]")
            continue
        v = handled.verdict
        tally[v.action] += 1
        tally["shadow"] += v.mode is Mode.SHADOW and v.action is not VerdictAction.ALLOW
        categories.update(v.categories)
        if args.json:
            print(json.dumps({"id": message.id, "platform": message.platform,
                              "revision": message.revision, "channel": message.channel,
                              "author": message.author, **_verdict_json(v)},
                             ensure_ascii=False), flush=False)
            continue
        style = _STYLE[v.action]
        text = " ".join(message.text.split())
        excerpt = text if len(text) <= 70 else text[:69] + "…"
        why = ""
        if v.action is not VerdictAction.ALLOW:
            why = ("  [dim]shadow mode, nothing done; " if v.mode is Mode.SHADOW else "  [dim]") \
                + f"{v.clause} {escape(v.clause_title or '')}; " \
                  f"{', '.join(v.categories)}" + (f"; {', '.join(v.rule_ids)}" if v.rule_ids
                                                  else "") + "[/dim]"
        rev = f"r{message.revision}" if message.revision else "  "
        out.print(f"{escape(message.id):<8}{rev} [{style}]{v.action:<8}[/{style}] "
                  f"#{escape(message.channel):<18} "
                  f"{escape(message.author_name or message.author):<14} "
                  f"{escape(excerpt)}{why}")


def _summary(out: Console, tally: Counter[str], categories: Counter[str],
             performed: int) -> None:
    table = Table(title="summary")
    table.add_column("action")
    table.add_column("messages", justify="right")
    for action in ("allow", "warn", "hide", "escalate", "duplicate", "skipped"):
        table.add_row(action, str(tally.get(action, 0)))
    if tally.get("shadow"):
        table.add_row("of which in shadow mode (nothing done to the member)",
                      str(tally["shadow"]))
    cats = Table(title="categories (messages acted on)")
    cats.add_column("category")
    cats.add_column("messages", justify="right")
    for category, n in categories.most_common():
        cats.add_row(category, str(n))
    out.print(table)
    out.print(cats)
    out.print(f"{performed} platform action(s) recorded by the console adapter (nothing sent).")


# -- mod and members ---------------------------------------------------------------------------


async def _mod(args: argparse.Namespace, settings: Settings) -> int:
    from bot.commands import Commands, render_text
    from bot.models import Account
    from bot.moderator import Moderator
    from bot.scoring import Batcher, LazyScorer
    from bot.store import Store

    platform_name, _, account_id = args.account.partition(":")
    try:
        account = Account(Platform(platform_name), account_id)
    except ValueError:
        raise ValueError(f"--as {args.account!r}: use PLATFORM:ID, e.g. console:mod_karen") \
            from None
    if not account_id:
        raise ValueError(f"--as {args.account!r}: the account id is missing")
    policy = load_policy(settings.policy)
    async with Store.open(settings.db) as store, Batcher(LazyScorer(settings)) as batcher:
        commands = Commands(Moderator(store=store, policy=policy, scorer=batcher))
        reply = await commands.run(account, args.words)
    if args.json:
        print(json.dumps(_reply_json(reply), ensure_ascii=False, indent=2))
    else:
        print(render_text(reply))
    return 0 if reply.ok else 1


def _reply_json(obj: Any) -> Any:
    """A dataclass (and what it holds) as JSON-ready values."""
    from dataclasses import asdict

    return asdict(obj)


async def _members(args: argparse.Namespace, settings: Settings) -> int:
    from bot.commands import Commands, render_text
    from bot.members import import_register
    from bot.moderator import Moderator
    from bot.register import read_register
    from bot.scoring import Batcher, LazyScorer
    from bot.store import Store

    policy = load_policy(settings.policy)
    async with Store.open(settings.db) as store:
        if args.members_command == "import":
            register = read_register(args.file)
            exported_at = args.exported_at or datetime.fromtimestamp(
                args.file.stat().st_mtime, tz=UTC)
            print(f"register exported {exported_at:%Y-%m-%d %H:%M} UTC"
                  + ("" if args.exported_at else " (the file's time; --exported-at to set it)"))
            report = await import_register(store, register, actor=f"register:{args.file.name}",
                                           exported_at=exported_at)
            for line in report.lines():
                print(line)
            return 1 if report.errors else 0
        async with Batcher(LazyScorer(settings)) as batcher:
            commands = Commands(Moderator(store=store, policy=policy, scorer=batcher))
            try:
                member = await commands.member(args.member)
            except ConductError as exc:
                Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}")
                return 1
            if args.members_command == "export":
                data = json.dumps(await store.member_export(member.id), ensure_ascii=False,
                                  indent=2)
                if args.out:
                    _write(args.out, data)
                    print(f"{member.label}: written to {args.out}")
                else:
                    print(data)
                return 0
            if args.members_command == "erase":
                if not args.yes:
                    held = sum(1 for m in (await store.member_export(member.id))["messages"]
                               if m["text"] is not None)
                    print(f"{member.label}: {held} message text(s) would be erased; "
                          "add --yes to erase them")
                    return 0
                erased = await store.erase_member_text(member.id, actor="operator",
                                                       reason=args.reason)
                print(f"{member.label}: erased the text of {erased} message(s)")
                return 0
            reply = await commands.run_as_system("history", member.id)
    print(json.dumps(_reply_json(reply), ensure_ascii=False, indent=2) if args.json
          else render_text(reply))
    return 0


async def _retention(args: argparse.Namespace, settings: Settings) -> int:
    from bot.standing import format_duration
    from bot.store import Store

    policy = load_policy(settings.policy)
    sanctions = policy.sanctions
    async with Store.open(settings.db) as store:
        store.policy_version = policy.version
        counts = await store.apply_retention(evidence=sanctions.retention,
                                             audit=sanctions.audit_retention,
                                             dry_run=args.dry_run)
    verb = "would erase" if args.dry_run else "erased"
    print(f"{verb} the text of {counts['texts_erased']} message(s) older than "
          f"{format_duration(sanctions.retention)} and {counts['audit_deleted']} audit "
          f"entr{'y' if counts['audit_deleted'] == 1 else 'ies'} older than "
          f"{format_duration(sanctions.audit_retention)}; {counts['spam_events_deleted']} "
          "spam-check record(s) older than a day")
    return 0


def _backup_out(text: str) -> str:
    """--out of `backup`: a file or a folder, never standard output."""
    if text.strip() in ("", "-"):
        raise argparse.ArgumentTypeError("name the backup file, or a folder ending in /")
    return text


def _db_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.db_command == "copy":
        return asyncio.run(_db_copy(args.source, args.target))
    return asyncio.run(_db_migrate(_existing(settings.db), check=args.check))


async def _db_copy(source: Target, target: Target) -> int:
    from bot.store.copy import copy_database

    report = await copy_database(_existing(source), target)
    for line in report.lines():
        print(line)
    return 0


async def _db_migrate(db: Target, *, check: bool) -> int:
    from bot.store import Store
    from bot.store.migrations import SCHEMA_VERSION

    async with Store.open(db, migrate=False) as store:
        before = await store.schema_version()
        if before > SCHEMA_VERSION:
            raise StoreError(f"{db} has schema version {before}, newer than this conductbot "
                             f"understands ({SCHEMA_VERSION}); upgrade conductbot")
        if check:
            pending = SCHEMA_VERSION - before
            print(f"{db}: schema version {before} of {SCHEMA_VERSION}"
                  + (f"; {pending} migration(s) pending" if pending else "; up to date"))
            return 1 if pending else 0
        after = await store.migrate()
    print(f"{db}: schema version {before} -> {after}" if after != before else
          f"{db}: schema version {after}, already up to date")
    return 0


def _backup_command(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store import Store
    from bot.store.backup import BackupReport, backup_name, prune

    db = _existing(settings.db)
    if is_url(db):
        raise StoreError("bot.py backup copies a SQLite file; back a PostgreSQL store up with "
                         "the server's own tools (pg_dump, or continuous archiving)")
    out = Path(args.out)
    folder = args.out.endswith(("/", os.sep)) or out.is_dir()
    if args.keep is not None and (not folder or args.keep < 1):
        raise ValueError("--keep N needs a folder as --out and N of 1 or more")
    try:
        (out if folder else out.parent).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {out if folder else out.parent}: "
                         f"{exc.strerror or exc}") from exc
    target = backup_name(out, datetime.now(UTC)) if folder else out

    async def copy() -> BackupReport:
        # As found: a backup before an upgrade must not be the first thing to migrate.
        async with Store.open(db, migrate=False) as store:
            return await store.backup(target, force=args.force)

    print(asyncio.run(copy()).line())
    if folder and args.keep:
        for old in prune(out, keep=args.keep):
            print(f"deleted the older backup {old}")
    return 0


def _restore_command(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store.backup import restore

    if is_url(settings.db):
        raise StoreError("bot.py restore replaces a SQLite file; restore a PostgreSQL store "
                         "with the server's own tools (pg_restore), or `bot.py db copy` a "
                         "restored SQLite backup into an empty database")
    policy = load_policy(settings.policy)  # a broken policy stops it before anything changes
    report = asyncio.run(restore(args.backup_file, Path(settings.db),
                                 evidence=policy.sanctions.retention,
                                 audit=policy.sanctions.audit_retention,
                                 policy_version=policy.version))
    for line in report.lines():
        print(line)
    return 0


def _digest_command(args: argparse.Namespace, settings: Settings) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from bot.digest import parse_week
    try:
        ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {args.tz!r}") from exc
    if args.week:
        parse_week(args.week)
    _existing(settings.db)
    return asyncio.run(_digest(args, settings))


async def _digest(args: argparse.Namespace, settings: Settings) -> int:
    from bot import digest as render
    from bot.store import Store

    # The policy names the clauses and protected persons the verdicts cite by id.
    policy = load_policy(settings.policy)
    async with Store.open(settings.db) as store:
        built = await render.build_digest(store, args.week, tz=args.tz,
                                          show_names=args.show_names,
                                          quote_evidence=args.quote_evidence, policy=policy)
    writers = {"md": render.to_markdown, "html": render.to_html, "json": render.to_json,
               "csv": render.to_csv}
    text = writers[args.format](built)
    if args.out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        _write(args.out, text)
        Console(stderr=True).print(f"digest {escape(built.week)} written to "
                                   f"{escape(str(args.out))}")
    return 0


def _backtest_command(args: argparse.Namespace, settings: Settings) -> int:
    from bot.backtest import window_for
    window = window_for(week=args.week, since=args.since, tz=args.tz)
    if args.sample < 0:
        raise ValueError(f"--sample must be 0 or more, not {args.sample}")
    active = load_policy(settings.policy)
    candidate = load_policy(args.candidate)
    _existing(settings.db)
    return asyncio.run(_backtest(args, settings, window=window, active=active,
                                 candidate=candidate))


async def _backtest(args: argparse.Namespace, settings: Settings, *, window: Any,
                    active: Policy, candidate: Policy) -> int:
    from bot import backtest
    from bot.scoring import Batcher, build_scorer
    from bot.store import Store

    err = Console(stderr=True)
    scorer = build_scorer(settings)
    async with Store.open(settings.db) as store, \
            Batcher(scorer, max_batch=REPLAY_CHUNK) as batcher:
        progress = _progress(err, None, enabled=not args.quiet and err.is_terminal)
        with progress:
            task = progress.add_task("re-deciding", total=None)
            report = await backtest.run_backtest(
                store, active=active, candidate=candidate, scorer=batcher, window=window,
                show_names=args.show_names, sample=args.sample,
                progress=lambda done, total: progress.update(task, completed=done,
                                                             total=total))
    writers = {"md": backtest.to_markdown, "json": backtest.to_json, "csv": backtest.to_csv}
    text = writers[args.format](report)
    if args.out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        _write(args.out, text)
        err.print(f"backtest written to {escape(str(args.out))}: {report.redecided} "
                  f"message(s) re-decided, {report.changed} decision(s) changed")
    return 0


def _transparency_command(args: argparse.Namespace, settings: Settings) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from bot import transparency as render
    from bot.store import Store

    quarter = render.parse_quarter(args.quarter) if args.quarter else None
    policy = load_policy(settings.policy)
    tz = args.tz or policy.sanctions.timezone
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc
    _existing(settings.db)

    async def build() -> render.Report:
        async with Store.open(settings.db) as store:
            return await render.build_report(store, quarter, policy=policy, tz=tz)

    report = asyncio.run(build())
    writers = {"md": render.to_markdown, "html": render.to_html, "json": render.to_json,
               "csv": render.to_csv}
    text = writers[args.format](report)
    if args.out is None:
        sys.stdout.write(text)
    else:
        _write(args.out, text)
        Console(stderr=True).print(f"transparency report {escape(report.quarter)} written to "
                                   f"{escape(str(args.out))}")
    return 0
