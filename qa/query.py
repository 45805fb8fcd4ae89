"""Query preparation: the question as detection and search see it.

`prepare(text)` normalises the question (`qa.text.normalize`: NFKC, no zero-width or
bidi marks, look-alike letters folded), detects its language, and turns Russian typed
in Latin letters ("gde moya posylka", "parol' zabyl") into Cyrillic, so that it is
searched, answered and recorded as Russian.

Whether Latin text is Russian is decided by the corpus's own words (a `Vocabulary` built
from the index at load), not by the language classifier alone: on a few Latin words
py3langid calls Russian German or English. Per word, a candidate Cyrillic reading
(`qa.translit.candidates`) counts as Russian when the Russian articles use it (the word,
or its Snowball stem); the Latin word counts as Latin when the articles use it in Latin
letters, or it is a German or English stop word. The question is Russian when more of
its words read as Russian than as Latin, and at least half of them do. Then each word
becomes its Russian reading, keeping words the corpus only knows in Latin letters
("Kaspi", "IBAN"), and a reading the corpus knows is spelt as the corpus spells it
(soft signs, й, ё restored: "parol" -> "пароль").

`qa.language.detect_language` stays a pure function of the text; this module is where
the corpus vocabulary comes in.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from functools import lru_cache
from typing import TYPE_CHECKING

from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_GERMAN, STOPWORDS_RUSSIAN

from .corpus import Article, Section
from .language import CYRILLIC_WORD, UNKNOWN, detect_language
from .text import fold_yo, normalize, stemmer
from .translit import LATIN_WORD, candidates, prepare_latin, skeleton
from .typos import Speller

if TYPE_CHECKING:
    from .index import Index

_WHOLE_CYRILLIC_WORD = re.compile(r"(?<!\w)[\u0400-\u04FF]{2,}(?!\w)")
_WHOLE_LATIN_WORD = re.compile(r"(?<!\w)[a-z]+(?!\w)")
_LATIN_STOPWORDS = frozenset(STOPWORDS_GERMAN) | frozenset(STOPWORDS_EN)
_NON_ASCII_LATIN = re.compile(r"[^\W\da-z_]", re.UNICODE)  # ä ö ü ß é …: not a romanisation
_SURFACE, _STEM = 2, 1  # how well the corpus knows a Russian reading
# Member questions are a few words; a longer Latin text is searched as typed, so that no
# input can make preparation cost more than a few milliseconds.
MAX_WORDS = 24
STEMMED_READINGS = 16  # stemming costs more than a lookup: only the likeliest readings


@dataclass(frozen=True)
class PreparedQuestion:
    text: str  # normalised (`qa.text.normalize`)
    search_text: str  # what is searched: `text`, in Cyrillic when it was Latin-script Russian
    lang: str  # 'ru', 'de', 'en' or 'unknown' (the given language, when one was given)
    transliterated: bool


class Vocabulary:
    """The words of the corpus that tell Latin-script Russian from German and English."""

    def __init__(self, russian: Iterable[str], latin: Iterable[str], latin_in_russian: Iterable[str] = (),
                 speller: Speller | None = None):
        self.speller = speller  # the corpus's spelling of words typed with a typo (qa/typos.py)
        counts = Counter(fold_yo(w) for w in russian)
        counts.update(dict.fromkeys(STOPWORDS_RUSSIAN, 1))
        self.spelt = set(counts)
        self.russian: dict[str, str] = {}  # skeleton -> the corpus's most frequent spelling of it
        for word, _ in counts.most_common():
            self.russian.setdefault(skeleton(word), word)
        ru = stemmer("ru")
        self.russian_stems = {skeleton(s) for s in ru.stemWords(list(counts))}
        latin_words = set(latin)
        self.latin_in_russian = frozenset(latin_in_russian)  # names Russian articles write in Latin: "Kaspi"
        self.latin = latin_words | _LATIN_STOPWORDS
        self.latin_stems = set(stemmer("de").stemWords(list(latin_words))) | set(
            stemmer("en").stemWords(list(latin_words))
        )

    @classmethod
    def from_texts(cls, texts: Iterable[tuple[str, str]], phrasings: Iterable[tuple[str, str]] = (),
                   typo_tolerance: bool = True) -> Vocabulary:
        """`texts`: (text, language) pairs; Cyrillic words of Russian texts are Russian,
        Latin words of any text are Latin (Russian articles write "Kaspi Gold").
        `phrasings` (members' questions) count for their Cyrillic words only: a member's
        Latin-script Russian question pasted into a Russian article (`qa gaps`) must not
        make its words Latin."""
        texts, phrasings = list(texts), list(phrasings)
        russian: list[str] = []
        latin: set[str] = set()
        latin_in_russian: set[str] = set()
        for text, lang in texts:
            low = text.lower()
            if lang == "ru":
                russian.extend(_WHOLE_CYRILLIC_WORD.findall(low))
                latin_in_russian.update(_WHOLE_LATIN_WORD.findall(low))
            else:
                latin.update(_WHOLE_LATIN_WORD.findall(low))
        for text, lang in phrasings:
            if lang == "ru":
                russian.extend(_WHOLE_CYRILLIC_WORD.findall(text.lower()))
        speller = Speller.from_texts(texts + phrasings) if typo_tolerance else None
        return cls(russian, latin | latin_in_russian, latin_in_russian, speller)

    @classmethod
    def from_articles(cls, articles: Iterable[Article], sections: Iterable[Section],
                      typo_tolerance: bool = True) -> Vocabulary:
        """The vocabulary of articles (titles, tags, phrasings) and their sections."""
        articles = list(articles)
        texts = [(t, a.lang) for a in articles for t in [a.title, *a.tags]]
        texts += [(f"{s.title} {s.plain}", s.lang) for s in sections]
        return cls.from_texts(texts, [(q, a.lang) for a in articles for q in a.questions], typo_tolerance)

    @classmethod
    def from_index(cls, index: Index, typo_tolerance: bool = True) -> Vocabulary:
        return cls.from_articles(index.articles, index.sections, typo_tolerance)

    def correct(self, text: str, lang: str | None = None) -> str:
        """`text` with words the corpus does not know spelt as the corpus spells them."""
        return self.speller.correct(text, lang) if self.speller is not None else text

    def is_latin(self, word: str) -> bool:
        """Whether a Latin word is one the corpus uses in Latin letters (or a German or
        English stop word), in this form or as a German or English stem."""
        if word in self.latin or _NON_ASCII_LATIN.search(word):
            return True
        return (
            stemmer("de").stemWord(word) in self.latin_stems or stemmer("en").stemWord(word) in self.latin_stems
        )

    @lru_cache(maxsize=8192)  # noqa: B019 - one Vocabulary per loaded index, kept as long as it
    def russian_reading(self, word: str) -> tuple[str, int]:
        """The best Cyrillic reading of a Latin word and how well the corpus knows it
        (`_SURFACE`, `_STEM` or 0, then the library's plain reading)."""
        readings = candidates(word)
        for reading in readings:  # the corpus's own spelling of a reading, as typed
            if reading in self.spelt:
                return reading, _SURFACE
        skeletons = [skeleton(r) for r in readings]
        for blurred in skeletons:  # ... with soft signs, й, ё, э as the corpus writes them
            spelt = self.russian.get(blurred)
            if spelt is not None:
                return spelt, _SURFACE
        ru = stemmer("ru")
        for reading in readings[:STEMMED_READINGS]:  # an inflection of a corpus word
            if skeleton(ru.stemWord(reading)) in self.russian_stems:
                return reading, _STEM
        return (readings[0], 0) if readings else ("", 0)


@dataclass
class _Word:
    latin: str
    reading: str
    known: int
    is_latin: bool


def _words(text: str, vocabulary: Vocabulary, forced: bool) -> list[_Word]:
    """The Latin words of `text` with their readings. Reading a word costs up to
    `MAX_CANDIDATES` lookups, so words the Latin side knows are read only once some
    other word has read as Russian: most German and English questions stop there."""
    latin = LATIN_WORD.findall(prepare_latin(text))
    if len(latin) > MAX_WORDS:
        return []
    is_latin = [vocabulary.is_latin(w.replace("'", "")) for w in latin]
    words = [_Word(w, "", 0, lat) for w, lat in zip(latin, is_latin)]
    for w in words:
        if not w.is_latin:
            w.reading, w.known = vocabulary.russian_reading(w.latin)
    if not forced and not any(w.known for w in words):
        return words
    for w in words:
        if w.is_latin:
            w.reading, w.known = vocabulary.russian_reading(w.latin)
    return words


def _is_russian(words: list[_Word], forced: bool) -> bool:
    """More words read as Russian than as Latin, and at least half of all words do
    (`forced`: the caller says the question is Russian; one Russian word is enough)."""
    russian = sum(1 for w in words if w.known and not w.is_latin)
    latin = sum(1 for w in words if w.is_latin and not w.known)
    either = sum(1 for w in words if w.known and w.is_latin)
    if forced:
        return russian + either > 0
    return russian > latin and 2 * (russian + either) >= len(words)


def _to_cyrillic(text: str, words: list[_Word], vocabulary: Vocabulary) -> str:
    """`text` with each Latin word replaced by its Russian reading, except words only
    the Latin side knows, names the Russian articles themselves write in Latin letters
    ("Kaspi", "PV"), and words with no reading at all."""
    by_word = {w.latin: w for w in words}

    def replace(m: re.Match) -> str:
        w = by_word.get(m.group(0))
        if w is None or not w.reading or (w.is_latin and not w.known) or w.latin in vocabulary.latin_in_russian:
            return m.group(0)
        return w.reading

    return LATIN_WORD.sub(replace, prepare_latin(text))


def prepare(text: str, vocabulary: Vocabulary | None = None, lang: str | None = None) -> PreparedQuestion:
    """The question as detection and search see it. `lang`, when given, is the
    question's language (an agent's choice): Latin text given as 'ru' is read as
    Russian, text given as 'de' or 'en' is never converted. Without a `vocabulary`
    only normalisation and detection happen."""
    normal = normalize(text)
    detected = lang or detect_language(normal)
    if vocabulary is None:
        return PreparedQuestion(normal, normal, detected, False)
    prepared = _as_russian(normal, vocabulary, lang) or PreparedQuestion(normal, normal, detected, False)
    return dataclass_replace(prepared, search_text=vocabulary.correct(prepared.search_text, prepared.lang))


def _as_russian(normal: str, vocabulary: Vocabulary, lang: str | None) -> PreparedQuestion | None:
    """The question read as Latin-script Russian, or None when it is not that."""
    if lang in ("de", "en") or CYRILLIC_WORD.search(normal):
        return None
    words = _words(normal, vocabulary, forced=lang == "ru")
    if not words or not _is_russian(words, forced=lang == "ru"):
        return None
    return PreparedQuestion(normal, _to_cyrillic(normal, words, vocabulary), "ru", True)


__all__ = ["UNKNOWN", "PreparedQuestion", "Vocabulary", "prepare"]
