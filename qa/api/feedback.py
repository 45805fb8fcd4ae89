"""Feedback router: POST /v1/feedback (was the answer helpful?) and
POST /v1/feedback/opened (which result the member opened, at what position).

Feedback is bound to what the query showed: a vote only for a section among its
results, an `opened` only at the position where it was shown (422 otherwise). One
vote per (query, section): a retry answers "duplicate", a changed vote replaces the
earlier one and is counted once. A query answered by this worker is checked at once;
any other id (another worker's or replica's, or a forged one) is answered at once
with "pending" and checked by the event writer against the store within a few
seconds (qa/events/recorder.py), so no request waits for store lookups.
Unknown articles or anchors get 422.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from ..events.recorder import Recorder
from ..events.store import FeedbackEvent
from ..search import Searcher
from .models import FeedbackAccepted, FeedbackRequest, OpenedRequest
from .recording import require_recorder
from .service import get_searcher

router = APIRouter(tags=["feedback"])


def _check_target(searcher: Searcher, article_id: str, anchor: str) -> None:
    langs = searcher.article_langs.get(article_id)
    if not langs:
        raise HTTPException(422, detail=f"article_id: unknown article '{article_id}'")
    anchors = {s.anchor for lang in langs for s in searcher.article(article_id, lang)[1]}
    if anchor not in anchors:
        raise HTTPException(422, detail=f"anchor: article '{article_id}' has no section '{anchor}'")


def _accept(recorder: Recorder, searcher: Searcher, event: FeedbackEvent) -> FeedbackAccepted:
    """Check the section and what the query showed, then queue the event once."""
    _check_target(searcher, event.article_id, event.anchor)
    status = "recorded"
    try:
        why = recorder.check_feedback(event)
    except KeyError:
        event.verify, status = True, "pending"
    else:
        if why is not None:
            raise HTTPException(422, detail=why if why.startswith("position") else f"query_id: {why}")
    if not recorder.first_time(event):
        return FeedbackAccepted(status="duplicate")
    if not recorder.record_feedback(event):
        raise HTTPException(503, detail="too many events queued right now; try again shortly")
    return FeedbackAccepted(status=status)


@router.post("/v1/feedback", status_code=202, response_model=FeedbackAccepted)
async def feedback(
    body: FeedbackRequest,
    recorder: Annotated[Recorder, Depends(require_recorder)],
    searcher: Annotated[Searcher, Depends(get_searcher)],
) -> FeedbackAccepted:
    """Did the opened answer help? One vote per (question, section); a new vote replaces the old."""
    return _accept(recorder, searcher, FeedbackEvent(
        body.query_id, "helpful", body.article_id, body.anchor, None, body.helpful, time.time()))


@router.post("/v1/feedback/opened", status_code=202, response_model=FeedbackAccepted)
async def opened(
    body: OpenedRequest,
    recorder: Annotated[Recorder, Depends(require_recorder)],
    searcher: Annotated[Searcher, Depends(get_searcher)],
) -> FeedbackAccepted:
    """A member opened a result: which one, at which position of the list."""
    return _accept(recorder, searcher, FeedbackEvent(
        body.query_id, "opened", body.article_id, body.anchor, body.position, None, time.time()))
