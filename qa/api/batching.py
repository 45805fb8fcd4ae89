"""Questions that reach a worker together are encoded in one model call.

A worker answers on one event loop. While it runs a search (a few ms that hold the
loop), more requests arrive; when it is free again, the loop reads them all and starts
their handlers one after the other. Each handler asks `QueryBatcher.encode` for its
question's vector. The first to ask leads: it yields to the loop, so that the handlers
already started catch up and join, and it goes on yielding while the batch still grows
(at most `max_wait`, `max_batch`). Then it encodes the batch in one call
(`QueryVectors.many`) and hands each handler its own vector.

An idle worker's lone request yields once (one pass of the event loop, microseconds):
a batch of 1, no timer. Cached questions skip the batch altogether.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from ..encoder.queries import Encoded, QueryVectors

MAX_WAIT_SECONDS = 0.002


@dataclass
class _Waiting:
    vectors: QueryVectors
    text: str
    future: asyncio.Future


@dataclass
class QueryBatcher:
    max_batch: int = 8  # 1: every question encoded on its own
    max_wait: float = MAX_WAIT_SECONDS
    sizes: Counter = field(default_factory=Counter)  # batch size -> batches encoded (tests, bench)
    _waiting: list[_Waiting] = field(default_factory=list)

    async def encode(self, vectors: QueryVectors, text: str) -> Encoded:
        if self.max_batch <= 1:
            return vectors.get(text)
        cached = vectors.cached(text)
        if cached is not None:
            return cached
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(vectors, text, future))
        if len(self._waiting) == 1:  # the first to wait leads the batch
            try:
                await self._collect()
            finally:
                self._flush()  # also when the leader is cancelled: the others wait on it
        return await future

    async def _collect(self) -> None:
        """Yield to the loop while the batch grows, up to `max_wait` and `max_batch`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        seen = 0
        while seen < len(self._waiting) < self.max_batch and loop.time() < deadline:
            seen = len(self._waiting)
            await asyncio.sleep(0)

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        # A swap to a new build while collecting: each searcher's questions go to its own model.
        by_model: dict[int, list[_Waiting]] = {}
        for w in batch:
            by_model.setdefault(id(w.vectors), []).append(w)
        for group in by_model.values():
            for start in range(0, len(group), self.max_batch):
                self._encode(group[start : start + self.max_batch])

    def _encode(self, group: list[_Waiting]) -> None:
        try:
            encoded = group[0].vectors.many([w.text for w in group])
        except Exception as e:  # every request of the batch gets the error, none hangs
            for w in group:
                if not w.future.done():
                    w.future.set_exception(e)
            return
        self.sizes[len(group)] += 1
        for w, result in zip(group, encoded):
            if not w.future.done():  # a cancelled request
                w.future.set_result(result)
