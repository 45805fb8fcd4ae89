"""Access logs without questions: uvicorn logs the full request line, and a
`GET /v1/ask?q=…` carries the member's question (with any ID, phone or e-mail in
it). This filter replaces the value of `q` in every logged path before it is
written; the other parameters (lang, country, limit) stay for debugging."""

from __future__ import annotations

import logging
import re

QUESTION_PARAM = re.compile(r"(?<=[?&])(q|question)=[^&#\s]*", re.IGNORECASE)


def scrub_path(path: str) -> str:
    if "?" not in path:
        return path
    return QUESTION_PARAM.sub(lambda m: m.group(1) + "=[removed]", path)


class QuestionFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = args[:2] + (scrub_path(args[2]),) + args[3:]
        return True


def install() -> None:
    """Idempotent; called by every worker's app factory (after uvicorn set up logging)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, QuestionFilter) for f in logger.filters):
        logger.addFilter(QuestionFilter())
