"""The realistic message mix that `make bench` and `scripts/loadtest.py` measure with.

300 forum posts from the project's own corpus (``corpus/forum/``), drawn with a fixed seed:
275 of 5-40 words and 25 long posts of about 200 words (a long corpus post, topped up with
further posts where it is shorter), about four in five of them harmless, as on a real forum.
"""

from __future__ import annotations

__all__ = ["realistic_mix"]

import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.corpus import read_forum_dir  # noqa: E402

LONG_WORDS = 200


def realistic_mix(n: int = 300, *, long: int = 25, harmless: float = 0.8,
                  seed: int = 12) -> list[str]:
    """`n` texts: `long` of about LONG_WORDS words, the rest of 5-40 words, shuffled."""
    rng = random.Random(seed)
    lines = read_forum_dir()

    def words(text: str) -> int:
        return len(text.split())

    short = [line for line in lines if 5 <= words(line.text) <= 40]
    calm = [line.text for line in short if line.severity == 0]
    rude = [line.text for line in short if line.severity > 0]
    n_short = n - long
    n_calm = round(n_short * harmless)
    texts = rng.sample(calm, n_calm) + rng.sample(rude, n_short - n_calm)
    longest = sorted((line.text for line in lines if line.form == "long"), key=words)
    for text in rng.sample(longest[-4 * long:], long):
        while words(text) < LONG_WORDS * 0.9:
            text += "\n\n" + rng.choice(calm)
        texts.append(text)
    rng.shuffle(texts)
    return texts
