"""Highlighting (qa/highlight.py): offsets of the question's words, stems and synonyms in
titles and snippet, and the best-matching step; through /v1/ask on the real server."""

from __future__ import annotations

from qa.corpus import Synonyms, parse_article
from qa.highlight import highlight, question_forms, spans

from .conftest import write_article


def marked(text, ranges):
    return [text[a:b] for a, b in ranges]


def test_words_stems_and_synonyms_are_marked_and_stop_words_are_not():
    synonyms = Synonyms([["ИП", "индивидуальный предприниматель"], ["parcel", "package"]])
    forms = question_forms("как открыть ИП", synonyms)
    text = "Регистрация индивидуального предпринимателя: откройте счёт ИП."
    assert marked(text, spans(text, forms)) == ["индивидуального предпринимателя", "ИП"]
    forms = question_forms("where is my parcel", synonyms)
    assert marked("My packages and my Parcels", spans("My packages and my Parcels", forms)) == ["packages", "Parcels"]
    assert spans("Where is it?", forms) == []


def test_the_best_step_and_a_snippet_around_it(tmp_path):
    body = ("Intro.\n\n## Steps\n\n" + "".join(f"{n}. Filler step number {n} about nothing in particular.\n"
                                               for n in range(1, 6))
            + "6. Enter the Kaspi Gold card number and confirm.\n")
    path = write_article(tmp_path, "en", "kaspi", body, title="Payouts to Kaspi")
    article = parse_article(path)
    section = article.sections[1]
    h = highlight(question_forms("add a Kaspi Gold card", Synonyms()), article, section)
    assert h.best_step == 5 and h.best_text == section.steps[5]
    assert h.snippet.startswith("…Enter the Kaspi Gold card")  # the step would be cut off at 160 characters
    assert marked(h.snippet, h.snippet_spans) == ["Kaspi Gold card"]
    assert marked(article.title, h.title) == ["Kaspi"]


def test_hostile_text_is_only_ever_offsets(tmp_path):
    body = "Intro.\n\n## Zebra <img src=x onerror=alert(1)> steps\n\n1. Click <script>zebra()</script> now.\n"
    path = write_article(tmp_path, "en", "hostile", body, title="Zebra <b>guide</b>")
    article = parse_article(path)
    section = article.sections[1]
    h = highlight(question_forms("zebra <img src=x onerror=alert(2)>", Synonyms()), article, section)
    assert marked(section.title, h.section_title)[0] == "Zebra"
    assert all(isinstance(a, int) and isinstance(b, int) for a, b in h.section_title + h.snippet_spans)


def test_ask_returns_highlights_for_each_result(api):
    body = api.get("/v1/ask", params={"q": "wo ist mein Paket", "limit": 3}).json()
    first = body["results"][0]
    h = first["highlights"]
    assert any("Paket" in first["section_title"][a:b] for a, b in h["section_title"]) or \
        any("Paket" in first["article_title"][a:b] for a, b in h["article_title"])
    assert all(0 <= a < b <= len(first["snippet"]) for a, b in h["snippet"])
    assert h["best_step"] is None or first["steps"][h["best_step"]] == h["best_text"]
    assert all("explain" in r and r["explain"] is None for r in body["results"])


def test_explain_gives_the_evidence_of_each_result(api):
    body = api.post("/v1/ask", json={"question": "Passwort vergessen", "explain": True, "limit": 3}).json()
    for r in body["results"]:
        e = r["explain"]
        assert set(e) >= {"dense", "lexical_bm25", "phrasing", "article_context", "country_lift", "rule",
                          "second_stage"}
        assert 0 < e["dense"] <= 1 and e["score"] == r["score"]
    kz = api.get("/v1/ask", params={"q": "как оплатить заказ", "country": "KZ", "explain": "true"}).json()
    assert all(r["explain"]["country_lift"] >= 0 for r in kz["results"])


def test_the_snippet_reads_markdown_as_plain_text(tmp_path):
    body = ("Intro.\n\n## Example\n\nSee `My Office` and **Mül\\*\\*\\*r** [here](https://example.org).\n\n"
            "| Line | Amount |\n|---|---|\n| Weekly bonus | 64.00 EUR |\n| **Amount due** | **62.50 EUR** |\n")
    path = write_article(tmp_path, "en", "table", body, title="Bonus statement")
    article = parse_article(path)
    h = highlight(question_forms("weekly bonus amount", Synonyms()), article, article.sections[1])
    assert h.snippet == "See My Office and Mül***r here. Weekly bonus – 64.00 EUR; Amount due – 62.50 EUR."
    assert marked(h.snippet, h.snippet_spans) == ["Weekly bonus", "Amount"]


def test_every_api_model_has_a_valid_example():
    """/docs "Try it out" sends a model's example as it is: each must validate."""
    from pydantic import BaseModel

    from qa.api import models, suggest

    checked = []
    for module in (models, suggest):
        for name in dir(module):
            model = getattr(module, name)
            if isinstance(model, type) and issubclass(model, BaseModel) and model.__module__ == module.__name__:
                examples = model.model_json_schema().get("examples")
                assert examples, f"{name} has no example"
                model.model_validate(examples[0])
                checked.append(name)
    assert {"AskRequest", "AskResponse", "FeedbackRequest", "SuggestResponse"} <= set(checked)
    assert "rerank" in models.AskRequest.model_json_schema()["examples"][0]  # a flag added later, shown too


def test_every_request_example_is_accepted_by_the_service(api):
    """What /docs "Try it out" sends, sent to the running service: each POST body's example."""
    spec = api.get("/openapi.json").json()
    sent = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if "requestBody" not in op:
                continue
            name = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            r = api.request(method, path, json=spec["components"]["schemas"][name]["examples"][0])
            assert 200 <= r.status_code < 300, (path, r.status_code, r.text)
            sent.append(name)
    assert {"AskRequest", "FeedbackRequest", "OpenedRequest", "PhrasingRequest"} <= set(sent)


def test_a_latin_script_russian_question_marks_the_cyrillic_words_it_was_searched_with(searcher):
    result = searcher.search("kak vosstanovit parol")
    assert result.query == "kak vosstanovit parol" and result.query_lang == "ru"
    assert result.searched != result.query and "пароль" in result.searched
    top = result.hits[0]
    h = highlight(question_forms(result.searched, searcher.index.synonyms), top.article, top.section)
    marks = marked(top.article.title, h.title) + marked(h.snippet, h.snippet_spans)
    assert any("парол" in m.lower() for m in marks)
    raw = highlight(question_forms(result.query, searcher.index.synonyms), top.article, top.section)
    assert not raw.title and not raw.snippet_spans  # the Latin letters themselves mark nothing
