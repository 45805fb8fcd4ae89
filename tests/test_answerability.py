"""The no-answer decision: the logistic fit, its threshold procedure, the coverage
evidence it reads, and how its training examples are drawn."""

from dataclasses import replace

import numpy as np
import pytest

from qa.answerability import FEATURES, Answerability, fit
from qa.coverage import Coverage
from qa.quality.answerability import (
    Example,
    _without_phrasings,
    choose_threshold,
    corpus_examples,
    feature_ablation,
    negative_examples,
)

from .conftest import CORPUS


def test_fit_separates_what_is_separable_and_ignores_the_class_balance():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(1, 0.3, (900, 2)), rng.normal(-1, 0.3, (100, 2))])
    y = np.array([True] * 900 + [False] * 100)
    model = fit(x, y)
    assert model.probability([1.0, 1.0]) > 0.95 and model.probability([-1.0, -1.0]) < 0.05
    # Balanced classes: the point half-way is a coin flip, not "answerable" because most examples are.
    assert model.probability([0.0, 0.0]) == pytest.approx(0.5, abs=0.1)


def test_a_stored_model_is_refused_when_its_features_changed():
    model = Answerability([0.0] * len(FEATURES), [1.0] * len(FEATURES), [0.1] * len(FEATURES), 0.0, 0.3)
    data = model.to_json()
    assert Answerability.from_json(data) == model
    assert Answerability.from_json(dict(data, features=list(FEATURES)[:-1])) is None
    assert Answerability.from_json(None) is None


def test_the_ablation_finds_the_feature_that_carries_the_decision():
    rng = np.random.default_rng(1)
    y = np.array([True] * 300 + [False] * 100)
    x = rng.normal(0, 1, (len(y), len(FEATURES)))
    x[:, FEATURES.index("known")] += np.where(y, 1.5, -1.5)  # the only informative feature
    examples = [Example(f"q{n}", "en", bool(a), group=f"topic{n // 4}") for n, a in enumerate(y)]
    losses = feature_ablation(examples, x, y)
    rises = {name: loss - losses["all"] for name, loss in losses.items() if name != "all"}
    assert max(rises, key=rises.get) == "known" and rises["known"] > 0.2
    assert all(rise < 0.05 for name, rise in rises.items() if name != "known")  # noise is worth nothing


def test_the_threshold_follows_the_assumed_share_of_unanswerable_questions():
    answerable = np.array([True] * 100 + [False] * 100)
    p = np.concatenate([np.linspace(0.3, 1.0, 100), np.linspace(0.0, 0.7, 100)])
    rare, common = choose_threshold(p, answerable, prior=0.05), choose_threshold(p, answerable, prior=0.5)
    assert rare < common  # when few questions lack an answer, say "no answer" only when sure


def test_coverage_names_the_word_the_best_article_lacks(searcher):
    coverage = Coverage(searcher.index)
    article = next(n for n, a in enumerate(searcher.index.articles) if (a.id, a.lang) == ("acc-password-reset", "en"))
    own = coverage.cover("reset my password", "en", article)
    other = coverage.cover("reset my Gmail password", "en", article)
    assert own.covered == 1.0 and own.known == 1.0
    assert other.covered < 1.0 and other.missing_rarest > own.missing_rarest + 0.3
    gibberish = coverage.cover("qwertzuiop asdfghjkl", "en", article)
    assert gibberish.known == 0.0 and gibberish.words == 2


def test_a_name_used_in_every_language_does_not_count_as_topic_words(searcher):
    coverage = Coverage(searcher.index)
    # "Atomy" occurs in Russian, German and English texts alike: covering it says little.
    index = searcher.index
    english = [n for n, s in enumerate(index.sections) if s.lang == "en" and "Atomy" in s.plain]
    article = int(index.section_article[english[0]])
    cover = coverage.cover("Atomy", "en", article)
    assert cover.covered == 1.0 and cover.covered_rare == 0.0


def test_training_examples_come_from_the_corpus_and_the_written_negatives(searcher):
    from qa.corpus import Corpus

    index = searcher.index
    articles = [replace(a, sections=[s for s, n in zip(index.sections, index.section_article) if n == a_no])
                for a_no, a in enumerate(index.articles)]
    corpus = Corpus(articles, [])
    examples = corpus_examples(corpus)
    assert {e.source for e in examples} == {"phrasing", "heading"} and all(e.answerable for e in examples)
    assert sum(e.source == "phrasing" for e in examples) == sum(len(a.questions) for a in corpus.articles)
    negatives = negative_examples([("Who wrote Faust?", "en", "xq-faust")] * 3)
    assert sum(e.source == "off-domain" for e in negatives) == 3 and len(negatives) > 300
    assert not any(e.answerable for e in negatives)
    held = {"acc-password-reset"}
    stripped = _without_phrasings(corpus, held)
    assert all(not a.questions for a in stripped.articles if a.id in held)
    assert all(a.questions == b.questions for a, b in zip(stripped.articles, corpus.articles) if a.id not in held)


