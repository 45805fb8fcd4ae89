"""Operations router: liveness and readiness."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from ..adapt.launch import adapted_folder
from ..adapt.status import summary
from ..events.recorder import Recorder
from .recording import get_recorder
from .service import DRAINING, Service, get_service

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(service: Annotated[Service, Depends(get_service)],
           recorder: Annotated[Recorder | None, Depends(get_recorder)]):
    """200 "ready"; 200 "degraded" (serving an older intact build than the current
    one, or a `CURRENT` that cannot be read: still answering, so a balancer must keep
    routing to it); 503 "draining" (shutting down) or "not ready" (no intact build).
    `store`: the event store, "ok" or "degraded" with the reason (a store fault never
    stops answering, so it does not change `status`), or "off". `adapt`: where the
    background adaptation of the index folder (the final build's, where there is one)
    stands (docs/adapt.md); readiness never waits for it. `final`, with
    `HELPDESK_QA_FINAL_INDEX_DIR`: the build that answers final questions, or why the
    first build answers them (not ready, stale)."""
    adapt = summary(adapted_folder(service.settings), service.settings.adapt)
    if DRAINING.is_set():
        return JSONResponse(status_code=503, content={"status": "draining", "detail": "shutting down"})
    if service.searcher is None:
        return JSONResponse(status_code=503, content={"status": "not ready", "detail": service.error,
                                                      "adapt": adapt})
    m = service.searcher.index.manifest
    keys = ("model", "dimension", "articles", "sections", "vectors", "languages", "build_time", "faiss")
    body = {"status": "degraded" if service.degraded else "ready", "build": service.build}
    if service.degraded:
        body["reason"] = service.degraded
    body["store"] = recorder.store.health() if recorder is not None else {"status": "off"}
    final = service.final_status()  # the build for final questions, where one is configured
    return dict(body, index={k: m.get(k) for k in keys}, adapt=adapt, **({"final": final} if final else {}))
