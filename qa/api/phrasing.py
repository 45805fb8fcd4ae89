"""Phrasing router: POST /v1/phrasing, the agent console's "copy as phrasing".

Returns the customer's question, redacted, as the chosen article's `questions:`
block, for an editor to paste. Nothing is written to the corpus.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from ..events.gaps import phrasing
from ..search import Searcher
from .models import Phrasing, PhrasingRequest
from .service import get_searcher

router = APIRouter(tags=["articles"])


@router.post("/v1/phrasing", response_model=Phrasing)
def copy_as_phrasing(body: PhrasingRequest, searcher: Annotated[Searcher, Depends(get_searcher)]) -> Phrasing:
    """A customer's question as a phrasing of the article the agent chose."""
    out = phrasing(searcher, body.question, body.article_id, body.lang)
    if out is None:
        raise HTTPException(422, detail=f"article_id: unknown article '{body.article_id}'")
    return Phrasing(**out)
