"""Operations router: liveness and readiness."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from .service import Service, get_service

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(service: Annotated[Service, Depends(get_service)]):
    if service.searcher is None:
        return JSONResponse(status_code=503, content={"status": "not ready", "detail": service.error})
    m = service.searcher.index.manifest
    keys = ("model", "dimension", "articles", "sections", "vectors", "languages", "build_time", "faiss")
    return {"status": "ready", "index": {k: m.get(k) for k in keys}}
