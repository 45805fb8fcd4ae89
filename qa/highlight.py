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
from functools import lru_cache

from .corpus import Article, Section, Synonyms
from .corpus.synonyms import _forms
from .lexical import _STOPWORDS
from .text import WORD, fold_yo

SNIPPET = 160  # characters, as the widget used to cut them
SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+|$)")
Span = tuple[int, int]


@dataclass
class Highlight:
    title: list[Span] = field(default_factory=list)  # in the article title
    section_title: list[Span] = field(default_factory=list)
    snippet: str = ""  # plain text, about SNIPPET characters, around the best match
    snippet_spans: list[Span] = field(default_factory=list)
    best_step: int | None = None  # index into the section's steps
    best_text: str = ""  # the best step or sentence, plain text


# BM25's stop words, and the question words and pronouns a question is made of but that
# say nothing about its topic ("where is my parcel": mark "parcel", not every "my").
STOP = frozenset().union(*_STOPWORDS.values()) | frozenset([
    "i", "me", "my", "mine", "you", "your", "we", "our", "how", "what", "where", "when", "why", "which", "who",
    "whom", "can", "could", "do", "does", "did", "should", "would", "have", "has", "get", "got", "from",
    "about", "any", "some", "all", "am", "been", "being", "there", "here", "ich", "mich", "mir", "mein",
    "meine", "meinen", "meinem", "meiner", "du", "dein", "ihr", "ihre", "wir", "unser", "wie", "wo", "was",
    "wann", "warum", "welche", "welcher", "wer", "kann", "können", "muss", "soll", "habe", "hat", "bin", "ist",
    "sind", "gibt", "es", "man", "я", "мне", "меня", "мой", "моя", "моё", "мои", "мою", "ты", "вы", "ваш",
    "ваша", "как", "где", "что", "когда", "почему", "зачем", "какой", "какая", "какие", "кто", "можно", "могу",
    "нужно", "надо", "есть"
])


def question_forms(question: str, synonyms: Synonyms) -> frozenset[str]:
    """Every form a word of the text may match by: the question's content words and
    the words of the synonyms added to it (once per question, for all its results)."""
    words = [w for w in WORD.findall(question.lower()) if w not in STOP and len(w) > 1]
    for term in synonyms.expand(question):
        words.extend(w for w in WORD.findall(term.lower()) if w not in STOP and len(w) > 1)
    return frozenset().union(*(_forms(fold_yo(w)) for w in words)) if words else frozenset()


# Texts are the corpus's (titles, sections) and repeat across questions: their words and
# forms are worked out once per process.
@lru_cache(maxsize=16384)
def _tokens(text: str) -> tuple[tuple[int, int, frozenset[str]], ...]:
    return tuple((m.start(), m.end(), _forms(fold_yo(m.group(0).lower()))) for m in WORD.finditer(text))


def spans(text: str, forms: frozenset[str]) -> list[Span]:
    """Where words of `text` match `forms`, adjacent matches merged ("Kaspi Gold")."""
    out: list[list[int]] = []
    for start, end, word in _tokens(text):
        if word & forms:
            if out and text[out[-1][1]:start].strip() == "":
                out[-1][1] = end
            else:
                out.append([start, end])
    return [(a, b) for a, b in out]


@lru_cache(maxsize=4096)
def _units(plain: str, steps: tuple[str, ...]) -> tuple[tuple[str, int | None], ...]:
    """The candidate best matches: each step (with its number), and each sentence."""
    units: list[tuple[str, int | None]] = [(s, i) for i, s in enumerate(steps)]
    units += [(m.group(0).strip(), None) for m in SENTENCE.finditer(plain)
              if m.group(0).strip() and m.group(0).strip() not in steps]
    return tuple(units)


def _score(text: str, forms: frozenset[str]) -> int:
    """Distinct question forms the unit contains: a step that names two of the
    question's words beats one that repeats one of them."""
    found: set[str] = set()
    for _, _, word in _tokens(text):
        if not word.isdisjoint(forms):
            found |= word & forms
    return len(found)


# -- the text a snippet is cut from --------------------------------------------------------
# The section's Markdown read as plain text the way the widget's `plain()` reads it
# (qa/static/widget.js): no Markdown syntax left, a table as "cell – cell; cell – cell."
# (its body rows; the header is for the expanded view).
_INLINE = re.compile(r"\\([!-/:-@\[-`{-~])|`([^`]+)`|\*\*(.+?)\*\*|\[([^\]]+)\]\(([^)\s]+)\)|`+|\*\*+")
_ITEM = re.compile(r"^\s*(\d{1,9}[.)]|[-*+])\s+(.*)$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)[\s#]*$")
_ROW = re.compile(r"^\s{0,3}\|")
_RULE = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _plain_inline(text: str) -> str:
    def one(m: re.Match) -> str:
        if m.group(1):
            return m.group(1)
        if m.group(2):
            return m.group(2)
        if m.group(3):
            return _plain_inline(m.group(3))
        return _plain_inline(m.group(4)) if m.group(4) else ""
    return _INLINE.sub(one, text)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().removeprefix("|")) if c.strip()]


@lru_cache(maxsize=4096)
def reading_text(markdown: str) -> str:
    lines, out, i = markdown.replace("\r\n", "\n").split("\n"), [], 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            i += 1
            while i < len(lines) and not _FENCE.match(lines[i]):
                out.append(lines[i])
                i += 1
        elif _ROW.match(line) and i + 1 < len(lines) and "|" in lines[i + 1] and _RULE.match(lines[i + 1]):
            head, rows, i = _cells(line), [], i + 2
            while i < len(lines) and _ROW.match(lines[i]):
                rows.append(_cells(lines[i]))
                i += 1
            out.append("; ".join(" – ".join(filter(None, map(_plain_inline, r))) for r in rows or [head]) + ".")
            continue
        elif m := _ITEM.match(line):
            out.append(_plain_inline(m.group(2)))
        elif m := _HEADING.match(line):
            out.append(_plain_inline(m.group(1)))
        elif line.strip():
            out.append(_plain_inline(line.strip().removeprefix(">").strip()))
        i += 1
    return " ".join(" ".join(out).split())


def _snippet(plain: str, best: str) -> str:
    """About SNIPPET characters of `plain` (lines joined), starting at the beginning, or
    at the best match when that would otherwise be cut off; cut between words."""
    text, best = plain, " ".join(best.split())
    start = text.find(best) if best else -1
    if start < 0 or start + len(best) <= SNIPPET:
        start = 0
    prefix = "…" if start > 0 else ""
    rest = text[start:]
    if len(rest) <= SNIPPET:
        return prefix + rest
    cut = rest.rfind(" ", 0, SNIPPET)
    return prefix + rest[: cut if cut > 100 else SNIPPET].rstrip(" ,;:–-") + "…"


def highlight(forms: frozenset[str], article: Article, section: Section) -> Highlight:
    """Marks for one result; `forms` from `question_forms`."""
    out = Highlight()
    text = reading_text(section.text)
    if not forms:
        out.snippet = _snippet(text, "")
        return out
    out.title = spans(article.title, forms)
    out.section_title = spans(section.title, forms)
    best_score, best = 0, ("", None)
    for unit, step in _units(text, tuple(section.steps)):
        score = _score(unit, forms)
        if score > best_score:
            best_score, best = score, (unit, step)
    out.best_text, out.best_step = best
    out.snippet = _snippet(text, out.best_text)
    out.snippet_spans = spans(out.snippet, forms)
    return out
