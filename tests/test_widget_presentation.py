"""How article text and the demo portal read in a real browser (issue 8, presentation):
snippets are plain text, an expanded section renders its tables and lists, and the
demo portal is entirely in the chosen language."""

from __future__ import annotations

import re

import pytest

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser

# Markdown that must not survive into a snippet: table rows and rules, backticks, bold
# markers, list markers, heading markers.
MARKUP = re.compile(r"\||`|(?<!\*)\*\*(?!\*)|(^|\s)[-+] |(^|\s)#{1,6} |^\d+[.)] ")

# The worked example in pay-statement, a Markdown table in each language.
TABLES = {
    "ru": ("пример расчёта по выписке", "Пример расчёта по выписке", ["Строка", "Сумма"],
           ["Еженедельный бонус, 07.10–13.10.2026", "3 200 ₽"], ["К выплате 20.10.2026", "3 450 ₽"]),
    "de": ("Rechenbeispiel Bonusübersicht", "Rechenbeispiel aus der Bonusübersicht", ["Zeile", "Betrag"],
           ["Wochenbonus, 07.10.–13.10.2026", "64,00 EUR"], ["Zur Auszahlung am 20.10.2026", "62,50 EUR"]),
    "en": ("worked example bonus statement", "Worked example from a bonus statement", ["Line", "Amount"],
           ["Weekly bonus, 07.10–13.10.2026", "64.00 EUR"], ["Amount due on 20.10.2026", "62.50 EUR"]),
}


def search(page, url, query):
    page.goto(url)
    page.locator("#helpdesk-qa-widget .launcher").click()
    page.locator("#helpdesk-qa-widget input").fill(query)
    page.locator("#helpdesk-qa-widget li.result").first.wait_for()


@pytest.mark.parametrize("lang", TABLES)
def test_table_section_reads_as_text_in_the_snippet_and_as_a_table_when_expanded(lang, page, server):
    query, section, header, first, last = TABLES[lang]
    search(page, f"{server.url}/?lang={lang}", query)
    result = page.locator("#helpdesk-qa-widget li.result", has=page.locator(".crumb", has_text=section)).first
    result.wait_for()

    for text in page.locator("#helpdesk-qa-widget li.result .snippet").all_inner_texts():
        assert not MARKUP.search(text), text
    assert " – ".join(first) in result.locator(".snippet").inner_text()  # a row reads "cell – cell"

    result.click()
    table = result.locator(".detail table")
    table.wait_for()
    assert table.locator("thead th").all_inner_texts() == header
    rows = [row.locator("td").all_inner_texts() for row in table.locator("tbody tr").all()]
    assert len(rows) == 4 and rows[0] == first and rows[-1] == last
    assert table.locator("tbody tr").last.locator("td strong").count() == 2  # **bold** cells
    detail = result.locator(".detail").inner_text()
    assert "|" not in detail and "**" not in detail and "---" not in detail
    result.screenshot(path=str(ARTIFACTS / f"widget-table-{lang}.png"))


def test_nested_list_stays_inside_its_step_and_escapes_resolve(page, server):
    search(page, f"{server.url}/?lang=de", "Status meiner Anfrage prüfen")
    result = page.locator("#helpdesk-qa-widget li.result",
                          has=page.locator(".crumb", has_text="So prüfen Sie den Status einer Anfrage")).first
    result.click()
    md = result.locator(".detail .md")
    md.wait_for()
    # One list of 4 steps; the 4 statuses are a list inside step 3, not a new list that
    # restarts the numbering.
    assert md.locator(":scope > ol").count() == 1
    assert md.locator(":scope > ol > li").count() == 4
    assert md.locator(":scope > ol > li:nth-child(3) > ul > li").count() == 4
    assert md.locator(":scope > ol > li").nth(3).inner_text().startswith("Öffnen Sie die Anfrage")

    # "Mül\*\*\*r A." is an escaped masked name: shown as Mül***r, without backslashes.
    search(page, f"{server.url}/?lang=de", "Sponsornummer bei der Registrierung prüfen")
    result = page.locator("#helpdesk-qa-widget li.result",
                          has=page.locator(".crumb", has_text="Sponsornummer bei der Registrierung prüfen")).first
    result.click()
    assert "„Mül***r A.“" in result.locator(".detail").inner_text()
    assert "\\" not in result.locator(".detail").inner_text()


