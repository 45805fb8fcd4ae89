import subprocess
import sys

import pytest

from qa.artifact import current_build, load_index

from .conftest import ROOT, write_article


def qa(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "qa.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env
    )


def test_ingest_skips_malformed_files_and_names_them(tmp_path):
    corpus = tmp_path / "corpus"
    write_article(corpus, "de", "good", "## Schritte\n\n1. Eins.\n", title="Gut")
    write_article(corpus, "en", "good", "## Steps\n\n1. One.\n", title="Good")
    bad = write_article(corpus, "de", "bad", "Text.\n", countries="[XX]")
    out = tmp_path / "idx"

    run = qa("ingest", "--corpus", str(corpus), "--out", str(out), "--quiet")
    assert run.returncode == 0, run.stderr
    assert f"{bad}:6: unknown country code XX" in run.stderr
    assert "articles: 2 (ru 0, de 1, en 1)" in run.stdout
    assert "good: no ru" in run.stdout and "skipped 1 malformed file" in run.stdout
    assert {s.article_id for s in load_index(out).sections} == {"good"}
    first_build = current_build(out)

    strict = qa("ingest", "--corpus", str(corpus), "--out", str(out), "--quiet", "--strict")
    assert strict.returncode == 1
    assert f"{bad}:6: unknown country code XX" in strict.stderr
    assert current_build(out) == first_build  # nothing written

    again = qa("ingest", "--corpus", str(corpus), "--out", str(out), "--quiet")
    assert "(0 embedded now" in again.stdout


def test_ingest_fails_when_nothing_can_be_built(tmp_path):
    corpus = tmp_path / "corpus"
    write_article(corpus, "de", "bad", "Text.\n", countries="[XX]")
    run = qa("ingest", "--corpus", str(corpus), "--out", str(tmp_path / "idx"), "--quiet")
    assert run.returncode == 1 and "no valid article" in run.stderr
    missing = qa("ingest", "--corpus", str(tmp_path / "nope"), "--out", str(tmp_path / "idx"), "--quiet")
    assert missing.returncode == 1 and "corpus folder not found" in missing.stderr


@pytest.mark.parametrize("command", ["train", "train-rerank"])
def test_a_training_command_refuses_a_missing_base_model_with_one_error_line(command, tmp_path):
    run = qa(command, "--base", str(tmp_path / "no-model"), "--out", str(tmp_path / "out"))
    assert run.returncode == 1
    assert run.stderr.count("error:") == 1 and f"{tmp_path / 'no-model'}: no such model folder" in run.stderr
    assert not (tmp_path / "out").exists()


def test_bench_refuses_a_folder_that_is_no_second_stage_with_one_error_line(sample_index_dir, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "t-1", "q": "passwort vergessen", "lang": "de"}\n', encoding="utf-8")
    run = qa("bench", "--index", str(sample_index_dir), "--questions", str(questions), "--reranker", str(tmp_path))
    assert run.returncode == 1
    assert run.stderr.count("error:") == 1 and f"--reranker {tmp_path}: not a cross-encoder folder" in run.stderr


def test_eval_refuses_a_corpus_without_a_valid_article_with_one_error_line(tmp_path):
    corpus = tmp_path / "corpus"
    write_article(corpus, "de", "bad", "Text.\n", countries="[XX]")
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "t-1", "q": "passwort vergessen", "lang": "de", "gold": ["bad"]}\n', encoding="utf-8")
    run = qa("eval", "--questions", str(questions), "--corpus", str(corpus), "--cache", str(tmp_path / "cache"))
    assert run.returncode == 1
    assert run.stderr.count("error:") == 1 and f"error: no valid article in {corpus}" in run.stderr


def test_ask_prints_top_sections(sample_index_dir):
    run = qa("ask", "как сменить центр", "--country", "KZ", "--index", str(sample_index_dir))
    assert run.returncode == 0, run.stderr
    assert "query language: ru" in run.stdout
    assert "https://helpdesk.atomydoc.ru/ru/structure/str-change-center" in run.stdout.split("\n2.")[0]


def test_deploy_scrub_log_copies_nginx_error_lines_without_what_members_typed():
    line = ('2026/12/03 07:00:00 [error] 7#7: *1 limiting requests, excess: 40.5 by zone "ask", client: 10.0.0.2, '
            'server: _, request: "GET /v1/ask?q=Mitgliedsnummer%2048151699 HTTP/1.1", host: "x", '
            'referrer: "https://portal/?q=anna.petrova%40example.com"')
    out = subprocess.run([sys.executable, "-m", "qa.cli", "deploy", "scrub-log"], input=line + "\n" + line + "\n",
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout.splitlines()
    assert len(out) == 2 and "limiting requests" in out[0] and 'request: "GET /v1/ask"' in out[0]
    assert not any(raw in out[0] for raw in ("48151699", "anna.petrova", "Mitgliedsnummer"))
