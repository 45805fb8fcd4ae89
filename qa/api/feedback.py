"""Feedback router: POST /v1/feedback (was the answer helpful?) and
POST /v1/feedback/opened (which result the member opened, at what position).

Both are idempotent: the same (query_id, kind, article_id, anchor) is stored once,
so a widget may retry freely. A changed helpful vote replaces the earlier one.
Unknown query ids, articles or anchors get 422.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from ..events.recorder import SETTLE, Recorder
from ..events.store import FeedbackEvent, StoreError
from ..ops import metrics
from ..search import Searcher
from .models import FeedbackAccepted, FeedbackRequest, OpenedRequest
from .recording import require_recorder
from .service import get_searcher

router = APIRouter(tags=["feedback"])

# Another worker or replica may have answered the question and not flushed it yet
# (its writer flushes every ~0.05 s, a widget's typing session after SETTLE): look
# again for a short while before saying 422.
UNKNOWN_GRACE = SETTLE + 1.0


async def _check_query(recorder: Recorder, query_id: str) -> None:
    """Waiting happens on the event loop, store lookups in a thread: a stream of forged
    ids cannot tie up the threadpool."""
    if recorder.issued(query_id):
        return
    deadline = time.monotonic() + UNKNOWN_GRACE
    while True:
        try:
            if await asyncio.to_thread(recorder.knows, query_id):
                return
        except StoreError:
            raise HTTPException(503, detail="the event store is not reachable; try again later") from None
        if time.monotonic() >= deadline:
            raise HTTPException(422, detail=f"query_id: unknown query id '{query_id}'")
        await asyncio.sleep(0.1)


def _check_target(searcher: Searcher, article_id: str, anchor: str) -> None:
    langs = searcher.article_langs.get(article_id)
    if not langs:
        raise HTTPException(422, detail=f"article_id: unknown article '{article_id}'")
    anchors = {s.anchor for lang in langs for s in searcher.article(article_id, lang)[1]}
    if anchor not in anchors:
        raise HTTPException(422, detail=f"anchor: article '{article_id}' has no section '{anchor}'")


async def _accept(recorder: Recorder, searcher: Searcher, event: FeedbackEvent) -> FeedbackAccepted:
    """Check the section and the query id, then record the event once."""
    _check_target(searcher, event.article_id, event.anchor)
    await _check_query(recorder, event.query_id)
    if not recorder.first_time(event):
        return FeedbackAccepted(status="duplicate")
    if not recorder.record_feedback(event):
        raise HTTPException(503, detail="too many events queued right now; try again shortly")
    helpful = "" if event.helpful is None else ("yes" if event.helpful else "no")
    metrics.FEEDBACK.labels(event.kind, helpful).inc()
    return FeedbackAccepted(status="recorded")


@router.post("/v1/feedback", status_code=202, response_model=FeedbackAccepted)
async def feedback(
    body: FeedbackRequest,
    recorder: Annotated[Recorder, Depends(require_recorder)],
    searcher: Annotated[Searcher, Depends(get_searcher)],
) -> FeedbackAccepted:
    """Did the opened answer help? One vote per (question, section); a new vote replaces the old."""
    return await _accept(recorder, searcher, FeedbackEvent(
        body.query_id, "helpful", body.article_id, body.anchor, None, body.helpful, time.time()))


@router.post("/v1/feedback/opened", status_code=202, response_model=FeedbackAccepted)
async def opened(
    body: OpenedRequest,
    recorder: Annotated[Recorder, Depends(require_recorder)],
    searcher: Annotated[Searcher, Depends(get_searcher)],
) -> FeedbackAccepted:
    """A member opened a result: which one, at which position of the list."""
    return await _accept(recorder, searcher, FeedbackEvent(
        body.query_id, "opened", body.article_id, body.anchor, body.position, None, time.time()))
