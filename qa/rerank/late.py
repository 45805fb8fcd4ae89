"""Late interaction: every token of the question against every token of a section.

One vector per text (the first stage) averages a question's words away: "Steuer-ID
for payouts" and "annual tax statement" land close. Here each question token finds
its best match among a section's tokens, and the section scores the mean of those
best matches (MaxSim, as in ColBERT), so a question about one detail is matched on
that detail.

The section side is computed at ingest (`section_tokens`, stored with the build as
`LateTokens`); the question side comes from the same model call as the question's
vector (an ONNX e5 folder, `Encoder.query_with_tokens`), so it costs no second model
call. The e5 model learns it together with its vector (`qa train --late-weight`,
qa/training/late_loss.py). `qa.search.Searcher.rank` rereads its top candidates with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..corpus import Article, Section
from .cross import section_text

MAX_TOKENS = 128  # per section: what training reads of a passage (TrainOptions.max_seq_length)


@dataclass
class LateTokens:
    """The token states of every section of a build, float16, one block per section."""

    vectors: np.ndarray  # [tokens, dimension] float16, L2-normalised rows
    offsets: np.ndarray  # [sections + 1] int64: section s is vectors[offsets[s]:offsets[s + 1]]

    def of(self, section: int) -> np.ndarray:
        return self.vectors[self.offsets[section] : self.offsets[section + 1]]

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes + self.offsets.nbytes)


def section_tokens(articles: list[Article], sections: list[Section], section_article: np.ndarray,
                   encoder) -> LateTokens:
    """What late interaction reads of each section (its titles and first words, as the
    cross-encoder does), embedded token by token."""
    texts = [section_text(articles[a], s) for s, a in zip(sections, section_article)]
    tokens = encoder.passage_tokens(texts, MAX_TOKENS)
    offsets = np.zeros(len(tokens) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(t) for t in tokens])
    dimension = tokens[0].shape[1] if tokens else 0
    vectors = np.vstack(tokens).astype(np.float16) if tokens else np.zeros((0, dimension), np.float16)
    return LateTokens(vectors, offsets)


def maxsim(query: np.ndarray, section: np.ndarray) -> float:
    """Mean over the question's tokens of each one's best cosine among the section's tokens."""
    if not len(query) or not len(section):
        return 0.0
    return float((query @ section.T.astype(np.float32)).max(axis=1).mean())


def group_scores(query: np.ndarray, late: LateTokens, groups: list[list[int]]) -> np.ndarray:
    """Per group of sections (a section in all its translations), its best MaxSim: a
    section that exists only in another language is read in that language."""
    out = np.zeros(len(groups), dtype=np.float32)
    for i, sections in enumerate(groups):
        out[i] = max(maxsim(query, late.of(s)) for s in sections)
    return out
