"""Operations router: liveness and readiness."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from .service import DRAINING, Service, get_service

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(service: Annotated[Service, Depends(get_service)]):
    """200 "ready"; 200 "degraded" (serving an older intact build than the current
    one: still answering, so a balancer must keep routing to it); 503 "draining"
    (shutting down) or "not ready" (no intact build)."""
    if DRAINING.is_set():
        return JSONResponse(status_code=503, content={"status": "draining", "detail": "shutting down"})
    if service.searcher is None:
        return JSONResponse(status_code=503, content={"status": "not ready", "detail": service.error})
    m = service.searcher.index.manifest
    keys = ("model", "dimension", "articles", "sections", "vectors", "languages", "build_time", "faiss")
    body = {"status": "degraded" if service.degraded else "ready", "build": service.build}
    if service.degraded:
        body["reason"] = service.degraded
    return dict(body, index={k: m.get(k) for k in keys})
