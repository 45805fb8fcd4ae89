"""The insights overview on a generated event store: counts per day, language and
country, unanswered questions grouped by meaning across languages, not-helpful
articles; the same on PostgreSQL as on SQLite; and `qa report` (text and CSV)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time

import pytest

from qa.errors import UsageError
from qa.events.insights import group_by_meaning, overview, parse_since
from qa.events.sqlite import SQLiteStore
from qa.events.store import PostgresStore

from .conftest import ROOT
from .eventgen import GAPS, generate
from .pg import postgres_server

NOW = time.time()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("events")
    store = SQLiteStore(folder / "events.sqlite3")
    counts = generate(store, days=6, per_day=40, now=NOW)
    yield folder, store, counts
    store.close()


def test_counts_add_up(generated):
    _, store, counts = generated
    o = overview(store, parse_since("7d"), None, now=NOW)
    assert o["questions"] == counts["questions"]
    assert len(o["per_day"]) == 8 and sum(d["questions"] for d in o["per_day"]) == o["questions"]
    assert (
        sum(r["questions"] for r in o["by_language"]) == o["questions"] == sum(r["questions"] for r in o["by_country"])
    )
    assert {r["lang"] for r in o["by_language"]} == {"de", "ru", "en"}
    assert 0.6 < o["answered_rate"] < 0.9
    counts_desc = [q["count"] for q in o["top_questions"]]
    assert counts_desc == sorted(counts_desc, reverse=True)
    # ord-tracking is voted "not helpful" far more often than the other articles
    assert o["not_helpful_articles"][0]["article_id"] == "ord-tracking"
    assert overview(store, parse_since("2d"), None, now=NOW)["questions"] < o["questions"]


def test_unanswered_questions_are_grouped_by_meaning_across_languages(generated, encoder):
    _, store, _ = generated
    o = overview(store, parse_since("7d"), encoder.encode_queries, now=NOW)
    groups = o["unanswered_groups"]
    assert len(groups) == len(GAPS)
    for group in groups:
        texts = {q["text"] for q in group["questions"]}
        gap = next(g for g in GAPS if group["label"] in {t for t, _ in g})
        assert texts == {t for t, _ in gap}  # every phrasing of the gap, in every language, and nothing else
        assert group["count"] == sum(q["count"] for q in group["questions"])
    assert [g["count"] for g in groups] == sorted((g["count"] for g in groups), reverse=True)
    # without a model only identical questions meet
    assert len(overview(store, parse_since("7d"), None, now=NOW)["unanswered_groups"]) > len(GAPS)


def test_grouping_labels_a_group_with_its_most_asked_question(encoder):
    groups = group_by_meaning([("wo ist mein Paket", 9), ("где моя посылка", 4), ("Passwort vergessen", 3)],
                              encoder.encode_queries)
    assert [(g["label"], g["count"]) for g in groups] == [("wo ist mein Paket", 13), ("Passwort vergessen", 3)]


def test_postgresql_gives_the_same_overview_as_sqlite(generated):
    _, sqlite_store, _ = generated
    with postgres_server() as url:
        pg = PostgresStore(url)
        try:
            generate(pg, days=6, per_day=40, now=NOW)
            assert overview(pg, parse_since("7d"), None, now=NOW) == overview(
                sqlite_store, parse_since("7d"), None, now=NOW
            )
        finally:
            pg.close()


def test_since_must_be_a_duration():
    assert parse_since("24h") == 86400 and parse_since("2w") == 14 * 86400
    with pytest.raises(UsageError, match="7d"):
        parse_since("last week")


def _report(folder, *args):
    env = dict(os.environ, HELPDESK_QA_DATA_DIR=str(folder))
    return subprocess.run([sys.executable, "-m", "qa.cli", "report", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_qa_report_prints_the_overview_as_text_and_csv(generated):
    folder, _, counts = generated
    text = _report(folder, "--since", "7d")
    assert text.returncode == 0, text.stderr
    assert f"{counts['questions']} questions" in text.stdout
    assert "Questions per day:" in text.stdout and "content gaps" in text.stdout
    gaps = text.stdout.split("content gaps):")[1].split("\n\n")[0]
    assert len([line for line in gaps.splitlines() if line.strip() and "·" not in line]) == len(GAPS)

    table = _report(folder, "--since", "7d", "--csv", "--no-grouping")
    assert table.returncode == 0, table.stderr
    rows = list(csv.reader(io.StringIO(table.stdout)))
    assert rows[0] == ["section", "key", "questions", "answered", "answered_rate", "extra"]
    total = next(r for r in rows if r[0] == "total")
    assert int(total[2]) == counts["questions"]
    assert sum(int(r[2]) for r in rows if r[0] == "day") == counts["questions"]
    assert {r[1] for r in rows if r[0] == "language"} == {"de", "ru", "en"}

    bad = _report(folder, "--since", "yesterday", "--no-grouping")
    assert bad.returncode == 1 and "since" in bad.stderr
