"""Typo tolerance: a misspelt word searched as the corpus spells it.

Members type on phones: "Pasword vergesen", "Bestelung stornieren", "паоля". A word
with a typo matches nothing in BM25, and the encoder reads it as noise. One typo per
question took dev's R@1 from 0.836 to 0.766, two from 0.836 to 0.641
(docs/quality.md, "Typos"). The search engines a help-desk team knows (Algolia,
Meilisearch) forgive one typo in a word of 5 letters or more, and two from 9 letters.
So does this.

`Speller.correct(text)` leaves every word it knows as typed:
- the corpus's words, by form or by Snowball stem;
- the stop words of German, English and Russian;
- the words of a general dictionary of the three languages. These are the word lists
  of `pyspellchecker`, a maintained package. Without them, every real word the corpus
  happens not to use would be "corrected": "Wetter" became "weiter", "abbestellen"
  became "bestellen", "погода" became "полгода". The Russian list has 20,000 words and
  few of their inflections, so a Russian word also counts as known by its Snowball
  stem, or when a dictionary word starts with all of it but its last two letters
  ("пропадёт": "пропадать");
- Latin words of 9 letters or more made of two known words ("Ölproduktion").

Any other word of `MIN_LETTERS` letters or more becomes the closest word of its script
in the corpus. For Russian, the Russian list's other forms of the corpus's words count
too. Closeness is the optimal string alignment distance, in which swapping two
neighbouring letters is one typo. The distance may be at most 1, or 2 from
`TWO_TYPOS_FROM` letters in Latin script (Russian: 1, see `Speller.closest`). Among
equally close words, a corpus word wins, then one the question's language uses, then
the one the corpus uses most. Words with digits, shorter words and words with nothing
close stay as typed, and so do words of more than `MAX_LETTERS` letters, which bounds
the cost of any input. Only the searched text changes. The question is shown and stored
as the member typed it.

Candidates come from a delete index, as in SymSpell. Every candidate word and each of
its one-letter deletions are stored as hashes in a sorted array: 1.1 MB for the sample
corpus. A word's own deletions, up to one or two, are looked up
there. Then the few words found are checked with the real distance. Two typos are found
when at most one of them is on the candidate's side (two letters added to it, or one
added and one changed, say). That covers most of them.
"""

from __future__ import annotations

import bisect
import gzip
import io
import itertools
import logging
import re
import subprocess
import sys
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import cache, lru_cache
from importlib import resources

import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_GERMAN, STOPWORDS_RUSSIAN

from .text import CYRILLIC_LETTER, STEMMER_NAMES, fold_yo, stemmer

log = logging.getLogger("qa.typos")

MIN_LETTERS = 5  # shorter words are too often another real word one letter away
TWO_TYPOS_FROM = 9
MAX_LETTERS = 32  # a longer "word" is no word a member misspelt; its deletions would cost O(n^2) and more
MIN_CANDIDATE = 4  # corpus words shorter than this are never what a typo stood for
COMPOUND_FROM = 9  # a longer Latin word made of two real words is a compound, not a typo
_LETTERS = re.compile(r"(?<![\w-])[^\W\d_]+(?![\w-])")  # a whole word of letters only: no "ID-123", no "x2"
_LANG_BITS = {"de": 1, "en": 2, "ru": 4}
_STOPWORDS = frozenset(STOPWORDS_EN) | frozenset(STOPWORDS_GERMAN) | frozenset(STOPWORDS_RUSSIAN)


def _is_cyrillic(word: str) -> bool:
    return bool(CYRILLIC_LETTER.search(word))


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def _hashes(words: Iterable[str]) -> np.ndarray:
    # Python's string hash differs between processes, never within one: each process
    # builds its own arrays.
    return np.fromiter((hash(w) for w in words), dtype=np.int64)


def distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and
    swaps of neighbouring letters count one each."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], previous2[j - 2] + 1)
        previous2, previous = previous, row
    return previous[-1]


def _list_words(lang: str) -> Iterator[str]:
    """The words of `pyspellchecker`'s list for `lang`: a JSON object with one
    `"word": count` per line, read line by line."""
    folder = resources.files("spellchecker") / "resources"
    with folder.joinpath(f"{lang}.json.gz").open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as f:
        for line in f:
            end = line.find('":')
            if line.startswith('"') and end > 1:
                yield line[1:end]


def _crc(word: str) -> int:
    return zlib.crc32(word.encode("utf-8"))


