"""Speed benchmarks: the real server under concurrent load, an in-process breakdown
per ranking step, and FAISS exact vs approximate search at synthetic scale.

The load generator runs in its own process and speaks minimal HTTP/1.1 over
keep-alive sockets with asyncio: a general-purpose client library would spend more
CPU than the server on this 2-core machine and measure itself instead.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..config import ROOT
from ..errors import StartupError


# -- load generation (runs in a child process) ---------------------------------------
async def _get(reader, writer, host: str, path: str) -> int:
    """One keep-alive GET; returns the status once the whole body has arrived."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def _client(host: str, port: int, paths: list[str], offset: int, stop_at: float, latencies: list,
                  errors: list, start: float | None = None, interval: float | None = None):
    """Closed loop without `interval`: the next request goes when the last answer is
    in. Open loop with it: request n is due at start + n * interval whether or not
    earlier ones were slow, and its latency counts from when it was due (no
    coordinated omission)."""
    reader, writer = await asyncio.open_connection(host, port)
    n = 0
    try:
        while True:
            due = time.perf_counter() if interval is None else start + n * interval
            if due >= stop_at:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status = await _get(reader, writer, host, paths[(offset + n) % len(paths)])
            n += 1
            latencies.append(time.perf_counter() - due)
            if status != 200:
                errors.append(status)
    except (OSError, asyncio.IncompleteReadError) as e:
        errors.append(type(e).__name__)
    finally:
        writer.close()


def _load(host: str, port: int, paths: list[str], concurrency: int, seconds: float, rate: float | None = None) -> dict:
    """Closed loop (each client sends its next request when the last one returns), or,
    with `rate`, open loop: `rate` requests per second spread over the clients."""
    latencies: list[float] = []
    errors: list = []

    async def main():
        stop_at = time.perf_counter() + seconds
        interval = concurrency / rate if rate else None
        start = time.perf_counter() + 0.05
        await asyncio.gather(
            *(
                _client(host, port, paths, n * 7, stop_at, latencies, errors,
                        start + n * interval / concurrency if interval else None, interval)
                for n in range(concurrency)
            )
        )

    started = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - started
    ms = sorted(x * 1000 for x in latencies) or [float("nan")]
    return {
        "clients": concurrency,
        "offered_rps": rate,
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": ms[len(ms) // 2],
        "p90_ms": ms[int(len(ms) * 0.9)],
        "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        "errors": len(errors),
    }


def drive(port: int, paths: list[str], concurrency: int, seconds: float, rate: float | None = None) -> dict:
    """Run the load from a separate process, so client and server do not share a GIL."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_load, ("127.0.0.1", port, paths, concurrency, seconds, rate))


# -- the server -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(n: int) -> int:
    """A first port such that it and the next n-1 are free (replicas of `qa deploy`
    listen on consecutive ports)."""
    for _ in range(50):
        base, socks = free_port(), []
        try:
            for port in range(base, base + n):
                socks.append(socket.socket())
                socks[-1].bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise StartupError("no free port range")


def _rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (uvicorn workers)."""
    total = 0
    pids = [pid]
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(p) for p in out]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


@contextmanager
def running_server(index_dir: Path, workers: int, env: dict | None = None):
    port = free_port()
    full_env = dict(os.environ, HELPDESK_QA_INDEX_DIR=str(index_dir), HELPDESK_QA_RELOAD_INTERVAL="0")
    full_env.update(env or {})
    # Events are on (as in production) unless HELPDESK_QA_EVENTS=false; bench questions
    # go to a throwaway store, not the real one.
    scratch = tempfile.TemporaryDirectory(prefix="qa-bench-events-")
    full_env.setdefault("HELPDESK_QA_DATA_DIR", scratch.name)
    cmd = [sys.executable, "-m", "qa.cli", "serve", "--port", str(port), "--workers", str(workers),
           "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, env=full_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                raise StartupError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if b" 200 " in s.recv(100):
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise StartupError("server did not become ready")
            time.sleep(0.3)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        scratch.cleanup()


def worker_requests(metrics_dir: Path) -> dict[int, float]:
    """/v1/ask requests each worker has answered so far, from its own file in the
    server's PROMETHEUS_MULTIPROC_DIR (qa/ops/metrics.py): how evenly the workers share
    the load."""
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = {}
    for f in Path(metrics_dir).glob("counter_*.db"):
        total = 0.0
        for metric in MultiProcessCollector.merge([str(f)], accumulate=True):
            for sample in metric.samples:
                if sample.name == "qa_http_requests_total" and sample.labels.get("endpoint") in ASK_ROUTES:
                    total += sample.value
        counts[int(f.stem.split("_")[-1])] = total
    return counts


ASK_ROUTES = ("/v1/ask", "/v1/suggest")


def load_table(index_dir: Path, questions: list[str], clients: list[int], seconds: float, workers: int,
               env: dict | None = None, rates: list = (), query: str = "",
               paths: list[str] | None = None) -> list[dict]:
    """Closed-loop rows for each client count, then open-loop rows at each rate (over
    the largest client count); a rate "80%" offers that share of the best closed-loop
    req/s. `query`: more parameters ("&rerank=true"); `paths`: other requests than
    /v1/ask of the questions. Each row says how its requests fell on the workers."""
    paths = paths or [f"/v1/ask?q={urllib.parse.quote(q)}{query}" for q in questions]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="qa-bench-metrics-") as metrics, \
            running_server(index_dir, workers, dict(env or {}, PROMETHEUS_MULTIPROC_DIR=metrics)) as (port, pid):
        drive(port, paths, 4, min(2.0, seconds))  # warm-up

        def row(concurrency: int, rate: float | None = None) -> dict:
            before = worker_requests(Path(metrics))
            out = drive(port, paths, concurrency, seconds, rate)
            after = worker_requests(Path(metrics))
            share = sorted((after[w] - before.get(w, 0.0) for w in after), reverse=True)
            return dict(out, rss_mb=_rss_bytes(pid) / 2**20, per_worker=[int(n) for n in share if n > 0])

        for c in clients:
            rows.append(row(c))
        best = max((r["rps"] for r in rows), default=0.0)
        for rate in rates:
            offered = best * float(rate[:-1]) / 100 if isinstance(rate, str) and rate.endswith("%") else float(rate)
            rows.append(row(max(clients), offered))
    return rows


