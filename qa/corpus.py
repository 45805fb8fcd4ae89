"""Corpus step: Markdown articles with YAML front matter -> `Article`s made of `Section`s.

The format is described in corpus/README.md. Parsing uses markdown-it-py so that
headings, lists and HTML comments are recognised the way a Markdown renderer sees
them (a `## ` inside a code block is not a heading).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin

if TYPE_CHECKING:
    from .synonyms import Synonyms

LANGUAGES = ("ru", "de", "en")
COUNTRIES = ("RU", "KZ", "KG", "BY", "UZ", "DE", "AT", "CH")
ALL = "ALL"
REQUIRED_KEYS = ("id", "lang", "title", "category", "countries", "url")
MAX_QUESTIONS = 30  # member phrasings per file
QUESTION_LENGTH = (3, 200)

_COUNTRY_MARKER = re.compile(r"^\s*<!--\s*countries\s*:\s*(.*?)\s*-->\s*$", re.IGNORECASE | re.DOTALL)
_ORDERED_ITEM = re.compile(r"^\s*\d+[.)]\s+")


class CorpusError(ValueError):
    """A malformed article: `path:line: reason`."""

    def __init__(self, path: Path | str, line: int, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{path}:{line}: {reason}")


@dataclass
class Section:
    article_id: str
    lang: str
    position: int  # 0 = the intro before the first `## `; translations keep the order
    title: str  # heading text; the article title for the intro
    anchor: str  # "" for the intro: it links to the article itself
    text: str  # the section's Markdown, without its heading and country marker
    plain: str  # text without Markdown markup, for embedding and BM25
    steps: list[str]  # numbered steps, in order
    countries: list[str]
    line: int  # 1-based line of the heading in the source file

    @property
    def key(self) -> str:
        return f"{self.lang}/{self.article_id}#{self.position}"


@dataclass
class Article:
    id: str
    lang: str
    title: str
    category: str
    countries: list[str]
    url: str
    updated: str
    tags: list[str]
    path: str
    sections: list[Section] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)  # how members ask for it, in `lang`


@dataclass
class Corpus:
    articles: list[Article]
    errors: list[CorpusError]
    synonyms: "Synonyms | None" = None  # the operator's term groups (corpus/synonyms.yaml)

    @property
    def sections(self) -> list[Section]:
        return [s for a in self.articles for s in a.sections]


def slugify(heading: str) -> str:
    """Anchor of a heading: lowercase; letters of any script (Cyrillic, umlauts) and
    digits kept; `-` and `_` kept; other punctuation dropped; runs of whitespace -> `-`."""
    s = re.sub(r"[^\w\s-]", "", heading.lower())
    s = re.sub(r"\s+", "-", s.strip())
    return re.sub(r"-{2,}", "-", s).strip("-") or "section"


def unique_anchors(headings: list[str]) -> list[str]:
    """Slugs with duplicates within one article suffixed `-1`, `-2`, ..."""
    seen: dict[str, int] = {}
    used: set[str] = set()
    out = []
    for h in headings:
        base = slugify(h)
        anchor = base
        while anchor in used:
            seen[base] = seen.get(base, 0) + 1
            anchor = f"{base}-{seen[base]}"
        used.add(anchor)
        out.append(anchor)
    return out


def parse_countries(value, path, line) -> list[str]:
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


_md = MarkdownIt("commonmark").use(front_matter_plugin)


def _inline_plain(token: Token) -> str:
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts)


def _key_line(front_lines: list[str], key: str, first_line: int) -> int:
    for i, line in enumerate(front_lines):
        if re.match(rf"^{re.escape(key)}\s*:", line):
            return first_line + i
    return first_line - 1  # the opening `---`


def parse_article(path: Path | str, text: str | None = None) -> Article:
    """Parse one article file. Raises `CorpusError` naming the line and the reason."""
    path = Path(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise CorpusError(path, 1, f"not UTF-8 ({e.reason})") from None
    lines = text.splitlines()
    tokens = _md.parse(text)

    if not tokens or tokens[0].type != "front_matter":
        raise CorpusError(path, 1, "missing YAML front matter (a `---` block at the top)")
    fm = tokens[0]
    front_first = fm.map[0] + 2  # 1-based line of the first key
    front_lines = fm.content.splitlines()
    try:
        meta = yaml.safe_load(fm.content) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = front_first + mark.line if mark else front_first
        raise CorpusError(path, line, f"invalid YAML in front matter: {getattr(e, 'problem', e)}") from None
    if not isinstance(meta, dict):
        raise CorpusError(path, front_first, "front matter must be a mapping of keys to values")
    for key in REQUIRED_KEYS:
        if meta.get(key) in (None, "", []):
            raise CorpusError(path, _key_line(front_lines, key, front_first), f"missing required key '{key}'")

    def line_of(key: str) -> int:
        return _key_line(front_lines, key, front_first)

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
    title = str(meta["title"]).strip()
    questions = _questions(meta.get("questions"), path, front_lines, front_first)

    # Headings: exactly one h1, equal to the title; h2 opens a section.
    h1 = [(i, t) for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h1"]
    if not h1:
        raise CorpusError(path, fm.map[1] + 1, "missing the `# ` title heading")
    if len(h1) > 1:
        raise CorpusError(path, h1[1][1].map[0] + 1, "more than one `# ` heading")
    h1_idx, h1_tok = h1[0]
    h1_text = tokens[h1_idx + 1].content.strip()
    if h1_text != title:
        raise CorpusError(path, h1_tok.map[0] + 1, f"`# {h1_text}` differs from title '{title}'")

    article = Article(
        id=article_id,
        lang=lang,
        title=title,
        category=str(meta["category"]).strip(),
        countries=countries,
        url=url,
        updated=str(meta.get("updated", "")),
        tags=[str(t) for t in tags],
        path=str(path),
        questions=questions,
    )

    h2 = [i for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h2" and t.level == 0]
    headings = [tokens[i + 1].content.strip() for i in h2]
    anchors = unique_anchors(headings)
    # (first token index, end token index, heading line, title, anchor) of each section
    bounds = [(h1_idx + 3, h2[0] if h2 else len(tokens), h1_tok.map[0], title, "")]
    for n, i in enumerate(h2):
        end = h2[n + 1] if n + 1 < len(h2) else len(tokens)
        bounds.append((i + 3, end, tokens[i].map[0], headings[n], anchors[n]))

    for position, (start, end, head_line, sec_title, anchor) in enumerate(bounds):
        body = tokens[start:end]
        sec_countries = countries
        if body and body[0].type == "html_block":
            m = _COUNTRY_MARKER.match(body[0].content)
            if m:
                sec_countries = parse_countries(m.group(1), path, body[0].map[0] + 1)
                body = body[1:]
        block_tokens = [t for t in body if t.map]
        if block_tokens:
            first = block_tokens[0].map[0]
            last = max(t.map[1] for t in block_tokens)
            md_text = "\n".join(lines[first:last]).strip()
        else:
            md_text = ""
        if position == 0 and not md_text:
            continue  # no intro text: no intro section
        article.sections.append(
            Section(
                article_id=article_id,
                lang=lang,
                position=position,
                title=sec_title,
                anchor=anchor,
                text=md_text,
                plain=_plain(body),
                steps=_steps(body, lines),
                countries=sec_countries,
                line=head_line + 1,
            )
        )
    return article


def _questions(value, path: Path, front_lines: list[str], front_first: int) -> list[str]:
    """The optional `questions:` list, checked item by item (each error names the item's line)."""
    if value is None:
        return []
    key_line = _key_line(front_lines, "questions", front_first)
    if not isinstance(value, list):
        raise CorpusError(path, key_line, "questions must be a list of strings")
    if len(value) > MAX_QUESTIONS:
        raise CorpusError(path, key_line, f"questions has {len(value)} items; at most {MAX_QUESTIONS} are allowed")
    # Line of each list item: the `- ` lines after the key, in order.
    start = key_line - front_first + 1
    item_lines = [front_first + i for i, line in enumerate(front_lines) if i >= start and line.lstrip().startswith("- ")]
    seen: dict[str, int] = {}
    out = []
    low, high = QUESTION_LENGTH
    for n, item in enumerate(value):
        line = item_lines[n] if n < len(item_lines) else key_line
        if not isinstance(item, str):
            raise CorpusError(path, line, f"questions item {n + 1} must be a string, not {type(item).__name__}")
        text = " ".join(item.split())
        if not low <= len(text) <= high:
            raise CorpusError(path, line, f"questions item {n + 1} has {len(text)} characters; {low}-{high} are allowed")
        key = text.casefold()
        if key in seen:
            raise CorpusError(path, line, f"questions item {n + 1} repeats item {seen[key] + 1}")
        seen[key] = n
        out.append(text)
    return out


def _plain(tokens: list[Token]) -> str:
    parts = []
    for t in tokens:
        if t.type == "inline":
            parts.append(_inline_plain(t))
        elif t.type in ("fence", "code_block"):
            parts.append(t.content.strip())
    return "\n".join(p for p in parts if p)


def _steps(tokens: list[Token], lines: list[str]) -> list[str]:
    """Items of the section's top-level numbered lists, as plain text."""
    steps = []
    depth = 0  # nesting depth of lists; only items of outermost ordered lists are steps
    for i, t in enumerate(tokens):
        if t.type in ("bullet_list_open", "ordered_list_open"):
            depth += 1
        elif t.type in ("bullet_list_close", "ordered_list_close"):
            depth -= 1
        elif t.type == "list_item_open" and depth == 1 and t.info.isdigit():
            # The first inline token of the item is its text.
            for nxt in tokens[i + 1 :]:
                if nxt.type == "inline":
                    steps.append(_inline_plain(nxt).strip())
                    break
    return steps


def load_corpus(root: Path | str) -> Corpus:
    """Parse every `*.md` article under `root` (README.md files are documentation).

    Malformed files are collected in `Corpus.errors` and left out; so is a second file
    with an id already used in the same language."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {root}")
    articles: list[Article] = []
    errors: list[CorpusError] = []
    seen: dict[tuple[str, str], str] = {}
    for path in sorted(root.rglob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        try:
            article = parse_article(path)
        except CorpusError as e:
            errors.append(e)
            continue
        key = (article.lang, article.id)
        if key in seen:
            errors.append(CorpusError(path, 2, f"id '{article.id}' already used in '{article.lang}' by {seen[key]}"))
            continue
        seen[key] = str(path)
        articles.append(article)
    from .synonyms import SYNONYMS_FILE, Synonyms, load_synonyms  # synonyms report with CorpusError

    try:
        synonyms = load_synonyms(root / SYNONYMS_FILE)
    except CorpusError as e:
        errors.append(e)
        synonyms = Synonyms([])
    return Corpus(articles=articles, errors=errors, synonyms=synonyms)
