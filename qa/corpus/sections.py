"""The Markdown body of an article -> its `Section`s: one per `## ` heading, plus the
intro before the first one; each with its plain text, numbered steps and country scope."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from markdown_it.token import Token

from ..errors import CorpusError
from .articles import Section, unique_anchors
from .frontmatter import parse_countries

_COUNTRY_MARKER = re.compile(r"^\s*<!--\s*countries\s*:\s*(.*?)\s*-->\s*$", re.IGNORECASE | re.DOTALL)


@dataclass
class Bounds:
    """Where one section lies in the token stream."""

    start: int  # first token of the body
    end: int  # token after the body
    head_line: int  # 0-based line of its heading
    title: str
    anchor: str


def title_heading(path: Path, tokens: list[Token], after_line: int, title: str) -> int:
    """The index of the one `# ` heading, which must equal the front matter's title."""
    h1 = [(i, t) for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h1"]
    if not h1:
        raise CorpusError(path, after_line, "missing the `# ` title heading")
    if len(h1) > 1:
        raise CorpusError(path, h1[1][1].map[0] + 1, "more than one `# ` heading")
    h1_idx, h1_tok = h1[0]
    h1_text = tokens[h1_idx + 1].content.strip()
    if h1_text != title:
        raise CorpusError(path, h1_tok.map[0] + 1, f"`# {h1_text}` differs from title '{title}'")
    return h1_idx


def section_bounds(tokens: list[Token], h1_idx: int, title: str) -> list[Bounds]:
    """The intro (after the title heading) and one span per top-level `## ` heading."""
    h2 = [i for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h2" and t.level == 0]
    headings = [tokens[i + 1].content.strip() for i in h2]
    anchors = unique_anchors(headings)
    bounds = [Bounds(h1_idx + 3, h2[0] if h2 else len(tokens), tokens[h1_idx].map[0], title, "")]
    for n, i in enumerate(h2):
        end = h2[n + 1] if n + 1 < len(h2) else len(tokens)
        bounds.append(Bounds(i + 3, end, tokens[i].map[0], headings[n], anchors[n]))
    return bounds


def split_sections(
    path: Path, tokens: list[Token], lines: list[str], h1_idx: int, article_id: str, lang: str, title: str,
    countries: list[str],
) -> list[Section]:
    """Every section of the article, in order; an intro without text is left out."""
    sections = []
    for position, b in enumerate(section_bounds(tokens, h1_idx, title)):
        body = tokens[b.start : b.end]
        scope = countries
        if body and body[0].type == "html_block":
            m = _COUNTRY_MARKER.match(body[0].content)
            if m:
                scope = parse_countries(m.group(1), path, body[0].map[0] + 1)
                body = body[1:]
        text = _markdown(body, lines)
        if position == 0 and not text:
            continue  # no intro text: no intro section
        sections.append(Section(
            article_id=article_id,
            lang=lang,
            position=position,
            title=b.title,
            anchor=b.anchor,
            text=text,
            plain=_plain(body),
            steps=_steps(body),
            countries=scope,
            line=b.head_line + 1,
        ))
    return sections


def _markdown(body: list[Token], lines: list[str]) -> str:
    """The body's source lines, as the editor wrote them."""
    block_tokens = [t for t in body if t.map]
    if not block_tokens:
        return ""
    first = block_tokens[0].map[0]
    last = max(t.map[1] for t in block_tokens)
    return "\n".join(lines[first:last]).strip()


def _inline_plain(token: Token) -> str:
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts)


def _plain(tokens: list[Token]) -> str:
    parts = []
    for t in tokens:
        if t.type == "inline":
            parts.append(_inline_plain(t))
        elif t.type in ("fence", "code_block"):
            parts.append(t.content.strip())
    return "\n".join(p for p in parts if p)


def _steps(tokens: list[Token]) -> list[str]:
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
