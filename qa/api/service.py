"""Shared state of the service: the loaded index and encoder, and the dependencies
that hand them to the routers."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Annotated

import faiss
from fastapi import Depends, HTTPException, Request

from ..config import Settings
from ..encoder import Encoder
from ..index import CURRENT, IndexError_, load_index
from ..search import Ranking, Searcher

log = logging.getLogger("qa.api")


class Service:
    """The loaded index and encoder; swapped whole when a new build appears."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.encoder: Encoder | None = None
        self.searcher: Searcher | None = None
        self.error: str | None = None
        self.pointer: str | None = None
        self._lock = threading.Lock()

    def _pointer(self) -> str | None:
        try:
            return (Path(self.settings.index_dir) / CURRENT).read_text().strip()
        except OSError:
            return None

    def load(self) -> None:
        s = self.settings
        if self.encoder is None and s.retrieval != "bm25":
            self.encoder = Encoder(s.model, query_prompt=s.query_prompt, passage_prompt=s.passage_prompt)
            self.encoder.for_serving()
            faiss.omp_set_num_threads(1)  # one query per request; workers use the cores
            self.encoder.encode_queries(["warm-up"])  # first call pays one-off allocations
        pointer = self._pointer()
        try:
            index = load_index(s.index_dir, model=self.encoder.identity if self.encoder else None)
        except IndexError_ as e:
            with self._lock:
                self.pointer = pointer
                if self.searcher is None:
                    self.error = str(e)
            if self.searcher is not None:
                log.error("new index not loaded, still serving the previous one: %s", e)
            return
        searcher = Searcher(
            index, self.encoder, Ranking.for_retrieval(s.retrieval, s.answer_threshold, s.model), query_cache=s.query_cache
        )
        searcher.search("warm-up")  # first search pays one-off costs (FAISS, BM25, language model)
        with self._lock:
            self.searcher, self.error, self.pointer = searcher, None, pointer
        log.info("index loaded: %s", index.manifest.get("build_time"))

    def reload_if_changed(self) -> None:
        if self._pointer() != self.pointer:
            self.load()


# Dependencies are `async def`: a plain `def` would run in the threadpool on every request.
async def get_service(request: Request) -> Service:
    return request.app.state.service


async def get_searcher(service: Annotated[Service, Depends(get_service)]) -> Searcher:
    if service.searcher is None:
        raise HTTPException(503, detail=f"no index loaded: {service.error or 'still starting'}")
    return service.searcher


