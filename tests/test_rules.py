"""Rules of the support team (qa/rules.py): corpus/rules.yaml checked at ingest with
`path:line` errors, stored in the index artifact, applied to the ranked results (pin,
hide, boost), inactive outside their validity, and reloaded with the index."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from qa.artifact import load_index
from qa.cli import main
from qa.corpus import Synonyms, load_corpus
from qa.errors import CorpusError
from qa.ingest import ingest
from qa.rules import Rules, load_rules
from qa.search import Searcher

from .conftest import CORPUS, Server, write_article


def parcel_corpus(folder):
    """Parcels (three sections), passwords, and a Kazakhstan-only payout section."""
    write_article(folder, "en", "ord-tracking",
                  "Where your parcel is.\n\n## Track your parcel\n\n1. Open My orders.\n2. Click Track parcel.\n\n"
                  "## If the parcel is stuck\n\nCreate a support request with the order number.\n\n"
                  "## Parcel lockers\n\nCollect the parcel with the code from the text message.\n",
                  title="Tracking your parcel", category="orders")
    write_article(folder, "ru", "ord-tracking",
                  "Где посылка.\n\n## Как отследить посылку\n\n1. Откройте заказы.\n2. Нажмите «Отследить».\n\n"
                  "## Если посылка застряла\n\nСоздайте обращение с номером заказа.\n\n"
                  "## Постаматы\n\nЗаберите посылку по коду из SMS.\n",
                  title="Отслеживание посылки", category="orders")
    write_article(folder, "en", "acc-password", "Reset it.\n\n## Reset your password\n\n1. Click Forgot password.\n"
                  "2. Enter the code.\n", title="Forgotten password", category="account")
    write_article(folder, "en", "pay-kz", "Payouts.\n\n## Kaspi payouts\n<!-- countries: KZ -->\n\nKaspi Gold card.\n",
                  title="Payouts to Kaspi", category="payouts")
    return folder


def rules_file(folder, text: str):
    path = folder / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory, encoder):
    """The parcel corpus with its rules (pin, hide, boost, expired, not yet valid), ingested."""
    folder = parcel_corpus(tmp_path_factory.mktemp("rules") / "corpus")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    rules_file(folder, f"""\
- name: outage-kz
  when: {{query: [parcel, посылка], country: KZ}}
  pin: ord-tracking#if-the-parcel-is-stuck
  position: 1
- name: no-lockers
  when: {{query: [parcel]}}
  hide: ord-tracking#parcel-lockers
- name: old-outage
  when: {{query: [parcel], country: DE}}
  pin: acc-password
  until: 2020-01-31
- name: future
  when: {{query: [parcel], country: AT}}
  pin: acc-password
  from: {tomorrow}
- name: lift-password
  when: {{query: [code], lang: en}}
  boost: acc-password
  by: 0.5
