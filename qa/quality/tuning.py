"""Choosing the ranking's weights by a procedure, not by hand.

`tune` runs a coordinate search over a small grid of each weight, scoring every
candidate on several question sets at once (the helpdesk questions and XQuAD: one
favours meaning, the other exact words, and a default must win on both), then picks
the answer threshold for the no-answer questions. `leave_one_category_out` checks how
well that generalises: for each category, the weights are chosen without its
questions and scored on them, which is how a new section of the portal looks on day
one. `qa tune` runs both and can write the choice to qa/ranking.json (`Ranking.save`),
where `Ranking.tuned` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..ranking import Ranking
from .evaluate import NO_ANSWER, System, metrics

# One row per weight of `qa.ranking.TUNED` but the threshold, which `choose_threshold` sets.
GRID: dict[str, list[float]] = {
    "lexical_weight": [0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5],
    "lexical_half": [0.0, 1.0, 2.0, 4.0, 8.0, 16.0],
    "phrase_weight": [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    "article_weight": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    "answer_half": [0.0, 1.0, 4.0, 16.0, 64.0],
    "late_weight": [0.0, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2],  # changes nothing without token states
}
PASSES = 4  # rounds of the coordinate search; it stops early once a round changes nothing
LOCO_PASSES = 2
LOCO_SAMPLE = 3  # leave-one-category-out tunes on every 3rd question of the other sets, for time


@dataclass
class Split:
    """The questions of one system that a step may look at (None: all of them)."""

    system: System
    only: set[str] | None = None

    def metrics(self, ranking: Ranking) -> dict:
        return metrics(self.system.run(ranking, self.only))


def _noanswer_f1(answered_scores: np.ndarray, unanswerable_scores: np.ndarray, threshold: float) -> float:
    """F1 of `answered: false` when every top score below `threshold` is unanswered."""
    tp = (unanswerable_scores < threshold).sum()
    predicted = tp + (answered_scores < threshold).sum()
    precision = tp / predicted if predicted else 0.0
    recall = tp / len(unanswerable_scores)
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _top_scores(split: Split, ranking: Ranking) -> tuple[list, np.ndarray, np.ndarray]:
    """Outcomes with nothing held back, and the confidence of answerable and of
    unanswerable questions."""
    outcomes = split.system.run(replace(ranking, threshold=-np.inf), split.only)
    answered = np.array([o.confidence for o in outcomes if o.question.gold])
    unanswerable = np.array([o.confidence for o in outcomes if not o.question.gold])
    return outcomes, answered, unanswerable


def _best_f1(answered: np.ndarray, unanswerable: np.ndarray) -> tuple[float, float]:
    """(best F1, threshold in the middle of the widest best interval) over the scores."""
    candidates = np.unique(np.concatenate([answered, unanswerable, [np.inf]]))
    f1 = np.array([_noanswer_f1(answered, unanswerable, t) for t in candidates])
    best = np.flatnonzero(f1 >= f1.max() - 1e-9)
    # Any threshold in (previous score, candidate] gives the same F1: take the middle of
    # the widest such gap, so that the threshold does not sit on one question's score.
    gaps = [(candidates[i] - (candidates[i - 1] if i else candidates[i] - 0.05), i) for i in best]
    _, i = max(gaps, key=lambda g: (np.isfinite(g[0]), g[0]))
    lower = candidates[i - 1] if i else candidates[i] - 0.05
    upper = candidates[i] if np.isfinite(candidates[i]) else lower + 0.05
    return float(f1.max()), round(float((lower + upper) / 2), 3)


def objective(splits: list[Split], ranking: Ranking) -> float:
    """Mean over the sets of their quality: (R@1 + MRR@10) / 2, R@1 being what members
    see and MRR breaking ties smoothly; for a set with unanswerable questions, the best
    F1 of `answered: false` any threshold reaches counts as a third term. Each set
    counts the same, however many questions it has."""
    scores = []
    for split in splits:
        outcomes, answered, unanswerable = _top_scores(split, ranking)
        m = metrics(outcomes)
        if not m.get("n"):
            continue
        terms = [m["R@1"], m["MRR@10"]]
        if len(unanswerable):
            terms.append(_best_f1(answered, unanswerable)[0])
        scores.append(float(np.mean(terms)))
    return float(np.mean(scores)) if scores else 0.0


def choose_threshold(splits: list[Split], ranking: Ranking) -> float:
    """The threshold that best separates questions the corpus answers from those it
    cannot (F1 of `answered: false`), on the sets that have unanswerable questions: a
    set without them (XQuAD) says nothing about where "no answer" starts. Unchanged
    when no set has any."""
    answered, unanswerable = [], []
    for split in splits:
        _, a, u = _top_scores(split, ranking)
        if len(u):
            answered.append(a)
            unanswerable.append(u)
    if not unanswerable:
        return ranking.threshold
    return _best_f1(np.concatenate(answered), np.concatenate(unanswerable))[1]


def tune(splits: list[Split], start: Ranking, progress=None, passes: int = PASSES) -> Ranking:
    """Coordinate search: each weight in turn takes the grid value that maximises the
    objective with the others held, for up to `passes` rounds; then the threshold."""
    best, best_score = start, objective(splits, start)
    for _ in range(passes):
        changed = False
        for name, values in GRID.items():
            for value in values:
                candidate = replace(best, **{name: value})
                score = objective(splits, candidate)
                if score > best_score + 1e-9:
                    best, best_score, changed = candidate, score, True
                if progress is not None:
                    progress.update(1)
        if not changed:
            break
    return replace(best, threshold=choose_threshold(splits, best))


def grid_steps(passes: int = PASSES) -> int:
    return passes * sum(len(v) for v in GRID.values())


@dataclass
class HeldOut:
    category: str
    n: int
    metrics: dict
    ranking: Ranking


def leave_one_category_out(main: System, others: list[System], progress=None) -> list[HeldOut]:
    """For each category of `main`'s questions: tune on its other categories (and the
    no-answer questions) plus every `LOCO_SAMPLE`-th question of `others`, score on the
    held-out one. The search starts from the class defaults, not from qa/ranking.json,
    whose weights have seen every category."""
    categories = sorted({q.category for q in main.questions} - {NO_ANSWER})
    sampled = [Split(s, {q.id for q in s.questions[::LOCO_SAMPLE]}) for s in others]
    start = replace(Ranking(), dense=main.searcher.ranking.dense, lexical=main.searcher.ranking.lexical)
    results = []
    for category in categories:
        held = {q.id for q in main.questions if q.category == category}
        train = [Split(main, {q.id for q in main.questions} - held)] + sampled
        ranking = tune(train, start, progress, LOCO_PASSES)
        m = Split(main, held).metrics(ranking)
        results.append(HeldOut(category, m["n"], m, ranking))
    return results


def format_loco(results: list[HeldOut], label: str, names: list[str]) -> str:
    """The leave-one-category-out table: one row per held-out category, the mean and
    the worst. `names`: the scored set first, then the sets that joined every tuning."""
    lines = [
        f"Leave-one-category-out, {label}: weights tuned without the category's {names[0]} questions"
        + (f" (plus {', '.join(names[1:])})" if names[1:] else "") + ", scored on them",
        f"{'category':<16}{'n':>5}{'R@1':>8}{'R@5':>8}{'MRR@10':>8}   weights chosen without it",
    ]
    for r in results:
        w = ", ".join(f"{k}={v:g}" for k, v in r.ranking.tuned_values().items())
        lines.append(f"{r.category:<16}{r.n:>5}{r.metrics['R@1']:>8.3f}{r.metrics['R@5']:>8.3f}"
                     f"{r.metrics['MRR@10']:>8.3f}   {w}")
    mean = {k: sum(r.metrics[k] for r in results) / len(results) for k in ("R@1", "R@5", "MRR@10")}
    worst = min(results, key=lambda r: r.metrics["R@1"])
    lines.append(
        f"{'mean':<16}{sum(r.n for r in results):>5}{mean['R@1']:>8.3f}{mean['R@5']:>8.3f}{mean['MRR@10']:>8.3f}"
    )
    lines.append(f"worst: {worst.category} {worst.metrics['R@1']:.3f}")
    return "\n".join(lines)


def loco_records(results: list[HeldOut]) -> list[dict]:
    """The same results as JSON-ready records."""
    return [{"category": r.category, **r.metrics, "weights": r.ranking.tuned_values()} for r in results]

