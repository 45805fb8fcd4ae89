"""The corpus: help articles (Markdown + YAML front matter) as `Article`s of
`Section`s, and the operator's synonyms.

    articles.py     the dataclasses, languages, countries, anchors and deep links
    frontmatter.py  the YAML block: keys, countries, member phrasings
    sections.py     the Markdown body: sections, plain text, steps, country scope
    synonyms.py     corpus/synonyms.yaml: term groups added to questions
    loader.py       parse_article, load_corpus (load_nonempty_corpus: at least one article)
"""

from ..errors import CorpusError
from .articles import ALL, COUNTRIES, LANGUAGES, Article, Corpus, Section, deep_link, slugify, unique_anchors
from .frontmatter import MAX_QUESTIONS, QUESTION_LENGTH, REQUIRED_KEYS, parse_countries
from .loader import load_corpus, load_nonempty_corpus, parse_article
from .synonyms import SYNONYMS_FILE, Synonyms, load_synonyms

__all__ = [
    "ALL", "COUNTRIES", "LANGUAGES", "MAX_QUESTIONS", "QUESTION_LENGTH", "REQUIRED_KEYS", "SYNONYMS_FILE",
    "Article", "Corpus", "CorpusError", "Section", "Synonyms",
    "deep_link", "load_corpus", "load_nonempty_corpus", "load_synonyms", "parse_article", "parse_countries",
    "slugify", "unique_anchors",
]
