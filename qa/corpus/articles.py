"""What the corpus is made of: `Article`s of `Section`s, the languages and countries
they may carry, and the anchor rule that gives every section its deep link."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .synonyms import Synonyms

LANGUAGES = ("ru", "de", "en")
COUNTRIES = ("RU", "KZ", "KG", "BY", "UZ", "DE", "AT", "CH")
ALL = "ALL"


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
    errors: list  # CorpusError of each file or entry left out
    synonyms: Synonyms | None = None  # the operator's term groups (corpus/synonyms.yaml)
    rules: object = None  # `qa.rules.Rules` (corpus/rules.yaml), read at ingest: they need the articles

    @property
    def sections(self) -> list[Section]:
        return [s for a in self.articles for s in a.sections]


def deep_link(article_url: str, section: Section) -> str:
    """The section's link: the article's URL with `#anchor` (the intro: the URL itself)."""
    return f"{article_url}#{section.anchor}" if section.anchor else article_url


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
