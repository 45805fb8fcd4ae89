"""Shared state of the service: the loaded index and encoder, and the dependencies
that hand them to the routers."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Annotated

import faiss
from fastapi import Depends, HTTPException, Request

from ..artifact import CURRENT, load_newest_intact
from ..buildmodels import BuildModels, check_configured, load_encoder, load_reranker, models_for
from ..config import Settings
from ..encoder import Encoder
from ..errors import IndexLoadError
from ..ranking import Ranking
from ..rerank import Reranker
from ..search import Searcher
from .batching import QueryBatcher

log = logging.getLogger("qa.api")

# Set by the server on SIGTERM (qa/ops/server.py): /readyz then answers 503 "draining".
DRAINING = threading.Event()
# While nothing is served, an unchanged index folder is tried again this often (loading
# verifies every file's hash: hundreds of MB for a build that carries its model).
RETRY_UNCHANGED = 300.0


class Service:
    """The loaded index and its models; swapped whole when a new build appears.

    A build is served with the models it needs (qa/buildmodels.py): the configured
    encoder, or the one a `qa adapt` build carries. When a new build needs other models,
    they are loaded beside the ones in use, the new `Searcher` is built and warmed up,
    and only then is it swapped in; requests already running finish on the old one
    (they hold their own reference), so a swap fails no request."""

    def __init__(self, settings: Settings, configured_rerankers: dict | None = None):
        self.settings = settings
        self.encoder: Encoder | None = None
        self.searcher: Searcher | None = None
        self.reranker: Reranker | None = None
        self.models: BuildModels | None = None  # what the served build is served with
        self.error: str | None = None
        self.pointer: str | None = None
        self.build: str | None = None  # the build folder being served
        self.degraded: str | None = None  # why the served build is not the current one
        self._lock = threading.Lock()
        self._staged: dict[str, tuple[BuildModels, Encoder | None, Reranker | None]] = {}
        # The configured second stage (HELPDESK_QA_RERANKER), by folder: loaded once for
        # this service and its final one, which reads the same setting.
        self._configured_rerankers = {} if configured_rerankers is None else configured_rerankers
        # A costlier build for final questions (`final_index_dir`), loaded and reloaded
        # beside this one the same way; `final_searcher` says when it may answer.
        self.final: Service | None = (Service(final_settings(settings), self._configured_rerankers)
                                      if settings.final_index_dir else None)
        self._final_state: str | None = None
        self._tried: tuple[tuple, float] | None = None  # (folder_state, when) of the last retry while unready

    def _pointer(self) -> str | None:
        """`CURRENT` as text for change detection and messages, whatever bytes it holds."""
        try:
            raw = (Path(self.settings.index_dir) / CURRENT).read_bytes()
        except OSError:
            return None
        return raw.decode("utf-8", "backslashreplace").strip()[:120]

    def _check_models(self, folder: Path, manifest: dict) -> None:
        """`load_build`'s model check: the build's models, loaded (or the ones in use
        when they are the same) and kept for `load`; an `IndexLoadError` refuses the build."""
        models = models_for(folder, manifest, self.settings)
        same = self.models is not None and self.models.encoder_key == models.encoder_key
        if models.encoder is None:
            encoder = None
        elif same and self.encoder is not None:
            encoder = self.encoder
            if "encoder" not in models.carried:
                check_configured(encoder, manifest, folder)
        else:
            encoder = load_encoder(models, self.settings, manifest, folder)
            encoder.for_serving()
            faiss.omp_set_num_threads(1)  # one query per request; workers use the cores
            encoder.encode_queries(["warm-up"])  # first call pays one-off allocations
            log.info("encoder loaded for %s: %s", folder.name, encoder.identity)
        served = self.models
        if served is not None and (served.reranker, served.carried) == (models.reranker, models.carried):
            reranker = self.reranker
        elif models.reranker is not None and "reranker" not in models.carried:
            key = str(models.reranker)
            if key not in self._configured_rerankers:
                self._configured_rerankers[key] = load_reranker(models, folder)
            reranker = self._configured_rerankers[key]
        else:
            reranker = load_reranker(models, folder)  # none, or the one a build carries
        self._staged[folder.name] = (models, encoder, reranker)

    def load(self) -> None:
        self._load()
        if self.final is not None:
            self.final.load()
            self._log_final()

    def _load(self) -> None:
        s = self.settings
        pointer = self._pointer()
        self._staged.clear()
        try:
            # A bad CURRENT or build falls back to the newest intact build, at start-up and
            # while running; when that is the build being served, it just keeps serving.
            index, folder, refused = load_newest_intact(s.index_dir, model=self._check_models, serving=self.build)
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
        models, encoder, reranker = self._staged.pop(folder.name)
        self._staged.clear()  # models of refused builds
        searcher = Searcher(
            index,
            encoder,
            Ranking.for_retrieval(s.retrieval, s.answer_threshold, encoder.name if encoder else s.model),
            query_cache=s.query_cache,
            reranker=reranker,
            typo_tolerance=s.typo_tolerance,
        )
        searcher.search("warm-up")  # first search pays one-off costs (FAISS, BM25, language model)
        degraded = None
        if refused:
            degraded = f"the current build {pointer} was refused: {refused[0]}; serving {folder.name}"
            log.error("falling back to build %s: %s", folder.name, "; ".join(refused))
        with self._lock:
            self.searcher, self.error, self.pointer = searcher, None, pointer
            self.encoder, self.reranker, self.models = encoder, reranker, models
            self.build, self.degraded = folder.name, degraded
        log.info("index loaded: %s (%s)", index.manifest.get("build_time"), folder.name)

    def reload_if_changed(self) -> None:
        if self._pointer() != self.pointer or (self.searcher is None and self._worth_retrying()):
            self._load()
        if self.final is not None:
            self.final.reload_if_changed()
            self._log_final()

    def _worth_retrying(self) -> bool:
        """While nothing is served, the same CURRENT is tried again: a build refused at
        start-up (still being copied in beside a starting replica, say) is served as
        soon as it is whole, without a restart. But only once the folder changed (or
        every `RETRY_UNCHANGED` s): a refused build stays refused until it does."""
        state, now = folder_state(Path(self.settings.index_dir)), time.monotonic()
        if self._tried is not None and self._tried[0] == state and now - self._tried[1] < RETRY_UNCHANGED:
            return False
        self._tried = (state, now)
        return True

    def final_searcher(self) -> Searcher | None:
        """The final build's searcher, when there is one and it was built from the same
        corpus version as the build served here; None: final questions are answered here.
        (After an edit the first build is rebuilt at once; a final build of the old
        corpus would answer with sections that changed or are gone.)"""
        first, final = self.searcher, self.final.searcher if self.final is not None else None
        if first is None or final is None or _made_of(final) != _made_of(first):
            return None
        return final

    def final_status(self) -> dict | None:
        """/readyz's `final`: which build answers final questions, or why none does."""
        if self.final is None:
            return None
        final = self.final
        if final.searcher is None:
            return {"status": "not ready", "detail": final.error, "answered_by": "the first build"}
        body = {"build": final.build, "model": final.searcher.index.manifest.get("model")}
        if self.final_searcher() is None:
            return dict(body, status="stale", answered_by="the first build",
                        detail=f"built from another corpus version ({_digest(final.searcher)}) than the first build "
                               f"({_digest(self.searcher) if self.searcher else None}): rebuild it")
        return dict(body, status="degraded" if final.degraded else "ready", answered_by="the final build",
                    **({"reason": final.degraded} if final.degraded else {}))

    def _log_final(self) -> None:
        status = self.final_status() or {}
        if status.get("status") != self._final_state:
            self._final_state = status.get("status")
            (log.info if self._final_state == "ready" else log.warning)(
                "final questions: %s", json.dumps(status, ensure_ascii=False))


