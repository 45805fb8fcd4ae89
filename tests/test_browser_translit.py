"""Russian typed in Latin letters, in a real headless Chromium (Debian's, driven by
Playwright): on any page of the portal, and in the agent console, it gets Russian
results with the usual language labels. Screenshots go to artifacts/."""

from __future__ import annotations

import re

import pytest

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser
CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)


def widget_results(page, url: str, question: str):
    page.goto(url)
    page.locator("#helpdesk-qa-widget .launcher").click()
    page.locator("#helpdesk-qa-widget input").fill(question)
    results = page.locator("#helpdesk-qa-widget li.result")
    results.first.wait_for()
    return results


@pytest.mark.parametrize("page_lang", ["de", "en", "ru"])
def test_widget_answers_latin_script_russian_in_russian_on_every_page(page, server, page_lang):
    results = widget_results(page, f"{server.url}/?lang={page_lang}", "kak smenit sponsora")
    first = results.first
    assert first.get_attribute("lang") == "ru"
    crumb = first.locator(".crumb").inner_text()
    assert CYRILLIC.search(crumb) and "спонсор" in crumb.lower()
    assert all(li.get_attribute("lang") == "ru" for li in results.all())
    # The article exists in every language: no "only available in" note.
    assert first.locator(".note").count() == 0
    first.click()
    link = first.locator(".detail a.full").get_attribute("href")
    assert link.startswith("https://helpdesk.atomydoc.ru/ru/structure/str-change-sponsor")
    if page_lang == "de":
        page.screenshot(path=str(ARTIFACTS / "widget-translit-de.png"))


def test_widget_labels_an_answer_only_in_russian_in_the_pages_language(page, server):
    results = widget_results(page, f"{server.url}/?lang=de&country=KZ", "kak poluchat vyplaty na Kaspi Gold")
    kaspi = results.filter(has_text="Kaspi").first
    kaspi.wait_for()
    assert kaspi.get_attribute("lang") == "ru"
    assert "Nur verfügbar auf Russisch" in kaspi.locator(".note").inner_text()


def test_agent_console_searches_latin_script_russian_as_russian(page, server):
    page.goto(server.url + "/agent")
    page.fill("#q", "gde moya posylka")
    first = page.locator("#results li").first
    first.wait_for()
    page.wait_for_function("document.querySelector('#status').textContent.includes('query language ru')")
    assert first.locator(".meta").inner_text().startswith("RU ·")
    assert CYRILLIC.search(first.locator(".crumb").inner_text())
    page.screenshot(path=str(ARTIFACTS / "agent-translit.png"))

    # The agent says the customer writes Russian: still read in Latin letters.
    page.select_option("#lang", "ru")
    page.fill("#q", "parol zabyl")
    page.wait_for_function("document.querySelector('#results li .crumb') &&"
                           " /парол/i.test(document.querySelector('#results li .crumb').textContent)")
    assert page.locator("#results li").first.get_attribute("data-article") == "acc-password-reset"
    # ... and when the agent says German, the text is searched as typed.
    page.select_option("#lang", "de")
    page.wait_for_function("document.querySelector('#status').textContent.includes('query language de')")


def test_widget_and_console_say_what_a_misspelt_question_was_searched_as(page, server):
    results = widget_results(page, f"{server.url}/?lang=de", "Bestelung stornieren")
    status = page.locator("#helpdesk-qa-widget .status")  # in the widget's shadow root
    status.filter(has_text="bestellung").wait_for()
    assert status.inner_text() == "Ergebnisse für: bestellung stornieren"
    assert "storn" in results.first.locator(".crumb").inner_text().lower()
    page.screenshot(path=str(ARTIFACTS / "widget-typo-de.png"))
    page.locator("#helpdesk-qa-widget input").fill("Bestellung stornieren")  # spelt right: no such line
    status.filter(has_text="für").wait_for(state="detached")
    page.goto(server.url + "/agent")
    page.fill("#q", "Bestelung stornieren")
    page.wait_for_function("document.querySelector('#status').textContent.includes('searched as')")
    assert "searched as \u201cbestellung stornieren\u201d" in page.locator("#status").inner_text()
