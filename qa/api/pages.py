"""Browser pages router: the demo portal, the agent console and the widget script."""

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