@cache
def _bulk_stemmer(lang: str) -> Stemmer.Stemmer:
    """A stemmer without PyStemmer's word cache, for stemming whole word lists once:
    the shared stemmers' caches (`qa.text.stemmer`) are for questions."""
    return Stemmer.Stemmer(STEMMER_NAMES[lang], 0)


def _crcs(words: Iterable[str]) -> np.ndarray:
    return np.unique(np.fromiter(map(_crc, words), dtype=np.uint32))


def list_hashes() -> dict[str, np.ndarray]:
    """The word lists as sorted, unique CRC-32 arrays (about 2.5 MB in all): German and
    English words ("latin"), Russian words, their Snowball stems, and every beginning
    of 6 letters or more of a Russian word (`Dictionary.__contains__`). A word shares a
    CRC with one of 500,000 others about once in 9,000 lookups; it is then taken as
    known and left as typed."""
    russian = sorted({fold_yo(w) for w in _list_words("ru")})
    return {
        "latin": _crcs(itertools.chain(_list_words("de"), _list_words("en"))),
        "russian": _crcs(russian),
        "russian_stems": _crcs(_bulk_stemmer("ru").stemWords(russian)),
        "russian_heads": _crcs(w[:k] for w in russian for k in range(6, len(w) + 1)),
    }


def _list_hashes_from_a_child() -> dict[str, np.ndarray]:
    """`list_hashes()`, computed in a child process. Reading the lists makes 500,000
    short-lived strings. A worker that read them itself kept about 20 MB it could not
    give back, which took a container replica over its 300 MB."""
    code = ("import io, sys, numpy; from qa.typos import list_hashes; b = io.BytesIO(); "
            "numpy.savez(b, **list_hashes()); sys.stdout.buffer.write(b.getvalue())")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=120)
        with np.load(io.BytesIO(done.stdout)) as arrays:
            return {name: arrays[name] for name in arrays.files}
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        log.warning("typos: reading the word lists in a child process failed (%s); reading them here", e)
        return list_hashes()


def _has(hashes: np.ndarray, word: str) -> bool:
    crc = _crc(word)
    n = int(np.searchsorted(hashes, crc))
    return n < len(hashes) and int(hashes[n]) == crc


class Dictionary:
    """General word lists of German, English and Russian (`pyspellchecker`'s), as
    `list_hashes()`."""

    def __init__(self, hashes: dict[str, np.ndarray]):
        self.hashes = hashes

    @classmethod
    @cache
    def bundled(cls) -> Dictionary:
        """The package's lists, read once per process (about a second)."""
        return cls(_list_hashes_from_a_child())

    def __contains__(self, word: str) -> bool:
        if not _is_cyrillic(word):
            return _has(self.hashes["latin"], word)
        if _has(self.hashes["russian"], word) or _has(self.hashes["russian_stems"], stemmer("ru").stemWord(word)):
            return True
        # An inflection the list lacks: a list word that starts with all of it but its last
        # two letters ("пропадёт": "пропадать"). Not below 8 letters: "спосора" must not
        # pass as known because of "способ".
        return len(word) >= 8 and _has(self.hashes["russian_heads"], word[:-2])


