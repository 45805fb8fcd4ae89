"""The event recorder as a dependency, and the one event an answer produces.

The recorder (qa/events/recorder.py) lives beside the answering path: `record_ask` only
puts an event on a bounded queue; a failing or slow store never reaches the answer.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request

from ..config import Settings
from ..events.connect import open_store
from ..events.recorder import Recorder
from ..events.store import QueryEvent, StoreError
from ..ops import metrics
from ..search import Searcher, SearchResult
from .models import AskRequest

log = logging.getLogger("qa.api")


def start(app: FastAPI, settings: Settings) -> None:
    """Called at start-up: a recorder when events are on. Nothing connects to the store
    yet, so a store that is down never stops the service from starting."""
    app.state.recorder = None
    if not settings.events:
        return
    try:
        store = open_store(settings.database_url, settings.data_dir)
    except StoreError as e:
        log.error("events off: %s", e)
        return
    recorder = Recorder(store, settings.event_queue, settings.retention_days)
    recorder.start()
    app.state.recorder = recorder
    log.info("recording events to %s", store.describe)


def stop(app: FastAPI) -> None:
    recorder = getattr(app.state, "recorder", None)
    if recorder:
        recorder.stop()
    metrics.mark_process_dead()


async def get_recorder(request: Request) -> Recorder | None:
    return getattr(request.app.state, "recorder", None)


async def require_recorder(recorder: Annotated[Recorder | None, Depends(get_recorder)]) -> Recorder:
    if recorder is None:
        raise HTTPException(503, detail="events are switched off on this server (HELPDESK_QA_EVENTS=false)")
    return recorder


def source_from_referer(referer: str | None) -> str:
    """Who asked, when the request does not say: the agent console and /docs by the
    page that sent it (same-origin requests carry their page's path), else an API client."""
    path = urlsplit(referer or "").path.rstrip("/")
    return {"/agent": "agent", "/docs": "docs"}.get(path, "api")


def record_ask(recorder: Recorder | None, query_id: str, req: AskRequest, result: SearchResult,
               searcher: Searcher, took_ms: float) -> None:
    metrics.ANSWERS.labels("yes" if result.answered else "no").inc()
    if recorder is None:
        return
    top = result.hits[0] if result.hits else None
    recorder.record_query(QueryEvent(
        id=query_id,
        ts=time.time(),
        text=req.question,  # redacted by the writer thread, before it is stored
        lang=result.query_lang,
        country=req.country or "",
        category=req.category or "",
        answered=result.answered,
        top_article=top.article.id if top else None,
        top_anchor=top.section.anchor if top else None,
        score=round(float(top.score), 4) if top else None,
        latency_ms=took_ms,
        index_build=searcher.index.manifest.get("build_time"),
        source=req.source or "api",
        shown=tuple((h.article.id, h.section.anchor) for h in result.hits),
    ), session=req.session)


def index_build_timestamp(searcher: Searcher | None) -> float | None:
    if searcher is None:
        return None
    built = searcher.index.manifest.get("build_time")
    try:
        return datetime.fromisoformat(built).timestamp() if built else None
    except ValueError:
        return None
