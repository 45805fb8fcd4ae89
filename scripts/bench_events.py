"""Cost of the event store: the same load against two servers, one with events on and
one with events off, started together and driven in alternation (A B A B ...), so
that the noise of a shared machine hits both alike.

    python scripts/bench_events.py [--index embeddings/] [--seconds 5] [--clients 8] [--rounds 4] [--cached]

Prints req/s and p50/p99 per round and the median of the rounds for each.

    python scripts/bench_events.py --writer [--events 50000] [--rounds 3]

measures the SQLite writer alone instead: events per second in 500-row batches
(the store's write only; redaction costs ~10 µs per question on top), the store
as it is (rollback journal, no mmap) against the WAL setting it had before issue
20, in alternation.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid
from contextlib import ExitStack
from pathlib import Path

from qa.config import get_settings
from qa.quality import bench
from qa.quality.evaluate import load_questions
from qa.quality.sets import DEV_SET


def writer_bench(events: int, rounds: int) -> int:
    from qa.events.redact import redact
    from qa.events.sqlite import SQLiteStore
    from qa.events.store import QueryEvent

    class WalStore(SQLiteStore):
        """The setting before issue 20: WAL, synchronous=NORMAL, SQLite's default mmap."""

        def _connect(self):
            conn = super()._connect()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn

    redacted = [redact(q.q) for q in load_questions(DEV_SET)]  # redaction is not what is measured
    rates: dict[str, list[float]] = {"rollback journal (now)": [], "WAL (before)": []}
    for n in range(rounds):
        for label in (list(rates) if n % 2 == 0 else list(reversed(rates))):
            with tempfile.TemporaryDirectory() as folder:
                store = (SQLiteStore if label.startswith("rollback") else WalStore)(Path(folder) / "e.sqlite3")
                rows = [QueryEvent(uuid.uuid4().hex, time.time(), redacted[i % len(redacted)], "de", "DE", "", True,
                                   "a", "b", 0.5, 3.0, "build", source="widget", shown=(("a", "b"), ("c", "d")))
                        for i in range(events)]
                started = time.perf_counter()
                for i in range(0, events, 500):
                    store.write(rows[i:i + 500], [])
                rate = events / (time.perf_counter() - started)
                store.close()
            rates[label].append(rate)
            print(f"round {n + 1} {label:>22}: {rate:8.0f} events/s", flush=True)
    for label, values in rates.items():
        print(f"  {label:>22}: median {statistics.median(values):8.0f} events/s")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, default=get_settings().index_dir)
    p.add_argument("--questions", type=Path, default=DEV_SET)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--cached", action="store_true", help="keep the query cache on (measures request overhead, not search)"
    )
    p.add_argument("--writer", action="store_true", help="the SQLite writer alone: rollback journal vs WAL")
    p.add_argument("--events", type=int, default=50_000)
    args = p.parse_args()
    if args.writer:
        return writer_bench(args.events, args.rounds)

    paths = [f"/v1/ask?q={urllib.parse.quote(q.q)}" for q in load_questions(args.questions)]
    cache = "4096" if args.cached else "0"
    configs = {"events on": {"HELPDESK_QA_EVENTS": "true"}, "events off": {"HELPDESK_QA_EVENTS": "false"}}
    rows: dict[str, list[dict]] = {k: [] for k in configs}
    with ExitStack() as stack:
        ports = {}
        for label, env in configs.items():
            port, _ = stack.enter_context(
                bench.running_server(args.index, args.workers, dict(env, HELPDESK_QA_QUERY_CACHE=cache))
            )
            ports[label] = port
        for port in ports.values():
            bench.drive(port, paths, args.clients, min(2.0, args.seconds))  # warm-up
        for n in range(args.rounds):
            for label in (list(ports) if n % 2 == 0 else list(reversed(ports))):
                r = bench.drive(ports[label], paths, args.clients, args.seconds)
                rows[label].append(r)
                print(
                    f"round {n + 1} {label:>10}: {r['rps']:7.0f} req/s  p50 {r['p50_ms']:6.2f} ms"
                    f"  p99 {r['p99_ms']:7.2f} ms"
                    f"  errors {r['errors']}",
                    flush=True,
                )
    print(f"\n{args.clients} clients, {args.workers} workers, {args.seconds:g} s x {args.rounds} rounds each, "
          f"query cache {'on' if args.cached else 'off'}; median of rounds:")
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("rps", "p50_ms", "p99_ms")} for k, v in rows.items()}
    for k, m in med.items():
        print(f"  {k:>10}: {m['rps']:7.0f} req/s  p50 {m['p50_ms']:6.2f} ms  p99 {m['p99_ms']:7.2f} ms")
    on, off = med["events on"], med["events off"]
    print(f"  on/off: throughput {on['rps'] / off['rps']:.3f}x, p99 {on['p99_ms'] / off['p99_ms']:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
