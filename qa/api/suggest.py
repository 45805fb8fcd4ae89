"""Suggestions router: /v1/suggest, completions as a member types (`qa.events.suggest`).

The widget asks by POST, as it does /v1/ask: what a member has typed so far is a
question too, and a body is logged by nobody (a portal's own proxy or CDN logs URLs).
GET stays for API users and links."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from pydantic import BaseModel, Field, field_validator

from ..events.recorder import Recorder
from ..events.store import StoreError
from ..events.suggest import Suggester
from ..search import Searcher
from .models import Lang, _check_country, example, no_surrogates
from .recording import get_recorder
from .service import get_searcher, log

router = APIRouter(tags=["search"])
MAX_TYPED = 200


class SuggestionOut(BaseModel):
    text: str
    source: str = Field(..., description="`asked`: members asked it (in 3 different hours or more); "
                        "`article`: a phrasing")

    model_config = example(text="Passwort vergessen, was jetzt?", source="asked")


class SuggestResponse(BaseModel):
    query: str
    suggestions: list[SuggestionOut]

    model_config = example(query="pass", suggestions=[{"text": "Passwort vergessen, was jetzt?", "source": "asked"}])


class SuggestRequest(BaseModel):
    q: str = Field("", max_length=MAX_TYPED, description="What the member typed so far; empty: most asked")
    lang: Lang | None = Field(None, description="The page's language: suggestions in it only")
    country: str | None = Field(None, description="The member's country")
    category: str | None = Field(None, max_length=100, description="Only phrasings of this category's articles")
    limit: int = Field(6, ge=1, le=10)

    _text = field_validator("q", "category", mode="before")(no_surrogates)

    model_config = example(q="pass", lang="de", country="DE", limit=3)


def _suggester(app: FastAPI) -> Suggester:
    if not hasattr(app.state, "suggester"):
        app.state.suggester = Suggester()
    return app.state.suggester


def get_suggester(request: Request) -> Suggester:
    return _suggester(request.app)


def warm(app: FastAPI) -> None:
    """After the service (re)loaded an index: its phrasings read off the request path."""
    searcher = app.state.service.searcher
    if searcher is not None:
        _suggester(app).warm(searcher.index.articles)


def complete(searcher: Searcher, recorder: Recorder | None, suggester: Suggester, req: SuggestRequest
             ) -> SuggestResponse:
    try:
        code = _check_country(req.country)
    except ValueError as e:
        raise HTTPException(422, detail=f"country: {e}") from None
    if req.category and req.category not in searcher.categories:
        raise HTTPException(422, detail=f"category: unknown category '{req.category}'")
    store = recorder.store if recorder else None
    args = (searcher.index.articles, req.lang, code, req.category, req.limit)
    try:
        found = suggester.suggest(req.q, store, *args)
    except StoreError as e:  # suggestions without the store's part rather than none
        log.warning("suggestions without the event store: %s", e)
        found = suggester.suggest(req.q, None, *args)
    return SuggestResponse(query=req.q, suggestions=[SuggestionOut(text=s.text, source=s.source) for s in found])


@router.post("/v1/suggest", response_model=SuggestResponse)
def suggest_post(
    req: SuggestRequest,
    searcher: Annotated[Searcher, Depends(get_searcher)],
    recorder: Annotated[Recorder | None, Depends(get_recorder)],
    suggester: Annotated[Suggester, Depends(get_suggester)],
) -> SuggestResponse:
    """Completions: questions members asked that got an opened or helpful answer
    (redacted, asked at least 3 times), then the articles' phrasings."""
    return complete(searcher, recorder, suggester, req)


@router.get("/v1/suggest", response_model=SuggestResponse)
def suggest(
    searcher: Annotated[Searcher, Depends(get_searcher)],
    recorder: Annotated[Recorder | None, Depends(get_recorder)],
    suggester: Annotated[Suggester, Depends(get_suggester)],
    q: Annotated[str, Query(max_length=MAX_TYPED, description="What the member typed so far; empty: most asked")] = "",
    lang: Annotated[Lang | None, Query(description="The page's language: suggestions in it only")] = None,
    country: Annotated[str | None, Query(description="The member's country")] = None,
    category: Annotated[str | None, Query(description="Only phrasings of this category's articles")] = None,
    limit: Annotated[int, Query(ge=1, le=10)] = 6,
) -> SuggestResponse:
    """The same as POST, for API users and links: `/v1/suggest?q=pass&lang=de`."""
    req = SuggestRequest.model_construct(q=q, lang=lang, country=country, category=category, limit=limit)
    return complete(searcher, recorder, suggester, req)
