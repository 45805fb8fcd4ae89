"""Shared state of the service: the loaded index and encoder, and the dependencies
that hand them to the routers."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Annotated

import faiss
from fastapi import Depends, HTTPException, Request

from ..artifact import CURRENT, load_newest_intact
from ..config import Settings
from ..encoder import Encoder
from ..errors import IndexLoadError
from ..ranking import Ranking
from ..rerank import Reranker, is_cross_folder
from ..search import Searcher

log = logging.getLogger("qa.api")

# Set by the server on SIGTERM (qa/ops/server.py): /readyz then answers 503 "draining".
DRAINING = threading.Event()


class Service:
    """The loaded index and encoder; swapped whole when a new build appears."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.encoder: Encoder | None = None
        self.searcher: Searcher | None = None
        self.reranker: Reranker | None = None
        self.error: str | None = None
        self.pointer: str | None = None
        self.build: str | None = None  # the build folder being served
        self.degraded: str | None = None  # why the served build is not the current one
        self._lock = threading.Lock()

    def _pointer(self) -> str | None:
        """`CURRENT` as text for change detection and messages, whatever bytes it holds."""
        try:
            raw = (Path(self.settings.index_dir) / CURRENT).read_bytes()
        except OSError:
            return None
        return raw.decode("utf-8", "backslashreplace").strip()[:120]

    def load(self) -> None:
        s = self.settings
        if self.encoder is None and s.retrieval != "bm25":
            # serving=True: a bundled model runs without torch (a small replica).
            self.encoder = Encoder(s.model, query_prompt=s.query_prompt, passage_prompt=s.passage_prompt, serving=True)
            self.encoder.for_serving()
            faiss.omp_set_num_threads(1)  # one query per request; workers use the cores
            self.encoder.encode_queries(["warm-up"])  # first call pays one-off allocations
        if self.reranker is None and s.reranker is not None:
            self.reranker = self._load_reranker(s.reranker)
        pointer = self._pointer()
        model = self.encoder.identity if self.encoder else None
        try:
            # A bad CURRENT or build falls back to the newest intact build, at start-up and
            # while running; when that is the build being served, it just keeps serving.
            index, folder, refused = load_newest_intact(s.index_dir, model=model, serving=self.build)
        except IndexLoadError as e:
            with self._lock:
                self.pointer = pointer
                if self.searcher is None:
                    self.error = str(e)
                else:
                    self.degraded = f"the current build {pointer} was refused: {e}; serving {self.build}"
            if self.searcher is not None:
                log.error("new index not loaded, still serving the previous one: %s", e)
            return
        if index is None:  # the build being served is still the newest intact one
            with self._lock:
                self.pointer = pointer
                self.degraded = f"the current build {pointer} was refused: {refused[0]}; serving {self.build}"
            log.error("new index not loaded, still serving %s: %s", self.build, "; ".join(refused))
            return
        searcher = Searcher(
            index,
            self.encoder,
            Ranking.for_retrieval(s.retrieval, s.answer_threshold, s.model),
            query_cache=s.query_cache,
            reranker=self.reranker,
        )
        searcher.search("warm-up")  # first search pays one-off costs (FAISS, BM25, language model)
        degraded = None
        if refused:
            degraded = f"the current build {pointer} was refused: {refused[0]}; serving {folder.name}"
            log.error("falling back to build %s: %s", folder.name, "; ".join(refused))
        with self._lock:
            self.searcher, self.error, self.pointer = searcher, None, pointer
            self.build, self.degraded = folder.name, degraded
        log.info("index loaded: %s (%s)", index.manifest.get("build_time"), folder.name)

    @staticmethod
    def _load_reranker(folder: Path) -> Reranker | None:
        """The second stage, or None (answering with the first stage) when its folder
        is not a cross-encoder or its runtime is not installed: a missing model must not
        stop the service."""
        if not is_cross_folder(folder):
            log.error("HELPDESK_QA_RERANKER=%s is not a cross-encoder folder (qa train-rerank): "
                      "final questions are answered by the first stage", folder)
            return None
        try:
            reranker = Reranker.from_folder(folder)
        except ImportError as e:  # the slim install (and the default image) has no onnxruntime
            log.error("HELPDESK_QA_RERANKER=%s needs onnxruntime and tokenizers (%s): pip install "
                      "'helpdesk-qa[onnx]'; final questions are answered by the first stage", folder, e)
            return None
        reranker.cross.score("warm-up", ["warm-up"])
        log.info("second stage loaded: %s (depth %d, weight %g)", folder, reranker.depth, reranker.weight)
        return reranker

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


