"""How the second stage joins the first: it rereads the top `depth` candidates and adds
`weight` x its logit to their first-stage score.

Added, not replacing: the cross-encoder is small (two of e5's twelve layers) and trained
on a few thousand of the corpus's own phrasings and headings, so on its own it is worse
than the first stage (dev R@1 0.45 against 0.84 over ten candidates). Measured as added
evidence on the sample corpus, no weight above 0 gains on dev (docs/quality.md, "The
cross-encoder, measured"), which is why it is opt-in. `depth` and `weight` are read
from a "rerank" entry in cross_model.json when there is one; nothing writes one yet,
so a folder uses DEPTH and WEIGHT below.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .cross import CrossEncoder, section_text

DEPTH = 10
WEIGHT = 0.05


@dataclass
class Reranker:
    cross: CrossEncoder
    depth: int = DEPTH
    weight: float = WEIGHT

    @classmethod
    def from_folder(cls, folder, threads: int = 1) -> Reranker:
        cross = CrossEncoder(folder, threads=threads)
        chosen = cross.config.get("rerank", {})
        return cls(cross, int(chosen.get("depth", DEPTH)), float(chosen.get("weight", WEIGHT)))

    def rerank(self, question: str, hits: list, timings: dict[str, float] | None = None) -> list:
        """`hits` (qa.search.Hit, best first) with the first `depth` re-scored and re-sorted;
        their `score` becomes the joined score, so later steps (rules) sort by it too."""
        head, tail = hits[: self.depth], hits[self.depth :]
        if not head:
            return hits
        started = time.perf_counter()
        logits = self.cross.score(question, [section_text(h.article, h.section) for h in head])
        for hit, logit in zip(head, logits):
            hit.second_stage = round(self.weight * float(logit), 4)
            hit.score = round(hit.score + hit.second_stage, 4)
        head.sort(key=lambda h: -h.score)
        if timings is not None:
            timings["rerank_ms"] = (time.perf_counter() - started) * 1000
        return head + tail
