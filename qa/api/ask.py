"""Search router: /v1/ask (GET and POST), /v1/articles/{id}, /v1/meta."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from ..corpus import COUNTRIES, LANGUAGES, deep_link
from ..events.recorder import Recorder
from ..explain import explain as explain_hit
from ..highlight import highlight, question_forms
from ..search import Searcher
from .batching import QueryBatcher
from .models import (
    SUPPORT_MESSAGE,
    ArticleOut,
    AskRequest,
    AskResponse,
    Lang,
    Meta,
    RuleFired,
    SectionOut,
    SupportPointer,
    to_result,
)
from .recording import get_recorder, record_ask, source_from_referer
from .service import Service, get_batcher, get_searcher, get_service

router = APIRouter()


async def answer(
    service: Service, searcher: Searcher, req: AskRequest, recorder: Recorder | None = None,
    batcher: QueryBatcher | None = None,
) -> Response:
    """Search and serialise once. The endpoints are `async def` and return the JSON
    themselves: a search is ~3 ms of CPU under the GIL, so a threadpool hop and a
    second validation of the response model would only add overhead. The question's
    vector comes from the worker's batcher: questions arriving together share one
    encoder call (qa/api/batching.py). A final question (`rerank`) is answered by the
    final build where the service has one (`Service.final_searcher`)."""
    started = time.perf_counter()
    if req.category and req.category not in searcher.categories:
        raise HTTPException(
            422, detail=f"category: unknown category '{req.category}' (known: {', '.join(searcher.categories)})"
        )
    final = service.final_searcher() if req.rerank else None
    searcher = final or searcher
    prepared = searcher.prepare(req.question, req.lang)
    encoded = None
    if batcher is not None and searcher.query_vectors is not None and searcher.ranking.dense:
        encoded = await batcher.encode(searcher.query_vectors, prepared.search_text)
    result = searcher.search(
        req.question,
        lang=req.lang,
        country=req.country,
        category=req.category,
        limit=req.limit,
        fallback_lang=req.fallback_lang,
        rerank=req.rerank,
        prepared=prepared,
        encoded=encoded,
    )
    result.reranked = result.reranked or final is not None
    support = None
    if not result.answered:
        lang = result.query_lang if result.query_lang in SUPPORT_MESSAGE else (req.fallback_lang or "en")
        support = SupportPointer(message=SUPPORT_MESSAGE[lang])
        found = searcher.article(service.settings.support_article, lang)
        if found:
            article = found[0]
            support.article_id, support.title, support.url = article.id, article.title, article.url
    query_id = Recorder.new_query_id()
    forms = question_forms(result.searched or result.query, searcher.index.synonyms)  # the words searched
    body = AskResponse(
        query_id=query_id,
        query=result.query,
        searched_as=prepared.search_text if prepared.search_text != prepared.text else None,
        query_lang=result.query_lang,
        answered=result.answered,
        results=[
            to_result(h, highlight(forms, h.article, h.section),
                      explain_hit(searcher, result, h) if req.explain else None)
            for h in result.hits
        ],
        support=support,
        rules=[RuleFired(name=f.rule.name, action=f.rule.action, target=f.rule.target, effect=f.effect)
               for f in result.rules],
        reranked=result.reranked,
        stage="final" if final is not None else "first",
        took_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    record_ask(recorder, query_id, req, result, searcher, body.took_ms)
    return Response(body.model_dump_json(), media_type="application/json")


@router.post("/v1/ask", response_model=AskResponse, tags=["search"])
async def ask_post(
    req: AskRequest,
    service: Annotated[Service, Depends(get_service)],
    searcher: Annotated[Searcher, Depends(get_searcher)],
    recorder: Annotated[Recorder | None, Depends(get_recorder)],
    batcher: Annotated[QueryBatcher, Depends(get_batcher)],
    referer: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Best-matching sections for a question."""
    req.source = req.source or source_from_referer(referer)  # events: who asked (qa/api/recording.py)
    return await answer(service, searcher, req, recorder, batcher)


@router.get("/v1/ask", response_model=AskResponse, tags=["search"])
async def ask_get(
    service: Annotated[Service, Depends(get_service)],
    searcher: Annotated[Searcher, Depends(get_searcher)],
    recorder: Annotated[Recorder | None, Depends(get_recorder)],
    batcher: Annotated[QueryBatcher, Depends(get_batcher)],
    q: Annotated[str, Query(description="The question")],
    lang: Lang | None = None,
    country: str | None = None,
    category: str | None = None,
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
    fallback_lang: Lang | None = None,
    session: str | None = None,
    explain: bool = False,
    rerank: bool = False,
    source: Literal["widget", "agent", "api", "docs"] | None = None,
    referer: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Same as POST, for links and quick tests: `/v1/ask?q=Passwort%20vergessen`."""
    try:
        req = AskRequest(
            question=q, lang=lang, country=country, category=category, limit=limit, fallback_lang=fallback_lang,
            session=session, explain=explain, rerank=rerank, source=source or source_from_referer(referer),
        )
    except ValueError as e:
        raise RequestValidationError(
            [dict(err, loc=("query", {"question": "q"}.get(err["loc"][0], err["loc"][0]))) for err in e.errors()]
        ) from None
    return await answer(service, searcher, req, recorder, batcher)


@router.get("/v1/articles/{article_id}", response_model=ArticleOut, tags=["articles"])
def get_article(
    article_id: str, searcher: Annotated[Searcher, Depends(get_searcher)], lang: Lang | None = None
) -> ArticleOut:
    """An article with its sections, in `lang` when it exists in it."""
    found = searcher.article(article_id, lang)
    if found is None:
        raise HTTPException(404, detail=f"no article with id '{article_id}'")
    article, sections = found
    return ArticleOut(
        id=article.id,
        lang=article.lang,
        title=article.title,
        category=article.category,
        countries=article.countries,
        url=article.url,
        updated=article.updated,
        tags=article.tags,
        languages=searcher.article_langs[article.id],
        sections=[
            SectionOut(
                position=s.position,
                title=s.title,
                anchor=s.anchor,
                url=deep_link(article.url, s),
                countries=s.countries,
                text=s.text,
                steps=s.steps,
            )
            for s in sections
        ],
    )


@router.get("/v1/meta", response_model=Meta, tags=["articles"])
async def meta(searcher: Annotated[Searcher, Depends(get_searcher)]) -> Meta:
    """What filters accept: languages, country codes, categories of the loaded index."""
    return Meta(languages=list(LANGUAGES), countries=list(COUNTRIES), categories=searcher.categories)
