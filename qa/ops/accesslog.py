"""Access logs without questions: uvicorn logs the full request line, and a
`GET /v1/ask?q=…` carries the member's question (with any ID, phone or e-mail in
it). This filter rewrites every logged path from its *parsed* query: a parameter
is kept only when its (decoded) name is one of the few that never carry text and
its value is one of that name's plain values (`lang=de`, `limit=5`); every other
parameter, under whatever spelling (`q=`, `%71=`, `Q=`, repeated, unknown), is
logged as `name=[removed]` with the name itself kept only when it is a known one."""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import re
from urllib.parse import parse_qsl, unquote

# Parameter -> the values that may be logged as they are.
SAFE_VALUES = {
    "lang": re.compile(r"ru|de|en"),
    "fallback_lang": re.compile(r"ru|de|en"),
    "country": re.compile(r"[A-Za-z]{2}"),
    "limit": re.compile(r"\d{1,2}"),
    "category": re.compile(r"[a-z]{1,20}"),
    "since": re.compile(r"\d{1,4}[mhdw]"),
    "source": re.compile(r"[a-z,]{1,30}"),
    "v": re.compile(r"[0-9a-f]{1,16}"),
}


def scrub_path(path: str) -> str:
    if "?" not in path:
        return path
    route, _, query = path.partition("?")
    query = query.split("#", 1)[0]
    kept = []
    for name, value in parse_qsl(query, keep_blank_values=True, separator="&"):
        name = unquote(name).strip().lower()
        pattern = SAFE_VALUES.get(name)
        if pattern is not None and pattern.fullmatch(value):
            kept.append(f"{name}={value}")
        else:
            kept.append(f"{name if name in SAFE_VALUES or name in ('q', 'question') else '-'}=[removed]")
    return route + "?" + "&".join(kept) if kept else route + "?[removed]"


class QuestionFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = args[:2] + (scrub_path(args[2]),) + args[3:]
        return True


class _Handoff(logging.handlers.QueueHandler):
    """Hands each access record, already scrubbed, to the writer thread as it is:
    formatting and writing happen there, off the request (QueueHandler would format here)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def install() -> None:
    """Idempotent; called by every worker's app factory (after uvicorn set up logging).
    The filter sits on the logger, so no handler ever sees a raw path. The handlers
    uvicorn configured move behind a queue and a thread of their own: a line costs the
    request a record and a queue put (a measured 5-7 % of a request was formatting and
    writing it, docs/performance.md)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, QuestionFilter) for f in logger.filters):
        logger.addFilter(QuestionFilter())
    handlers = [h for h in logger.handlers if not isinstance(h, _Handoff)]
    if handlers:
        lines: queue.SimpleQueue = queue.SimpleQueue()
        writer = logging.handlers.QueueListener(lines, *handlers, respect_handler_level=True)
        for h in handlers:
            logger.removeHandler(h)
        logger.addHandler(_Handoff(lines))
        writer.start()
        atexit.register(writer.stop)  # writes what is queued before the process exits