# -- the written unanswerable questions as evidence -------------------------------------------
def test_the_index_carries_the_written_unanswerable_questions_through_save_and_load(searcher):
    from qa.answerability import unanswerable_questions

    bank = searcher.index.unanswerable  # loaded from disk by the session fixture
    assert bank.shape == (len(unanswerable_questions()), searcher.encoder.dimension)
    assert np.allclose(np.linalg.norm(bank, axis=1), 1.0, atol=1e-3)  # query vectors, not centred


def test_a_question_near_a_written_unanswerable_one_says_so_and_a_help_question_does_not(searcher):
    near = searcher.signals("are you a bot or a real person?").near_unanswerable  # "are you a bot?" is written
    far = searcher.signals("Wie ändere ich meine Bankverbindung für Auszahlungen?").near_unanswerable
    assert near > 0.7 and far < near - 0.2
    features = searcher.search("are you a bot or a real person?").features
    assert features[list(FEATURES).index("near_unanswerable")] == pytest.approx(near)
    assert not searcher.search("are you a bot or a real person?").answered


def test_closeness_to_an_unanswerable_question_alone_does_not_decide(searcher):
    # "how to reset my Gmail password" is written as unanswerable; resetting the portal's is not
    result = searcher.search("how do I reset my password")
    assert searcher.signals("how do I reset my password").near_unanswerable > 0.7
    assert result.answered and result.hits[0].section.article_id == "acc-password-reset"


def test_a_written_negative_is_asked_without_its_own_vector(searcher, encoder):
    from qa.answerability import unanswerable_questions
    from qa.corpus import load_corpus
    from qa.quality.answerability import feature_matrix

    written = [Example(row["q"], row["lang"], False, source="written") for row in unanswerable_questions()]
    picked = written[:5]  # English: searched as written (a Latin-script Russian one would be transliterated)
    x = feature_matrix(load_corpus(CORPUS), encoder, searcher.ranking, written)[:5]
    near = x[:, list(FEATURES).index("near_unanswerable")]
    own = [searcher.signals(e.text, e.lang).near_unanswerable for e in picked]
    assert np.allclose(own, 1.0, atol=1e-3)  # in the full index each finds itself
    assert (near < 0.999).all()  # in the fitting procedure none does


def test_the_fitted_decision_is_used_only_on_the_corpus_it_was_fitted_on(searcher, small_corpus, encoder):
    from qa.corpus import load_corpus
    from qa.index import build_index
    from qa.search import Searcher

    model = searcher.ranking.answer_model
    ids = set(searcher.article_langs)
    assert model.applies_to(ids) and searcher.search("Passwort vergessen").answer_probability is not None
    assert model.applies_to(set(list(ids)[: len(ids) // 2 + 1]) | {"new-article"})  # edits keep it
    assert not model.applies_to({"kaspi", "new-article", "other"}) and not model.applies_to(set())
    other = Searcher(build_index(load_corpus(small_corpus), encoder), encoder)  # an operator's own articles
    result = other.search("how do I reset my password")
    assert result.answer_probability is None  # the confidence threshold decides there
    assert result.answered == (result.confidence >= other.ranking.threshold)


def test_a_written_negative_is_asked_without_its_translations(searcher, encoder):
    from qa.answerability import unanswerable_questions
    from qa.corpus import load_corpus
    from qa.quality.answerability import feature_matrix, topic_folds

    rows = unanswerable_questions()
    written = [Example(r["q"], r["lang"], False, source="written", group=r.get("topic", "")) for r in rows]
    folds = topic_folds(written)
    hemohim = [n for n, e in enumerate(written) if e.group == "How much does HemoHIM cost?"]
    assert len(hemohim) >= 3 and len({folds[n] for n in hemohim}) == 1  # en, de, ru (and Latin) together
    assert len(set(folds)) == 5 and not all(e.group for e in written)  # a lone question is its own topic

    german = next(n for n in hemohim if written[n].lang == "de")
    english = next(n for n in hemohim if written[n].lang == "en")
    to_english = float(searcher.encoder.encode_queries([written[german].text])[0]
                       @ searcher.index.unanswerable[english])
    x = feature_matrix(load_corpus(CORPUS), encoder, searcher.ranking, written)
    near = x[german, list(FEATURES).index("near_unanswerable")]
    # With only its own vector left out, its English version would be the nearest.
    assert to_english > 0.7 and near < to_english - 0.1
