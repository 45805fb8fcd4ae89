"""`pip install helpdesk-qa` without extras ingests, answers and serves with the bundled
model, and none of them imports torch, transformers, sentence-transformers or onnxruntime
(the second stage's runtime, the `onnx` extra)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from qa.quality.bench import free_port

from .conftest import CORPUS, ROOT

HEAVY = {"torch", "transformers", "sentence_transformers", "onnxruntime", "psycopg"}


def imported_packages(importtime_stderr: str) -> set[str]:
    """Top-level packages from `python -X importtime` output (`... | ... | name`)."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def run_qa(python: Path | str, args: list[str], cwd: Path) -> tuple[str, set[str]]:
    """`qa ARGS` in a fresh interpreter: (stdout, the top-level packages it imported)."""
    out = subprocess.run([str(python), "-X", "importtime", "-m", "qa.cli", *args], capture_output=True, text=True,
                         timeout=900, cwd=cwd)
    assert out.returncode == 0, out.stderr[-3000:]
    modules = imported_packages(out.stderr)
    assert "numpy" in modules and "faiss" in modules  # the check sees real imports
    return out.stdout, modules


def ingest_and_ask(python: Path | str, tmp_path: Path) -> str:
    index = tmp_path / "index"
    _, ingest_modules = run_qa(python, ["ingest", "--corpus", str(CORPUS), "--out", str(index), "--quiet"], tmp_path)
    answer, ask_modules = run_qa(python, ["ask", "Ich habe mein Passwort vergessen", "--index", str(index)], tmp_path)
    assert ingest_modules & HEAVY == set() and ask_modules & HEAVY == set()
    return answer


def serve_with_a_reranker_configured(python: Path, index: Path, tmp_path: Path) -> tuple[dict, str, set[str]]:
    """`qa serve` with HELPDESK_QA_RERANKER set to a cross-encoder folder while onnxruntime
    is not installed: (the answer to a final question, the log, the packages imported)."""
    cross = tmp_path / "cross"  # looks like a cross-encoder folder; its runtime is what is missing
    cross.mkdir()
    (cross / "model.onnx").write_bytes(b"never read without onnxruntime")
    (cross / "cross_model.json").write_text(json.dumps({"max_length": 64}))
    port = free_port()
    env = dict(os.environ, HELPDESK_QA_INDEX_DIR=str(index), HELPDESK_QA_DATA_DIR=str(tmp_path / "data"),
               HELPDESK_QA_RERANKER=str(cross), HELPDESK_QA_RELOAD_INTERVAL="0")
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(python), "-X", "importtime", "-m", "qa.cli", "serve", "--port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.3)
            assert proc.poll() is None, log_path.read_text()[-3000:]
            r = httpx.post(base + "/v1/ask", json={"question": "Ich habe mein Passwort vergessen", "rerank": True},
                           timeout=10)
            assert r.status_code == 200, r.text
        finally:
            proc.terminate()
            proc.wait(30)
    text = log_path.read_text()
    return r.json(), text, imported_packages(text)


def test_ingest_and_ask_with_the_bundled_model_import_no_torch_even_where_it_is_installed(tmp_path):
    """The test venv has torch: the Encoder must still take the numpy path."""
    pytest.importorskip("torch")
    assert "answered: yes" in ingest_and_ask(sys.executable, tmp_path)


@pytest.mark.network
def test_the_slim_install_ingests_and_answers_without_torch(tmp_path):
    """A fresh venv, `pip install .` without extras (from PyPI): install time and size
    are printed for docs/deploy.md."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    src = tmp_path / "src"  # a clean copy: no .venv or egg-info of the worktree
    top_level = {".git", "embeddings", "artifacts", "run", "data", "models", "tests"}  # qa/data/ is package data

    def skip(folder: str, names: list[str]) -> set[str]:
        local = top_level if Path(folder) == ROOT else set()
        build_debris = {n for n in names if n == "__pycache__" or n.endswith(".egg-info") or n.startswith(".venv")}
        return build_debris | (set(names) & local)

    shutil.copytree(ROOT, src, ignore=skip)
    started = time.monotonic()
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(src)],
                         capture_output=True, text=True, timeout=900)
    took = time.monotonic() - started
    assert pip.returncode == 0, pip.stderr[-3000:]
    size = subprocess.run(["du", "-sm", str(venv)], capture_output=True, text=True).stdout.split()[0]
    print(f"slim install: {took:.0f} s, venv {size} MB")
    python = venv / "bin" / "python"
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    installed = subprocess.run([str(python), "-c", probe, *sorted(HEAVY)], capture_output=True, text=True).stdout
    assert installed.strip() == "[]"  # none of them is even installed
    assert "answered: yes" in ingest_and_ask(python, tmp_path)
    # Serving: a configured second stage without its runtime leaves the first stage
    # answering (and says which extra to install) instead of stopping the replica.
    answer, log, modules = serve_with_a_reranker_configured(python, tmp_path / "index", tmp_path)
    assert answer["answered"] and answer["results"] and answer["reranked"] is False
    assert "helpdesk-qa[onnx]" in log
    # `-X importtime` lists a failed import too: the configured second stage tried to
    # import onnxruntime, which is not installed (checked above); nothing else did.
    assert "numpy" in modules and "uvicorn" in modules and modules & HEAVY <= {"onnxruntime"}
