"""DetoxifyScorer: the `detoxify` package's toxicity models, loaded strictly offline.

detoxify downloads its weights from GitHub releases and its configs and tokenizers from the
Hugging Face hub on first use. A moderation bot must not do that at start-up, so this scorer
only loads a checkpoint file and a config folder that are already on disk, and says plainly
where to get them when they are not.

detoxify 0.5.x calls ``config_class.from_pretrained(model_type)`` with the checkpoint's
``config.arch.args.model_type`` even when given a local config folder; the published
checkpoints name a hub model there (``bert-base-uncased`` and friends), which fails offline.
When that name is not the local folder, the loaded checkpoint is patched to name it and
handed to the real ``Detoxify`` class as an in-memory file (``torch.load`` accepts one).

Models see at most 512 tokens. Longer texts are cut into overlapping windows, every window of
a batch is scored together, and each category keeps its highest score over a text's windows,
so abuse at the end of a long message is not lost to truncation.
"""

from __future__ import annotations

__all__ = [
    "MODEL_TYPES",
    "DetoxifyScorer",
    "find_local_weights",
    "published_url",
]

import io
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from bot.errors import ModelError
from bot.models import MODEL_CATEGORIES, Category
from bot.scoring.base import file_sha256, resolve_precision, scorable, with_precision
from bot.scoring.windows import score_units

log = logging.getLogger(__name__)

#: The model types detoxify publishes checkpoints for.
MODEL_TYPES: tuple[str, ...] = (
    "original", "unbiased", "multilingual", "original-small", "unbiased-small",
)

#: The Hugging Face model whose config and tokenizer each model type was trained from.
_HUB_MODELS: Mapping[str, str] = {
    "original": "bert-base-uncased",
    "unbiased": "roberta-base",
    "multilingual": "xlm-roberta-base",
    "original-small": "albert-base-v2",
    "unbiased-small": "albert-base-v2",
}

#: detoxify's label names (before and after its own renaming) to the core's categories.
#: Labels not listed (the unbiased models' identity-mention heads such as ``male`` or
#: ``muslim``) say who a text mentions, not whether it is abusive, and are dropped.
_CATEGORY_ALIASES: Mapping[str, Category] = {
    "toxic": Category.TOXICITY,
    "toxicity": Category.TOXICITY,
    "severe_toxic": Category.SEVERE_TOXICITY,
    "severe_toxicity": Category.SEVERE_TOXICITY,
    "obscene": Category.OBSCENE,
    "threat": Category.THREAT,
    "insult": Category.INSULT,
    "identity_hate": Category.IDENTITY_ATTACK,
    "identity_attack": Category.IDENTITY_ATTACK,
    "sexual_explicit": Category.SEXUAL_EXPLICIT,
    "sexually_explicit": Category.SEXUAL_EXPLICIT,
}

#: Files of which a config folder must hold at least one for its tokenizer to load.
_TOKENIZER_FILES: tuple[str, ...] = (
    "tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model",
)

#: A tokenizer_config.json without model_max_length reports a huge sentinel value.
_SANE_MAX_LENGTH = 100_000
_DEFAULT_MAX_LENGTH = 512


def published_url(model_type: str, /) -> str:
    """Where detoxify publishes the checkpoint for `model_type` (a GitHub release asset)."""
    _check_model_type(model_type)
    from detoxify.detoxify import MODEL_URLS  # heavy import (torch): only when needed

    return str(MODEL_URLS[model_type])


def find_local_weights(
    model_type: str, /, *, search_dirs: Iterable[Path] = (), torch_hub: bool = True
) -> Path | None:
    """The published checkpoint file for `model_type` if it is already on disk, else None.

    Looks for the release asset's file name (e.g. ``toxic_original-c1212f89.ckpt``) in each
    of `search_dirs`, then (with `torch_hub`) in torch's hub cache, where detoxify saves the
    weights when it downloads them itself. Never downloads anything.
    """
    name = published_url(model_type).rsplit("/", 1)[-1]
    dirs = [Path(d).expanduser() for d in search_dirs]
    if torch_hub:
        import torch

        dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    for folder in dirs:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def _check_model_type(model_type: str) -> None:
    if model_type not in MODEL_TYPES:
        raise ModelError(f"unknown detoxify model type {model_type!r}",
                         hint=f"Choose one of: {', '.join(MODEL_TYPES)}")


