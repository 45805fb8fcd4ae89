"""HTTP API (FastAPI). `create_app` assembles the service from one router per concern:

- `ask`: /v1/ask, /v1/articles/{id}, /v1/meta (the search step's public contract)
- `ops`: /healthz, /readyz
- `pages`: the demo portal, the agent console, the widget script
- `feedback`: /v1/feedback, /v1/feedback/opened (events beside the flow, `recording`)
- `insights`: /insights, /v1/insights, /v1/insights/gaps (admin token); `metrics`: /metrics
- `phrasing`: /v1/phrasing (the agent console's "copy as phrasing")
- `suggest`: /v1/suggest (completions as a member types)

`service.Service` holds the loaded index and encoder. It loads the current index at
start-up and watches the index folder's `CURRENT` pointer: a new build is swapped in
once it loads cleanly; a build that fails to load is logged and the last good index
keeps serving.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from ..config import Settings, get_settings
from ..ops import accesslog
from ..ops.metrics import MetricsMiddleware
from . import ask, feedback, insights, metrics, ops, pages, phrasing, recording, suggest
from .batching import QueryBatcher
from .service import Service, log

__all__ = ["create_app"]


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable `detail` line and the errors per field."""
    errors = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")) or "body"
        message = err.get("msg", "invalid").removeprefix("Value error, ")
        if field == "body" and err.get("type") in ("model_attributes_type", "dict_type", "json_invalid"):
            message = "the request body must be a JSON object like {\"question\": \"...\"}"
        errors.append({"field": field, "message": message})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return JSONResponse(status_code=422, content={"detail": detail, "errors": errors})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(service.load)
        await asyncio.to_thread(suggest.warm, app)
        recording.start(app, settings)

        async def watch():
            while True:
                await asyncio.sleep(settings.reload_interval)
                try:
                    await asyncio.to_thread(service.reload_if_changed)
                    await asyncio.to_thread(suggest.warm, app)  # a no-op unless a new index was loaded
                except Exception:  # a watcher that dies would silently stop reloads
                    log.exception("index reload check failed")

        task = asyncio.create_task(watch()) if settings.reload_interval > 0 else None
        yield
        if task:
            task.cancel()
        recording.stop(app)

    # /docs with Swagger UI served from the fastapi-offline package, not a CDN: the service
    # must work on a server without internet. No online validator badge either. No /redoc:
    # ReDoc's bundle loads its logo from the vendor's CDN.
    app = FastAPIOffline(
        redoc_url=None,
        favicon_url=pages.FAVICON_URL,
        swagger_ui_parameters={"validatorUrl": None},
        title="helpdesk-qa",
        version="1",
        description="Multilingual search over help-portal articles: step-by-step sections with deep links.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.batcher = QueryBatcher(max_batch=settings.encode_batch)  # one per worker: its event loop
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type"],
    )
    app.add_middleware(MetricsMiddleware)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.include_router(ask.router)
    app.include_router(ops.router)
    app.include_router(feedback.router)
    app.include_router(insights.router)
    app.include_router(metrics.router)
    app.include_router(phrasing.router)
    app.include_router(suggest.router)
    accesslog.install()
    if pages.STATIC.is_dir():
        app.include_router(pages.router)
    return app
