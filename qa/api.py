"""HTTP API (FastAPI): /v1/ask, /v1/articles/{id}, /healthz, /readyz, and the browser pages.

The service loads the current index at start-up and watches the index folder's
`CURRENT` pointer: a new build is swapped in once it loads cleanly; a build that
fails to load is logged and the last good index keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

import faiss
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field, field_validator

from .config import Settings, get_settings
from .corpus import COUNTRIES, LANGUAGES, Section
from .encoder import Encoder
from .index import CURRENT, IndexError_, load_index
from .search import Hit, Ranking, Searcher

log = logging.getLogger("qa.api")
STATIC = Path(__file__).parent / "static"
MAX_QUESTION = 500
Lang = Literal["ru", "de", "en"]

SUPPORT_MESSAGE = {
    "ru": "Ответ не найден. Напишите в поддержку и укажите свой номер участника (ID).",
    "de": "Keine passende Antwort gefunden. Wenden Sie sich an den Support und geben Sie Ihre Mitgliedsnummer an.",
    "en": "No matching answer found. Contact support and include your member ID.",
}


# -- request and response models ------------------------------------------------------
def _check_question(v: str) -> str:
    v = v.strip()
    if not v:
        raise ValueError("must not be empty")
    if len(v) > MAX_QUESTION:
        raise ValueError(f"must be at most {MAX_QUESTION} characters (got {len(v)})")
    return v


def _check_country(v: str | None) -> str | None:
    if v is None or v == "":
        return None
    code = v.strip().upper()
    if code not in COUNTRIES:
        raise ValueError(f"unknown country code '{v}' (known: {', '.join(COUNTRIES)})")
    return code


class AskRequest(BaseModel):
    question: str = Field(
        ...,
        description="The member's question, 1-500 characters",
        json_schema_extra={"minLength": 1, "maxLength": MAX_QUESTION},
    )
    lang: Lang | None = Field(None, description="Language of the question; detected when omitted")
    fallback_lang: Lang | None = Field(
        None, description="Language to answer in when the question's language cannot be detected (e.g. the page's)"
    )
    country: str | None = Field(
        None,
        description=f"Member's country ({', '.join(COUNTRIES)}): only sections that apply there",
    )
    category: str | None = Field(None, description="Only articles of this category")
    limit: int = Field(5, ge=1, le=20, description="How many sections to return")

    _question = field_validator("question")(_check_question)
    _country = field_validator("country")(_check_country)


class Result(BaseModel):
    article_id: str
    article_title: str
    section_title: str
    position: int = Field(..., description="Section number in its article; the same in every translation")
    anchor: str
    url: str = Field(..., description="Deep link: the article URL with #anchor")
    lang: str
    countries: list[str]
    category: str
    text: str = Field(..., description="The section's Markdown")
    steps: list[str]
    score: float
    available_languages: list[str] = Field(..., description="Languages the article exists in")


class SupportPointer(BaseModel):
    message: str
    article_id: str | None = None
    title: str | None = None
    url: str | None = None


class AskResponse(BaseModel):
    query: str
    query_lang: str = Field(..., description="ru, de, en, or unknown")
    answered: bool
    results: list[Result]
    support: SupportPointer | None = Field(None, description="Where to turn when answered is false")
    took_ms: float


class Meta(BaseModel):
    languages: list[str]
    countries: list[str]
    categories: list[str]


class SectionOut(BaseModel):
    position: int
    title: str
    anchor: str
    url: str
    countries: list[str]
    text: str
    steps: list[str]


class ArticleOut(BaseModel):
    id: str
    lang: str
    title: str
    category: str
    countries: list[str]
    url: str
    updated: str
    tags: list[str]
    languages: list[str]
    sections: list[SectionOut]


def deep_link(url: str, section: Section) -> str:
    return f"{url}#{section.anchor}" if section.anchor else url


def to_result(hit: Hit) -> Result:
    s, a = hit.section, hit.article
    return Result(
        article_id=a.id,
        article_title=a.title,
        section_title=s.title,
        position=s.position,
        anchor=s.anchor,
        url=deep_link(a.url, s),
        lang=s.lang,
        countries=s.countries,
        category=a.category,
        text=s.text,
        steps=s.steps,
        score=hit.score,
        available_languages=hit.available_languages,
    )


# -- shared state -----------------------------------------------------------------
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
            index, self.encoder, Ranking.for_retrieval(s.retrieval, s.answer_threshold), query_cache=s.query_cache
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


# -- app --------------------------------------------------------------------------
def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(service.load)

        async def watch():
            while True:
                await asyncio.sleep(settings.reload_interval)
                try:
                    await asyncio.to_thread(service.reload_if_changed)
                except Exception:  # a watcher that dies would silently stop reloads
                    log.exception("index reload check failed")

        task = asyncio.create_task(watch()) if settings.reload_interval > 0 else None
        yield
        if task:
            task.cancel()

    app = FastAPI(
        title="helpdesk-qa",
        version="1",
        description="Multilingual search over help-portal articles: step-by-step sections with deep links.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type"],
    )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")) or "body"
            message = err.get("msg", "invalid").removeprefix("Value error, ")
            if field == "body" and err.get("type") in ("model_attributes_type", "dict_type", "json_invalid"):
                message = "the request body must be a JSON object like {\"question\": \"...\"}"
            errors.append({"field": field, "message": message})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse(status_code=422, content={"detail": detail, "errors": errors})

    def answer(searcher: Searcher, req: AskRequest) -> Response:
        """Search and serialise once. The endpoints are `async def` and return the JSON
        themselves: a search is ~3 ms of CPU under the GIL, so a threadpool hop and a
        second validation of the response model would only add overhead."""
        started = time.perf_counter()
        if req.category and req.category not in searcher.categories:
            raise HTTPException(
                422, detail=f"category: unknown category '{req.category}' (known: {', '.join(searcher.categories)})"
            )
        result = searcher.search(
            req.question,
            lang=req.lang,
            country=req.country,
            category=req.category,
            limit=req.limit,
            fallback_lang=req.fallback_lang,
        )
        support = None
        if not result.answered:
            lang = result.query_lang if result.query_lang in SUPPORT_MESSAGE else (req.fallback_lang or "en")
            support = SupportPointer(message=SUPPORT_MESSAGE[lang])
            found = searcher.article(settings.support_article, lang)
            if found:
                article = found[0]
                support.article_id, support.title, support.url = article.id, article.title, article.url
        body = AskResponse(
            query=result.query,
            query_lang=result.query_lang,
            answered=result.answered,
            results=[to_result(h) for h in result.hits],
            support=support,
            took_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return Response(body.model_dump_json(), media_type="application/json")

    @app.post("/v1/ask", response_model=AskResponse, tags=["search"])
    async def ask_post(req: AskRequest, searcher: Annotated[Searcher, Depends(get_searcher)]) -> Response:
        """Best-matching sections for a question."""
        return answer(searcher, req)

    @app.get("/v1/ask", response_model=AskResponse, tags=["search"])
    async def ask_get(
        searcher: Annotated[Searcher, Depends(get_searcher)],
        q: Annotated[str, Query(description="The question")],
        lang: Lang | None = None,
        country: str | None = None,
        category: str | None = None,
        limit: Annotated[int, Query(ge=1, le=20)] = 5,
        fallback_lang: Lang | None = None,
    ) -> Response:
        """Same as POST, for links and quick tests: `/v1/ask?q=Passwort%20vergessen`."""
        try:
            req = AskRequest(
                question=q, lang=lang, country=country, category=category, limit=limit, fallback_lang=fallback_lang
            )
        except ValueError as e:
            raise RequestValidationError(
                [dict(err, loc=("query", {"question": "q"}.get(err["loc"][0], err["loc"][0]))) for err in e.errors()]
            ) from None
        return answer(searcher, req)

    @app.get("/v1/articles/{article_id}", response_model=ArticleOut, tags=["articles"])
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

    @app.get("/v1/meta", response_model=Meta, tags=["articles"])
    async def meta(searcher: Annotated[Searcher, Depends(get_searcher)]) -> Meta:
        """What filters accept: languages, country codes, categories of the loaded index."""
        return Meta(languages=list(LANGUAGES), countries=list(COUNTRIES), categories=searcher.categories)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(service: Annotated[Service, Depends(get_service)]):
        if service.searcher is None:
            return JSONResponse(status_code=503, content={"status": "not ready", "detail": service.error})
        m = service.searcher.index.manifest
        keys = ("model", "dimension", "articles", "sections", "vectors", "languages", "build_time", "faiss")
        return {"status": "ready", "index": {k: m.get(k) for k in keys}}

    if STATIC.is_dir():

        @app.get("/", include_in_schema=False)
        def demo_page():
            return FileResponse(STATIC / "index.html")

        @app.get("/agent", include_in_schema=False)
        def agent_console():
            return FileResponse(STATIC / "agent.html")

        @app.get("/widget.js", include_in_schema=False)
        def widget():
            return FileResponse(STATIC / "widget.js", media_type="text/javascript")

    return app
