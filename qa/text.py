"""Words and stems: the one stemmer table that BM25 (`qa.lexical`) and synonym
matching (`qa.corpus.synonyms`) share, so that both see the same forms of a word."""

from __future__ import annotations

import re
from functools import cache

import Stemmer

# Corpus language -> PyStemmer (Snowball) stemmer.
STEMMER_NAMES = {"ru": "russian", "de": "german", "en": "english"}
WORD = re.compile(r"\w+", re.UNICODE)


@cache
def stemmer(lang: str) -> Stemmer.Stemmer:
    """The stemmer of a corpus language ('ru', 'de', 'en')."""
    return Stemmer.Stemmer(STEMMER_NAMES[lang])


def fold_yo(word: str) -> str:
    """`ё` written as `е`, as most Russian text does."""
    return word.replace("ё", "е")
