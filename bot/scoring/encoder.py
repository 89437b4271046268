"""The shipped model's encoder and tokenizer for inference, on torch and `tokenizers` alone.

Importing transformers' BertModel takes about 2.7 s on this project's 2-core machine, most of
the offline scorer's start-up; the encoder it runs is small. `BertEncoder` is that encoder
(BERT: absolute positions, post-layer-norm, exact GELU) with transformers' parameter names,
so the same safetensors load into either; `FastTokenizer` gives the few calls the scorer makes
on a Hugging Face tokenizer, over the same ``tokenizer.json``. Training (scripts/
train_model.py) keeps transformers' classes; tests check both give the same scores.
"""

from __future__ import annotations

__all__ = ["BertEncoder", "EncoderConfig", "FastTokenizer"]

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True, slots=True)
class EncoderConfig:
    """The fields of a BERT ``config.json`` the encoder needs."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float

    @classmethod
    def from_file(cls, path: Path, /) -> EncoderConfig:
        """Read ``config.json``; ValueError for a model this encoder cannot run."""
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("config.json is not an object")
        for key, want in (("model_type", "bert"), ("hidden_act", "gelu"),
                          ("position_embedding_type", "absolute")):
            if raw.get(key, want) != want:
                raise ValueError(f"config.json has {key}={raw.get(key)!r}; only {want!r} is "
                                 "supported")
        try:
            return cls(
                vocab_size=int(raw["vocab_size"]), hidden_size=int(raw["hidden_size"]),
                num_hidden_layers=int(raw["num_hidden_layers"]),
                num_attention_heads=int(raw["num_attention_heads"]),
                intermediate_size=int(raw["intermediate_size"]),
                max_position_embeddings=int(raw["max_position_embeddings"]),
                type_vocab_size=int(raw["type_vocab_size"]),
                layer_norm_eps=float(raw["layer_norm_eps"]))
        except KeyError as exc:
            raise ValueError(f"config.json lacks {exc}") from None


class _Embeddings(nn.Module):
    def __init__(self, c: EncoderConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        # One segment: every token has token type 0.
        x = (self.word_embeddings(ids) + self.token_type_embeddings.weight[0]
             + self.position_embeddings(positions)[None])
        out: torch.Tensor = self.LayerNorm(x)
        return out


class _Projections(nn.Module):
    def __init__(self, c: EncoderConfig) -> None:
        super().__init__()
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)


class _DenseNorm(nn.Module):
    """A projection added to the residual, then layer norm (BERT's post-norm)."""

    def __init__(self, c: EncoderConfig, inputs: int) -> None:
        super().__init__()
        self.dense = nn.Linear(inputs, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.LayerNorm(self.dense(x) + residual)
        return out


class _Attention(nn.Module):
    def __init__(self, c: EncoderConfig) -> None:
        super().__init__()
        self.heads = c.num_attention_heads
        # transformers' names: attention.self.query ..., attention.output.dense.
        self.self = _Projections(c)
        self.output = _DenseNorm(c, c.hidden_size)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, hidden // self.heads).transpose(1, 2)

        context = F.scaled_dot_product_attention(
            split(self.self.query(x)), split(self.self.key(x)), split(self.self.value(x)),
            attn_mask=keep)
        out: torch.Tensor = self.output(context.transpose(1, 2).reshape(batch, length, hidden),
                                        x)
        return out


class _Intermediate(nn.Module):
    def __init__(self, c: EncoderConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)


class _Layer(nn.Module):
    def __init__(self, c: EncoderConfig) -> None:
        super().__init__()
        self.attention = _Attention(c)
        self.intermediate = _Intermediate(c)
        self.output = _DenseNorm(c, c.intermediate_size)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        attended = self.attention(x, keep)
        out: torch.Tensor = self.output(F.gelu(self.intermediate.dense(attended)), attended)
        return out


class _Stack(nn.Module):
    def __init__(self, c: EncoderConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(c) for _ in range(c.num_hidden_layers))


class BertEncoder(nn.Module):
    """BERT's encoder for inference; parameter names as transformers' ``BertModel`` (without
    the pooler), so its weights load unchanged."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.embeddings = _Embeddings(config)
        self.encoder = _Stack(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The last hidden states, one row per token (padding rows are not meaningful)."""
        keep = attention_mask.bool()[:, None, None, :]
        x: torch.Tensor = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            x = layer(x, keep)
        return x


class FastTokenizer:
    """The calls the scoring code makes on a Hugging Face fast tokenizer, over the same
    ``tokenizer.json`` with the `tokenizers` library alone (same ids and offsets)."""

    def __init__(self, folder: Path, /) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        pad = settings.get("pad_token", "[PAD]")
        pad = pad.get("content", "[PAD]") if isinstance(pad, dict) else str(pad)
        pad_id = self._tokenizer.token_to_id(pad)
        if pad_id is None:
            raise ValueError(f"the tokenizer has no padding token {pad!r}")
        self.pad_token_id: int = pad_id
        self._specials = self._tokenizer.num_special_tokens_to_add(is_pair=False)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """Special tokens around one text ([CLS] and [SEP]: 2)."""
        return int(self._tokenizer.num_special_tokens_to_add(is_pair=pair))

    def __len__(self) -> int:
        return int(self._tokenizer.get_vocab_size(with_added_tokens=True))

    def __call__(self, texts: str | Sequence[str], /, *, add_special_tokens: bool = True,
                 return_offsets_mapping: bool = False, truncation: bool = False,
                 max_length: int | None = None, verbose: bool = True) -> dict[str, Any]:
        """``input_ids`` (and ``offset_mapping``) per text, as a Hugging Face tokenizer gives
        them: with `truncation`, the text's tokens are cut so that the special tokens fit in
        `max_length`."""
        single = isinstance(texts, str)
        batch = [texts] if isinstance(texts, str) else list(texts)
        encodings = self._tokenizer.encode_batch(batch, add_special_tokens=False)
        if add_special_tokens or (truncation and max_length is not None):
            room = None
            if truncation and max_length is not None:
                room = max_length - (self._specials if add_special_tokens else 0)
            done = []
            for encoding in encodings:
                if room is not None and len(encoding.ids) > room:
                    encoding.truncate(room)
                done.append(self._tokenizer.post_process(encoding, None, add_special_tokens)
                            if add_special_tokens else encoding)
            encodings = done
        ids = [list(e.ids) for e in encodings]
        out: dict[str, Any] = {"input_ids": ids[0] if single else ids}
        if return_offsets_mapping:
            offsets = [list(e.offsets) for e in encodings]
            out["offset_mapping"] = offsets[0] if single else offsets
        return out
