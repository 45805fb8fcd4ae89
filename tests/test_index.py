"""Building the index in memory: what is embedded for a section, phrasings as query
rows mapped to a section of their own article, the per-language centring, the
embedding cache, and that the same corpus always gives the same vectors. The artifact
on disk: tests/test_artifact.py."""

import json

import numpy as np

from qa.artifact import current_build
from qa.corpus import load_corpus
from qa.index import (
    MIN_ROWS_FOR_MEAN,
    ROW_ARTICLE,
    ROW_PHRASING,
    ROW_SECTION,
    build_index,
    chunk_words,
    passage_texts,
)
from qa.ingest import ingest

from .conftest import CORPUS, SAMPLE_ARTICLES, write_article


def test_long_section_is_embedded_in_overlapping_chunks_but_stored_whole(tmp_path, encoder):
    words = [f"w{i}" for i in range(5000)]
    chunks = chunk_words(" ".join(words), 120)
    assert len(chunks) > 40
    assert chunks[0].split()[-30:] == chunks[1].split()[:30]  # overlap
    assert chunks[-1].split()[-1] == "w4999"
    folder = tmp_path / "c"
    write_article(folder, "en", "long", "## Long\n\n" + " ".join(words) + "\n")
    built = build_index(load_corpus(folder), encoder)
    long_rows = (built.rows == 0).sum()
    assert long_rows > 40 and len(built.sections) == 1
    assert built.sections[0].plain.split() == words


def test_second_ingest_reuses_cached_embeddings(small_corpus, tmp_path, encoder):
    first = ingest(small_corpus, tmp_path / "idx", encoder)
    assert first.index.manifest["embedded"] == first.index.manifest["vectors"] > 0
    second = ingest(small_corpus, tmp_path / "idx", encoder)
    assert second.index.manifest["embedded"] == 0
    write_article(small_corpus, "en", "new", "## New\n\nNew text.\n", title="New")
    third = ingest(small_corpus, tmp_path / "idx", encoder)
    assert 0 < third.index.manifest["embedded"] < third.index.manifest["vectors"]


def test_whole_sample_corpus(sample_index_dir):
    m = json.loads((current_build(sample_index_dir) / "manifest.json").read_text())
    files = [p for p in CORPUS.rglob("*.md") if p.name != "README.md"]
    assert m["articles"] == len(files) == SAMPLE_ARTICLES
    assert m["languages"]["ru"]["articles"] == len([p for p in files if p.parts[-3] == "ru"])
    assert m["phrasings"] == sum(len(a.questions) for a in load_corpus(CORPUS).articles) > 0
    assert m["sections"] == sum(v["sections"] for v in m["languages"].values())


def test_the_intro_carries_the_article_level_rows(tmp_path, encoder):
    folder = tmp_path / "c"
    write_article(folder, "en", "pw", "Forgot it? Reset it.\n\n## Reset\n\n1. Click.\n", title="Password",
                  extra="tags: [login, office]\n")
    article = load_corpus(folder).articles[0]
    intro, steps = article.sections
    assert passage_texts(article, intro, 120) == [
        ("Password\nForgot it? Reset it.", False), ("Password", True), ("Password. login, office", True)]
    assert passage_texts(article, steps, 120) == [("Password. Reset\nClick.", False), ("Password. Reset", False)]
    built = build_index(load_corpus(folder), encoder)
    assert built.row_kind.tolist() == [ROW_SECTION, ROW_ARTICLE, ROW_ARTICLE, ROW_SECTION, ROW_SECTION]


def test_phrasings_are_query_rows_mapped_to_a_section_of_their_own_article(small_corpus, encoder):
    write_article(small_corpus, "en", "parcel", "Intro.\n\n## Where it is\n\n1. Open Orders.\n2. Click Track.\n",
                  title="Parcel", extra='questions:\n  - "where is my parcel"\n  - "tracking number missing"\n')
    built = build_index(load_corpus(small_corpus), encoder)
    phrasing_rows = np.flatnonzero(built.row_kind == ROW_PHRASING)
    assert len(phrasing_rows) == built.manifest["phrasings"] == 2
    mapped = [built.sections[built.rows[r]] for r in phrasing_rows]
    assert [(s.article_id, s.title) for s in mapped] == [("parcel", "Where it is")] * 2  # the steps, not the intro
    without = build_index(load_corpus(small_corpus), encoder, phrasings=False)
    assert not (without.row_kind == ROW_PHRASING).any() and without.manifest["phrasings"] == 0


def test_a_language_is_centred_only_with_enough_rows(tmp_path, encoder):
    folder = tmp_path / "c"
    for n in range(MIN_ROWS_FOR_MEAN):  # each article: an intro row and a title row
        write_article(folder, "de", f"a{n}", f"Text Nummer {n}.\n", title=f"Titel {n}")
    write_article(folder, "en", "one", "Only one text.\n", title="One")
    built = build_index(load_corpus(folder), encoder)
    assert np.linalg.norm(built.means["de"]) > 0.1
    assert not built.means["en"].any()  # too few rows: the mean would be their meaning
    vectors = built.faiss_index.reconstruct_n(0, built.faiss_index.ntotal)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_the_same_corpus_gives_the_same_vectors(small_corpus, tmp_path, encoder):
    first = build_index(load_corpus(small_corpus), encoder)
    second = build_index(load_corpus(small_corpus), encoder)
    n = first.faiss_index.ntotal
    assert np.array_equal(first.faiss_index.reconstruct_n(0, n), second.faiss_index.reconstruct_n(0, n))
    assert np.array_equal(first.rows, second.rows) and first.manifest["corpus_hash"] == second.manifest["corpus_hash"]
