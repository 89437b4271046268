"""Build a tiny detoxify checkpoint (2-layer BERT, hidden 32) that loads fully offline.

The checkpoint has detoxify's own on-disk format (a dict with ``config`` and ``state_dict``)
and comes with a local Hugging Face config folder (``config.json``, ``vocab.txt``,
``tokenizer_config.json``). Its weights start from a seeded random
initialisation and are then wired by hand so that its behaviour is known: the trigger word
drives ``threat`` (and ``toxic``) high wherever it sits in a window of up to 512 tokens, while
text without it scores low on everything. A trigger the model never sees (cut off by
truncation) cannot raise the score, which is what the window tests rely on.
"""

from __future__ import annotations

__all__ = [
    "BENIGN_WORDS",
    "CLASSES",
    "HUB_MODEL_TYPE",
    "TRIGGER",
    "VOCAB",
    "TinyDetoxify",
    "build_tiny_detoxify",
]

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers

#: detoxify's "original" label set, before detoxify renames it.
CLASSES: tuple[str, ...] = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
#: The word that makes the tiny model score ``threat`` (and ``toxic``) high.
TRIGGER = "kaboom"
#: What the published "original" checkpoint names as its model type (a hub id).
HUB_MODEL_TYPE = "bert-base-uncased"
BENIGN_WORDS: tuple[str, ...] = (
    "the", "a", "we", "our", "party", "meeting", "vote", "members", "branch", "motion",
    "agenda", "minutes", "chair", "treasurer", "leaflet", "canvass", "ward", "council",
    "budget", "policy", "hello", "thanks", "tomorrow", "evening", "hall", "tea", "please",
    "agree", "disagree", "amendment", "conference", "delegate", "report", "and", "to", "of",
)
_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_MAX_POSITIONS = 512


@dataclass(frozen=True, slots=True)
class TinyDetoxify:
    """Paths of a built tiny model: two checkpoints sharing one config folder."""

    #: Checkpoint whose ``arch.args.model_type`` names the local config folder.
    checkpoint: Path
    #: Same weights, but ``model_type`` is the hub id ``bert-base-uncased`` (as published).
    hub_checkpoint: Path
    #: Local folder with config.json and the tokenizer files.
    config_dir: Path
    trigger: str = TRIGGER


VOCAB: tuple[str, ...] = (*_SPECIALS, *BENIGN_WORDS, TRIGGER)


def _write_config_dir(config_dir: Path) -> transformers.BertConfig:
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    # transformers 5 ignores BertTokenizer(vocab_file=...): load the folder with from_pretrained.
    (config_dir / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True,
                    "model_max_length": _MAX_POSITIONS}),
        encoding="utf-8",
    )
    config = transformers.BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=_MAX_POSITIONS,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=len(CLASSES),
        id2label=dict(enumerate(CLASSES)),
        label2id={c: i for i, c in enumerate(CLASSES)},
    )
    config.save_pretrained(str(config_dir))
    return config


def _set_weights(model: transformers.BertForSequenceClassification, vocab: list[str]) -> None:
    """Wire the network so that [CLS] attends to the trigger and the head reads that.

    Embedding dimension 0 marks the trigger and dimension 1 marks [CLS]. In layer 1, head 0's
    query reads the [CLS] mark and its key reads the trigger mark, so [CLS] attends almost
    entirely to a trigger anywhere in the window (score ~30 against ~0 for other tokens) and
    copies the trigger mark into dimension 2. Every other sub-layer adds nothing (zero output
    projections), so the residual stream carries that through; the pooler and classifier read
    dimension 2. Without a trigger, [CLS] averages near-zero values and every score stays low.
    """
    trigger, cls = vocab.index(TRIGGER), vocab.index("[CLS]")
    with torch.no_grad():
        emb = model.bert.embeddings
        for table in (emb.word_embeddings, emb.position_embeddings, emb.token_type_embeddings):
            table.weight[:, :3] = 0.0
        emb.token_type_embeddings.weight.zero_()
        emb.word_embeddings.weight[trigger, 0] = 1.0
        emb.word_embeddings.weight[cls, 1] = 1.0
        for i, layer in enumerate(model.bert.encoder.layer):
            attn = layer.attention
            for lin in (attn.self.query, attn.self.key, attn.self.value, attn.output.dense,
                        layer.output.dense):
                lin.weight.zero_()
                lin.bias.zero_()
            if i == 0:
                attn.self.query.weight[0, 1] = 2.0
                attn.self.key.weight[0, 0] = 2.0
                attn.self.value.weight[2, 0] = 1.0
                attn.output.dense.weight[2, 2] = 1.0
        model.bert.pooler.dense.weight.zero_()
        model.bert.pooler.dense.bias.zero_()
        model.bert.pooler.dense.weight[0, 2] = 1.0
        head = model.classifier
        head.weight.zero_()
        head.bias.fill_(-5.0)
        for name, gain in (("toxic", 6.0), ("threat", 8.0)):
            row = CLASSES.index(name)
            head.weight[row, 0] = gain
            head.bias[row] = -3.0


def _build_weights(config: transformers.BertConfig, vocab: list[str], *, seed: int
                   ) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = transformers.BertForSequenceClassification(config)
    _set_weights(model, vocab)
    model.eval()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _checkpoint(model_type: str, state_dict: dict[str, torch.Tensor]) -> dict[str, object]:
    """A dict shaped like detoxify's published checkpoints."""
    return {
        "config": {
            "name": "Jigsaw_BERT_tiny",
            "arch": {
                "type": "BERT",
                "args": {
                    "num_classes": len(CLASSES),
                    "model_type": model_type,
                    "model_name": "BertForSequenceClassification",
                    "tokenizer_name": "BertTokenizer",
                },
            },
            "dataset": {"type": "JigsawDataOriginal", "args": {"classes": list(CLASSES)}},
        },
        "state_dict": state_dict,
    }


def build_tiny_detoxify(root: Path, *, seed: int = 1234) -> TinyDetoxify:
    """Build and save the tiny model under `root` (well under a second; ~100 KB on disk)."""
    root.mkdir(parents=True, exist_ok=True)
    config_dir = root / "tiny-bert"
    config = _write_config_dir(config_dir)
    state_dict = _build_weights(config, list(VOCAB), seed=seed)
    checkpoint = root / "tiny_original.ckpt"
    hub_checkpoint = root / "tiny_original_hubname.ckpt"
    torch.save(_checkpoint(str(config_dir), state_dict), checkpoint)
    torch.save(_checkpoint(HUB_MODEL_TYPE, state_dict), hub_checkpoint)
    return TinyDetoxify(checkpoint=checkpoint, hub_checkpoint=hub_checkpoint,
                        config_dir=config_dir)
