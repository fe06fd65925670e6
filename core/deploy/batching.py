"""The prediction server's limits and its micro-batcher, which gathers concurrent requests into one model call."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .predict import Predictor


@dataclass(frozen=True)
class ServeLimits:
    max_inputs: int = 256  # rows per request
    max_chars: int = 20_000  # characters per text
    max_body_bytes: int = 2 * 2**20
    max_batch: int = 16  # rows gathered across concurrent requests into one predict call
    wait_ms: float = 3.0  # how long the first request of a batch waits for others
    max_new_tokens: int = 512  # assistants: the longest answer a request may ask for


class MicroBatcher:
    """Gathers the rows of concurrent requests into one model call (up to max_batch rows or wait_ms)."""

    def __init__(self, predictor: Predictor, limits: ServeLimits):
        self.predictor, self.limits = predictor, limits
        self.queue: asyncio.Queue | None = None
        self.worker: asyncio.Task | None = None

    def submit(self, rows: dict[str, list[str]]) -> asyncio.Future:
        """Queue one request's rows at once (no await: nothing can come between choosing a batcher and queueing on
        it); the future gets their predictions."""
        loop = asyncio.get_running_loop()
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.worker = loop.create_task(self._worker())
        done = loop.create_future()
        self.queue.put_nowait((rows, done))
        return done

    async def close(self) -> None:
        """Answer every request queued so far, then stop (a promoted server drains its old model this way)."""
        if self.queue is not None:
            self.queue.put_nowait(None)
            await self.worker

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            pending = [await self.queue.get()]
            deadline = loop.time() + self.limits.wait_ms / 1000
            while pending[-1] is not None and sum(len(next(iter(r.values()))) for r, _ in pending) < self.limits.max_batch:
                try:
                    pending.append(await asyncio.wait_for(self.queue.get(), max(0.0, deadline - loop.time())))
                except asyncio.TimeoutError:
                    break
            if pending[-1] is None:  # close(): answer what came before it, then stop
                stopping = True
                pending.pop()
            if pending:
                await self._answer(pending, loop)

    async def _answer(self, pending: list, loop: asyncio.AbstractEventLoop) -> None:
        merged = {role: [t for rows, _ in pending for t in rows[role]] for role in pending[0][0]}
        try:
            predictions = await loop.run_in_executor(None, self.predictor.predict, merged)
        except Exception as exc:  # one bad batch must not stop the server
            for _, done in pending:
                done.set_exception(exc)
            return
        start = 0
        for rows, done in pending:
            count = len(next(iter(rows.values())))
            done.set_result(predictions[start:start + count])
            start += count
