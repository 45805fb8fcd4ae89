"""Highlighting for returned results: which characters of the titles and the snippet
match the question, and which step or sentence of the section matches it best.

Computed for the returned hits only (a few sections per question), after search. A
word of the text matches when it shares a form with a content word of the question
(the word itself, its stem under each stemmer of `qa.text`, `ё` = `е`) or with a word
of a synonym the operator's groups add to the question (`qa.corpus.synonyms`). Stop
words of the question ("how", "mein", "как") are not marked.

Offsets are in characters (Unicode code points, as JavaScript strings count them for
the BMP; the corpus has no astral characters in titles or text), `[start, end)`.
Clients build the page with `textContent` and `<mark>` elements from these offsets:
no HTML from an article or a question ever reaches the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .corpus import Article, Section, Synonyms
from .corpus.synonyms import _forms
from .lexical import _STOPWORDS
from .text import WORD, fold_yo

SNIPPET = 160  # characters, as the widget used to cut them
SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)", re.MULTILINE)
Span = tuple[int, int]


@dataclass
class Highlight:
    title: list[Span] = field(default_factory=list)  # in the article title
    section_title: list[Span] = field(default_factory=list)
    snippet: str = ""  # plain text, about SNIPPET characters, around the best match
    snippet_spans: list[Span] = field(default_factory=list)
    best_step: int | None = None  # index into the section's steps
    best_text: str = ""  # the best step or sentence, plain text


def question_forms(question: str, synonyms: Synonyms) -> frozenset[str]:
    """Every form a word of the text may match by: the question's content words and
    the words of the synonyms added to it."""
    stop = frozenset().union(*_STOPWORDS.values())
    words = [w for w in WORD.findall(question.lower()) if w not in stop and len(w) > 1]
    for term in synonyms.expand(question):
        words.extend(WORD.findall(term.lower()))
    return frozenset().union(*(_forms(fold_yo(w)) for w in words)) if words else frozenset()


def spans(text: str, forms: frozenset[str]) -> list[Span]:
    """Where words of `text` match `forms`, adjacent matches merged ("Kaspi Gold")."""
    out: list[list[int]] = []
    for m in WORD.finditer(text):
        if _forms(fold_yo(m.group(0).lower())) & forms:
            if out and text[out[-1][1]:m.start()].strip() == "":
                out[-1][1] = m.end()
            else:
                out.append([m.start(), m.end()])
    return [(a, b) for a, b in out]


def _units(section: Section) -> list[tuple[str, int | None]]:
    """The candidate best matches: each step (with its number), else each sentence."""
    if section.steps:
        units: list[tuple[str, int | None]] = [(s, i) for i, s in enumerate(section.steps)]
        units += [(m.group(0).strip(), None) for m in SENTENCE.finditer(section.plain)
                  if m.group(0).strip() and m.group(0).strip() not in section.steps]
        return units
    return [(m.group(0).strip(), None) for m in SENTENCE.finditer(section.plain) if m.group(0).strip()]


def _score(text: str, forms: frozenset[str]) -> int:
    """Distinct question forms the unit contains: a step that names two of the
    question's words beats one that repeats one of them."""
    found: set[str] = set()
    for w in WORD.findall(text.lower()):
        found |= _forms(fold_yo(w)) & forms
    return len(found)


def _snippet(plain: str, best: str) -> str:
    """About SNIPPET characters of `plain` (lines joined), starting at the beginning, or
    at the best match when that would otherwise be cut off; cut between words."""
    text, best = " ".join(plain.split()), " ".join(best.split())
    start = text.find(best) if best else -1
    if start < 0 or start + len(best) <= SNIPPET:
        start = 0
    prefix = "…" if start > 0 else ""
    rest = text[start:]
    if len(rest) <= SNIPPET:
        return prefix + rest
    cut = rest.rfind(" ", 0, SNIPPET)
    return prefix + rest[: cut if cut > 100 else SNIPPET].rstrip(" ,;:–-") + "…"


def highlight(question: str, synonyms: Synonyms, article: Article, section: Section) -> Highlight:
    forms = question_forms(question, synonyms)
    out = Highlight()
    if not forms:
        out.snippet = _snippet(section.plain, "")
        return out
    out.title = spans(article.title, forms)
    out.section_title = spans(section.title, forms)
    best_score, best = 0, ("", None)
    for text, step in _units(section):
        score = _score(text, forms)
        if score > best_score:
            best_score, best = score, (text, step)
    out.best_text, out.best_step = best
    out.snippet = _snippet(section.plain, out.best_text)
    out.snippet_spans = spans(out.snippet, forms)
    return out
