"""Fitting the no-answer decision (`qa.answerability`) by a procedure.

Training examples never come from a set the decision is reported on:
- answerable: the corpus's own member phrasings (`questions:`) and section headings,
  each labelled with its article. A phrasing is asked against an index built without
  the phrasings of its article (folds by article), so that it cannot simply find
  itself: that is how a member's new wording of a known topic looks.
- unanswerable: questions written for this purpose (qa/data/unanswerable.jsonl,
  separate from every test set) and off-domain questions (XQuAD's Wikipedia questions,
  asked of the help-desk corpus). The index holds the written ones too, as evidence
  ("near_unanswerable"), so each of them is asked against an index that lacks its fold
  of them: otherwise it would find itself.

Folds keep a topic together. Many written questions are one question in three
languages ("How much does HemoHIM cost?", "Was kostet das HemoHIM-Set?", "сколько стоит
Хемохим", marked with a shared `topic`), and a multilingual encoder puts translations
close together. A fold that held out the English one but kept its German one would let
it find its own topic at cosine ~0.8, which a member's new question never does; the
decision would learn to trust closeness to the written questions more than it should.
The same holds for the threshold's out-of-fold probabilities: phrasings and headings
are grouped by article, written questions by topic, XQuAD's by Wikipedia article.

The decision threshold assumes that `PRIOR` of the questions members ask have no
answer (a product assumption, not a fitted value) and maximises the F1 of "no
answer" on out-of-fold predictions, reweighted to that prior.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import numpy as np

from ..answerability import FEATURES, Answerability, fit, unanswerable_questions
from ..corpus import Corpus
from ..encoder import Encoder
from ..index import EmbeddingCache, build_index
from ..ranking import Ranking
from ..search import Searcher

PRIOR = 0.15  # share of member questions without an answer the threshold is set for
FOLDS = 5
XQUAD_PER_LANGUAGE = 300


@dataclass
class Example:
    text: str
    lang: str
    answerable: bool
    category: str = ""  # the article's, for answerable examples
    source: str = ""  # phrasing, heading, written, off-domain
    group: str = ""  # what must share a fold: the article, the written topic, the XQuAD article

    @property
    def fold_key(self) -> str:
        return self.group or self.text


def corpus_examples(corpus: Corpus) -> list[Example]:
    """Every phrasing and every section heading (not the intro) as an answerable question."""
    out = []
    for a in corpus.articles:
        out.extend(Example(q, a.lang, True, a.category, "phrasing", a.id) for q in a.questions)
        out.extend(Example(s.title, a.lang, True, a.category, "heading", a.id) for s in a.sections if s.position > 0)
    return out


def negative_examples(off_domain: list[tuple[str, str, str]] = (), seed: int = 0) -> list[Example]:
    """The written unanswerable questions, and up to XQUAD_PER_LANGUAGE off-domain ones
    per language (`off_domain`: text, language, group)."""
    out = [Example(row["q"], row["lang"], False, source="written", group=row.get("topic", ""))
           for row in unanswerable_questions()]
    rng = random.Random(seed)
    by_lang: dict[str, list[tuple[str, str]]] = {}
    for text, lang, group in off_domain:
        by_lang.setdefault(lang, []).append((text, group))
    for lang, rows in sorted(by_lang.items()):
        picked = rng.sample(rows, min(XQUAD_PER_LANGUAGE, len(rows)))
        out.extend(Example(t, lang, False, source="off-domain", group=g) for t, g in picked)
    return out


def topic_folds(examples: list[Example], folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Each example's fold, every `fold_key` wholly in one fold (the module docstring says why)."""
    keys = sorted({e.fold_key for e in examples})
    random.Random(seed).shuffle(keys)
    fold_of = {k: n % folds for n, k in enumerate(keys)}
    return np.array([fold_of[e.fold_key] for e in examples], dtype=int)


