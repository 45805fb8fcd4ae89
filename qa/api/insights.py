"""Insights router: the support team's /insights page and its API, behind a bearer token.

No token configured (HELPDESK_QA_ADMIN_TOKEN): 403 saying insights are disabled.
Without the right `Authorization: Bearer …`: 401. The comparison is constant-time.
The page itself holds no data: its script asks for the token once (kept in the
tab's sessionStorage) and fetches the overview with it.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from ..errors import UsageError
from ..events.gaps import gaps
from ..events.insights import overview, parse_since
from ..events.recorder import Recorder
from ..events.store import StoreError
from .pages import STATIC
from .recording import require_recorder
from .service import Service, get_service

router = APIRouter(tags=["insights"])

DISABLED = "insights are disabled: set HELPDESK_QA_ADMIN_TOKEN on the server to enable them"


def _token_ok(service: Service, authorization: str | None) -> bool:
    expected = service.settings.admin_token
    if not expected:
        raise HTTPException(403, detail=DISABLED)
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


async def require_admin(
    service: Annotated[Service, Depends(get_service)],
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    if not _token_ok(service, authorization):
        raise HTTPException(
            401,
            detail="a valid admin token is required: Authorization: Bearer <HELPDESK_QA_ADMIN_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.get("/insights", include_in_schema=False)
def insights_page(request: Request, service: Annotated[Service, Depends(get_service)],
                  authorization: Annotated[str | None, Header()] = None):
    """The page (no data in it). 401 without a token: the page then asks for one."""
    try:
        ok = _token_ok(service, authorization)
    except HTTPException:
        return HTMLResponse(f"<!doctype html><meta charset=utf-8><title>Insights disabled</title><p>{DISABLED}.</p>",
                            status_code=403)
    return FileResponse(STATIC / "insights.html", status_code=200 if ok else 401,
                        headers=None if ok else {"WWW-Authenticate": "Bearer"})


def _report(report, service: Service, recorder: Recorder, since: str, *args):
    """`report(store, seconds, *args, embed)` with `since` parsed (422 when malformed)
    and an unreachable store answered with 503."""
    try:
        seconds = parse_since(since)
    except UsageError as e:
        raise HTTPException(422, detail=str(e)) from None
    embed = service.encoder.encode_queries if service.encoder is not None else None
    try:
        return report(recorder.store, seconds, *args, embed)
    except StoreError as e:
        raise HTTPException(503, detail=f"the event store is not reachable: {e}") from None


@router.get("/v1/insights", dependencies=[Depends(require_admin)])
def insights_api(
    service: Annotated[Service, Depends(get_service)],
    recorder: Annotated[Recorder, Depends(require_recorder)],
    since: Annotated[str, Query(description="How far back: 7d, 24h, 2w")] = "7d",
) -> dict:
    """The overview: per day, answered rate, top questions, unanswered groups, not-helpful
    articles, by language and country."""
    return _report(overview, service, recorder, since)


@router.get("/v1/insights/gaps", dependencies=[Depends(require_admin)])
def insights_gaps(
    service: Annotated[Service, Depends(get_service)],
    recorder: Annotated[Recorder, Depends(require_recorder)],
    since: Annotated[str, Query(description="How far back: 30d, 7d, 2w")] = "30d",
) -> list[dict]:
    """Unanswered and "not helpful" question groups, the nearest articles, and a YAML
    `questions:` block per article for editors to paste. Nothing is written to the corpus."""
    return _report(gaps, service, recorder, since, service.searcher)