def folder_state(root: Path) -> tuple:
    """What changes when a build is written, copied in or repaired, read without opening
    a file: `CURRENT`'s size and time, and every file of every build folder with its own."""
    state = []
    for top, dirs, files in os.walk(root):
        here = Path(top)
        if here == root:
            dirs[:] = sorted(d for d in dirs if d.startswith("build-"))
            files = [f for f in files if f == CURRENT]
        for name in sorted(files):
            try:
                st = (here / name).stat()
            except OSError:
                continue
            state.append((str(here / name), st.st_size, st.st_mtime_ns))
        dirs.sort()
    return tuple(state)


def _made_of(searcher: Searcher) -> tuple:
    """What a build was made of, whatever the model: the hashes of its articles, of the
    sections parsed from them, of the synonyms and of the rules, from its manifest (read
    on every final question: a tuple compare, no hashing)."""
    m = searcher.index.manifest
    files = m.get("files") or {}
    return (m.get("corpus_hash"), *(files.get(f) for f in ("sections.json", "synonyms.json", "rules.json")))


def _digest(searcher: Searcher) -> str:
    """`_made_of` in 12 hex digits, for /readyz and the log."""
    return hashlib.sha256(json.dumps(_made_of(searcher)).encode()).hexdigest()[:12]


def final_settings(settings: Settings) -> Settings:
    """The settings the final build is served with: its folder and model, no final of its own."""
    return settings.model_copy(update={
        "index_dir": settings.final_index_dir, "model": settings.final_model or settings.model,
        "final_index_dir": None, "final_model": None})


# Dependencies are `async def`: a plain `def` would run in the threadpool on every request.
async def get_service(request: Request) -> Service:
    return request.app.state.service


async def get_batcher(request: Request) -> QueryBatcher:
    return request.app.state.batcher


async def get_searcher(service: Annotated[Service, Depends(get_service)]) -> Searcher:
    if service.searcher is None:
        raise HTTPException(503, detail=f"no index loaded: {service.error or 'still starting'}")
    return service.searcher


