"""The weight-choosing procedure: it only looks at the questions it is given, never
makes its objective worse, and picks a threshold that separates unanswerable
questions."""

from dataclasses import replace

import pytest

from qa.quality.evaluate import Question, System
from qa.quality.tuning import GRID, Split, choose_threshold, leave_one_category_out, objective, tune
from qa.search import Searcher

from .conftest import write_article


@pytest.fixture(scope="module")
def small_system(tmp_path_factory, encoder):
    from qa.corpus import load_corpus
    from qa.index import build_index

    root = tmp_path_factory.mktemp("tuning") / "corpus"
    articles = {
        ("orders", "parcel"): (
            "Parcel tracking",
            "## Track your parcel\n\n1. Open Orders.\n2. Click the DHL number.\n",
        ),
        ("orders", "refund"): ("Refunds", "## Ask for a refund\n\n1. Open Orders.\n2. Choose Return.\n"),
        ("account", "password"): (
            "Password reset",
            "## Reset the password\n\n1. Click Forgot password.\n2. Enter the SMS code.\n",
        ),
        ("account", "email"): (
            "Change e-mail",
            "## New e-mail address\n\n1. Open Profile.\n2. Type the new address.\n",
        ),
    }
    for (category, article_id), (title, body) in articles.items():
        write_article(root, "en", article_id, body, title=title, category=category)
    searcher = Searcher(build_index(load_corpus(root), encoder), encoder)
    questions = [
        Question("1", "where is my package", "en", ["parcel"]),
        Question("2", "I want my money back", "en", ["refund"]),
        Question("3", "forgot my password", "en", ["password"]),
        Question("4", "update my email", "en", ["email"]),
        Question("5", "how do I bake sourdough bread", "en", []),
        Question("6", "best hiking trails in the alps", "en", []),
    ]
    return System("small", searcher, questions)


def test_categories_come_from_the_gold_article(small_system):
    assert [q.category for q in small_system.questions] == ["orders", "orders", "account", "account", "none", "none"]


def test_tune_never_worsens_the_objective_and_stays_on_the_grid(small_system):
    start = replace(small_system.searcher.ranking, lexical_weight=0.5, article_weight=0.0)
    splits = [Split(small_system)]
    tuned = tune(splits, start)
    assert objective(splits, tuned) >= objective(splits, start)
    for name, values in GRID.items():
        assert getattr(tuned, name) in values or getattr(tuned, name) == getattr(start, name)


def test_threshold_separates_answerable_from_unanswerable(small_system):
    ranking = small_system.searcher.ranking
    split = Split(small_system)
    threshold = choose_threshold([split], ranking)
    outcomes = small_system.run(replace(ranking, threshold=threshold))
    unanswerable = [o for o in outcomes if not o.question.gold]
    assert all(not o.answered for o in unanswerable)
    assert sum(o.answered for o in outcomes if o.question.gold) >= 3
    # Nothing to learn from without unanswerable questions: the threshold stays.
    only_answerable = Split(small_system, {"1", "2", "3", "4"})
    assert choose_threshold([only_answerable], ranking) == ranking.threshold


def test_leave_one_category_out_never_tunes_on_the_held_out_questions(small_system, monkeypatch):
    seen: list[set | None] = []
    original = System.run

    def recording_run(self, ranking=None, only=None):
        seen.append(None if only is None else set(only))
        return original(self, ranking, only)

    monkeypatch.setattr(System, "run", recording_run)
    results = leave_one_category_out(small_system, [])
    assert [r.category for r in results] == ["account", "orders"]
    assert [r.n for r in results] == [2, 2]
    held = {"account": {"3", "4"}, "orders": {"1", "2"}}
    # Calls alternate per category: many tuning calls, then one scoring call on the held-out ids.
    scoring_calls = [i for i, only in enumerate(seen) if only in held.values()]
    assert len(scoring_calls) == 2
    start = 0
    for result, end in zip(results, scoring_calls):
        assert seen[end] == held[result.category]
        assert all(only is not None and not (only & held[result.category]) for only in seen[start:end])
        start = end + 1
