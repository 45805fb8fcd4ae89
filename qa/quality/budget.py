"""The cost budget of every path, from one `qa bench` run.

Machines here vary 4x from day to day, so targets are ratios measured in the same run:
each path's throughput against a BM25-only server under the same load, and the
as-you-type path's efficiency, req/s x in-process search p50 / (1000 x cores): 1.0 is
what answering one question at a time on every core, with no HTTP cost, would give.
Batching the encoder across concurrent requests (qa/api/batching.py) is what can take
it past 1.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

from .bench import format_load, load_table

PATH_CLIENTS = 8


def paths(questions: list[str]) -> dict[str, list[str]]:
    """The requests each path sends, as the widget and the console send them."""
    quoted = [urllib.parse.quote(q) for q in questions]
    # What a member has typed when suggestions are asked: the first words of the question.
    typed = [urllib.parse.quote(q[: max(3, len(q) * 3 // 5)]) for q in questions]
    return {
        "as-you-type": [f"/v1/ask?q={q}&source=widget" for q in quoted],
        "final": [f"/v1/ask?q={q}&rerank=true&source=widget" for q in quoted],
        "agent console": [f"/v1/ask?q={q}&limit=20&explain=true&rerank=true&source=agent" for q in quoted],
        "suggest": [f"/v1/suggest?q={t}" for t in typed],
    }


def path_rows(index_dir: Path, questions: list[str], seconds: float, workers: int, echo=print) -> dict[str, dict]:
    """Each path at PATH_CLIENTS clients on the default server (query cache off). The
    final path uses what the environment configures for final questions (a final build,
    HELPDESK_QA_FINAL_INDEX_DIR; a cross-encoder, HELPDESK_QA_RERANKER); without either,
    rerank=true changes nothing."""
    rows = {}
    env = {"HELPDESK_QA_QUERY_CACHE": "0"}
    for name, sent in paths(questions).items():
        rows[name] = load_table(index_dir, questions, [PATH_CLIENTS], seconds, workers, env, paths=sent)[0]
    configured = (("HELPDESK_QA_FINAL_INDEX_DIR", "final build"), ("HELPDESK_QA_RERANKER", "cross-encoder"))
    second = ", ".join(f"{label} {os.environ[var]}" for var, label in configured if os.environ.get(var)) \
        or "none configured: rerank=true changes nothing"
    echo(format_load(list(rows.values()), f"\neach path, {PATH_CLIENTS} clients (rows: {', '.join(rows)}); "
                     f"second stage: {second}"))
    return rows


def closed(rows: list[dict], clients: int) -> dict | None:
    return next((r for r in rows if r["clients"] == clients and not r.get("offered_rps")), None)


def budget(report: dict, steps: dict[str, float], cores: int | None = None) -> list[str]:
    """The lines `qa bench` ends with: the as-you-type targets, then every path against
    BM25-only. Missing rows (other client counts than 1 and 8) are left out."""
    cores = cores or os.cpu_count() or 1
    p50, p99 = steps["search_total_ms"], steps["search_total_p99_ms"]
    lines = [f"\nBudget, one run, {cores} cores; in-process search p50 {p50:.2f} ms, p99 {p99:.2f} ms:"]
    eight, one = closed(report["hybrid"], PATH_CLIENTS), closed(report["hybrid"], 1)
    if eight:
        lines.append(f"  as-you-type, {PATH_CLIENTS} clients: {eight['rps']:.0f} req/s, efficiency "
                     f"{eight['rps'] * p50 / (1000 * cores):.2f} (target >= 1.3); p99 {eight['p99_ms']:.1f} ms = "
                     f"{eight['p99_ms'] / p99:.1f}x in-process p99 (target <= 3)")
    for r in report["hybrid"]:
        if r.get("offered_rps"):
            lines.append(f"  open loop, {r['offered_rps']:.0f}/s offered: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.1f} "
                         f"ms = {r['p99_ms'] / p99:.1f}x in-process p99 (target <= 3 at 80 % of the closed-loop best)")
    if one:
        lines.append(f"  1 client: HTTP p50 {one['p50_ms']:.2f} ms = in-process p50 {one['p50_ms'] - p50:+.2f} ms "
                     "(target <= +1 ms)")
    bm25 = closed(report.get("bm25", []), PATH_CLIENTS)
    if bm25 and report.get("paths"):
        lines.append(f"  each path at {PATH_CLIENTS} clients against BM25-only as-you-type "
                     f"({bm25['rps']:.0f} req/s, p50 {bm25['p50_ms']:.2f} ms):")
        for name, r in report["paths"].items():
            lines.append(f"    {name:<14} {r['rps']:>6.0f} req/s = {r['rps'] / bm25['rps']:.2f}x, "
                         f"p50 {r['p50_ms']:.2f} ms = {r['p50_ms'] / bm25['p50_ms']:.2f}x, p99 {r['p99_ms']:.1f} ms")
    return lines
