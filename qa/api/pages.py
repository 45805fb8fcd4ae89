"""Browser pages router: the demo portal, the agent console, the widget script and the favicon."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def demo_page():
    return FileResponse(STATIC / "index.html")


@router.get("/agent")
def agent_console():
    return FileResponse(STATIC / "agent.html")


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
