"""Words, stems and normalised text.

- the one stemmer table that BM25 (`qa.lexical`) and synonym matching
  (`qa.corpus.synonyms`) share, so that both see the same forms of a word;
- `normalize`: the one form of a member's question that language detection, search
  and redaction all see, so that a zero-width space or a look-alike letter can
  neither hide a word from search nor a member ID from redaction.
"""

from __future__ import annotations

import re
import unicodedata
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


# -- normalisation ---------------------------------------------------------------------
# Latin letters that look like Cyrillic ones, and the reverse: members (and spammers)
# type "пaроль" with a Latin "a", or "Kаspi" with a Cyrillic "а".
_LATIN_LOOKALIKES = "aAeEoOpPcCxXyYKkMHTB"
_CYRILLIC_LOOKALIKES = "аАеЕоОрРсСхХуУКкМНТВ"
TO_CYRILLIC = str.maketrans(_LATIN_LOOKALIKES + "b", _CYRILLIC_LOOKALIKES + "ь")
TO_LATIN = str.maketrans(_CYRILLIC_LOOKALIKES + "іјѕ", _LATIN_LOOKALIKES + "ijs")
CYRILLIC_LETTER = re.compile(r"[\u0400-\u04FF]")
_LATIN_LETTER = re.compile(r"[A-Za-z]")


def _fold_word(m: re.Match) -> str:
    """A word written in two scripts, in the script most of its letters are in."""
    word = m.group(0)
    cyrillic, latin = len(CYRILLIC_LETTER.findall(word)), len(_LATIN_LETTER.findall(word))
    if not (cyrillic and latin):
        return word
    return word.translate(TO_CYRILLIC if cyrillic >= latin else TO_LATIN)


def _keep(ch: str) -> str:
    category = unicodedata.category(ch)
    if category in ("Cf", "Cs"):  # zero-width and bidi marks, BOM, soft hyphen; lone surrogates
        return ""
    if category == "Cc":  # control characters (NUL, escapes); tabs and line breaks are spaces
        return " " if ch in "\t\n\r\x0b\x0c" else ""
    return ch


def normalize(text: str) -> str:
    """The question as search, language detection and redaction see it: NFKC (full-width
    letters and digits become plain ones), without format and control characters
    (zero-width spaces, bidi marks, NUL), look-alike letters folded into the script of
    their word, and whitespace runs as one space."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(_keep(ch) for ch in text)
    text = WORD.sub(_fold_word, text)
    return " ".join(text.split())
