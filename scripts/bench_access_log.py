"""What uvicorn's access log costs: the same server with `--log-level info` (access log
on, as `qa serve` runs by default) and with `--no-access-log`, alternating, 8 clients.

    python scripts/bench_access_log.py --index /tmp/b-idx
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import httpx

from qa.config import ROOT
from qa.quality.bench import drive, free_port
from qa.quality.evaluate import load_questions
from qa.quality.sets import DEV_SET


def run(index: Path, paths: list[str], flags: list[str], seconds: float) -> list[float]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="qa-bench-log-") as scratch:
        env = dict(os.environ, HELPDESK_QA_INDEX_DIR=str(index), HELPDESK_QA_RELOAD_INTERVAL="0",
                   HELPDESK_QA_QUERY_CACHE="0", HELPDESK_QA_DATA_DIR=scratch)
        with open(Path(scratch) / "server.log", "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "serve", "--port", str(port), "--workers", "2",
                                     *flags], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            try:
                deadline = time.time() + 120
                while time.time() < deadline:
                    try:
                        if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.3)
                drive(port, paths, 4, 2)  # warm-up
                return [drive(port, paths, 8, seconds)["rps"] for _ in range(2)]
            finally:
                proc.terminate()
                proc.wait(15)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--questions", type=Path, default=DEV_SET)
    p.add_argument("--seconds", type=float, default=8)
    args = p.parse_args()
    paths = [f"/v1/ask?q={urllib.parse.quote(q.q)}" for q in load_questions(args.questions)]
    for _ in range(2):
        for label, flags in (("off", ["--log-level", "warning", "--no-access-log"]), ("on", ["--log-level", "info"])):
            rps = run(args.index, paths, flags, args.seconds)
            print(f"access log {label:>3}: " + ", ".join(f"{r:.0f}" for r in rps) + " req/s at 8 clients")


if __name__ == "__main__":  # the load generator runs in a spawned process
    main()
