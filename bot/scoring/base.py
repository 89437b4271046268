"""The Scorer protocol and the batcher that keeps model inference off the event loop."""

from __future__ import annotations

__all__ = ["Batcher", "Scorer", "file_sha256"]

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

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
    platform events within their 3-second limits.
    """

    def __init__(self, scorer: Scorer, /, *, max_batch: int = 32, max_wait: float = 0.01) -> None:
        self.scorer = scorer
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[ScoreSet]]] | None = None
        self._worker: asyncio.Task[None] | None = None

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

    async def score(self, text: str, /) -> ScoreSet:
        """Score one text, batched with whatever else is waiting."""
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run(self._queue), name="scorer-batcher")
        fut: asyncio.Future[ScoreSet] = asyncio.get_running_loop().create_future()
        await self._queue.put((text, fut))
        return await fut

    async def score_many(self, texts: Sequence[str], /) -> list[ScoreSet]:
        """Score several texts at once (they are batched together)."""
        return list(await asyncio.gather(*(self.score(t) for t in texts)))

    async def _run(self, queue: asyncio.Queue[tuple[str, asyncio.Future[ScoreSet]]]) -> None:
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
            texts = [t for t, _ in batch]
            try:
                results = await asyncio.to_thread(self.scorer.score_batch, texts)
            except Exception as exc:  # the caller of each request gets the failure
                log.exception("scorer %s failed on a batch of %d", self.scorer.name, len(texts))
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), values in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(ScoreSet(values=values, model=self.scorer.name,
                                            version=self.scorer.version))


def file_sha256(path: Path, /) -> str:
    """The sha256 of a (possibly large) file, read in 1 MiB blocks: a model's version."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
