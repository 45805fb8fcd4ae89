"""Operator-controlled synonyms: `corpus/synonyms.yaml` -> term groups -> extra query terms.

Like the synonym sets of Elasticsearch or Algolia: each group lists terms that mean the
same thing, in any language or spelling (ИП / индивидуальный предприниматель /
Einzelunternehmer / sole proprietor). A question that contains a term of a group gets
the group's other terms added at query time. Format and rules: corpus/README.md.

Matching is by whole words, case-insensitive, `ё` = `е`, and tolerant to inflection:
two words match when they share a stem under the Russian, German or English stemmer
that BM25 uses too (`qa.text`): "ИПшки" matches "ИПшка", "Einzelunternehmers"
matches "Einzelunternehmer".
A multi-word term matches the same words in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from ..errors import CorpusError
from ..text import STEMMER_NAMES, WORD, fold_yo, stemmer

SYNONYMS_FILE = "synonyms.yaml"  # at the corpus root
TERM_LENGTH = (1, 60)  # characters, after whitespace runs become one space
MAX_EXTRA_TERMS = 12  # per question, so that a question touching many groups stays itself
_STR_TAG = "tag:yaml.org,2002:str"

Words = tuple[frozenset[str], ...]  # a term or text as words, each word as its set of forms


@lru_cache(maxsize=65536)
def _forms(word: str) -> frozenset[str]:
    """The word itself and its stem under each stemmer of `qa.text`. Stop words
    are stemmed too ("meinem" = "mein"): in a term they matter ("Mein Konto" is not "Konto")."""
    return frozenset([word, *(stemmer(lang).stemWord(word) for lang in STEMMER_NAMES)])


def term_words(text: str) -> Words:
    """`text` as words, each word as its set of forms: how synonyms and rules match."""
    return tuple(_forms(fold_yo(w)) for w in WORD.findall(text.lower()))


def match_at(term: Words, text: Words, start: int) -> bool:
    """Whether the words of `term` occur in `text` from `start` on, in order."""
    return len(term) <= len(text) - start and all(t & w for t, w in zip(term, text[start : start + len(term)]))


def _same_term(a: Words, b: Words) -> bool:
    """Two terms that match the same words (one would always match where the other does)."""
    return len(a) == len(b) and match_at(a, b, 0)


def _key(term: str) -> str:
    return " ".join(WORD.findall(fold_yo(term.lower())))


@dataclass
class Synonyms:
    groups: list[list[str]] = field(default_factory=list)  # each group: equivalent terms, any language

    def __post_init__(self):
        self._terms = [[term_words(t) for t in group] for group in self.groups]
        # (group, term) by each form of the term's first word: a text is scanned once.
        self._by_first: dict[str, list[tuple[int, int]]] = {}
        for g, terms in enumerate(self._terms):
            for t, words in enumerate(terms):
                for form in words[0] if words else ():
                    self._by_first.setdefault(form, []).append((g, t))

    def __len__(self) -> int:
        return len(self.groups)

    def _matches(self, text: Words) -> list[tuple[int, int, int, int]]:
        """(group, term, start, end) of every occurrence of a term in `text`."""
        found = set()
        for start, word in enumerate(text):
            for form in word:
                for g, t in self._by_first.get(form, ()):
                    words = self._terms[g][t]
                    if match_at(words, text, start):
                        found.add((g, t, start, start + len(words)))
        return sorted(found)

    def terms_in(self, text: str) -> list[str]:
        """The terms that occur in `text`, as `expand` matches them, in file order."""
        found = sorted({(g, t) for g, t, _, _ in self._matches(term_words(text))})
        return [self.groups[g][t] for g, t in found]

    def expand(self, question: str) -> list[str]:
        """Terms to add to `question`: for every group with a term in the question, the
        group's other terms. Groups come in the order they occur in the question, and
        their terms round-robin (file order within a group), so that when the bound
        `MAX_EXTRA_TERMS` cuts the list every matched group has had its share. No
        duplicates and nothing the question already contains."""
        matches = self._matches(term_words(question))
        present = {(g, t) for g, t, _, _ in matches}
        # A match inside a longer match of another group does not count:
        # "Mein Konto" is the member's office, not the bank "Konto".
        first: dict[int, int] = {}  # group -> start of its first counted match
        for g, _, start, end in matches:
            inside = any(
                og != g and os <= start and end <= oe and oe - os > end - start for og, _, os, oe in matches
            )
            if not inside:
                first[g] = min(start, first.get(g, start))
        groups = sorted(first, key=lambda g: (first[g], g))
        queues = [[term for t, term in enumerate(self.groups[g]) if (g, t) not in present] for g in groups]
        out: list[str] = []
        seen = {_key(self.groups[g][t]) for g, t in present}
        for rank in range(max(map(len, queues), default=0)):
            for queue in queues:
                if rank < len(queue) and len(out) < MAX_EXTRA_TERMS and _key(queue[rank]) not in seen:
                    seen.add(_key(queue[rank]))
                    out.append(queue[rank])
        return out

    def to_json(self) -> list[list[str]]:
        return [list(group) for group in self.groups]

    @classmethod
    def from_json(cls, data: list[list[str]] | None) -> Synonyms:
        return cls([[str(t) for t in group] for group in data or []])


def load_synonyms(path: Path | str) -> Synonyms:
    """Parse and validate a synonyms file; a missing file means no synonyms.

    Raises `CorpusError` (`path:line: reason`) at the first problem, naming the line of
    the offending group or term."""
    path = Path(path)
    if not path.is_file():
        return Synonyms()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(path, 1, f"not UTF-8 ({e.reason})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise CorpusError(path, mark.line + 1 if mark else 1, f"invalid YAML: {getattr(e, 'problem', e)}") from None
    if root is None:  # empty, or only comments
        return Synonyms()
    if not isinstance(root, yaml.SequenceNode):
        raise CorpusError(path, yaml_line(root),
                          "the file must be a list of groups, one `- [term, term, ...]` per group")

    groups: list[list[str]] = []
    seen: list[tuple[Words, str, int]] = []  # (words, term, line) of every term so far
    for n, node in enumerate(root.value, 1):
        if not isinstance(node, yaml.SequenceNode):
            raise CorpusError(path, yaml_line(node),
                              f"group {n} must be a list of terms, e.g. `- [ИП, Einzelunternehmer]`")
        if len(node.value) < 2:
            raise CorpusError(path, yaml_line(node),
                              f"group {n} has {len(node.value)} term(s); a group needs at least 2")
        group_start = len(seen)
        group = []
        for item in node.value:
            term, words, line = _term(path, item)
            for k, (other_words, other, other_line) in enumerate(seen):
                if not _same_term(words, other_words):
                    continue
                if k >= group_start:
                    raise CorpusError(
                        path, line, f"term '{term}' repeats '{other}' (line {other_line}) in the same group"
                    )
                raise CorpusError(
                    path, line,
                    f"term '{term}' is already in the group at line {other_line} (as '{other}'); "
                    "a term belongs to one group only: merge the two groups or drop one of the terms",
                )
            seen.append((words, term, line))
            group.append(term)
        groups.append(group)
    return Synonyms(groups)


def yaml_line(node: yaml.Node) -> int:
    """The 1-based line of a YAML node, for `CorpusError`s (also qa/rules.py)."""
    return node.start_mark.line + 1


def _term(path: Path, node: yaml.Node) -> tuple[str, Words, int]:
    line = yaml_line(node)
    if not isinstance(node, yaml.ScalarNode):
        raise CorpusError(path, line, "a term must be a string, not a list or mapping")
    if node.tag != _STR_TAG:
        kind = node.tag.rsplit(":", 1)[-1]
        raise CorpusError(path, line, f"a term must be a string, not {kind}: quote it (\"{node.value}\")")
    term = " ".join(node.value.split())
    low, high = TERM_LENGTH
    if not low <= len(term) <= high:
        raise CorpusError(path, line, f"term '{term}' has {len(term)} characters; {low}-{high} are allowed")
    words = term_words(term)
    if not words:
        raise CorpusError(path, line, f"term '{term}' has no letters or digits")
    return term, words, line
