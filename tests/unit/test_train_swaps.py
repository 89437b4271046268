"""The training script's counterfactual swaps (`--swap-names`): a name or greeting is replaced,
nothing else in the text or its labels changes."""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from train_model import GREETINGS, NAMES, swapped  # noqa: E402

ALL_NAMES = {n for group in NAMES.values() for n in group.split()}
TARGET, MASK = [1.0, 0.0], [1.0, 1.0]


def test_names_and_an_opening_greeting_are_swapped_and_the_labels_kept() -> None:
    rng = random.Random(0)
    texts = ["Hello all, Yusuf from Leeds.", "Thanks Sarah and Moshe for the leaflets.",
             "Nobody mentioned any names here.", "Well, hello there."]
    out = swapped([(t, TARGET, MASK) for t in texts], rng)
    assert len(out) == 2  # only the texts holding a listed name or an opening greeting
    assert all(target == TARGET and mask == MASK for _, target, mask in out)
    first = re.fullmatch(r"(.+) all, (.+) from Leeds\.", out[0][0])
    assert first and first[1] in GREETINGS and first[2] in ALL_NAMES
    second = re.fullmatch(r"Thanks (.+) and (.+) for the leaflets\.", out[1][0])
    assert second and {second[1], second[2]} <= ALL_NAMES


def test_swaps_draw_from_every_community() -> None:
    rng = random.Random(1)
    out = swapped([("Thanks Sarah!", TARGET, MASK)] * 400, rng)
    drawn = {text.removeprefix("Thanks ").removesuffix("!") for text, _, _ in out}
    assert all(set(group.split()) & drawn for group in NAMES.values())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["the", "vote", "Sarah", "Omar", "Li", "Liam", ",", "Hi",
                                 "Shalom", "branch", "Mark", "markets"]), max_size=12)
       .map(" ".join))
def test_only_whole_listed_names_and_an_opening_greeting_change(text: str) -> None:
    out = swapped([(text, TARGET, MASK)], random.Random(2))
    words = text.split(" ")
    if not any(w in ALL_NAMES for w in words) and (not words or words[0] not in GREETINGS):
        assert out == []
        return
    # Words that are neither names nor the opening greeting come through unchanged.
    kept = [w for i, w in enumerate(words) if w not in ALL_NAMES
            and not (i == 0 and w in GREETINGS)]
    for copy, _, _ in out:  # none when each draw happened to repeat the original
        assert all(w in copy.split(" ") for w in kept)
