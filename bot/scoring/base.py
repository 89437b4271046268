"""The Scorer protocol and the batcher that keeps model inference off the event loop."""

from __future__ import annotations

__all__ = ["Batcher", "Scorer", "file_sha256", "native_bf16", "quantize_linear",
           "resolve_precision", "scorable", "with_precision"]

import asyncio
import hashlib
import logging
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from bot.config import PRECISIONS
from bot.metrics import Metrics
from bot.models import ScoreSet

log = logging.getLogger(__name__)


@runtime_checkable
class Scorer(Protocol):
    """Scores a batch of texts; synchronous and CPU-bound, so callers run it off the loop."""

    @property
    def name(self) -> str:
        """The model's name, recorded with every verdict."""
        ...

    @property
    def version(self) -> str:
        """The model's version, recorded with every verdict."""
        ...

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories it scores."""
        ...

    def score_batch(self, texts: Sequence[str], /) -> list[dict[str, float]]:
        """Per-category scores in [0, 1] for each text, in the order given."""
        ...


class Batcher:
    """Collects concurrent score requests into batches and runs them in a worker thread.

    Batching is the first performance lever for transformer scorers (several times the
    throughput of one text per call); the worker thread keeps the loop free to acknowledge
    platform events within their 3-second limits. It is always the same thread: glibc gives
    each thread its own memory arena, and the model's activations spread over the shared
    pool's threads kept about 150 MB more resident in a 5-minute load test.
    """

    def __init__(self, scorer: Scorer, /, *, max_batch: int = 32, max_wait: float = 0.01,
                 metrics: Metrics | None = None) -> None:
        self.scorer = scorer
        self.max_batch = max_batch
        self.max_wait = max_wait
        #: Where batch times and failures are counted (by default a registry of its own).
        self.metrics = metrics or Metrics()
        #: The exception type the scorer raised on the last text it was given, None when that
        #: text was scored (health reports it; never the exception's text, which could quote
        #: the message).
        self.failing: str | None = None
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[ScoreSet]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def __aenter__(self) -> Batcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the worker; pending requests fail with CancelledError."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None

    async def score(self, text: str, /) -> ScoreSet:
        """Score one text, batched with whatever else is waiting."""
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._thread = self._thread or ThreadPoolExecutor(max_workers=1,
                                                              thread_name_prefix="scorer")
            self._worker = asyncio.create_task(self._run(self._queue, self._thread),
                                               name="scorer-batcher")
        fut: asyncio.Future[ScoreSet] = asyncio.get_running_loop().create_future()
        await self._queue.put((text, fut))
        return await fut

    async def score_many(self, texts: Sequence[str], /) -> list[ScoreSet]:
        """Score several texts at once (they are batched together)."""
        return list(await asyncio.gather(*(self.score(t) for t in texts)))

    async def _run(self, queue: asyncio.Queue[tuple[str, asyncio.Future[ScoreSet]]],
                   thread: ThreadPoolExecutor) -> None:
        while True:
            batch = [await queue.get()]
            deadline = asyncio.get_running_loop().time() + self.max_wait
            while len(batch) < self.max_batch:
                timeout = deadline - asyncio.get_running_loop().time()
                try:
                    batch.append(queue.get_nowait() if timeout <= 0 else
                                 await asyncio.wait_for(queue.get(), timeout))
                except (asyncio.QueueEmpty, TimeoutError):
                    break
            texts = [scorable(t) for t, _ in batch]
            try:
                results = await self._score(texts, thread)
            except Exception as exc:
                if len(batch) == 1:  # its caller gets the failure
                    log.exception("scorer %s failed on a text", self.scorer.name)
                    self._settle(batch[0][1], exc)
                    continue
                # One bad text must not fail the others: score each alone, so only the text
                # that fails (if any) gets the failure.
                log.warning("scorer %s failed on a batch of %d (%s: %s); scoring them one by "
                            "one", self.scorer.name, len(texts), type(exc).__name__, exc)
                for text, (_, fut) in zip(texts, batch, strict=True):
                    try:
                        one = await self._score([text], thread)
                    except Exception as alone:
                        log.exception("scorer %s failed on a text", self.scorer.name)
                        self._settle(fut, alone)
                    else:
                        self._settle(fut, one[0])
                continue
            for (_, fut), values in zip(batch, results, strict=True):
                self._settle(fut, values)

    async def _score(self, texts: list[str], thread: ThreadPoolExecutor
                     ) -> list[dict[str, float]]:
        started = time.perf_counter()
        results = await asyncio.get_running_loop().run_in_executor(
            thread, self.scorer.score_batch, texts)
        self.metrics.scored_batch(len(texts), seconds=time.perf_counter() - started)
        if len(results) != len(texts):
            raise ValueError(f"scorer {self.scorer.name} returned {len(results)} results for "
                             f"{len(texts)} texts")
        return results

    def _settle(self, fut: asyncio.Future[ScoreSet],
                outcome: dict[str, float] | BaseException) -> None:
        if isinstance(outcome, BaseException):
            self.metrics.scorer_failures.inc()
            self.failing = type(outcome).__name__
        else:
            self.failing = None
        if fut.done():  # its caller went away
            return
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(ScoreSet(values=outcome, model=self.scorer.name,
                                    version=self.scorer.version))


def scorable(text: str, /) -> str:
    """`text` with each lone surrogate replaced by U+FFFD: tokenizers refuse them (and a
    whole batch with them), while a pair written as two surrogates is joined into its character.
    """
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def file_sha256(path: Path, /) -> str:
    """The sha256 of a (possibly large) file, read in 1 MiB blocks: a model's version."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AVX-512 BF16 or AMX tiles);
    elsewhere torch emulates bf16, slower than fp32."""
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes
        return False


def resolve_precision(precision: str, device: str, /) -> str:
    """The precision a scorer on `device` runs at: `precision`, or for ``auto`` this machine's
    best (bf16 on a CPU that has it in hardware, fp32 elsewhere)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        return "bf16" if device == "cpu" and native_bf16() else "fp32"
    if precision == "int8" and device != "cpu":
        raise ValueError("int8 precision is for CPU inference only")
    return precision


def with_precision(model: Any, precision: str, /) -> Any:
    """`model` (fp32, in eval mode) made to run at `precision` (already resolved)."""
    import torch

    if precision == "int8":
        return quantize_linear(model)
    if precision == "bf16":
        return model.to(torch.bfloat16)
    return model


def quantize_linear(model: Any, /) -> Any:
    """`model` with its Linear layers quantised to int8 dynamically, per output channel (CPU).

    Weights are stored as int8 with one scale per output row and activations are quantised on
    the fly; on a CPU with VNNI this runs the encoder two to three times faster. Per-channel
    scales keep the scores closer to fp32 than one scale per matrix (see README, "Speed")."""
    import torch

    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao but still works here.
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        return quantize_dynamic(  # type: ignore[no-untyped-call]
            model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