class Speller:
    """The corpus's words, and the closest of them to a misspelt word."""

    def __init__(self, counts: dict[str, Counter[str]], dictionary: Dictionary | None = None):
        self.counts: Counter[str] = sum(counts.values(), Counter())  # word -> how often the corpus uses it
        # word -> the languages whose texts use it, one bit each (`_LANG_BITS`)
        self.langs: dict[str, int] = {}
        for lang, words in counts.items():
            for w in words:
                self.langs[w] = self.langs.get(w, 0) | _LANG_BITS.get(lang, 0)
        self.dictionary = dictionary if dictionary is not None else Dictionary.bundled()
        script = {lang: [w for w in self.counts if _is_cyrillic(w) == (lang == "ru")] for lang in _LANG_BITS}
        self.stems = {lang: _crcs(_bulk_stemmer(lang).stemWords(words)) for lang, words in script.items()}  # CRCs
        # Candidates: the corpus's words, then the Russian list's forms of them. A Russian
        # form the corpus lacks ("неправильный") is still what "неправельный" stands for,
        # and BM25 finds the corpus's forms by stem. Other list words are no candidates:
        # "регаться" must not become "ругаться".
        self.words = [w for w in self.counts if len(w) >= MIN_CANDIDATE]
        self.in_corpus = len(self.words)
        self._sorted = sorted(self.words)
        russian = [w for w in {fold_yo(w) for w in _list_words("ru")}
                   if len(w) >= MIN_CANDIDATE and w not in self.counts]
        self.words += sorted(w for w, stem in zip(russian, _bulk_stemmer("ru").stemWords(russian))
                             if _has(self.stems["ru"], stem))
        # Raw arrays, not lists of tuples: each word's deletions are freed as soon as they
        # are hashed, so building leaves no scattered memory behind.
        hashes, owners = array("q"), array("i")
        for n, w in enumerate(self.words):
            for key in {w} | _deletes(w):
                hashes.append(hash(key))
                owners.append(n)
        keys = np.frombuffer(hashes, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._word_of_key = np.frombuffer(owners, dtype=np.int32)[order]

    @classmethod
    def from_texts(cls, texts: Iterable[tuple[str, str]], dictionary: Dictionary | None = None) -> Speller:
        """`texts`: (text, language) pairs."""
        counts: dict[str, Counter[str]] = {}
        for text, lang in texts:
            counts.setdefault(lang, Counter()).update(fold_yo(w) for w in _LETTERS.findall(text.lower()))
        return cls(counts, dictionary)

    def knows(self, word: str) -> bool:
        """`word` (lower case) is a corpus word or the stem of one, a stop word, or in
        the general dictionary."""
        if self._real(word):
            return True
        langs = ("ru",) if _is_cyrillic(word) else ("de", "en")
        if any(_has(self.stems[lang], stemmer(lang).stemWord(word)) for lang in langs):
            return True
        return len(word) >= COMPOUND_FROM and not _is_cyrillic(word) and self._compound(word)

    def _real(self, word: str) -> bool:
        return word in self.counts or word in _STOPWORDS or word in self.dictionary

    def _compound(self, word: str) -> bool:
        """A German compound of two real words, with or without a linking "s":
        "ölproduktion" is no typo of "produktion"."""
        for i in range(2, len(word) - 4):  # a tail of 5 letters at least: "beste" + "lung" is a typo
            head, tail = word[:i], word[i:]
            if self._real(head) and (self._real(tail) or (tail[0] == "s" and self._real(tail[1:]))):
                return True
        return False

    @lru_cache(maxsize=16384)  # noqa: B019 - one Speller per loaded index, kept as long as it
    def closest(self, word: str, lang: str | None = None) -> str | None:
        """The corpus word `word` (lower case) most likely stands for, or None: the
        closest within the allowed typos, then one the texts in `lang` use ("pasword"
        in a German question is "passwort", not "password"), then the most used."""
        if not MIN_LETTERS <= len(word) <= MAX_LETTERS or self.knows(word):
            return None
        cyrillic = _is_cyrillic(word)
        # The Russian list is small: a long Russian word it lacks is too often a real word
        # two letters from a corpus word ("измерения", "изменения"), so one typo only.
        typos = 2 if len(word) >= TWO_TYPOS_FROM and not cyrillic else 1
        keys = {word} | _deletes(word)
        if typos == 2:
            keys |= {d2 for d1 in _deletes(word) for d2 in _deletes(d1)}
        wanted = _hashes(keys)
        start = np.searchsorted(self._keys, wanted, side="left")
        stop = np.searchsorted(self._keys, wanted, side="right")
        ids = {int(n) for a, b in zip(start, stop) for n in self._word_of_key[a:b]}
        found = [(d, n >= self.in_corpus, self.words[n]) for n in ids
                 if _is_cyrillic(self.words[n]) == cyrillic and (d := distance(word, self.words[n])) <= typos]
        if not found:
            return None
        own = _LANG_BITS.get(lang or "", 0)
        return min(found, key=lambda f: (f[0], f[1], not self.langs.get(f[2], 0) & own, -self.counts[f[2]], f[2]))[2]

    def correct(self, text: str, lang: str | None = None) -> str:
        """`text` (a question in `lang`, when known) with each word it does not know
        spelt as the corpus's closest word. A last word that is still being typed (the
        text ends with it, and a corpus word starts with it: "Bestel") stays as typed:
        the widget searches as the member types, and "Bestel" is no typo of "besten"."""
        out, end = [], 0
        for m in _LETTERS.finditer(text):
            word = fold_yo(m.group(0).lower())
            typing = m.end() == len(text) and self._starts_a_corpus_word(word)
            out += [text[end:m.start()], (None if typing else self.closest(word, lang)) or m.group(0)]
            end = m.end()
        return "".join(out) + text[end:]

    def _starts_a_corpus_word(self, prefix: str) -> bool:
        n = bisect.bisect_left(self._sorted, prefix)
        return n < len(self._sorted) and self._sorted[n].startswith(prefix)
