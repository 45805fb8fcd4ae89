"""Insights router: the support team's /insights page and its API, behind a bearer token.

No token configured (HELPDESK_QA_ADMIN_TOKEN): 403 saying insights are disabled.
Without the right `Authorization: Bearer …`: 401. The comparison is constant-time.
Guessing is slowed twice: nginx's strict `limit_req` on these paths (deploy/), and
here, per client address, at most FAILURES wrong tokens per WINDOW seconds, then 429.
Insights and gaps count members' questions (widget and API) unless `?source=` says
otherwise (`all`, or a list of widget, api, agent, docs).
The page itself holds no data: its script asks for the token once (kept in the
tab's sessionStorage) and fetches the overview with it.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import OrderedDict, deque
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from ..errors import UsageError
from ..events.gaps import gaps
from ..events.insights import overview, parse_since, parse_sources
from ..events.recorder import Recorder
from ..events.store import StoreError
from .pages import STATIC
from .recording import require_recorder
from .service import Service, get_service

router = APIRouter(tags=["insights"])
SOURCE_HELP = "Whose questions: member (default: widget and API), all, or a list of widget, api, agent, docs"

DISABLED = "insights are disabled: set HELPDESK_QA_ADMIN_TOKEN on the server to enable them"
FAILURES, WINDOW = 10, 60.0


class FailedLogins:
    """Wrong tokens per client address in the last WINDOW seconds (bounded memory)."""

    def __init__(self, limit: int = FAILURES, window: float = WINDOW, addresses: int = 10_000):
        self.limit, self.window, self.addresses = limit, window, addresses
        self._seen: OrderedDict[str, deque] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque:
        times = self._seen.setdefault(address, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def blocked(self, address: str) -> bool:
        with self._lock:
            return len(self._recent(address, time.monotonic())) >= self.limit

    def failed(self, address: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._recent(address, now).append(now)
            self._seen.move_to_end(address)
            while len(self._seen) > self.addresses:
                self._seen.popitem(last=False)


FAILED = FailedLogins()


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def _too_many() -> HTTPException:
    return HTTPException(429, detail=f"too many wrong admin tokens from your address: retry in {WINDOW:g} s",
                         headers={"Retry-After": f"{WINDOW:g}"})


def _token_ok(service: Service, authorization: str | None) -> bool:
    expected = service.settings.admin_token
    if not expected:
        raise HTTPException(403, detail=DISABLED)
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


async def require_admin(
    request: Request,
    service: Annotated[Service, Depends(get_service)],
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    if FAILED.blocked(_client(request)):
        raise _too_many()
    if not _token_ok(service, authorization):
        if authorization:  # no header at all is the page asking for its form, not a guess
            FAILED.failed(_client(request))
        raise HTTPException(
            401,
            detail="a valid admin token is required: Authorization: Bearer <HELPDESK_QA_ADMIN_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.get("/insights", include_in_schema=False)
def insights_page(request: Request, service: Annotated[Service, Depends(get_service)],
                  authorization: Annotated[str | None, Header()] = None):
    """The page (no data in it). 401 without a token: the page then asks for one."""
    if FAILED.blocked(_client(request)):
        raise _too_many()
    try:
        ok = _token_ok(service, authorization)
    except HTTPException:
        return HTMLResponse(f"<!doctype html><meta charset=utf-8><title>Insights disabled</title><p>{DISABLED}.</p>",
                            status_code=403)
    if not ok and authorization:
        FAILED.failed(_client(request))
    return FileResponse(STATIC / "insights.html", status_code=200 if ok else 401,
                        headers=None if ok else {"WWW-Authenticate": "Bearer"})


def _report(report, service: Service, recorder: Recorder, since: str, source: str | None, *args):
    """`report(store, seconds, *args, embed, sources=…)` with `since` and `source` parsed
    (422 when malformed) and an unreachable store answered with 503."""
    try:
        seconds, sources = parse_since(since), parse_sources(source)
    except UsageError as e:
        raise HTTPException(422, detail=str(e)) from None
    embed = service.encoder.encode_queries if service.encoder is not None else None
    try:
        return report(recorder.store, seconds, *args, embed, sources=sources)
    except StoreError as e:
        raise HTTPException(503, detail=f"the event store is not reachable: {e}") from None


@router.get("/v1/insights", dependencies=[Depends(require_admin)])
def insights_api(
    service: Annotated[Service, Depends(get_service)],
    recorder: Annotated[Recorder, Depends(require_recorder)],
    since: Annotated[str, Query(max_length=40, description="How far back: 7d, 24h, 2w (at most 10 years)")] = "7d",
    source: Annotated[str | None, Query(max_length=40, description=SOURCE_HELP)] = None,
) -> dict:
    """The overview: per day, answered rate, top questions, unanswered groups, not-helpful
    articles, by language and country."""
    return _report(overview, service, recorder, since, source)


@router.get("/v1/insights/gaps", dependencies=[Depends(require_admin)])
def insights_gaps(
    service: Annotated[Service, Depends(get_service)],
    recorder: Annotated[Recorder, Depends(require_recorder)],
    since: Annotated[str, Query(max_length=40, description="How far back: 30d, 7d, 2w (at most 10 years)")] = "30d",
    source: Annotated[str | None, Query(max_length=40, description=SOURCE_HELP)] = None,
) -> list[dict]:
    """Unanswered and "not helpful" question groups, the nearest articles, and a YAML
    `questions:` block per article for editors to paste. Nothing is written to the corpus."""
    return _report(gaps, service, recorder, since, source, service.searcher)
