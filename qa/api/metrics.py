"""Metrics router: /metrics in Prometheus text format, summed over all workers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ..ops import metrics
from .recording import index_build_timestamp
from .service import Service, get_service

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def prometheus(service: Annotated[Service, Depends(get_service)]) -> Response:
    searcher = service.searcher
    build_seconds = searcher.index.manifest.get("build_seconds") if searcher else None
    body, content_type = metrics.exposition(lambda: index_build_timestamp(searcher), build_seconds)
    return Response(body, media_type=content_type)
