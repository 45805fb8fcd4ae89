"""The index artifact on disk: save and load, the atomic CURRENT pointer, what a crash
or a killed process leaves, corrupt files, model mismatches, pruning."""

import subprocess
import sys

import numpy as np
import pytest

from qa import artifact
from qa.artifact import CURRENT, current_build, load_index, save_index
from qa.corpus import load_corpus
from qa.errors import IndexCorrupt, IndexNotFound, ModelMismatch
from qa.index import FORMAT_VERSION, build_index

from .conftest import CORPUS, ROOT, write_article


def test_round_trip(small_corpus, tmp_path, encoder):
    built = build_index(load_corpus(small_corpus), encoder)
    save_index(built, tmp_path / "idx")
    loaded = load_index(tmp_path / "idx", model=encoder.identity)
    assert [s.key for s in loaded.sections] == [s.key for s in built.sections]
    assert loaded.faiss_index.ntotal == built.faiss_index.ntotal
    assert np.array_equal(loaded.rows, built.rows) and np.array_equal(loaded.row_kind, built.row_kind)
    assert np.array_equal(loaded.phrasing_section, built.phrasing_section)
    m = loaded.manifest
    assert m["model"] == encoder.identity and m["dimension"] == 512 and m["format_version"] == FORMAT_VERSION
    assert m["languages"]["de"] == {"articles": 1, "sections": 2}
    assert len(m["corpus_hash"]) == 64 and m["build_time"]
    kaspi = [s for s in loaded.sections if s.title == "Kaspi"][0]
    assert kaspi.countries == ["KZ"]
    q = loaded.center(encoder.encode_queries(["Passwort"]), "de")
    _, rows = loaded.faiss_index.search(q, 1)
    assert loaded.sections[loaded.rows[rows[0][0]]].article_id == "pw"


def test_crash_mid_write_leaves_previous_index_active(small_corpus, tmp_path, encoder, monkeypatch):
    root = tmp_path / "idx"
    first = build_index(load_corpus(small_corpus), encoder)
    save_index(first, root)
    before = (root / CURRENT).read_text()

    write_article(small_corpus, "en", "new", "## New\n\nNew text.\n", title="New")
    second = build_index(load_corpus(small_corpus), encoder)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(artifact.faiss, "write_index", boom)
    with pytest.raises(OSError):
        save_index(second, root)
    assert (root / CURRENT).read_text() == before
    loaded = load_index(root, model=encoder.identity)
    assert {s.article_id for s in loaded.sections} == {"pw", "kz"}


def test_killed_ingest_process_leaves_previous_index(small_corpus, tmp_path, encoder):
    """A real process killed while writing its build folder."""
    root = tmp_path / "idx"
    save_index(build_index(load_corpus(small_corpus), encoder), root)
    code = (
        "import os, sys, qa.artifact as m\n"
        "orig = m.faiss.write_index\n"
        "def die(*a, **k):\n"
        "    orig(*a, **k); os._exit(9)\n"
        "m.faiss.write_index = die\n"
        "from qa.cli import main; main(['ingest', '--corpus', sys.argv[1], '--out', sys.argv[2], '--quiet'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(CORPUS), str(root)], cwd=ROOT, capture_output=True)
    assert proc.returncode == 9
    assert len(list(root.glob("build-*"))) == 2  # the debris is there...
    assert {s.article_id for s in load_index(root).sections} == {"pw", "kz"}  # ...but not active


def test_model_mismatch_is_a_clear_error(small_corpus, tmp_path, encoder):
    save_index(build_index(load_corpus(small_corpus), encoder), tmp_path / "idx")
    with pytest.raises(ModelMismatch, match="built with model 'usem3.*configured for 'other-model"):
        load_index(tmp_path / "idx", model="other-model")


def test_corrupt_file_is_detected(small_corpus, tmp_path, encoder):
    save_index(build_index(load_corpus(small_corpus), encoder), tmp_path / "idx")
    folder = current_build(tmp_path / "idx")
    data = bytearray((folder / "vectors.faiss").read_bytes())
    data[-10] ^= 0xFF
    (folder / "vectors.faiss").write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="vectors.faiss is missing or corrupt"):
        load_index(tmp_path / "idx")
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(IndexCorrupt, match="unreadable"):
        load_index(tmp_path / "idx")


def test_no_index_says_to_run_ingest(tmp_path):
    with pytest.raises(IndexNotFound, match="qa ingest"):
        load_index(tmp_path)


def test_old_builds_are_pruned(small_corpus, tmp_path, encoder):
    built = build_index(load_corpus(small_corpus), encoder)
    for _ in range(4):
        save_index(built, tmp_path / "idx")
    assert len(list((tmp_path / "idx").glob("build-*"))) == 2
