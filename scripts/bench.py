#!/usr/bin/env python3
"""`make bench`: throughput figures for the hot path, as ratios measured in one run.

Prints messages per second for text normalisation and rule matching, for the offline scorer
one text per call against batches, and for the whole pipeline (score, decide, record) on the
demo data. No assertions: these machines are shared and noisy, so compare within a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def rate(n: int, fn: Callable[[], object], *, repeat: int = 3) -> float:
    """Best-of-`repeat` items per second for a call that handles `n` items."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=256, help="texts per measurement")
    args = parser.parse_args()

    from bot.normalize import normalize
    from bot.policy import load_policy
    from bot.scoring.offline import OfflineScorer
    from bot.scoring.rules import RuleScorer

    lines = (ROOT / "examples" / "forum.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines if line.strip()]
    texts = (texts * (args.messages // len(texts) + 1))[: args.messages]
    policy = load_policy(ROOT / "policies" / "default.toml")
    rules = RuleScorer(policy)
    print(f"{len(texts)} demo texts, mean {sum(map(len, texts)) / len(texts):.0f} characters; "
          f"{os.cpu_count()} CPUs")

    print(f"normalise            {rate(len(texts), lambda: [normalize(t) for t in texts]):>9.0f}"
          " msg/s")
    print(f"rules (all)          {rate(len(texts), lambda: [rules.hits(t) for t in texts]):>9.0f}"
          " msg/s")
    worst_ms, worst, stopped = _worst_message(rules)
    print(f"rules, worst 40k msg {worst_ms:>9.1f} ms   ({worst}; target < 50 ms; "
          f"{stopped} of {len(_crafted())} crafted messages ran out of budget: escalated)")

    started = time.perf_counter()
    scorer = OfflineScorer()
    print(f"offline scorer load  {time.perf_counter() - started:>9.2f} s "
          f"({scorer.name} {scorer.version})")
    sample = texts[:64]
    single = rate(len(sample), lambda: [scorer.score_batch([t]) for t in sample], repeat=2)
    print(f"scorer, 1 per call   {single:>9.1f} msg/s")
    for size in (8, 16, 32):
        batched = rate(len(sample), lambda size=size: [  # type: ignore[misc]
            scorer.score_batch(sample[i:i + size]) for i in range(0, len(sample), size)],
            repeat=2)
        print(f"scorer, batch {size:<3}    {batched:>9.1f} msg/s  ({batched / single:.1f}x)")

    print(f"pipeline (replay)    {asyncio.run(_pipeline(scorer, policy, texts)):>9.1f} msg/s "
          "(score + rules + decide + SQLite, chunks of 32)")
    return 0


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


async def _pipeline(scorer: object, policy: object, texts: list[str]) -> float:
    from datetime import UTC, datetime

    from bot.models import Message, Platform
    from bot.moderator import Moderator
    from bot.scoring import Batcher
    from bot.store import Store

    now = datetime.now(UTC)
    messages = [Message(Platform.CONSOLE, str(i), "general", f"u{i % 40}", t, now)
                for i, t in enumerate(texts)]
    with tempfile.TemporaryDirectory() as tmp:
        async with Store.open(Path(tmp) / "bench.sqlite3") as store, \
                Batcher(scorer) as batcher:  # type: ignore[arg-type]
            moderator = Moderator(store=store, policy=policy, scorer=batcher)  # type: ignore[arg-type]
            start = time.perf_counter()
            for i in range(0, len(messages), 32):
                await moderator.handle_many(messages[i:i + 32])
            return len(messages) / (time.perf_counter() - start)


if __name__ == "__main__":
    raise SystemExit(main())
