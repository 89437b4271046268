"""The offline default scorer: the shipped fine-tuned MiniLM, loaded without pickle or network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.errors import ModelError
from bot.scoring.base import Scorer
from bot.scoring.offline import DEFAULT_MODEL_DIR, MODEL_CATEGORIES, OfflineScorer

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


def test_loads_the_shipped_weights_offline(scorer: OfflineScorer) -> None:
    # pytest-socket refuses any non-loopback connection: loading reached no network.
    assert isinstance(scorer, Scorer)
    assert scorer.name == "conduct-minilm"
    assert scorer.categories == MODEL_CATEGORIES
    assert {"threat", "sexual_explicit"} <= set(scorer.categories)
    assert scorer.metadata["sha256"].startswith(scorer.version.split("+")[1])
    weights = DEFAULT_MODEL_DIR / "model.safetensors"
    assert weights.stat().st_size <= 60_000_000
    # A model card names the base, every source trained on with its licence, and figures.
    card = (DEFAULT_MODEL_DIR / "README.md").read_text(encoding="utf-8")
    for source, licence in scorer.metadata["training"]["licences"].items():
        assert source in card and licence.split(" (")[0] in card
    assert "ethos" not in scorer.metadata["training"]["rows_per_source"]


def test_benign_below_abusive(scorer: OfflineScorer) -> None:
    scores = scorer.score_batch([*BENIGN, *ABUSIVE, THREAT])
    assert len(scores) == len(BENIGN) + len(ABUSIVE) + 1
    for s in scores:
        assert set(s) == set(scorer.categories)
        assert all(0.0 <= v <= 1.0 for v in s.values())
    benign, abusive, threat = scores[:len(BENIGN)], scores[len(BENIGN):-1], scores[-1]
    assert max(s["toxicity"] for s in benign) < 0.3 < 0.5 < min(s["toxicity"] for s in abusive)
    # The group attacks are conduct violations; the insults are not.
    assert max(s["severe_toxicity"] for s in benign) < 0.2
    assert min(s["severe_toxicity"] for s in abusive[2:]) > 0.5
    assert min(s["identity_attack"] for s in abusive[2:]) > 0.5
    assert min(s["insult"] for s in abusive[:2]) > max(s["insult"] for s in benign)
    assert threat["threat"] > 0.5 > max(s["threat"] for s in benign + abusive)


@pytest.mark.parametrize(("precision", "within"), [("int8", 0.15), ("bf16", 0.05)])
def test_faster_precisions_keep_the_order_of_benign_and_abusive(
        scorer: OfflineScorer, precision: str, within: float) -> None:
    fast = OfflineScorer(precision=precision)
    assert fast.version == f"{scorer.version}/{precision}"
    texts = [*BENIGN, *ABUSIVE, THREAT]
    fp32, shifted = scorer.score_batch(texts), fast.score_batch(texts)
    for full, small in zip(fp32, shifted, strict=True):
        assert small != full  # really the other model
        assert all(abs(small[k] - full[k]) < within for k in full)
    benign, abusive = shifted[:len(BENIGN)], shifted[len(BENIGN):-1]
    assert max(s["toxicity"] for s in benign) < 0.5 < min(s["toxicity"] for s in abusive)
    assert shifted[-1]["threat"] > 0.5


def test_auto_precision_is_bf16_only_where_the_cpu_has_it(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    import torch

    from bot.scoring.base import resolve_precision

    for avx512_bf16, amx in ((True, False), (False, True), (False, False)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert resolve_precision("auto", "cpu") == ("bf16" if avx512_bf16 or amx else "fp32")
    assert resolve_precision("auto", "cuda") == "fp32"
    assert resolve_precision("fp32", "cpu") == "fp32"
    with pytest.raises(ValueError, match="CPU"):
        OfflineScorer(precision="int8", device="cuda")
    with pytest.raises(ValueError, match="precision must be one of"):
        OfflineScorer(precision="fp16")


def test_a_lone_surrogate_fails_neither_its_text_nor_the_batch(scorer: OfflineScorer) -> None:
    # The tokenizer refuses a lone surrogate, which used to fail every text in the batch.
    scores = scorer.score_batch([ABUSIVE[0], "bad \ud800 text", THREAT, "\ud83d\ude00 ok"])
    assert len(scores) == 4 and all(set(s) == set(scorer.categories) for s in scores)
    assert scores[0]["toxicity"] > 0.5 and scores[2]["threat"] > 0.5
    assert scores[1]["toxicity"] == pytest.approx(
        scorer.score_batch(["bad \ufffd text"])[0]["toxicity"], abs=1e-4)


def test_order_and_batch_independence(scorer: OfflineScorer) -> None:
    together = scorer.score_batch([BENIGN[0], ABUSIVE[0], BENIGN[1]])
    alone = scorer.score_batch([ABUSIVE[0]])
    assert together[1]["toxicity"] == pytest.approx(alone[0]["toxicity"], abs=1e-4)
    assert scorer.score_batch([]) == []


def test_threat_at_the_end_of_a_long_text_is_found(scorer: OfflineScorer) -> None:
    filler = " ".join(
        f"Item {i}: the branch agreed to review leaflet costs and the rota for door knocking."
        for i in range(60)
    )
    assert len(scorer._tokenizer(filler)["input_ids"]) > 3 * scorer.max_tokens
    benign_long, with_threat = scorer.score_batch([filler, f"{filler} {THREAT}"])
    assert benign_long["threat"] < 0.2
    # Truncated to the model's window, the threat would go unseen; read in windows, the last
    # one carries it (the model is less sure of it among minutes than alone, where it scores
    # above 0.8; the policy's threat rules act on it either way).
    truncated = scorer.probabilities([f"{filler} {THREAT}"])[0]
    assert truncated[scorer.categories.index("threat")] < 0.2
    assert with_threat["threat"] > truncated[scorer.categories.index("threat")] + 0.25
    assert with_threat["threat"] > benign_long["threat"] + 0.25


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, copy)
    return copy


def test_corrupt_weights_raise_model_error(tmp_path: Path) -> None:
    bad = _copy(tmp_path)
    (bad / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError) as err:
        OfflineScorer(model_dir=bad)
    assert str(bad / "model.safetensors") in str(err.value)
    assert "make train" in str(err.value)
    # Without the recorded checksum the file is still refused, by the loader.
    meta = json.loads((bad / "model.json").read_text(encoding="utf-8"))
    del meta["sha256"]
    (bad / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ModelError, match="could not load"):
        OfflineScorer(model_dir=bad)


def test_bad_metadata_raises_model_error(tmp_path: Path) -> None:
    bad = _copy(tmp_path)
    meta = json.loads((bad / "model.json").read_text(encoding="utf-8"))
    meta["categories"] = ["toxicity"]  # one output, but the weights have seven
    del meta["sha256"]
    (bad / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ModelError, match="could not load"):
        OfflineScorer(model_dir=bad)
    (bad / "model.json").write_text("[]", encoding="utf-8")
    with pytest.raises(ModelError, match="metadata"):
        OfflineScorer(model_dir=bad)


def test_missing_files_raise_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        OfflineScorer(model_dir=tmp_path)
    assert str(tmp_path / "model.safetensors") in str(err.value)