def _without_phrasings(corpus: Corpus, article_ids: set[str]) -> Corpus:
    articles = [replace(a, questions=[] if a.id in article_ids else a.questions) for a in corpus.articles]
    return replace(corpus, articles=articles)


def feature_matrix(corpus: Corpus, encoder: Encoder, ranking: Ranking, examples: list[Example],
                   cache: EmbeddingCache | None = None) -> np.ndarray:
    """The decision's features for every example, each asked the way the module docstring says."""
    plain = replace(ranking, answer_model=None)
    rows: dict[int, np.ndarray] = {}
    full = Searcher(build_index(corpus, encoder, cache), encoder, plain)
    phrasing_ids = sorted({a.id for a in corpus.articles if a.questions})
    folds = [set(phrasing_ids[k::FOLDS]) for k in range(FOLDS)]
    article_of = {q: a.id for a in corpus.articles for q in a.questions}
    for fold in folds:
        mine = [n for n, e in enumerate(examples) if e.source == "phrasing" and article_of.get(e.text) in fold]
        if not mine:
            continue
        searcher = Searcher(build_index(_without_phrasings(corpus, fold), encoder, cache), encoder, plain)
        for n in mine:
            rows[n] = _features(searcher, examples[n])
    # The written negatives' own vectors are in the index (in the order of the file, as
    # `examples` lists them): each topic fold is asked without the whole fold's vectors.
    written = [n for n, e in enumerate(examples) if e.source == "written"]
    written_fold = topic_folds([examples[n] for n in written])
    for k in range(FOLDS):
        mine = [n for n, f in zip(written, written_fold) if f == k]
        keep = np.flatnonzero(written_fold != k)
        searcher = Searcher(replace(full.index, unanswerable=full.index.unanswerable[keep]), encoder, plain)
        for n in mine:
            rows[n] = _features(searcher, examples[n])
    for n, e in enumerate(examples):
        if n not in rows:
            rows[n] = _features(full, e)
    return np.stack([rows[n] for n in range(len(examples))])


def _features(searcher: Searcher, example: Example) -> np.ndarray:
    features = searcher.search(example.text, lang=example.lang).features
    return features if features is not None else np.zeros(len(FEATURES))  # nothing found at all


def choose_threshold(probabilities: np.ndarray, answerable: np.ndarray, prior: float = PRIOR) -> float:
    """The probability threshold with the best F1 of "no answer", counting unanswerable
    examples as `prior` of all questions (whatever their share in the training set)."""
    positives, negatives = probabilities[answerable], probabilities[~answerable]
    best, best_f1 = 0.5, -1.0
    for t in np.unique(np.concatenate([probabilities, [0.5]])):
        tp = prior * (negatives < t).mean()  # unanswerable, said so
        fp = (1 - prior) * (positives < t).mean()  # answerable, said "no answer"
        fn = prior * (negatives >= t).mean()
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f1 > best_f1 + 1e-12:
            best, best_f1 = float(t), f1
    return best


def fit_with_threshold(x: np.ndarray, answerable: np.ndarray, folds: np.ndarray) -> Answerability:
    """Fit on everything; the threshold from out-of-fold probabilities, `folds` giving
    each row's fold (`topic_folds`)."""
    model = fit(x, answerable)
    model.threshold = round(choose_threshold(out_of_fold(x, answerable, folds), answerable), 4)
    return model