def test_markdown_reader_on_edge_cases(page, server):
    """The shared reader (widget and agent console) on what the corpus may hold next:
    aligned columns, an escaped pipe, code and a hostile cell; a loose list; a fence."""
    page.goto(server.url + "/agent")
    page.wait_for_function("window.HelpdeskQA")
    md = (
        "Intro `code` and a ** stray marker and a ` stray tick.\n\n"
        "| Name | Amount | Note |\n|:---|---:|:-:|\n"
        "| a \\| b | `10` | <img src=x onerror=\"window.__xss=1\"> [x](javascript:window.__xss=2) |\n"
        "| [ok](https://example.org/a) | **5** |\n\n"
        "1. first\n\n2. second\n   continued\n\n   a paragraph of step 2\n7. seventh\n\n"
        "```\n<b>literal</b> | not a table |\n```\n"
    )
    out = page.evaluate(
        """md => { const root = window.HelpdeskQA.renderMarkdown(md); document.body.appendChild(root);
                   const cells = [...root.querySelectorAll('tbody tr')]
                       .map(r => [...r.children].map(c => c.textContent));
                   return { cells, align: [...root.querySelectorAll('thead th')].map(c => c.style.textAlign),
                            links: [...root.querySelectorAll('a')].map(a => a.href),
                            imgs: root.querySelectorAll('img').length,
                            steps: [...root.querySelectorAll(':scope > ol > li')].map(li => li.textContent),
                            pre: root.querySelector('pre').textContent, plain: window.HelpdeskQA.plain(md),
                            text: root.textContent }; }""",
        md,
    )
    assert out["cells"] == [["a | b", "10", '<img src=x onerror="window.__xss=1"> x'], ["ok", "5", ""]]
    assert out["align"] == ["", "right", "center"]
    assert out["links"] == ["https://example.org/a"] and out["imgs"] == 0
    assert out["steps"] == ["first", "second continueda paragraph of step 2", "seventh"]
    assert out["pre"] == "<b>literal</b> | not a table |"
    assert "**" not in out["text"] and "`" not in out["text"]
    plain = out["plain"]
    assert plain.startswith("Intro code and a stray marker and a stray tick. a | b – 10 – <img")
    assert "ok – 5." in plain and "first second continued a paragraph of step 2 seventh" in plain
    assert page.evaluate("window.__xss") is None


PORTAL = {
    "de": (
        "Atomy Hilfe – Demo",
        "Wie können wir helfen?",
        ["Registrierung", "Mein Konto", "Bestellungen & Lieferung", "Auszahlungen", "Verifizierung", "Struktur", "FAQ"],
        "Einbinden",
        ["Agent-Konsole", "API-Dokumentation"],
        "Hilfe",
    ),
    "ru": (
        "Помощь Atomy – демо",
        "Чем мы можем помочь?",
        ["Регистрация", "Личный кабинет", "Заказы и доставка", "Выплаты", "Верификация", "Структура", "Частые вопросы"],
        "Как встроить",
        ["Консоль оператора", "Документация API"],
        "Помощь",
    ),
    "en": (
        "Atomy Help – demo",
        "How can we help?",
        ["Registration", "My account", "Orders & delivery", "Payouts", "Verification", "Structure", "FAQ"],
        "Embedding",
        ["Agent console", "API docs"],
        "Help",
    ),
}
# German words of the portal and the widget that must be gone on the ru and en pages
# (the language switcher's "Deutsch" names the German page and stays).
GERMAN = ["Hilfe", "Wie können", "Klicken Sie", "Registrierung", "Konto", "Bestellungen", "Auszahlungen",
          "Verifizierung", "Struktur", "Einbinden", "Eine Zeile", "Konsole", "Dokumentation", "Sprache",
          "Beschreiben Sie", "Schließen", "Ergebnisse"]
ALL_TEXT = """() => {
  const shadow = [...document.querySelector('#helpdesk-qa-widget').shadowRoot.querySelectorAll(':not(style)')];
  const attrs = [...document.querySelectorAll('*'), ...shadow]
    .flatMap(e => ['aria-label', 'placeholder', 'title'].map(a => e.getAttribute(a) || ''));
  return [document.title, document.body.innerText, ...shadow.map(e => e.textContent), ...attrs].join('\\n');
}"""


@pytest.mark.parametrize("query,lang", [("", "de"), ("?lang=de", "de"), ("?lang=ru", "ru"), ("?lang=en", "en")])
def test_demo_portal_is_entirely_in_the_chosen_language(query, lang, page, server):
    title, headline, tiles, embed, links, launcher = PORTAL[lang]
    page.goto(server.url + "/" + query)
    page.locator("#helpdesk-qa-widget .launcher").wait_for()
    assert page.evaluate("document.documentElement.lang") == lang
    assert page.title() == title
    assert page.locator("h1").inner_text() == headline
    assert page.locator(".cats button.tile").all_inner_texts() == tiles
    assert page.locator("main h2").inner_text() == embed
    assert page.locator("main p a").all_inner_texts() == links
    assert page.locator("#helpdesk-qa-widget .launcher").inner_text() == launcher
    assert f'data-lang="{lang}"' in page.locator("#snippet").inner_text()
    if lang != "de":
        text = page.evaluate(ALL_TEXT)
        assert not [w for w in GERMAN if w in text], text
        page.screenshot(path=str(ARTIFACTS / f"portal-{lang}.png"))
