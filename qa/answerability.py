"""Is there an answer at all? A small learned decision over several kinds of evidence.

One score compared with one threshold fitted to a dozen unanswerable questions does
not hold on questions nobody tuned for: an off-topic question that is question-shaped
lies close to some member phrasing, and "Atomy" matches everywhere. The decision here
looks at the evidence from several sides at once (`FEATURES`): how good the best
result is, by how much it beats the next article, how much of the question's own
words the best article covers, how much of the question the corpus knows at all, how
close unrelated rows come to this question, and how long it is.

`Answerability` is a logistic model over those features. It is fitted by a procedure
(qa/quality/answerability.py: positives are the corpus's own phrasings and headings,
negatives are written unanswerable questions and off-domain questions), never on the
sets it is reported on, and stored per model in qa/ranking.json next to the weights.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

# Questions written to have no answer here (off-topic, and help-desk topics the corpus
# does not cover). They are the no-answer decision's training negatives, and the index
# embeds them so that how close a question comes to the nearest of them is evidence too
# (the usual out-of-scope detector of intent classifiers). No test set is drawn from them.
MIN_SHARED = 0.5  # share of the index's articles the fitted corpus must have had
UNANSWERABLE_FILE = Path(__file__).resolve().parent / "data" / "unanswerable.jsonl"


def unanswerable_questions(path: Path = UNANSWERABLE_FILE) -> list[dict]:
    """The written unanswerable questions: {"q", "lang", "kind"} each."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


FEATURES = (
    "confidence",  # the top result's fused score with absolute lexical evidence (Searcher._confidence)
    "top_dense",  # best cosine of any section row
    "top_phrase",  # best phrasing cosine, less what question shape alone gives (qa.background)
    "margin",  # top article's score minus the second article's
    "covered",  # share of the question's words that the top article contains
    "covered_rare",  # the same, counting only words found in fewer than 3 languages' texts (not names)
    "known",  # share of the question's words the corpus contains at all
    "background",  # how close the closest unrelated section rows come (high: a vague, generic question)
    "words",  # log(1 + number of content words)
    "lexical",  # log(1 + the best raw BM25 score)
    "dense_margin",  # best section cosine of the top article minus that of any other article
    "covered_weight",  # share of the question's IDF mass the top article contains
    "missing_rarest",  # IDF of the rarest word the top article lacks ("Gmail" in "reset my Gmail password")
    "near_unanswerable",  # cosine to the closest written question without an answer (UNANSWERABLE_FILE)
)


@dataclass
class Answerability:
    """Logistic regression over standardised `FEATURES`."""

    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float
    threshold: float = 0.5  # on the probability
    # The article ids of the corpus it was fitted on. Its features (BM25 scales, how
    # much of a question the corpus knows) are those of that corpus: on a corpus that
    # is mostly other articles the decision falls back to the confidence threshold
    # until `qa tune --keep-weights` fits it there.
    articles: list[str] = field(default_factory=list)

    def applies_to(self, article_ids) -> bool:
        """True when at least `MIN_SHARED` of `article_ids` were in the fitted corpus
        (editing, adding or removing a few articles keeps it)."""
        ids = set(article_ids)
        return bool(ids) and len(ids.intersection(self.articles)) >= MIN_SHARED * len(ids)

    def probability(self, features: np.ndarray) -> float:
        return float(self.probabilities(features))

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """The probability of an answer for one feature vector, or for each row of a matrix."""
        z = (np.asarray(rows, dtype=np.float64) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.weights) + self.bias)))

    def answered(self, features: np.ndarray) -> bool:
        return self.probability(features) >= self.threshold

    def to_json(self) -> dict:
        return {"features": list(FEATURES), **asdict(self)}

    @classmethod
    def from_json(cls, data: dict | None) -> Answerability | None:
        """None for a missing entry, or one fitted on other features (refit it: `qa tune`)."""
        if not data or data.get("features") != list(FEATURES):
            return None
        return cls(data["mean"], data["scale"], data["weights"], data["bias"], data.get("threshold", 0.5),
                   data.get("articles", []))


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 50) -> Answerability:
    """Logistic regression by Newton's method, classes weighted to count the same
    (the training set has more answerable than unanswerable questions; the service
    should not learn that prior)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    sample_weight = np.where(y > 0.5, 0.5 / max(y.sum(), 1), 0.5 / max((1 - y).sum(), 1)) * len(y)
    w = np.zeros(z.shape[1])
    penalty = np.diag([l2] * (z.shape[1] - 1) + [0.0])  # the bias is not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        gradient = z.T @ (sample_weight * (p - y)) + penalty @ w
        hessian = (z * (sample_weight * p * (1 - p))[:, None]).T @ z + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return Answerability(mean.tolist(), scale.tolist(), w[:-1].tolist(), float(w[-1]))
