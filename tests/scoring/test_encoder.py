"""The scorer's own BERT encoder and tokenizer give what transformers' classes give."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import ModelError
from bot.scoring.encoder import BertEncoder, EncoderConfig, FastTokenizer
from bot.scoring.offline import DEFAULT_MODEL_DIR, OfflineScorer
from bot.scoring.windows import pad_batch

pytestmark = pytest.mark.model

WORDS = ("the", "Councillor", "naïve", "🔪", "don't", "k i l l", "f***", "@rachel", "2026",
         "antidisestablishmentarianism", "ＦＵＬＬ", "שלום", "\n", "   ", "...", "x")


@pytest.fixture(scope="module")
def hugging_face() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(DEFAULT_MODEL_DIR), local_files_only=True)


@pytest.fixture(scope="module")
def ours() -> FastTokenizer:
    return FastTokenizer(DEFAULT_MODEL_DIR)


texts = st.lists(st.lists(st.sampled_from(WORDS) | st.text(max_size=6), max_size=40)
                 .map(" ".join), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(texts=texts, specials=st.booleans(), limit=st.none() | st.integers(3, 40))
def test_tokenizer_gives_the_same_ids_and_offsets(hugging_face: Any, ours: FastTokenizer,
                                                  texts: list[str], specials: bool,
                                                  limit: int | None) -> None:
    kwargs: dict[str, Any] = {"add_special_tokens": specials, "return_offsets_mapping": True,
                              "truncation": limit is not None, "max_length": limit}
    theirs, mine = hugging_face(texts, verbose=False, **kwargs), ours(texts, **kwargs)
    assert mine["input_ids"] == theirs["input_ids"]
    assert mine["offset_mapping"] == [[tuple(o) for o in row] for row in
                                      theirs["offset_mapping"]]
    assert ours(texts[0])["input_ids"] == hugging_face(texts[0])["input_ids"]
    assert ours.pad_token_id == hugging_face.pad_token_id
    assert ours.num_special_tokens_to_add() == 2


def test_encoder_computes_what_transformers_bert_computes(ours: FastTokenizer) -> None:
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    state = {k.removeprefix("encoder."): v.float() for k, v in
             load_file(str(DEFAULT_MODEL_DIR / "model.safetensors")).items()
             if k.startswith("encoder.")}
    reference = BertModel(BertConfig.from_json_file(str(DEFAULT_MODEL_DIR / "config.json")),
                          add_pooling_layer=False).eval()
    reference.load_state_dict(state, strict=True)
    mine = BertEncoder(EncoderConfig.from_file(DEFAULT_MODEL_DIR / "config.json")).eval()
    mine.load_state_dict(state, strict=True)
    units = ours(["I know where you live.", "Thanks for the minutes, see you on Thursday at "
                  "the ward meeting", "🔪"])["input_ids"]
    ids, mask = pad_batch(units, ours.pad_token_id)
    with torch.inference_mode():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        got = mine(ids, mask)
    real = mask.bool()
    assert torch.allclose(got[real], expected[real], atol=1e-5)


def test_an_unsupported_config_is_a_clear_model_error(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    (folder / "config.json").write_text(json.dumps(config | {"hidden_act": "relu"}),
                                        encoding="utf-8")
    with pytest.raises(ModelError, match="hidden_act='relu'"):
        OfflineScorer(model_dir=folder)