def _download_hint(model_type: str) -> str:
    hub = _HUB_MODELS[model_type]
    return (
        f"Download the checkpoint from {published_url(model_type)} and the config and tokenizer "
        f"files of {hub} (config.json plus its tokenizer files) from "
        f"https://huggingface.co/{hub} into one folder, then point the bot at both "
        "(checkpoint=PATH, config_dir=FOLDER); the bot never downloads them itself"
    )


def _load_checkpoint(path: Path, hint: str) -> dict[str, Any]:
    """Read the checkpoint dict (memory-mapped when the file format allows)."""
    import torch

    try:
        # Memory-mapping reads only what is touched: cheap when we only need the config.
        loaded = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception:  # legacy (non-zip) format or a damaged file: try the plain way
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise ModelError(f"cannot read detoxify checkpoint ({type(exc).__name__}: {exc})",
                             path=str(path),
                             hint=f"The file is damaged or incomplete. {hint}") from exc
    if not isinstance(loaded, dict):
        raise ModelError("not a detoxify checkpoint (expected a dict with config and state_dict)",
                         path=str(path), hint=hint)
    return loaded


def _arch_args(loaded: Mapping[str, Any], path: Path, hint: str) -> dict[str, Any]:
    """The checkpoint's ``config.arch.args``, checked for what detoxify needs."""
    try:
        args = loaded["config"]["arch"]["args"]
        _ = loaded["config"]["dataset"]["args"]["classes"]
        _ = loaded["state_dict"]
        missing = [k for k in ("model_type", "model_name", "tokenizer_name", "num_classes")
                   if k not in args]
    except (KeyError, TypeError) as exc:
        raise ModelError(f"not a detoxify checkpoint (no {exc} in it)", path=str(path),
                         hint=hint) from exc
    if missing:
        raise ModelError(f"not a detoxify checkpoint (config.arch.args lacks {missing})",
                         path=str(path), hint=hint)
    return dict(args)


