"""The loop from the event store back to the articles: `qa gaps` and the snippets it
offers on a generated event store, and the agent console's "copy as phrasing" (API)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from qa.corpus import parse_article
from qa.events.gaps import gaps, phrasing, usable
from qa.events.insights import parse_since
from qa.events.sqlite import SQLiteStore

from .conftest import CORPUS, ROOT
from .eventgen import GAPS, generate

NOW = time.time()


@pytest.fixture(scope="module")
def event_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gaps-events")
    store = SQLiteStore(folder / "events.sqlite3")
    generate(store, days=6, per_day=40, now=NOW)
    store.close()
    return folder


def paste(article_path, block: str, tmp_path):
    """The article file with its `questions:` block replaced by `block`, as an editor would."""
    text = article_path.read_text(encoding="utf-8")
    new_block = "".join(line + "\n" for line in block.splitlines() if not line.startswith("#"))
    text = re.sub(r"questions:\n(?:  - .*\n)*", lambda _: new_block, text, count=1)
    out = tmp_path / article_path.relative_to(CORPUS)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return parse_article(out)


def test_gaps_group_by_meaning_with_nearest_articles_and_pasteable_snippets(event_dir, searcher, encoder, tmp_path):
    groups = gaps(
        SQLiteStore(event_dir / "events.sqlite3"), parse_since("30d"), searcher, encoder.encode_queries, now=NOW
    )
    unanswered = [g for g in groups if g["kind"] == "unanswered"]
    not_helpful = [g for g in groups if g["kind"] == "not_helpful"]
    assert len(unanswered) == len(GAPS) and not_helpful
    for g in unanswered:
        assert {q["lang"] for q in g["questions"]} == {"de", "ru", "en"}
        assert 1 <= len(g["nearest"]) <= 3
    # a "not helpful" group offers the article members voted on among its candidates
    tracking = next(g for g in not_helpful if "ord-tracking" in g["voted_articles"])
    assert "ord-tracking" in [n["article_id"] for n in tracking["nearest"]]

    # Pasted into the article's file, every offered block parses, keeps the article's
    # own phrasings first, and adds the group's questions in that file's language only.
    bitcoin = next(g for g in unanswered if "bitcoin" in " ".join(q["text"] for q in g["questions"]).lower()
                   or "биткоин" in g["label"])
    checked = 0
    for candidate in bitcoin["nearest"]:
        for s in candidate["snippets"]:
            article = paste(ROOT / s["file"], s["yaml"], tmp_path)
            original = parse_article(ROOT / s["file"])
            assert article.questions[: len(original.questions)] == original.questions
            assert article.questions[len(original.questions):] == s["added"]
            expected = {q["text"] for q in bitcoin["questions"] if q["lang"] == s["lang"]}
            assert set(s["added"]) == expected
            checked += 1
    assert checked >= 3


def test_a_redacted_question_is_not_offered_as_a_phrasing(searcher):
    assert usable("Passwort vergessen [member-id]") is None and usable("ok") is None
    out = phrasing(searcher, "Passwort vergessen, meine ID ist 12345678", "acc-password-reset", "de")
    assert out["question"] == "Passwort vergessen, meine ID ist [member-id]" and not out["usable"] and not out["added"]
    good = phrasing(searcher, "  Passwort   weg, was nun? ", "acc-password-reset", "de")
    assert (
        good["usable"]
        and good["added"] == ["Passwort weg, was nun?"]
        and good["file"].endswith("de/account/acc-password-reset.md")
    )
    again = phrasing(searcher, "wie bekomme ich ein neues passwort für mein atomy-konto?", "acc-password-reset", "de")
    assert again["added"] == []  # already one of the article's phrasings (case-insensitive)
    assert phrasing(searcher, "x y z", "no-such-article", None) is None


def test_qa_gaps_command(event_dir, sample_index_dir):
    env = dict(os.environ, HELPDESK_QA_DATA_DIR=str(event_dir))
    out = subprocess.run([sys.executable, "-m", "qa.cli", "gaps", "--since", "30d", "--index", str(sample_index_dir)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("[unanswered]") == len(GAPS) and "[not helpful]" in out.stdout
    assert "nearest: " in out.stdout and "questions:\n" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "qa.cli", "gaps", "--since", "soon", "--index", str(sample_index_dir)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "since" in bad.stderr


def test_copy_as_phrasing_api(server):
    r = httpx.post(server.url + "/v1/phrasing", json={"question": "Lieferadresse ändern geht nicht, Tel. 0171 1234567",
                                                      "article_id": "acc-delivery-addresses", "lang": "de"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["question"] == "Lieferadresse ändern geht nicht, Tel. [phone]" and not body["usable"]
    assert httpx.post(server.url + "/v1/phrasing", json={"question": "x", "article_id": "nope"}).status_code == 422
    assert httpx.post(server.url + "/v1/phrasing", json={"article_id": "acc-delivery-addresses"}).status_code == 422
