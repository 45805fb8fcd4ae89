"""The YAML front matter of an article: read it, check every key, and name the line
of whatever is wrong (`path:line: reason`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from markdown_it.token import Token

from ..errors import CorpusError
from .articles import ALL, COUNTRIES, LANGUAGES

REQUIRED_KEYS = ("id", "lang", "title", "category", "countries", "url")
MAX_QUESTIONS = 30  # member phrasings per file
QUESTION_LENGTH = (3, 200)


@dataclass
class FrontMatter:
    path: Path
    meta: dict
    lines: list[str]  # the block's lines, without the `---` fences
    first_line: int  # 1-based line of the block's first key

    def line_of(self, key: str) -> int:
        """The line of `key:`; the opening `---` when the key is missing."""
        for i, line in enumerate(self.lines):
            if re.match(rf"^{re.escape(key)}\s*:", line):
                return self.first_line + i
        return self.first_line - 1


def read_front_matter(path: Path, token: Token) -> FrontMatter:
    """Parse the `front_matter` token's YAML into a mapping with its required keys."""
    first_line = token.map[0] + 2
    try:
        meta = yaml.safe_load(token.content) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = first_line + mark.line if mark else first_line
        raise CorpusError(path, line, f"invalid YAML in front matter: {getattr(e, 'problem', e)}") from None
    if not isinstance(meta, dict):
        raise CorpusError(path, first_line, "front matter must be a mapping of keys to values")
    front = FrontMatter(path, meta, token.content.splitlines(), first_line)
    for key in REQUIRED_KEYS:
        if meta.get(key) in (None, "", []):
            raise CorpusError(path, front.line_of(key), f"missing required key '{key}'")
    return front


def article_fields(front: FrontMatter) -> dict:
    """The checked values of an `Article`'s fields (all but `path` and `sections`)."""
    path, meta, line_of = front.path, front.meta, front.line_of
    lang = str(meta["lang"]).strip()
    if lang not in LANGUAGES:
        raise CorpusError(path, line_of("lang"), f"lang '{lang}' is not one of {', '.join(LANGUAGES)}")
    folder_lang = path.parent.parent.name
    if folder_lang in LANGUAGES and folder_lang != lang:
        raise CorpusError(path, line_of("lang"), f"lang '{lang}' but the file is under '{folder_lang}/'")
    article_id = str(meta["id"]).strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", article_id):
        raise CorpusError(path, line_of("id"), f"id '{article_id}' may only hold letters, digits, '-', '_', '.'")
    url = str(meta["url"]).strip()
    if not re.match(r"https?://", url):
        raise CorpusError(path, line_of("url"), f"url '{url}' must start with http:// or https://")
    countries = parse_countries(meta["countries"], path, line_of("countries"))
    tags = meta.get("tags") or []
    if not isinstance(tags, list):
        raise CorpusError(path, line_of("tags"), "tags must be a list")
    return {
        "id": article_id,
        "lang": lang,
        "title": str(meta["title"]).strip(),
        "category": str(meta["category"]).strip(),
        "countries": countries,
        "url": url,
        "updated": str(meta.get("updated", "")),
        "tags": [str(t) for t in tags],
        "questions": questions(front),
    }


def parse_countries(value, path, line) -> list[str]:
    """A `countries` value (a list, or a comma/space separated string) as codes."""
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value) if v]
    if not isinstance(value, list) or not value:
        raise CorpusError(path, line, "countries must be a non-empty list, e.g. [ALL] or [KZ, KG]")
    codes = [str(v).strip().upper() for v in value]
    bad = [c for c in codes if c != ALL and c not in COUNTRIES]
    if bad:
        raise CorpusError(
            path, line, f"unknown country code {', '.join(bad)} (allowed: {', '.join(COUNTRIES)} or ALL)"
        )
    return [ALL] if ALL in codes else codes


def questions(front: FrontMatter) -> list[str]:
    """The optional `questions:` list, checked item by item (each error names the item's line)."""
    value, path = front.meta.get("questions"), front.path
    if value is None:
        return []
    key_line = front.line_of("questions")
    if not isinstance(value, list):
        raise CorpusError(path, key_line, "questions must be a list of strings")
    if len(value) > MAX_QUESTIONS:
        raise CorpusError(path, key_line, f"questions has {len(value)} items; at most {MAX_QUESTIONS} are allowed")
    # Line of each list item: the `- ` lines after the key, in order.
    start = key_line - front.first_line + 1
    item_lines = [
        front.first_line + i for i, line in enumerate(front.lines) if i >= start and line.lstrip().startswith("- ")
    ]
    seen: dict[str, int] = {}
    out = []
    low, high = QUESTION_LENGTH
    for n, item in enumerate(value):
        line = item_lines[n] if n < len(item_lines) else key_line
        if not isinstance(item, str):
            raise CorpusError(path, line, f"questions item {n + 1} must be a string, not {type(item).__name__}")
        text = " ".join(item.split())
        if not low <= len(text) <= high:
            raise CorpusError(
                path, line, f"questions item {n + 1} has {len(text)} characters; {low}-{high} are allowed"
            )
        key = text.casefold()
        if key in seen:
            raise CorpusError(path, line, f"questions item {n + 1} repeats item {seen[key] + 1}")
        seen[key] = n
        out.append(text)
    return out
