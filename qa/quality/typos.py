"""Questions with typos: how much of the quality survives members' misspellings.

`with_typos(questions, n)` gives each question `n` typos, each in another word of five
letters or more: a letter dropped, two neighbours swapped, one replaced by another
letter of the word's script, or one doubled. Which words, where and how come from a
fixed seed, so a run can be repeated and two builds compared on the same misspellings.
`qa eval --typos N` reports every set this way. Nothing is fitted on it: the speller's
limits (`qa/typos.py`) are the search engines' defaults.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from typing import TypeVar

from ..text import CYRILLIC_LETTER

Q = TypeVar("Q")  # a question: any dataclass with a `q` text (qa/quality/evaluate.py's `Question`)

_WORD = re.compile(r"(?<![\w-])[^\W\d_]{5,}(?![\w-])")
_LETTERS = {True: "аеиоунтслрвкмд", False: "aeiounstlrhdcm"}


def misspell(word: str, rng: random.Random) -> str:
    """`word` with one typo, never in its first letter."""
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("drop", "swap", "replace", "double"))
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "swap" and word[i] != word[i + 1]:  # swapping "ss" would change nothing
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "swap":
        return word[:i] + word[i + 1:]
    if kind == "replace":
        letters = _LETTERS[bool(CYRILLIC_LETTER.search(word))].replace(word[i].lower(), "")
        return word[:i] + rng.choice(letters) + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def add_typos(text: str, n: int, rng: random.Random) -> str:
    words = list(_WORD.finditer(text))
    for m in sorted(rng.sample(words, min(n, len(words))), key=lambda m: m.start(), reverse=True):
        text = text[:m.start()] + misspell(m.group(0), rng) + text[m.end():]
    return text


def with_typos(questions: list[Q], n: int, seed: int = 0) -> list[Q]:
    """Copies of `questions`, each with `n` typos (fewer when it has fewer long words)."""
    rng = random.Random(seed)
    return [replace(q, q=add_typos(q.q, n, rng)) for q in questions]
