"""Lexical side of retrieval: BM25 (bm25s) over stemmed words (PyStemmer).

Each document is stemmed with the stemmer of its own language; a query with the
stemmer of its language, or with all three when its language is unknown. A query's
Cyrillic words also count in Latin transliteration, so "каспи голд" finds the
"Kaspi Gold" that Russian articles write in Latin letters.
"""

from __future__ import annotations

import re
from pathlib import Path

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_GERMAN, STOPWORDS_RUSSIAN

from .text import STEMMER_NAMES, WORD, fold_yo, stemmer

_STOPWORDS = {
    "ru": frozenset(STOPWORDS_RUSSIAN),
    "de": frozenset(STOPWORDS_GERMAN),
    "en": frozenset(STOPWORDS_EN),
}
_CYRILLIC = re.compile(r"[а-яё]")
_TRANSLIT = str.maketrans(
    {
        **dict(zip("абвгдезийклмнопрстуфыэ", "abvgdeziyklmnoprstufye")),
        "ж": "zh", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch",
        "ю": "yu", "я": "ya", "ё": "e", "ъ": "", "ь": "",
    }
)


def tokenize(text: str, lang: str | None, query: bool = False) -> list[str]:
    """Words of `text`, lowercased, stop words dropped, stemmed for `lang`
    (for every supported language when `lang` is None). For a `query`, Cyrillic
    words are added once more, transliterated and unstemmed."""
    words = [fold_yo(w) for w in WORD.findall(text.lower())]
    langs = [lang] if lang in STEMMER_NAMES else list(STEMMER_NAMES)
    tokens: list[str] = []
    for lg in langs:
        kept = [w for w in words if w not in _STOPWORDS[lg]]
        tokens.extend(stemmer(lg).stemWords(kept))
    if query:
        tokens.extend(
            w.translate(_TRANSLIT) for w in words if _CYRILLIC.search(w) and w not in _STOPWORDS["ru"]
        )
    if len(langs) > 1 or query:
        tokens = list(dict.fromkeys(tokens))
    return tokens


def word_forms(text: str, lang: str | None) -> list[list[str]]:
    """The content words of `text` (stop words of every candidate language dropped),
    each as the forms BM25 may know it by: its stem per candidate language, the word
    itself and, for a Cyrillic word, its Latin transliteration."""
    langs = [lang] if lang in STEMMER_NAMES else list(STEMMER_NAMES)
    out = []
    for w in (fold_yo(w) for w in WORD.findall(text.lower())):
        if any(w in _STOPWORDS[lg] for lg in langs):
            continue
        # The word as written too: a name ("atomy") may be stemmed in one language only.
        forms = [stemmer(lg).stemWord(w) for lg in langs] + [w]
        if _CYRILLIC.search(w):
            forms.append(w.translate(_TRANSLIT))
        out.append(list(dict.fromkeys(forms)))
    return out


class LexicalIndex:
    """BM25 over a list of documents, scored against every document at once."""

    def __init__(self, bm25: bm25s.BM25, size: int):
        self.bm25 = bm25
        self.size = size

    @classmethod
    def build(cls, docs: list[tuple[str, str]]) -> LexicalIndex:
        """`docs`: (text, lang) pairs."""
        bm25 = bm25s.BM25()
        corpus = [tokenize(text, lang) or [""] for text, lang in docs]
        bm25.index(corpus, show_progress=False)
        return cls(bm25, len(docs))

    def scores(self, query: str, lang: str | None, extra: list[str] = ()) -> np.ndarray:
        """BM25 score of every document for `query` (zeros when nothing matches).
        `extra` terms (synonyms, in any language) are stemmed for every language."""
        tokens = tokenize(query, lang, query=True)
        if extra:
            tokens = list(dict.fromkeys(tokens + tokenize(" ".join(extra), None)))
        # Not "": "ь" and "ъ" transliterate to nothing, and "" is the index's filler token
        # for a document with no words, which bm25s cannot score (a 500 for "ь").
        tokens = [t for t in tokens if t and t in self.bm25.vocab_dict]
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.bm25.get_scores(tokens), dtype=np.float32)

    def save(self, folder: Path) -> None:
        self.bm25.save(str(folder))

    @classmethod
    def load(cls, folder: Path, size: int) -> LexicalIndex:
        return cls(bm25s.BM25.load(str(folder)), size)

    def postings(self, token: str) -> np.ndarray:
        """The documents that contain `token` (empty when the corpus never uses it)."""
        t = self.bm25.vocab_dict.get(token)
        scores = self.bm25.scores
        if t is None or t + 1 >= len(scores["indptr"]):
            return np.zeros(0, dtype=np.int64)
        return scores["indices"][scores["indptr"][t] : scores["indptr"][t + 1]]

