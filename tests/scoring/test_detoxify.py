"""DetoxifyScorer against the real `detoxify.Detoxify`, loading a tiny checkpoint offline.

The suite runs with pytest-socket (only loopback allowed), so any download attempt fails.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
import torch

from bot.errors import ModelError
from bot.scoring.base import Scorer
from bot.scoring.detoxify import MODEL_TYPES, DetoxifyScorer, find_local_weights, published_url
from tests.helpers.tiny_detoxify import HUB_MODEL_TYPE, TRIGGER, TinyDetoxify, build_tiny_detoxify

CORE_NAMES = ("toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack")
BENIGN = "thanks for the tea we agree to the amendment and vote tomorrow"
HIGH, LOW = 0.9, 0.2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyDetoxify:
    return build_tiny_detoxify(tmp_path_factory.mktemp("tiny-detoxify"))


@pytest.fixture(scope="module")
def scorer(tiny: TinyDetoxify) -> DetoxifyScorer:
    return DetoxifyScorer(model_type="original", checkpoint=tiny.checkpoint,
                          config_dir=tiny.config_dir)


@pytest.fixture
def workdir(tmp_path: Path, tiny: TinyDetoxify) -> Iterator[Path]:
    """A private copy of the config folder, for tests that damage it."""
    folder = tmp_path / "cfg"
    shutil.copytree(tiny.config_dir, folder)
    yield folder


def long_text(trigger_at_end: bool) -> str:
    """About 700 tokens of benign words, optionally ending with the trigger."""
    words = ["party", "meeting", "vote", "members", "branch", "motion", "agenda"] * 100
    return " ".join([*words, TRIGGER] if trigger_at_end else words)


# --- loading and metadata -------------------------------------------------------------

def test_loads_through_detoxify_with_core_category_names(scorer: DetoxifyScorer,
                                                          tiny: TinyDetoxify) -> None:
    from detoxify import Detoxify

    assert isinstance(scorer.detoxify, Detoxify)
    assert isinstance(scorer, Scorer)
    assert scorer.categories == CORE_NAMES
    assert scorer.name == "detoxify-original"
    digest = hashlib.sha256(tiny.checkpoint.read_bytes()).hexdigest()[:12]
    expected = f"{metadata.version('detoxify')}/{tiny.checkpoint.name}/sha256:{digest}"
    assert scorer.version == expected
    assert scorer.max_tokens == 510  # 512 positions less [CLS] and [SEP]


def test_scores_are_core_names_in_unit_interval(scorer: DetoxifyScorer) -> None:
    results = scorer.score_batch([BENIGN, f"the party meeting {TRIGGER} please", ""])
    assert len(results) == 3
    for scores in results:
        assert set(scores) == set(CORE_NAMES)
        assert all(0.0 <= v <= 1.0 for v in scores.values())


def test_trigger_scores_high_and_benign_low(scorer: DetoxifyScorer) -> None:
    benign, toxic = scorer.score_batch([BENIGN, f"we {TRIGGER} the branch meeting"])
    assert toxic["threat"] > HIGH
    assert toxic["toxicity"] > HIGH
    assert toxic["insult"] < LOW
    assert max(benign.values()) < LOW


def test_batch_of_one_and_order_preserved(scorer: DetoxifyScorer) -> None:
    (single,) = scorer.score_batch([TRIGGER])  # detoxify squeezes a batch of one to floats
    assert single["threat"] > HIGH
    texts = [BENIGN, TRIGGER, BENIGN, f"{BENIGN} {TRIGGER}"]
    assert [s["threat"] > HIGH for s in scorer.score_batch(texts)] == [False, True, False, True]
    assert scorer.score_batch([]) == []


async def test_runs_behind_the_core_batcher(scorer: DetoxifyScorer) -> None:
    from bot.scoring.base import Batcher

    async with Batcher(scorer, max_batch=4) as batcher:
        results = await batcher.score_many([BENIGN, TRIGGER, long_text(trigger_at_end=True)])
    assert [r.get("threat") > HIGH for r in results] == [False, True, True]
    assert {r.model for r in results} == {"detoxify-original"}
    assert {r.version for r in results} == {scorer.version}


def test_a_lone_surrogate_fails_neither_its_text_nor_the_batch(scorer: DetoxifyScorer) -> None:
    scores = scorer.score_batch([TRIGGER, f"{BENIGN} \udfff", BENIGN])
    assert [s["threat"] > HIGH for s in scores] == [True, False, False]


# --- long texts -----------------------------------------------------------------------

def test_trigger_at_end_of_long_text_found_by_windows(scorer: DetoxifyScorer) -> None:
    text = long_text(trigger_at_end=True)
    tokens = len(scorer.detoxify.tokenizer(text)["input_ids"])
    assert tokens > 650  # well past the 512 the model accepts
    # Plain detoxify truncates to 512 tokens, so the trigger at the end is never seen ...
    truncated = scorer.detoxify.predict([text])["threat"]
    assert truncated < LOW
    # ... while the windowed scorer finds it; and the benign long text stays low.
    windowed, benign = scorer.score_batch([text, long_text(trigger_at_end=False)])
    assert windowed["threat"] > HIGH
    assert benign["threat"] < LOW


def test_long_and_short_texts_in_one_batch(scorer: DetoxifyScorer) -> None:
    texts = [TRIGGER, long_text(trigger_at_end=False), BENIGN, long_text(trigger_at_end=True)]
    assert [s["threat"] > HIGH for s in scorer.score_batch(texts)] == [True, False, False, True]


def test_windows_spread_over_several_predict_calls(tiny: TinyDetoxify) -> None:
    small = DetoxifyScorer(checkpoint=tiny.checkpoint, config_dir=tiny.config_dir,
                           max_tokens=40, overlap=8, max_windows_per_call=3)
    assert small.max_tokens == 40
    texts = [long_text(trigger_at_end=True), BENIGN, long_text(trigger_at_end=False)]
    assert [s["threat"] > HIGH for s in small.score_batch(texts)] == [True, False, False]


def test_batched_scores_equal_detoxify_predict_one_text_at_a_time(tiny: TinyDetoxify,
                                                                  tmp_path: Path) -> None:
    """Tokenising once and batching by length is an optimisation, not a different model: on
    random weights (every output moves) each score is what `predict` gives for the text alone."""
    raw = torch.load(tiny.checkpoint, weights_only=False)
    generator = torch.Generator().manual_seed(7)
    raw["state_dict"] = {k: v + 0.3 * torch.randn(v.shape, generator=generator)
                         if v.is_floating_point() else v for k, v in raw["state_dict"].items()}
    noisy = tmp_path / "noisy.ckpt"
    torch.save(raw, noisy)
    scorer = DetoxifyScorer(checkpoint=noisy, config_dir=tiny.config_dir,
                            max_windows_per_call=3)
    words = BENIGN.split()
    texts = [" ".join(words[:n]) for n in (1, 12, 3, 7, 12, 2, 9)] + [TRIGGER, ""]
    batched = scorer.score_batch(texts)
    for text, scores in zip(texts, batched, strict=True):
        alone = scorer.detoxify.predict(text)
        assert scores == pytest.approx({"toxicity": alone["toxicity"],
                                        "severe_toxicity": alone["severe_toxicity"],
                                        "obscene": alone["obscene"], "threat": alone["threat"],
                                        "insult": alone["insult"],
                                        "identity_attack": alone["identity_attack"]}, abs=1e-5)
    assert len({round(s["insult"], 4) for s in batched}) > 3  # the weights really vary


# --- offline loading of published-style checkpoints ---------------------------------

def test_hub_named_checkpoint_loads_offline_via_rewrite(tiny: TinyDetoxify) -> None:
    raw = torch.load(tiny.hub_checkpoint, weights_only=False)
    assert raw["config"]["arch"]["args"]["model_type"] == HUB_MODEL_TYPE
    scorer = DetoxifyScorer(model_type="original", checkpoint=tiny.hub_checkpoint,
                            config_dir=tiny.config_dir)
    benign, toxic = scorer.score_batch([BENIGN, TRIGGER])
    assert toxic["threat"] > HIGH
    assert benign["threat"] < LOW
    assert tiny.hub_checkpoint.name in scorer.version
    # The file on disk is left as it was.
    reread = torch.load(tiny.hub_checkpoint, weights_only=False)
    assert reread["config"]["arch"]["args"]["model_type"] == HUB_MODEL_TYPE


def test_plain_detoxify_cannot_load_hub_named_checkpoint_offline(tiny: TinyDetoxify) -> None:
    """Why the rewrite exists: detoxify itself asks the hub for the config first."""
    from detoxify import Detoxify
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(HUB_MODEL_TYPE, "config.json"), str):
        pytest.skip(f"{HUB_MODEL_TYPE} is in the local Hugging Face cache")
    with pytest.raises(OSError, match="huggingface"):  # the blocked download
        Detoxify(checkpoint=str(tiny.hub_checkpoint),
                 huggingface_config_path=str(tiny.config_dir))


def test_checkpoint_naming_its_own_folder_needs_no_config_dir(tiny: TinyDetoxify) -> None:
    scorer = DetoxifyScorer(checkpoint=tiny.checkpoint)
    assert scorer.config_dir == tiny.config_dir
    assert scorer.score_batch([TRIGGER])[0]["threat"] > HIGH


def test_hub_named_checkpoint_without_config_dir_is_refused(tiny: TinyDetoxify) -> None:
    with pytest.raises(ModelError, match=HUB_MODEL_TYPE) as info:
        DetoxifyScorer(checkpoint=tiny.hub_checkpoint)
    assert info.value.path == str(tiny.hub_checkpoint)
    assert "huggingface.co/bert-base-uncased" in str(info.value)


def test_quantized_scorer_keeps_behaviour(tiny: TinyDetoxify) -> None:
    scorer = DetoxifyScorer(checkpoint=tiny.checkpoint, config_dir=tiny.config_dir,
                            precision="int8")
    assert scorer.version.endswith("/int8")
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized")
               for m in scorer.detoxify.model.modules())
    benign, toxic = scorer.score_batch([BENIGN, long_text(trigger_at_end=True)])
    assert toxic["threat"] > HIGH
    assert benign["threat"] < LOW


def test_bf16_scorer_keeps_behaviour(tiny: TinyDetoxify) -> None:
    import torch

    scorer = DetoxifyScorer(checkpoint=tiny.checkpoint, config_dir=tiny.config_dir,
                            precision="bf16")
    assert scorer.version.endswith("/bf16")
    assert {p.dtype for p in scorer.detoxify.model.parameters()} == {torch.bfloat16}
    benign, toxic = scorer.score_batch([BENIGN, long_text(trigger_at_end=True)])
    assert toxic["threat"] > HIGH
    assert benign["threat"] < LOW


def test_precision_is_chosen_by_setting_and_a_bad_value_is_refused(tiny: TinyDetoxify) -> None:
    from bot.config import Settings
    from bot.scoring import build_scorer

    env = {"CONDUCTBOT_SCORER": "detoxify", "CONDUCTBOT_DETOXIFY_CHECKPOINT": str(tiny.checkpoint),
           "CONDUCTBOT_DETOXIFY_CONFIG": str(tiny.config_dir)}
    assert Settings.from_env(env).precision == "auto"
    # bf16 was measured on the offline model only: detoxify's auto is fp32 on any CPU.
    auto = build_scorer(Settings.from_env(env))
    assert auto.precision == "fp32" and not auto.version.endswith(("/bf16", "/int8"))
    for spelling, suffix in (({"CONDUCTBOT_INT8": "Yes"}, "/int8"),
                             ({"CONDUCTBOT_PRECISION": "INT8", "CONDUCTBOT_INT8": "yes"}, "/int8"),
                             ({"CONDUCTBOT_PRECISION": "bf16"}, "/bf16")):
        scorer = build_scorer(Settings.from_env(env | spelling))
        assert scorer.version.endswith(suffix)
        assert scorer.score_batch([TRIGGER])[0]["threat"] > HIGH
    assert "/" not in build_scorer(Settings.from_env(env | {"CONDUCTBOT_PRECISION": "fp32"})
                                   ).version.rpartition("sha256:")[2]
    with pytest.raises(ValueError, match="CONDUCTBOT_INT8 must be yes or no"):
        Settings.from_env(env | {"CONDUCTBOT_INT8": "maybe"})
    with pytest.raises(ValueError, match="CONDUCTBOT_PRECISION must be one of auto, fp32, "):
        Settings.from_env(env | {"CONDUCTBOT_PRECISION": "fp16"})
    with pytest.raises(ValueError, match="contradicts CONDUCTBOT_PRECISION=bf16"):
        Settings.from_env(env | {"CONDUCTBOT_PRECISION": "bf16", "CONDUCTBOT_INT8": "yes"})


# --- errors ---------------------------------------------------------------------------

def test_missing_weights_are_reported_not_downloaded() -> None:
    with pytest.raises(ModelError, match="not present") as info:
        DetoxifyScorer(model_type="unbiased")
    assert published_url("unbiased") in str(info.value)
    assert "roberta-base" in str(info.value)


def test_missing_checkpoint_names_path(tmp_path: Path, tiny: TinyDetoxify) -> None:
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(ModelError, match="not found") as info:
        DetoxifyScorer(checkpoint=missing, config_dir=tiny.config_dir)
    assert info.value.path == str(missing)
    assert str(missing) in str(info.value)
    assert published_url("original") in str(info.value)


@pytest.mark.parametrize("content", [b"garbage" * 10, b""], ids=["garbage", "empty"])
def test_corrupt_checkpoint_names_path(tmp_path: Path, tiny: TinyDetoxify,
                                       content: bytes) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    with pytest.raises(ModelError, match="cannot read detoxify checkpoint") as info:
        DetoxifyScorer(checkpoint=bad, config_dir=tiny.config_dir)
    assert info.value.path == str(bad)
    assert str(bad) in str(info.value)


def test_truncated_checkpoint_names_path(tmp_path: Path, tiny: TinyDetoxify) -> None:
    bad = tmp_path / "truncated.ckpt"
    bad.write_bytes(tiny.checkpoint.read_bytes()[:5000])
    with pytest.raises(ModelError) as info:
        DetoxifyScorer(checkpoint=bad, config_dir=tiny.config_dir)
    assert info.value.path == str(bad)


def test_checkpoint_without_config_rejected(tmp_path: Path, tiny: TinyDetoxify) -> None:
    bad = tmp_path / "weights-only.ckpt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(ModelError, match="not a detoxify checkpoint") as info:
        DetoxifyScorer(checkpoint=bad, config_dir=tiny.config_dir)
    assert info.value.path == str(bad)


def test_missing_config_folder_names_path(tmp_path: Path, tiny: TinyDetoxify) -> None:
    missing = tmp_path / "no-such-folder"
    with pytest.raises(ModelError, match="config folder not found") as info:
        DetoxifyScorer(checkpoint=tiny.hub_checkpoint, config_dir=missing)
    assert info.value.path == str(missing)
    assert "huggingface.co/bert-base-uncased" in str(info.value)


def test_config_folder_without_config_json(workdir: Path, tiny: TinyDetoxify) -> None:
    (workdir / "config.json").unlink()
    with pytest.raises(ModelError, match=r"no config\.json") as info:
        DetoxifyScorer(checkpoint=tiny.hub_checkpoint, config_dir=workdir)
    assert info.value.path == str(workdir)


def test_config_folder_without_tokenizer_files(workdir: Path, tiny: TinyDetoxify) -> None:
    # transformers 5 would load this silently as a specials-only tokenizer (all [UNK]).
    (workdir / "vocab.txt").unlink()
    with pytest.raises(ModelError, match="tokenizer") as info:
        DetoxifyScorer(checkpoint=tiny.hub_checkpoint, config_dir=workdir)
    assert info.value.path == str(workdir)


def test_config_folder_with_wrong_tokenizer(workdir: Path, tiny: TinyDetoxify) -> None:
    (workdir / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", encoding="utf-8")
    with pytest.raises(ModelError, match="tokenizer") as info:
        DetoxifyScorer(checkpoint=tiny.hub_checkpoint, config_dir=workdir)
    assert info.value.path == str(workdir)


@pytest.mark.parametrize("model_type", ["toxic-bert", "", "ORIGINAL"])
def test_unknown_model_type_rejected(model_type: str, tiny: TinyDetoxify) -> None:
    with pytest.raises(ModelError, match="unknown detoxify model type") as info:
        DetoxifyScorer(model_type=model_type, checkpoint=tiny.checkpoint,
                       config_dir=tiny.config_dir)
    assert all(t in str(info.value) for t in MODEL_TYPES)


def test_bad_window_settings_rejected(tiny: TinyDetoxify) -> None:
    with pytest.raises(ValueError, match="overlap"):
        DetoxifyScorer(checkpoint=tiny.checkpoint, config_dir=tiny.config_dir,
                       max_tokens=32, overlap=32)


# --- helpers for the scorer factory ----------------------------------------------------

def test_available(tmp_path: Path, tiny: TinyDetoxify, workdir: Path) -> None:
    assert DetoxifyScorer.available(tiny.checkpoint, tiny.config_dir)
    assert not DetoxifyScorer.available(None, tiny.config_dir)
    assert not DetoxifyScorer.available(tiny.checkpoint, None)
    assert not DetoxifyScorer.available(tmp_path / "nope.ckpt", tiny.config_dir)
    (workdir / "vocab.txt").unlink()
    assert not DetoxifyScorer.available(tiny.checkpoint, workdir)


def test_find_local_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert find_local_weights("original", search_dirs=[tmp_path]) is None
    name = published_url("original").rsplit("/", 1)[-1]
    cached = tmp_path / "hub" / "checkpoints" / name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert find_local_weights("original") == cached
    assert find_local_weights("original", torch_hub=False) is None
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / name).write_bytes(b"x")
    assert find_local_weights("original", search_dirs=[mine]) == mine / name
    with pytest.raises(ModelError):
        find_local_weights("bogus")
