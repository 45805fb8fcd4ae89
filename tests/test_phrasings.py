"""Member phrasings (`questions:`) and operator synonyms in ranking, on a real index."""

from dataclasses import replace

import pytest

from qa.corpus import load_corpus
from qa.index import ROW_PHRASING, build_index
from qa.search import Searcher

from .conftest import write_article

KASPI = """Payouts to a Kazakh bank account.

## Before you start

You need an account at a Kazakh bank in your own name.

## Set up the payout

1. Open My Office → Payouts.
2. Enter the 20-character account number.
3. Confirm with the SMS code.
"""


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("phrasings") / "corpus"
    write_article(
        root, "en", "pay-kz", KASPI, title="Payouts in Kazakhstan", category="payouts",
        extra='questions:\n  - "bonus onto my gold card, how?"\n  - "withdraw to zolotaya kartochka"\n',
    )
    write_article(root, "en", "pay-general", "## Payout dates\n\nPayouts are made every two weeks.\n",
                  title="Payout schedule", category="payouts")
    write_article(root, "en", "orders", "## Track a parcel\n\n1. Open Orders.\n2. Click the tracking number.\n",
                  title="Tracking orders", category="orders")
    write_article(root, "de", "gewerbe", "## Anmelden\n\n1. Als Einzelunternehmer beim Gewerbeamt anmelden.\n",
                  title="Gewerbe anmelden", category="verification")
    return root


@pytest.fixture(scope="module")
def searchers(corpus_dir, encoder):
    corpus = load_corpus(corpus_dir)
    return (
        Searcher(build_index(corpus, encoder), encoder),
        Searcher(build_index(corpus, encoder, phrasings=False), encoder),
    )


def test_phrasings_are_indexed_and_mapped_to_the_steps_section(searchers):
    with_phrasings, without = searchers
    index = with_phrasings.index
    assert index.manifest["phrasings"] == 2 and without.index.manifest["phrasings"] == 0
    phrasing_rows = index.rows[index.row_kind == ROW_PHRASING]
    assert {index.sections[s].title for s in phrasing_rows} == {"Set up the payout"}


def test_a_phrasing_only_match_finds_its_article_and_opens_the_steps(searchers):
    with_phrasings, without = searchers
    question = "how do I get my bonus on my gold card"
    hit = with_phrasings.search(question).hits[0]
    assert (hit.article.id, hit.section.title) == ("pay-kz", "Set up the payout")
    assert without.search(question).hits[0].score < hit.score


def test_phrasings_count_on_the_lexical_side(searchers):
    with_phrasings, without = searchers
    bm25 = replace(with_phrasings.ranking.with_retrieval("bm25"))
    result = with_phrasings.rank("zolotaya", with_phrasings.signals("zolotaya", "en"), ranking=bm25)
    assert result.hits and result.hits[0].article.id == "pay-kz"
    assert not without.rank("zolotaya", without.signals("zolotaya", "en"), ranking=bm25).hits


def test_a_clearly_better_section_match_elsewhere_still_wins(searchers):
    with_phrasings, _ = searchers
    hit = with_phrasings.search("click the tracking number of my parcel in Orders").hits[0]
    assert hit.article.id == "orders"


def test_synonyms_from_the_corpus_folder_reach_the_lexical_search(corpus_dir, encoder, tmp_path):
    import shutil

    plain = load_corpus(corpus_dir)
    assert plain.synonyms is not None and len(plain.synonyms) == 0
    with_file = shutil.copytree(corpus_dir, tmp_path / "corpus")
    (with_file / "synonyms.yaml").write_text("- [sole proprietor, Einzelunternehmer]\n", encoding="utf-8")
    searcher = Searcher(build_index(load_corpus(with_file), encoder), encoder)
    bm25 = searcher.ranking.with_retrieval("bm25")
    result = searcher.rank("sole proprietor", searcher.signals("sole proprietor", "en"), ranking=bm25)
    assert result.hits and result.hits[0].article.id == "gewerbe"
    baseline = Searcher(build_index(plain, encoder), encoder)
    assert not baseline.rank("sole proprietor", baseline.signals("sole proprietor", "en"), ranking=bm25).hits


def test_a_bad_synonyms_file_is_reported_with_its_line(corpus_dir, tmp_path):
    import shutil

    folder = shutil.copytree(corpus_dir, tmp_path / "bad")
    (folder / "synonyms.yaml").write_text("- [ИП, IP]\n- [lonely]\n", encoding="utf-8")
    corpus = load_corpus(folder)
    assert len(corpus.articles) == 4
    assert [str(e).split(": ")[0] for e in corpus.errors] == [f"{folder / 'synonyms.yaml'}:2"]
