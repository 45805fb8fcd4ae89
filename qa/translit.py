"""Russian typed in Latin letters -> the Cyrillic words it may stand for.

Members romanise Russian in many ways at once: "parol" / "parol'", "zh" / "j",
"kh" / "h", "shch" / "sch", "ya" / "ja", "y" for ы or й, "ts" / "c", soft signs dropped
or written as an apostrophe. No single scheme reads them all, so a word becomes a short
list of candidate readings; `qa.query` picks the one the corpus's own Russian uses.

The letters come from `cyrtranslit` (MIT, offline, a plain mapping table): each reading
is spelt in its GOST 7.79-2000 System B scheme, which is unambiguous, and converted by
it. Segments are converted one at a time, because GOST spellings glued together can
read differently ("j" + "a" would be "ja", which cyrtranslit reads as "жа").
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

import cyrtranslit
from cyrtranslit.mapping.ru import RU_LAT_TO_CYR_DICT

# An informal Latin segment -> its readings, most likely first, each as GOST segments.
# Longest segments are matched first, so "shch" wins over "sh" and "s".
_READINGS: dict[str, list[tuple[str, ...]]] = {
    "shch": [("shh",)], "shh": [("shh",)], "sch": [("shh",), ("s", "ch")], "tch": [("ch",)],
    "zh": [("zh",)], "kh": [("h",)], "ch": [("ch",)], "sh": [("sh",)], "ck": [("k",)],
    "ts": [("cz",), ("t", "s")], "tz": [("cz",)], "cz": [("cz",)],
    "ya": [("ya",)], "ja": [("ya",), ("zh", "a")], "ia": [("i", "ya"), ("ya",)],
    "yu": [("yu",)], "ju": [("yu",), ("zh", "u")], "iu": [("i", "yu"), ("yu",)],
    "yo": [("yo",), ("j", "o")], "jo": [("yo",), ("j", "o"), ("zh", "o")],
    "ye": [("e",), ("y'", "e"), ("'", "e")], "je": [("e",), ("zh", "e")],
    "yy": [("y'", "j")], "iy": [("i", "j"), ("y'", "j")], "ij": [("i", "j"), ("y'", "j")],
    "y": [("y'",), ("j",), ("i",)], "j": [("j",), ("zh",)],
    "e": [("e",), ("e'",)], "i": [("i",), ("j",)], "h": [("h",)],
    "c": [("cz",), ("k",)], "x": [("k", "s"), ("h",)], "w": [("v",)], "q": [("k",)],
    "'": [("'",), ("''",)],
    **{letter: [(letter,)] for letter in "abvgdzklmnoprstuf"},
}
# Apostrophe-like marks members type for the soft sign.
_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "ʹ": "'", "`": "'", "´": "'"})
LATIN_WORD = re.compile(r"[a-z]+(?:'+[a-z]*)*")  # a word of a lowercased question, apostrophes inside
MAX_CANDIDATES = 64  # a long word with many ambiguous letters: its likeliest readings suffice
# Longer than any Russian word romanised ("vysokoprevoskhoditelstvo" has 24 letters); reading
# a 500-letter "word" would cost seconds.
MAX_LETTERS = 32


@cache
def _cyrillic(gost: str) -> str:
    # The table first: cyrtranslit 1.2's parser reads its own "shh" (щ) as "sh" + "h".
    return RU_LAT_TO_CYR_DICT.get(gost) or cyrtranslit.to_cyrillic(gost, "ru")


def _letters(reading: tuple[str, ...]) -> str:
    return "".join(_cyrillic(g) for g in reading)


def prepare_latin(text: str) -> str:
    """Lowercased, with apostrophe-like marks as "'"."""
    return text.lower().translate(_APOSTROPHES)


@lru_cache(maxsize=8192)
def candidates(word: str) -> tuple[str, ...]:
    """Cyrillic readings of one lowercased Latin word, likeliest first: every way of
    cutting it into segments of the table (longer segments first: "ts" before "t" +
    "s") times each segment's readings, up to `MAX_CANDIDATES`, then cyrtranslit's own
    reading of the whole word (GOST-style input: "kakoj", "y'")."""
    if not word or len(word) > MAX_LETTERS or any(ch not in _LETTERS for ch in word):  # not romanised Russian
        return ()
    readings = _readings_from(word, 0)
    return tuple(dict.fromkeys([*readings[: MAX_CANDIDATES - 1], _cyrillic(word)]))


_LETTERS = frozenset("".join(_READINGS))
_BY_START: dict[str, list[str]] = {}
for _segment in sorted(_READINGS, key=len, reverse=True):
    _BY_START.setdefault(_segment[0], []).append(_segment)


def _readings_from(word: str, start: int, memo: dict[int, list[str]] | None = None) -> list[str]:
    """The readings of `word[start:]` (memoised per start position)."""
    memo = {} if memo is None else memo
    if start == len(word):
        return [""]
    if start in memo:
        return memo[start]
    out: list[str] = []
    for segment in _BY_START.get(word[start], []):
        if not word.startswith(segment, start):
            continue
        rest = _readings_from(word, start + len(segment), memo)
        for reading in _READINGS[segment]:
            letters = _letters(reading)
            out.extend(letters + r for r in rest[: MAX_CANDIDATES - len(out)])
            if len(out) >= MAX_CANDIDATES:
                break
        if len(out) >= MAX_CANDIDATES:
            break
    memo[start] = list(dict.fromkeys(out))
    return memo[start]


_BLUR = str.maketrans("ёэй", "ееи")


def skeleton(word: str) -> str:
    """A Cyrillic word as romanisations blur it: no soft or hard sign, ё and э as е,
    й as и. Two readings with one skeleton are one word to look up in the corpus."""
    return word.replace("ь", "").replace("ъ", "").translate(_BLUR)