def load_report(index_dir: Path, questions: list[str], clients: list[int], seconds: float, workers: int,
                rates: list, echo=print) -> dict:
    """What `qa bench` measures over HTTP, one table after the other (each echoed as it
    is done): hybrid with the query cache off (the bench cycles through a fixed set of
    questions: with the cache on it would measure cache hits, not search), the same
    with every vector cached, and a BM25-only server under the same load. The other
    paths and the budget are qa/quality/budget.py's."""
    report = {}
    report["hybrid"] = load_table(index_dir, questions, clients, seconds, workers, {"HELPDESK_QA_QUERY_CACHE": "0"},
                                  rates)
    echo(format_load(report["hybrid"], f"\nHTTP GET /v1/ask, {workers} worker(s), {seconds:g} s per row: hybrid"))
    report["hybrid_cached"] = load_table(index_dir, questions, clients[-1:], seconds, workers,
                                         {"HELPDESK_QA_QUERY_CACHE": "4096"})
    echo(
        format_load(report["hybrid_cached"], "\nsame, every query vector already in the LRU cache (repeated questions)")
    )
    report["bm25"] = load_table(
        index_dir, questions, clients, seconds, workers, {"HELPDESK_QA_RETRIEVAL": "bm25"}, rates
    )
    echo(format_load(report["bm25"], "\nsame load, BM25-only configuration"))
    echo("\nhybrid / BM25-only: " + ", ".join(
        f"{h['clients']} clients: {h['rps'] / b['rps']:.2f}x req/s, {h['p50_ms'] / b['p50_ms']:.2f}x p50"
        for h, b in zip(report["hybrid"], report["bm25"])
        if not h.get("offered_rps")
    ))
    return report


def format_load(rows: list[dict], title: str) -> str:
    lines = [
        title,
        f"{'clients':>8}{'offered':>9}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'errors':>8}{'RSS MB':>9}"
        "  requests per worker",
    ]
    for r in rows:
        offered = f"{r['offered_rps']:.0f}/s" if r.get("offered_rps") else "max"
        lines.append(
            f"{r['clients']:>8}{offered:>9}{r['rps']:>9.0f}{r['p50_ms']:>9.2f}{r['p90_ms']:>9.2f}"
            f"{r['p99_ms']:>9.2f}{r['errors']:>8}{r['rss_mb']:>9.0f}  {'/'.join(map(str, r.get('per_worker', [])))}"
        )
    return "\n".join(lines)


# -- in-process breakdown -----------------------------------------------------------------
def breakdown(searcher, questions: list[str], rounds: int = 5, rerank: bool = False) -> dict[str, float]:
    """Median milliseconds per step of one search (rules included), of highlighting
    its results and of serialising the response; also the 99th percentile of a whole
    search with its highlighting (`search_total_p99_ms`)."""
    from ..api.models import AskResponse, to_result
    from ..highlight import highlight, question_forms

    steps: dict[str, list[float]] = {}
    for _ in range(rounds):
        for q in questions:
            t = time.perf_counter()
            result = searcher.search(q, rerank=rerank)
            total = (time.perf_counter() - t) * 1000
            t = time.perf_counter()  # highlighting, as /v1/ask does it for the returned hits
            forms = question_forms(result.query, searcher.index.synonyms)
            marks = [highlight(forms, h.article, h.section) for h in result.hits]
            result.timings["highlight_ms"] = (time.perf_counter() - t) * 1000
            total += result.timings["highlight_ms"]
            t = time.perf_counter()
            AskResponse(
                query_id="0" * 32, query=q, query_lang=result.query_lang, answered=result.answered,
                results=[to_result(h, m) for h, m in zip(result.hits, marks)], took_ms=0.0,
            ).model_dump_json()
            result.timings["serialize_ms"] = (time.perf_counter() - t) * 1000
            result.timings["search_total_ms"] = total
            for k, v in result.timings.items():
                steps.setdefault(k, []).append(v)
    out = {k: statistics.median(v) for k, v in steps.items()}
    out["search_total_p99_ms"] = float(np.percentile(steps["search_total_ms"], 99))
    return out