class DetoxifyScorer:
    """Scores texts with a detoxify model loaded from local files; long texts in windows.

    Inference is synchronous and CPU-bound; the core's `Batcher` runs `score_batch` in a
    worker thread. Calls are serialised with a lock, so one scorer may be shared.
    """

    name: str
    version: str
    categories: tuple[str, ...]

    def __init__(
        self,
        *,
        model_type: str = "original",
        device: str = "cpu",
        checkpoint: Path | None = None,
        config_dir: Path | None = None,
        precision: str = "fp32",
        max_tokens: int | None = None,
        overlap: int = 64,
        max_windows_per_call: int = 64,
    ) -> None:
        """Load the model through `detoxify.Detoxify`, offline.

        `checkpoint` is the published ``.ckpt`` file for `model_type` (see `published_url`);
        `config_dir` a folder with the matching Hugging Face ``config.json`` and tokenizer
        files. `config_dir` may be omitted only when the checkpoint itself names an existing
        local folder. `precision` is one of `bot.config.PRECISIONS` (bf16 and int8 are
        faster, scores shift a little). `max_tokens` caps a window (default:
        what the model accepts, less its special tokens); windows overlap by `overlap` tokens;
        at most `max_windows_per_call` windows go through the model at once.

        The checkpoint is unpickled (detoxify loads it with ``weights_only=False``, which can
        run code), so use only files from detoxify's own releases or ones you built.

        Raises ModelError when the model type is unknown or the files are missing or unusable.
        """
        _check_model_type(model_type)
        if overlap < 0 or max_windows_per_call < 1:
            raise ValueError("overlap must be >= 0 and max_windows_per_call >= 1")
        # `auto` stays fp32 here: bf16 was measured on the offline model's labelled figures,
        # and detoxify's real weights cannot be (they are not fetched); ask for it by name.
        precision = resolve_precision("fp32" if precision == "auto" else precision, device)
        hint = _download_hint(model_type)
        if checkpoint is None:
            raise ModelError(f"detoxify weights for {model_type!r} are not present", hint=hint)
        checkpoint = Path(checkpoint).expanduser()
        if not checkpoint.is_file():
            raise ModelError("detoxify checkpoint not found", path=str(checkpoint), hint=hint)
        if config_dir is not None:
            config_dir = Path(config_dir).expanduser()
            self._check_config_dir(config_dir, hint)

        loaded = _load_checkpoint(checkpoint, hint)
        args = _arch_args(loaded, checkpoint, hint)
        named = str(args["model_type"])
        if config_dir is None:
            if not Path(named).is_dir():
                raise ModelError(
                    f"the checkpoint names the hub model {named!r}, which cannot be fetched "
                    "offline, and no local config folder was given", path=str(checkpoint),
                    hint=hint)
            config_dir = Path(named)
            self._check_config_dir(config_dir, hint)
        source: str | io.BytesIO
        if named != str(config_dir):
            # detoxify would call from_pretrained(named) and reach for the hub: name the folder.
            log.info("detoxify checkpoint %s names %r; loading its config from %s",
                     checkpoint, named, config_dir)
            loaded["config"]["arch"]["args"]["model_type"] = str(config_dir)
            source = self._serialise(loaded)
        else:
            source = str(checkpoint)
        del loaded

        self._detox = self._load(model_type=model_type, source=source, device=device,
                                 checkpoint=checkpoint, config_dir=config_dir, hint=hint)
        self._check_tokenizer(config_dir, hint)
        self._detox.model = with_precision(self._detox.model, precision)

        # (output column, core category) for each label the core uses.
        self._columns: list[tuple[int, str]] = []
        for column, label in enumerate(self._detox.class_names):
            category = _CATEGORY_ALIASES.get(str(label))
            if category is None:
                log.debug("detoxify label %r is not a conduct category; ignored", label)
            elif all(category != c for _, c in self._columns):
                self._columns.append((column, str(category)))
        if not self._columns:
            raise ModelError("the checkpoint scores none of the conduct categories "
                             f"(labels: {list(self._detox.class_names)})", path=str(checkpoint),
                             hint=hint)
        present = {c for _, c in self._columns}
        self.categories = tuple(str(c) for c in MODEL_CATEGORIES if c in present)

        limit = self._input_limit()
        specials = int(self._detox.tokenizer.num_special_tokens_to_add(pair=False))
        self.max_tokens = min(max_tokens or limit - specials, limit - specials)
        if self.max_tokens <= overlap:
            raise ValueError(f"max_tokens ({self.max_tokens}) must exceed overlap ({overlap})")
        self.overlap = overlap
        self.max_windows_per_call = max_windows_per_call
        self.model_type = model_type
        self.checkpoint = checkpoint
        self.config_dir = config_dir
        self.precision = precision
        self.name = f"detoxify-{model_type}"
        self.version = (f"{metadata.version('detoxify')}/{checkpoint.name}/"
                        f"sha256:{file_sha256(checkpoint)[:12]}"
                        + ("" if precision == "fp32" else f"/{precision}"))
        self._lock = threading.Lock()

    @staticmethod
    def available(checkpoint: Path | None, config_dir: Path | None) -> bool:
        """Whether the files a scorer needs look present (cheap: opens nothing).

        True when `checkpoint` is a file and `config_dir` a folder with ``config.json`` and a
        tokenizer file. Loading can still fail on a damaged file (the constructor raises
        ModelError), so a factory falling back to another scorer should catch that too.
        """
        if checkpoint is None or config_dir is None:
            return False
        config_dir = Path(config_dir).expanduser()
        return (Path(checkpoint).expanduser().is_file()
                and (config_dir / "config.json").is_file()
                and any((config_dir / f).is_file() for f in _TOKENIZER_FILES))

    @property
    def detoxify(self) -> Any:
        """The underlying `detoxify.Detoxify` object (its `predict` truncates long texts)."""
        return self._detox

    def score_batch(self, texts: Sequence[str], /) -> list[dict[str, float]]:
        """Per-category scores in [0, 1] for each text: the maximum over the text's windows.

        The same model and arithmetic as ``Detoxify.predict``, but each text is tokenised
        once and the whole batch goes through the model in batches of similar length, so short
        messages are not padded to the longest and the weights are read once per batch."""
        if not texts:
            return []
        import torch

        with self._lock, torch.inference_mode():
            return score_units([scorable(t) for t in texts], self._detox.tokenizer,
                               max_tokens=self.max_tokens, overlap=self.overlap, run=self._run,
                               max_batch=self.max_windows_per_call)

    def _run(self, ids: Any, mask: Any) -> list[dict[str, float]]:
        """Scores for one padded batch, as ``Detoxify.predict`` computes them."""
        import torch

        device = self._detox.device
        logits = self._detox.model(input_ids=ids.to(device), attention_mask=mask.to(device))[0]
        table = torch.sigmoid(logits.float()).cpu().tolist()
        return [{category: min(1.0, max(0.0, float(values[column])))
                 for column, category in self._columns} for values in table]

    @staticmethod
    def _check_config_dir(config_dir: Path, hint: str) -> None:
        if not config_dir.is_dir():
            raise ModelError("detoxify config folder not found", path=str(config_dir), hint=hint)
        if not (config_dir / "config.json").is_file():
            raise ModelError("detoxify config folder has no config.json", path=str(config_dir),
                             hint=hint)
        if not any((config_dir / f).is_file() for f in _TOKENIZER_FILES):
            raise ModelError(
                f"detoxify config folder has no tokenizer files (one of {list(_TOKENIZER_FILES)})",
                path=str(config_dir), hint=hint)

    @staticmethod
    def _serialise(loaded: dict[str, Any]) -> io.BytesIO:
        import torch

        buffer = io.BytesIO()
        torch.save(loaded, buffer)
        buffer.seek(0)
        return buffer

    @staticmethod
    def _load(*, model_type: str, source: str | io.BytesIO, device: str, checkpoint: Path,
              config_dir: Path, hint: str) -> Any:
        from detoxify import Detoxify

        try:
            return Detoxify(model_type=model_type, checkpoint=source, device=device,
                            huggingface_config_path=str(config_dir))
        except Exception as exc:
            raise ModelError(
                f"detoxify could not load the model from {checkpoint} with the config in "
                f"{config_dir} ({type(exc).__name__}: {exc})", path=str(checkpoint),
                hint=hint) from exc

    def _check_tokenizer(self, config_dir: Path, hint: str) -> None:
        # transformers 5 loads a folder without usable tokenizer files as a tokenizer of
        # special tokens only (every word becomes [UNK]) without complaint: catch that here.
        tokens = len(self._detox.tokenizer)
        expected = int(self._detox.model.config.vocab_size)
        if tokens > expected or tokens < expected // 2:
            raise ModelError(
                f"the tokenizer in the config folder has {tokens} tokens but the model expects "
                f"{expected}; the folder holds the wrong or incomplete tokenizer files",
                path=str(config_dir), hint=hint)

    def _input_limit(self) -> int:
        """Tokens (special ones included) the model accepts, and make predict truncate there."""
        tokenizer = self._detox.tokenizer
        limit = int(getattr(tokenizer, "model_max_length", 0) or 0)
        if not 0 < limit <= _SANE_MAX_LENGTH:
            limit = _DEFAULT_MAX_LENGTH
        positions = getattr(self._detox.model.config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            limit = min(limit, positions)
        # predict() truncates at model_max_length; a missing value would overflow positions.
        tokenizer.model_max_length = limit
        return limit