def out_of_fold(x: np.ndarray, answerable: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each row's probability from a fit without its fold."""
    p = np.zeros(len(x))
    for k in range(FOLDS):
        held = folds == k
        if held.any() and (~held).any():
            p[held] = fit(x[~held], answerable[~held]).probabilities(x[held])
    return p


def out_of_fold_loss(x: np.ndarray, answerable: np.ndarray, folds: np.ndarray) -> float:
    """The class-balanced log loss of `out_of_fold` probabilities: how well the features
    tell the training examples apart on topics the fit did not see."""
    p = np.clip(out_of_fold(x, answerable, folds), 1e-6, 1 - 1e-6)
    return float(-0.5 * (np.log(p[answerable]).mean() + np.log(1 - p[~answerable]).mean()))


def feature_ablation(examples: list[Example], x: np.ndarray, answerable: np.ndarray) -> dict[str, float]:
    """`out_of_fold_loss` with every feature ("all") and without each one: the procedure
    a feature is kept by (it must lower the loss), and what each one is worth."""
    folds = topic_folds(examples)
    out = {"all": out_of_fold_loss(x, answerable, folds)}
    for n, name in enumerate(FEATURES):
        out[name] = out_of_fold_loss(np.delete(x, n, axis=1), answerable, folds)
    return out


def format_ablation(losses: dict[str, float]) -> str:
    worth = sorted(((loss - losses["all"], name) for name, loss in losses.items() if name != "all"), reverse=True)
    return (f"out-of-fold log loss on the training examples {losses['all']:.4f}; without each feature, "
            "the loss rises by:\n" + "\n".join(f"  {name:<18}{rise:+.4f}" for rise, name in worth))


def fit_for_corpus(corpus: Corpus, examples: list[Example], x: np.ndarray, answerable: np.ndarray) -> Answerability:
    """`fit_with_threshold` over topic folds, marked with the corpus's article ids
    (`Answerability.applies_to`)."""
    model = fit_with_threshold(x, answerable, topic_folds(examples))
    model.articles = sorted({a.id for a in corpus.articles})
    return model


def training_set(corpus: Corpus, encoder: Encoder, ranking: Ranking, off_domain: list[tuple[str, str, str]],
                 cache: EmbeddingCache | None = None) -> tuple[list[Example], np.ndarray, np.ndarray]:
    """The examples, their features and labels (see the module docstring)."""
    examples = corpus_examples(corpus) + negative_examples(off_domain)
    x = feature_matrix(corpus, encoder, ranking, examples, cache)
    return examples, x, np.array([e.answerable for e in examples])


def leave_category_out(examples: list[Example], x: np.ndarray, y: np.ndarray) -> dict[str, Answerability]:
    """One decision per category, fitted without that category's answerable examples:
    how the decision treats a new section of the portal on its first day."""
    out = {}
    for category in sorted({e.category for e in examples if e.category}):
        keep = np.array([not (e.answerable and e.category == category) for e in examples])
        kept = [e for e, k in zip(examples, keep) if k]
        out[category] = fit_with_threshold(x[keep], y[keep], topic_folds(kept))
    return out


def format_leave_category_out(models: dict[str, Answerability], outcomes_with) -> str:
    """How each category's questions fare under the decision fitted without them.
    `outcomes_with(model)` runs a labelled set (`qa.quality.evaluate.Outcome`s) under
    a decision. Per category: the share of its answerable questions still answered,
    and "no answer" precision and recall on the set's unanswerable questions."""
    lines = ["No-answer decision fitted without each category's phrasings and headings, scored on that category",
             f"{'category':<16}{'n':>5}{'answered':>10}{'NA-P':>8}{'NA-R':>8}"]
    answered_share = []
    for category, model in models.items():
        outcomes = outcomes_with(model)
        mine = [o for o in outcomes if o.question.gold and o.question.category == category]
        if not mine:
            continue
        share = sum(o.answered for o in mine) / len(mine)
        answered_share.append((share, category))
        said_none = [o for o in outcomes if not o.answered]
        correct = sum(1 for o in said_none if not o.question.gold)
        unanswerable = sum(1 for o in outcomes if not o.question.gold)
        p = correct / len(said_none) if said_none else 0.0
        r = correct / unanswerable if unanswerable else 0.0
        lines.append(f"{category:<16}{len(mine):>5}{share:>10.3f}{p:>8.2f}{r:>8.2f}")
    if answered_share:
        worst = min(answered_share)
        lines.append(f"mean answered {sum(s for s, _ in answered_share) / len(answered_share):.3f}, "
                     f"worst {worst[1]} {worst[0]:.3f}")
    return "\n".join(lines)
