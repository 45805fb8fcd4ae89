"""Batching the encoder across concurrent requests (qa/api/batching.py) and spreading
connections over workers (qa/ops/server.py): the same answers, never another
request's, no wait when idle; both workers take connections."""

import asyncio
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from qa.api.batching import QueryBatcher
from qa.config import ROOT
from qa.encoder.queries import QueryVectors
from qa.quality.bench import worker_requests
from qa.quality.sets import DEV_SET
from tests.conftest import Server

QUESTIONS = [json.loads(line)["q"] for line in DEV_SET.read_text(encoding="utf-8").splitlines()[:40]]


def test_batched_vectors_equal_single_ones(encoder):
    vectors = QueryVectors(encoder)
    batched = np.vstack([v for v, _ in vectors.many(QUESTIONS[:8])])
    single = np.vstack([vectors.get(q)[0] for q in QUESTIONS[:8]])
    assert batched.shape == (8, encoder.dimension)
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_cache_serves_repeats_without_the_model(encoder):
    vectors = QueryVectors(encoder, cache_size=2)
    first = vectors.get("Passwort vergessen")[0]
    assert vectors.cached("Passwort vergessen")[0] is first
    vectors.many(["a", "b"])  # two newer texts push the oldest out
    assert vectors.cached("Passwort vergessen") is None
    assert vectors.cached("b") is not None


def test_concurrent_requests_get_their_own_vectors(encoder):
    """40 distinct questions at once through one batcher: batches form, and each
    question's vector is its own (closest to its single encoding among all 40)."""
    single = np.vstack([encoder.encode_queries([q]) for q in QUESTIONS])
    batcher = QueryBatcher(max_batch=8)
    vectors = QueryVectors(encoder)

    async def ask_all():
        return await asyncio.gather(*(batcher.encode(vectors, q) for q in QUESTIONS))

    got = np.vstack([v for v, _ in asyncio.run(ask_all())])
    assert max(batcher.sizes) == 8 and sum(n * c for n, c in batcher.sizes.items()) == len(QUESTIONS)
    assert (np.argmax(got @ single.T, axis=1) == np.arange(len(QUESTIONS))).all()
    np.testing.assert_allclose(got, single, atol=1e-5)


def test_idle_worker_does_not_wait(encoder):
    """A lone question is encoded at once, as a batch of 1: with a wait bound of 30 s,
    waiting for company would take 30 s."""
    batcher = QueryBatcher(max_batch=8, max_wait=30.0)
    vectors = QueryVectors(encoder)
    started = time.perf_counter()
    vector, _ = asyncio.run(batcher.encode(vectors, "Passwort vergessen"))
    assert time.perf_counter() - started < 10
    assert dict(batcher.sizes) == {1: 1}
    np.testing.assert_allclose(vector, encoder.encode_queries(["Passwort vergessen"]), atol=1e-5)


def test_a_failing_batch_fails_each_request_and_the_next_batch_works(encoder):
    class Broken(QueryVectors):
        def _encode(self, texts):
            raise RuntimeError("model fault")

    batcher = QueryBatcher(max_batch=4)

    async def run():
        broken = await asyncio.gather(*(batcher.encode(Broken(encoder), q) for q in QUESTIONS[:3]),
                                      return_exceptions=True)
        fine = await batcher.encode(QueryVectors(encoder), QUESTIONS[0])
        return broken, fine

    broken, fine = asyncio.run(asyncio.wait_for(run(), 60))
    assert all(isinstance(e, RuntimeError) for e in broken)
    assert fine[0].shape == (1, encoder.dimension)


@pytest.fixture(scope="module")
def two_workers(sample_index_dir, tmp_path_factory):
    metrics = tmp_path_factory.mktemp("metrics")
    server = Server(sample_index_dir, {"HELPDESK_QA_QUERY_CACHE": "0", "HELPDESK_QA_EVENTS": "false",
                                       "PROMETHEUS_MULTIPROC_DIR": str(metrics)}, workers=2)
    yield server, metrics
    server.stop()


def test_concurrent_http_answers_match_sequential_ones(two_workers):
    """Many clients at once on two batching workers: every answer is the one the same
    question gets alone, and both workers took connections (SO_REUSEPORT)."""
    server, metrics = two_workers

    def top(client: httpx.Client, q: str) -> tuple[str, list[str], list[float]]:
        body = client.get("/v1/ask", params={"q": q, "limit": 3}).json()
        return (body["query"], [f"{r['article_id']}#{r['anchor']}" for r in body["results"]],
                [r["score"] for r in body["results"]])

    with httpx.Client(base_url=server.url, timeout=60) as client:
        alone = {q: top(client, q) for q in QUESTIONS}

    def one_client(n: int) -> list[tuple[str, tuple]]:
        with httpx.Client(base_url=server.url, timeout=60) as client:  # its own connection
            return [(q, top(client, q)) for q in QUESTIONS[n::4] + QUESTIONS[: n + 1]]

    before = worker_requests(metrics)
    with ThreadPoolExecutor(16) as pool:
        answers = [a for part in pool.map(one_client, range(16)) for a in part]
    for q, (query, sections, scores) in answers:
        assert (query, sections) == alone[q][:2], q
        np.testing.assert_allclose(scores, alone[q][2], atol=1e-4)  # batched vectors differ in the 7th digit
    after = worker_requests(metrics)
    served = [after[w] - before.get(w, 0) for w in after]
    assert len([n for n in served if n > 0]) == 2, served  # all 16 connections on one worker: p = 2^-15


def test_second_server_on_a_taken_port_fails_instead_of_sharing_it(two_workers):
    server, _ = two_workers
    done = subprocess.run([sys.executable, "-m", "qa.cli", "serve", "--port", str(server.port), "--workers", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert "cannot listen" in done.stderr
    with socket.create_connection(("127.0.0.1", server.port), timeout=5):
        pass  # the first server still listens
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200

