"""Browser pages router: the demo portal, the agent console, the widget script and the favicon."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@lru_cache
def widget_version() -> str:
    """A hash of widget.js: the pages load `/widget.js?v=<it>`, so a proxy can cache
    that URL for a year (deploy/nginx.conf.template) and a new widget gets a new URL."""
    return hashlib.sha256((STATIC / "widget.js").read_bytes()).hexdigest()[:12]


PAGES = {"/": "index.html", "/agent": "agent.html"}


def page_html(name: str) -> str:
    """A page as served: the widget's URL carries its version."""
    html = (STATIC / name).read_text(encoding="utf-8")
    return html.replace('"/widget.js"', f'"/widget.js?v={widget_version()}"')


def _page(name: str) -> HTMLResponse:
    return HTMLResponse(page_html(name))


@router.get("/")
def demo_page():
    return _page("index.html")


@router.get("/agent")
def agent_console():
    return _page("agent.html")


@router.get("/widget.js")
def widget():
    return FileResponse(STATIC / "widget.js", media_type="text/javascript")


FAVICON_URL = "/favicon.svg"


# Every page links /favicon.svg; /favicon.ico answers the browsers' implicit request
# (pages without a <link rel=icon>, JSON opened in a tab) instead of a 404.
@router.get(FAVICON_URL)
@router.get("/favicon.ico")
def favicon():
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")
