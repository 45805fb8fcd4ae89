"""Suggestions router: /v1/suggest, completions as a member types (`qa.events.suggest`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from ..events.recorder import Recorder
from ..events.store import StoreError
from ..events.suggest import Suggester
from ..search import Searcher
from .models import Lang, _check_country, example
from .recording import get_recorder
from .service import get_searcher, log

router = APIRouter(tags=["search"])


class SuggestionOut(BaseModel):
    text: str
    source: str = Field(..., description="`asked`: members asked it (in 3 different hours or more); "
                        "`article`: a phrasing")

    model_config = example(text="Passwort vergessen, was jetzt?", source="asked")


class SuggestResponse(BaseModel):
    query: str
    suggestions: list[SuggestionOut]

    model_config = example(query="pass", suggestions=[{"text": "Passwort vergessen, was jetzt?", "source": "asked"}])


def get_suggester(request: Request) -> Suggester:
    if not hasattr(request.app.state, "suggester"):
        request.app.state.suggester = Suggester()
    return request.app.state.suggester


@router.get("/v1/suggest", response_model=SuggestResponse)
def suggest(
    searcher: Annotated[Searcher, Depends(get_searcher)],
    recorder: Annotated[Recorder | None, Depends(get_recorder)],
    suggester: Annotated[Suggester, Depends(get_suggester)],
    q: Annotated[str, Query(max_length=200, description="What the member typed so far; empty: most asked")] = "",
    lang: Annotated[Lang | None, Query(description="The page's language: suggestions in it only")] = None,
    country: Annotated[str | None, Query(description="The member's country")] = None,
    category: Annotated[str | None, Query(description="Only phrasings of this category's articles")] = None,
    limit: Annotated[int, Query(ge=1, le=10)] = 6,
) -> SuggestResponse:
    """Completions: questions members asked that got an opened or helpful answer
    (redacted, asked in at least 3 different hours), then the articles' phrasings."""
    try:
        code = _check_country(country)
    except ValueError as e:
        raise HTTPException(422, detail=f"country: {e}") from None
    if category and category not in searcher.categories:
        raise HTTPException(422, detail=f"category: unknown category '{category}'")
    store = recorder.store if recorder else None
    try:
        found = suggester.suggest(q, store, searcher.index.articles, lang, code, category, limit)
    except StoreError as e:  # suggestions without the store's part rather than none
        log.warning("suggestions without the event store: %s", e)
        found = suggester.suggest(q, None, searcher.index.articles, lang, code, category, limit)
    return SuggestResponse(query=q, suggestions=[SuggestionOut(text=s.text, source=s.source) for s in found])