""")
    out = folder.parent / "idx"
    report = ingest(folder, out, encoder)
    assert not report.errors, report.errors
    return folder, out


@pytest.fixture(scope="module")
def rule_searcher(built, encoder):
    return Searcher(load_index(built[1], model=encoder.identity), encoder)


def keys(result):
    return [f"{h.article.id}#{h.section.position}" for h in result.hits]


def test_a_pin_puts_the_section_first_for_its_country_only(rule_searcher):
    kz = rule_searcher.search("where is my parcel", country="KZ")
    assert kz.hits[0].article.id == "ord-tracking" and kz.hits[0].section.anchor == "if-the-parcel-is-stuck"
    assert kz.hits[0].rule == "outage-kz" and kz.answered
    assert "outage-kz" in [f.rule.name for f in kz.rules]
    ru = rule_searcher.search("где моя посылка", country="KZ")  # the same rule, another language: its translation
    assert ru.hits[0].section.title == "Если посылка застряла" and ru.hits[0].rule == "outage-kz"
    other = rule_searcher.search("where is my parcel", country="RU")
    assert all(h.rule != "outage-kz" for h in other.hits)


def test_hide_removes_a_section_and_the_list_is_still_full(rule_searcher):
    result = rule_searcher.search("parcel lockers code", limit=3)
    assert "ord-tracking#3" not in keys(result)
    assert len(result.hits) == 3


def test_an_expired_or_future_rule_does_nothing(rule_searcher):
    for country in ("DE", "AT"):
        result = rule_searcher.search("where is my parcel", country=country)
        assert result.hits[0].article.id == "ord-tracking" and result.hits[0].rule is None
        assert "old-outage" not in [f.rule.name for f in result.rules]


def test_boost_reorders_and_says_so(rule_searcher):
    result = rule_searcher.search("enter the code from the text message")
    assert result.hits[0].article.id == "acc-password" and result.hits[0].rule == "lift-password"
    assert any("boosted" in f.effect for f in result.rules)


def test_rule_validity_is_checked_at_question_time(built, encoder):
    index = load_index(built[1], model=encoder.identity)
    searcher = Searcher(index, encoder)
    index.rules.clock = lambda: datetime(2020, 1, 15, tzinfo=UTC)  # while the old outage lasted
    result = searcher.search("where is my parcel", country="DE")
    assert result.hits[0].article.id == "acc-password" and result.hits[0].rule == "old-outage"


def test_rules_are_part_of_the_artifact(built, encoder):
    index = load_index(built[1], model=encoder.identity)
    assert [r.name for r in index.rules.rules] == ["outage-kz", "no-lockers", "old-outage", "future", "lift-password"]
    assert index.manifest["rules"] == 5 and "rules.json" in index.manifest["files"]


@pytest.mark.parametrize("text, line, reason", [
    ("- name: a\n  when: {query: [x]}\n  pin: nope\n", 3, "no article with id 'nope'"),
    ("- name: a\n  when: {query: [x]}\n  pin: ord-tracking#nope\n", 3, "has no section '#nope'"),
    ("- name: a\n  when: {query: [x]}\n  pin: ord-tracking\n  hide: acc-password\n", 1, "exactly one action"),
    ("- name: a\n  when:\n    query: [x]\n    country: XX\n  pin: ord-tracking\n", 4, "unknown country 'XX'"),
    ("- name: a\n  when: {query: [x]}\n  pin: ord-tracking\n  until: soon\n", 4, "is not a date"),
    ("- name: a\n  when: {query: [x]}\n  pin: ord-tracking\n  from: 2026-02-01\n  until: 2026-01-01\n", 5,
     "ends (`until`) before it starts"),
    ("- name: a\n  when: {query: [x]}\n  boost: ord-tracking\n", 1, "needs `by:`"),
    ("- name: a\n  when: {query: [x]}\n  pin: ord-tracking\n- name: a\n  when: {query: [y]}\n  hide: pay-kz\n", 4,
     "already used"),
    ("- name: a\n  when: {lang: en}\n  pin: ord-tracking\n", 2, "needs `query`"),
    ("- name: a\n  when: {query: [x]}\n  pin: ord-tracking\n  colour: red\n", 4, "unknown key 'colour'"),
    ("- name: a\n  when: {query: [x]\n", 3, "invalid YAML"),
])
def test_a_broken_rule_is_reported_as_path_line_reason(tmp_path, text, line, reason):
    folder = parcel_corpus(tmp_path / "corpus")
    path = rules_file(folder, text)
    with pytest.raises(CorpusError) as e:
        load_rules(path, load_corpus(folder))
    assert str(e.value).startswith(f"{path}:{line}: ") and reason in str(e.value)


def test_ingest_reports_a_broken_rules_file_and_strict_refuses(tmp_path, encoder):
    folder = parcel_corpus(tmp_path / "corpus")
    rules_file(folder, "- name: a\n  when: {query: [x]}\n  pin: missing-article\n")
    report = ingest(folder, tmp_path / "idx", encoder)
    assert any(str(e).startswith(f"{folder / 'rules.yaml'}:3: ") for e in report.errors)
    assert len(report.index.rules) == 0  # no rules rather than a wrong one
    with pytest.raises(CorpusError):
        ingest(folder, tmp_path / "idx2", encoder, strict=True)


def test_the_shipped_rules_file_is_valid_and_changes_nothing_now():
    rules = load_rules(CORPUS / "rules.yaml", load_corpus(CORPUS))
    assert rules.rules, "corpus/rules.yaml documents at least one rule"
    now = datetime.now(UTC)
    assert not any(r.active(now) for r in rules.rules), "a shipped rule in force would change the eval numbers"


def test_rules_test_command_shows_what_a_rule_does(built, capsys, monkeypatch):
    folder, out = built
    assert main(["rules", "test", "where is my parcel", "--country", "KZ", "--index", str(out),
                 "--rules", str(folder / "rules.yaml")]) == 0
    text = capsys.readouterr().out
    assert "rule 'outage-kz' (line 1): pin ord-tracking#if-the-parcel-is-stuck - active" in text
    without, with_rules = text.split("\nwith rules")
    assert "<- outage-kz" not in without and "1. [" in with_rules and "<- outage-kz" in with_rules.splitlines()[1]
    assert main(["rules", "test", "where is my parcel", "--country", "DE", "--index", str(out),
                 "--rules", str(folder / "rules.yaml")]) == 0
    assert "rule 'old-outage' (line 8): pin acc-password - expired 2020-02-01T00:00:00+00:00: does nothing" in \
        capsys.readouterr().out
    assert main(["rules", "test", "x", "--at", "friday", "--index", str(out)]) == 1
    assert "error: --at friday" in capsys.readouterr().err


def test_a_running_service_picks_up_changed_rules_with_the_index(tmp_path, encoder):
    folder = parcel_corpus(tmp_path / "corpus")
    out = tmp_path / "idx"
    ingest(folder, out, encoder)
    server = Server(out)
    try:
        def top():
            body = httpx.get(server.url + "/v1/ask", params={"q": "where is my parcel", "country": "KZ"}).json()
            return body["results"][0], body["rules"]

        first, fired = top()
        assert first["rule"] is None and fired == []
        rules_file(folder, "- name: outage-kz\n  when: {query: [parcel], country: KZ}\n"
                           "  pin: ord-tracking#parcel-lockers\n")
        ingest(folder, out, encoder)
        deadline = time.time() + 20
        while (first := top()[0])["rule"] is None and time.time() < deadline:
            time.sleep(0.3)
        assert first["rule"] == "outage-kz" and first["anchor"] == "parcel-lockers"
        assert top()[1] == [{"name": "outage-kz", "action": "pin", "target": "ord-tracking#parcel-lockers",
                             "effect": "pinned ord-tracking#parcel-lockers at position 1"}]
    finally:
        server.stop()


def test_a_category_condition_needs_a_search_narrowed_to_it(built, encoder):
    index = load_index(built[1], model=encoder.identity)
    index.rules = Rules([r for r in index.rules.rules if r.name == "outage-kz"])
    index.rules.rules[0].category = "orders"
    searcher = Searcher(index, encoder)
    assert searcher.search("where is my parcel", country="KZ").hits[0].rule is None
    narrowed = searcher.search("where is my parcel", country="KZ", category="orders")
    assert narrowed.hits[0].rule == "outage-kz"


def test_a_rule_fires_for_a_synonym_of_its_query_words(tmp_path, encoder):
    """The question's synonyms count: a rule on `parcel` fires for "Sendung" when the
    operator's synonyms.yaml groups them, and not without that group."""
    folder = parcel_corpus(tmp_path / "corpus")
    (folder / "synonyms.yaml").write_text("- [parcel, Sendung]\n", encoding="utf-8")
    rules_file(folder, "- name: outage\n  when: {query: [parcel]}\n  pin: ord-tracking#parcel-lockers\n")
    ingest(folder, tmp_path / "idx", encoder)
    index = load_index(tmp_path / "idx", model=encoder.identity)
    result = Searcher(index, encoder).search("wo ist meine Sendung")
    top = result.hits[0]  # in the language the corpus has (no German here): the same section
    assert top.rule == "outage" and (top.article.id, top.section.position) == ("ord-tracking", 3)
    assert not index.rules.matching("wo ist meine Sendung", Synonyms(), "de", None, None)


def test_a_language_condition_holds_for_that_language_only(built, encoder):
    rules = load_index(built[1], model=encoder.identity).rules
    lift = [r.name for r in rules.matching("enter the code", Synonyms(), "en", None, None)]
    assert lift == ["lift-password"]
    assert rules.matching("enter the code", Synonyms(), "de", None, None) == []  # lang: en
