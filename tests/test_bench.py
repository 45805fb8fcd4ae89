"""Smoke runs of the benchmark machinery (the full runs are `scripts/bench.py`)."""

import numpy as np

from qa.quality.bench import _load, drive, format_load, synthetic


def test_load_generator_against_the_real_server(server):
    row = drive(server.port, ["/v1/ask?q=Passwort%20vergessen", "/v1/ask?q=where%20is%20my%20parcel"], 2, 1.0)
    assert row["requests"] > 5 and row["errors"] == 0
    assert 0 < row["p50_ms"] <= row["p99_ms"]
    paced = _load("127.0.0.1", server.port, ["/v1/ask?q=x"], 2, 1.0, rate=20)
    assert 15 <= paced["requests"] <= 21 and paced["errors"] == 0  # the offered rate, not more
    missing = _load("127.0.0.1", server.port, ["/nope"], 1, 0.5)
    assert missing["errors"] == missing["requests"] > 0  # a 404 counts as an error
    assert "max" in format_load([dict(row, rss_mb=1.0)], "t")


def test_synthetic_exact_vs_ivf():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(200, 32)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = base[:20] + 0.05 * rng.normal(size=(20, 32)).astype(np.float32)
    out = synthetic(base, queries.astype(np.float32), 5000)
    assert out["n"] == 5000 and out["ivf_nlist"] == 70
    recalls = [c["recall@10"] for c in out["ivf_curve"]]
    assert all(0 <= r <= 1 for r in recalls)
    assert recalls[-1] >= recalls[0]  # scanning more lists never finds fewer neighbours