def batch_costs(encoder, questions: list[str], sizes=(1, 2, 4, 8), rounds: int = 3) -> dict[int, float]:
    """Median ms of one `encode_queries` call per batch size, over consecutive slices
    of the questions: what batching the encoder across requests can save."""
    encoder.encode_queries(questions[:1])  # one-off allocations
    out = {}
    for size in sizes:
        times = []
        for _ in range(rounds):
            for start in range(0, len(questions) - size + 1, size):
                t = time.perf_counter()
                encoder.encode_queries(questions[start : start + size])
                times.append((time.perf_counter() - t) * 1000)
        out[size] = statistics.median(times)
    return out


def format_batches(costs: dict[str, dict[int, float]]) -> str:
    lines = ["Encoding n questions in one call, median ms per call (ms per question, x a single question's cost):"]
    for model, row in costs.items():
        single = row[1]
        lines.append(f"  {model}: " + ", ".join(
            f"n={n}: {ms:.2f} ({ms / n:.2f}, x{ms / n / single:.2f})" for n, ms in row.items()))
    return "\n".join(lines)


# -- synthetic scale -----------------------------------------------------------------------
def _rss_self() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def synthetic(base: np.ndarray, queries: np.ndarray, n: int, recall_target: float = 0.95, seed: int = 0) -> dict:
    """Exact (flat) vs approximate (IVF) FAISS search over `n` perturbed copies of
    the real vectors in `base`, queried with real query vectors."""
    import faiss

    from ..index import make_faiss

    rng = np.random.default_rng(seed)
    d = base.shape[1]
    vectors = np.empty((n, d), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        m = min(step, n - start)
        chunk = base[rng.integers(0, len(base), m)] + rng.normal(0, 0.35 / np.sqrt(d), (m, d)).astype(np.float32)
        vectors[start : start + m] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    faiss.omp_set_num_threads(1)  # one query per request, one core per worker: as the service runs

    out = {"n": n}
    for kind in ("flat", "ivf"):
        rss = _rss_self()
        t = time.perf_counter()
        index = make_faiss(vectors, approximate_above=n if kind == "flat" else 0)
        out[f"{kind}_build_s"] = time.perf_counter() - t
        out[f"{kind}_mem_mb"] = max(0, _rss_self() - rss) / 2**20
        out[f"{kind}_index"] = index
    exact = out["flat_index"]
    k = 10
    _, truth = exact.search(queries, k)
    times = []
    for q in queries:
        t = time.perf_counter()
        exact.search(q[None, :], k)
        times.append((time.perf_counter() - t) * 1000)
    out["flat_p50_ms"] = statistics.median(times)

    ivf = out["ivf_index"]
    out["ivf_curve"] = []
    for nprobe in (4, 8, 16, 32, 64, 128):
        ivf.nprobe = nprobe
        _, approx = ivf.search(queries, k)
        recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(approx, truth)])
        times = []
        for q in queries:
            t = time.perf_counter()
            ivf.search(q[None, :], k)
            times.append((time.perf_counter() - t) * 1000)
        out["ivf_curve"].append({"nprobe": nprobe, "recall@10": float(recall), "p50_ms": statistics.median(times)})
    out["ivf_nlist"] = ivf.nlist
    del out["flat_index"], out["ivf_index"]
    return out


def format_synthetic(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        lines.append(
            f"N={r['n']:,}: exact (flat) build {r['flat_build_s']:.1f} s, +{r['flat_mem_mb']:.0f} MB, "
            f"p50 {r['flat_p50_ms']:.2f} ms | IVF nlist={r['ivf_nlist']} build {r['ivf_build_s']:.1f} s, "
            f"+{r['ivf_mem_mb']:.0f} MB"
        )
        for c in r["ivf_curve"]:
            lines.append(f"    nprobe {c['nprobe']:>4}: recall@10 {c['recall@10']:.3f}  p50 {c['p50_ms']:.2f} ms")
    return "\n".join(lines)


def to_json(obj) -> str:
    return json.dumps(obj, indent=2, default=float)
