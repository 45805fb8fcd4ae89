"""Corpus step: Markdown articles with YAML front matter -> `Article`s made of `Section`s.

The format is described in corpus/README.md. Parsing uses markdown-it-py so that
headings, lists and HTML comments are recognised the way a Markdown renderer sees
them (a `## ` inside a code block is not a heading). `parse_article` runs the named
steps: read the file, read and check the front matter (`qa.corpus.frontmatter`),
check the title heading, split the body into sections (`qa.corpus.sections`).
"""

from __future__ import annotations

from pathlib import Path

from markdown_it import MarkdownIt
from mdit_py_plugins.front_matter import front_matter_plugin

from ..errors import CorpusError, CorpusNotFound, NothingToBuild
from .articles import Article, Corpus
from .frontmatter import article_fields, read_front_matter
from .sections import split_sections, title_heading
from .synonyms import SYNONYMS_FILE, Synonyms, load_synonyms

_md = MarkdownIt("commonmark").use(front_matter_plugin)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(path, 1, f"not UTF-8 ({e.reason})") from None


def parse_article(path: Path | str, text: str | None = None) -> Article:
    """Parse one article file. Raises `CorpusError` naming the line and the reason."""
    path = Path(path)
    text = _read(path) if text is None else text
    tokens = _md.parse(text)
    if not tokens or tokens[0].type != "front_matter":
        raise CorpusError(path, 1, "missing YAML front matter (a `---` block at the top)")
    fields = article_fields(read_front_matter(path, tokens[0]))
    h1_idx = title_heading(path, tokens, tokens[0].map[1] + 1, fields["title"])
    article = Article(**fields, path=str(path))
    article.sections = split_sections(
        path, tokens, text.splitlines(), h1_idx, article.id, article.lang, article.title, article.countries
    )
    return article


def load_corpus(root: Path | str) -> Corpus:
    """Parse every `*.md` article under `root` (README.md files are documentation)
    and the synonyms file beside them.

    Malformed files are collected in `Corpus.errors` and left out; so is a second file
    with an id already used in the same language."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusNotFound(f"corpus folder not found: {root}")
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
    try:
        synonyms = load_synonyms(root / SYNONYMS_FILE)
    except CorpusError as e:
        errors.append(e)
        synonyms = Synonyms([])
    return Corpus(articles=articles, errors=errors, synonyms=synonyms)


def load_nonempty_corpus(root: Path | str) -> Corpus:
    """`load_corpus` for a step that builds from the articles (evaluation, training):
    `NothingToBuild` when not one article is valid."""
    corpus = load_corpus(root)
    if not corpus.articles:
        raise NothingToBuild(f"no valid article in {root}")
    return corpus
