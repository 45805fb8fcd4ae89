"""How close unrelated rows come to a question: the background a match must stand out from.

A member phrasing is a question, and question-to-question cosines run high whatever
the topic: "what is the weather tomorrow" lies close to "what is the delivery time"
simply because both are questions. Section rows are statements, and come less close.
For one question, the mean cosine to a fixed sample of phrasing rows and to a sample
of section rows (of the question's language) says how much of a phrasing match is
question-shape rather than meaning (`phrase_excess`). The search subtracts that excess
from phrasing evidence, so a phrasing counts by how much closer it is than unrelated
questions come, and the no-answer decision sees both levels.

The sample is drawn once per index (a fixed seed), so the cost per question is two
small matrix products whatever the corpus size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import faiss
import numpy as np

from .corpus import LANGUAGES
from .index import ROW_PHRASING, ROW_SECTION, Index

SAMPLE = 256  # rows of each kind and language


@dataclass
class Level:
    section: float  # mean cosine to unrelated section rows of the question's language
    phrasing: float  # mean cosine to unrelated member phrasings of the question's language
    section_high: float = 0.0  # the 95th percentile of those section cosines: how close the closest come
    excess: dict[str, float] = field(default_factory=dict)  # phrasing language -> its `phrase_excess`

    @property
    def phrase_excess(self) -> float:
        """How much higher the question comes to questions than to statements of its own
        language, by shape alone."""
        return max(0.0, self.phrasing - self.section)


class Background:
    def __init__(self, index: Index, sample: int = SAMPLE, seed: int = 0):
        vectors = _all_vectors(index.faiss_index)
        rng = np.random.default_rng(seed)
        row_lang = np.array([index.sections[s].lang for s in index.rows]) if len(index.rows) else np.array([])
        self.samples: dict[str | None, dict[int, np.ndarray]] = {}
        for lang in (*LANGUAGES, None):
            in_lang = np.ones(len(row_lang), bool) if lang is None else row_lang == lang
            self.samples[lang] = {}
            for kind in (ROW_SECTION, ROW_PHRASING):
                rows = np.flatnonzero(in_lang & (index.row_kind == kind))
                if len(rows) > sample:
                    rows = np.sort(rng.choice(rows, sample, replace=False))
                self.samples[lang][kind] = vectors[rows]
        # All samples in one matrix: one product per question instead of eight.
        blocks = [(lang, kind, m) for lang, kinds in self.samples.items() for kind, m in kinds.items()]
        self._stacked = np.vstack([m for _, _, m in blocks]) if blocks else np.zeros((0, index.faiss_index.d))
        ends = np.cumsum([len(m) for _, _, m in blocks])
        self._slices = {(lang, kind): slice(end - len(m), end) for (lang, kind, m), end in zip(blocks, ends)}

    def level(self, query: np.ndarray, lang: str | None) -> Level:
        """The background of one centred, normalised query vector (shape (1, d)): against
        rows of its own language, and the excess per language of the phrasings, since a
        question comes less close to questions in another language than in its own."""
        means = {}
        cosines = self._stacked @ query[0]
        for row_lang in (*LANGUAGES, None):
            section = cosines[self._slices[row_lang, ROW_SECTION]]
            phrasing = cosines[self._slices[row_lang, ROW_PHRASING]]
            means[row_lang] = (section, float(phrasing.mean()) if len(phrasing) else None)
        own, _ = means.get(lang) or means[None]
        own_phrasing = (means.get(lang) or means[None])[1]
        s = float(own.mean()) if len(own) else 0.0
        excess = {
            row_lang: max(0.0, p - float(sec.mean())) for row_lang, (sec, p) in means.items()
            if row_lang is not None and p is not None and len(sec)
        }
        return Level(s, own_phrasing if own_phrasing is not None else s,
                     _percentile(own, 95) if len(own) else 0.0, excess)


def _percentile(values: np.ndarray, q: float) -> float:
    """`np.percentile(values, q)` (linear interpolation) by partial sorting: a tenth
    of its cost on a few hundred values, and this runs once per question."""
    at = (len(values) - 1) * q / 100
    lo = int(np.floor(at))
    hi = min(lo + 1, len(values) - 1)
    part = np.partition(values, (lo, hi))
    return float(part[lo] + (part[hi] - part[lo]) * (at - lo))


def _all_vectors(index: faiss.Index) -> np.ndarray:
    """Every stored vector (flat indexes keep them; IVF needs its direct map first)."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.make_direct_map()
    return index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
