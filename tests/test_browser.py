"""The widget and the agent console in a real headless Chromium (Debian's, driven by
Playwright). Screenshots go to artifacts/."""

from __future__ import annotations

import pytest

# The browser fixtures live in conftest.py (one Chromium for the whole session); they are
# re-exported here for modules that import them from this one.
from .conftest import ARGS, ARTIFACTS, CHROMIUM, Server, browser, page, write_article  # noqa: F401

pytestmark = pytest.mark.browser


def widget(page):
    """Locators pierce the open shadow root."""
    return page.locator("#helpdesk-qa-widget")


def test_widget_search_keyboard_and_close(page, server):
    page.goto(server.url + "/?lang=de")
    launcher = page.locator("#helpdesk-qa-widget .launcher")
    launcher.wait_for()
    assert launcher.inner_text() == "Hilfe"
    panel = page.locator("#helpdesk-qa-widget .panel")
    assert panel.is_hidden()

    page.keyboard.press("/")
    box = page.locator("#helpdesk-qa-widget input")
    assert panel.is_visible() and box.evaluate("el => el.getRootNode().activeElement === el")
    box.type("Passwort vergessen", delay=20)
    first = page.locator("#helpdesk-qa-widget li.result").first
    first.wait_for()
    assert "Passwort" in first.locator(".crumb").inner_text()
    assert page.locator("#helpdesk-qa-widget li.result").count() >= 2
    page.screenshot(path=str(ARTIFACTS / "widget-desktop.png"))

    page.keyboard.press("ArrowDown")
    assert first.get_attribute("aria-selected") == "true"
    page.keyboard.press("ArrowDown")
    second = page.locator("#helpdesk-qa-widget li.result").nth(1)
    assert second.get_attribute("aria-selected") == "true" and first.get_attribute("aria-selected") == "false"
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    detail = first.locator(".detail")
    detail.wait_for()
    link = detail.locator("a.full")
    assert link.get_attribute("href").startswith("https://helpdesk.atomydoc.ru/de/account/acc-password-reset")
    # The step-by-step section of the article, rendered as a list:
    steps_section = page.locator("#helpdesk-qa-widget li.result", has_text="Schritt für Schritt")
    steps_section.first.click()
    assert steps_section.first.locator(".detail ol li").count() >= 5

    # Page CSS must not leak in: the page paints every <button> hotpink.
    color = launcher.evaluate("el => getComputedStyle(el).backgroundColor")
    assert color == "rgb(11, 92, 173)"

    # Tab keeps focus inside the open dialog.
    for _ in range(8):
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "helpdesk-qa-widget"
    page.keyboard.press("Escape")
    assert panel.is_hidden()
    assert launcher.evaluate("el => el.getRootNode().activeElement === el")  # opened from the page body
    page.keyboard.press("Control+k")
    assert panel.is_visible()
    assert launcher.get_attribute("aria-expanded") == "true"
    assert panel.get_attribute("role") == "dialog" and panel.get_attribute("aria-modal") == "true"


def test_widget_stale_responses_never_overwrite_newer_ones(page, server):
    page.goto(server.url + "/?lang=en")
    page.locator("#helpdesk-qa-widget .launcher").click()
    # Hold back the first search's answer until after the second one has arrived.
    held = []

    def handle(route):
        if "parcel" in route.request.url and not held:
            held.append(route)
        else:
            route.continue_()

    page.route("**/v1/ask?*", handle)
    box = page.locator("#helpdesk-qa-widget input")
    box.fill("where is my parcel")
    page.wait_for_timeout(400)
    box.fill("forgot my password")
    page.locator("#helpdesk-qa-widget li.result").first.wait_for()
    assert held, "the first request should have been held"
    held[0].continue_()
    page.wait_for_timeout(500)
    crumbs = page.locator("#helpdesk-qa-widget .crumb").all_inner_texts()
    assert any("password" in c.lower() for c in crumbs)
    assert not any("parcel" in c.lower() or "tracking" in c.lower() for c in crumbs)


def test_widget_no_answer_and_language_note(page, server):
    page.goto(server.url + "/?lang=ru&country=KZ")
    page.locator("#helpdesk-qa-widget .launcher").click()
    box = page.locator("#helpdesk-qa-widget input")
    box.fill("посоветуй хороший сериал")
    empty = page.locator("#helpdesk-qa-widget .empty")
    empty.wait_for()
    assert "номер участника" in empty.inner_text()
    assert "/ru/faq/faq-contact-support" in empty.locator("a.support").get_attribute("href")

    page.goto(server.url + "/?lang=de&country=KZ")
    page.locator("#helpdesk-qa-widget .launcher").click()
    page.locator("#helpdesk-qa-widget input").fill("Auszahlung auf Kaspi Gold einrichten")
    note = page.locator("#helpdesk-qa-widget li.result .note").first
    note.wait_for()
    assert "Nur verfügbar auf Russisch" in note.inner_text()


def test_widget_on_a_phone_screen(browser, server):
    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.goto(server.url + "/?lang=ru")
    page.locator("#helpdesk-qa-widget .launcher").click()
    page.locator("#helpdesk-qa-widget input").fill("как сменить центр")
    first = page.locator("#helpdesk-qa-widget li.result").first
    first.wait_for()
    first.click()
    page.locator("#helpdesk-qa-widget .detail").wait_for()
    box = page.locator("#helpdesk-qa-widget .panel").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    page.screenshot(path=str(ARTIFACTS / "widget-360.png"))
    context.close()


def test_article_markup_is_shown_as_text_and_never_runs(tmp_path, browser, encoder):
    from qa.ingest import ingest

    corpus = tmp_path / "corpus"
    hostile = (
        "Intro with <img src=x onerror=\"window.__xss=1\"> inline.\n\n"
        "## Steps with <script>window.__xss=2</script> markup\n\n"
        "1. Click <img src=x onerror=\"window.__xss=3\"> here.\n"
        "2. Then [a link](javascript:window.__xss=4) and **bold <b>tag</b>**.\n\n"
        "| <img src=x onerror=\"window.__xss=6\"> | [cell](javascript:window.__xss=7) |\n|---|---|\n"
        "| <script>window.__xss=8</script> | **<b>x</b>** |\n\n"
        "<script>window.__xss=5</script>\n"
    )
    write_article(corpus, "en", "hostile", hostile, title="Hostile zebra article")
    ingest(corpus, tmp_path / "idx", encoder)
    server = Server(tmp_path / "idx")
    context = browser.new_context()
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(server.url + "/?lang=en")
        page.locator("#helpdesk-qa-widget .launcher").click()
        page.locator("#helpdesk-qa-widget input").fill("hostile zebra steps")
        results = page.locator("#helpdesk-qa-widget li.result")
        results.first.wait_for()
        for i in range(results.count()):
            results.nth(i).click()
        page.wait_for_timeout(300)
        text = page.locator("#helpdesk-qa-widget ul.results").inner_text()
        assert "<img src=x onerror" in text and "<script>window.__xss=5</script>" in text
        counts = page.evaluate(
            """() => { const r = document.querySelector('#helpdesk-qa-widget').shadowRoot;
                       return [r.querySelectorAll('ul.results img').length, r.querySelectorAll('ul.results script').length,
                               r.querySelectorAll('a[href^="javascript"]').length]; }"""
        )
        assert counts == [0, 0, 0]
        assert page.locator("#helpdesk-qa-widget ul.results td", has_text="<script>window.__xss=8</script>").count()
        assert page.evaluate("window.__xss") is None and not dialogs

        page.goto(server.url + "/agent")
        page.fill("#q", "hostile zebra steps")
        page.locator("#results li").first.wait_for()
        page.locator(".column h3").first.wait_for()
        assert "<img src=x" in page.locator("#detail").inner_text()
        assert page.locator("#detail img, #detail script").count() == 0
        assert page.evaluate("window.__xss") is None
    finally:
        context.close()
        server.stop()


def test_agent_console_filters_translations_and_copy(page, server):
    page.goto(server.url + "/agent")
    page.locator("#country option[value=KZ]").wait_for(state="attached")
    page.fill("#q", "Способы оплаты заказа в России")
    page.locator("#results li").first.wait_for()
    page.wait_for_function("document.querySelectorAll('#results li').length > 3")
    any_country = page.locator("#results li").evaluate_all("els => els.map(e => e.dataset.countries)")
    assert "RU" in any_country

    page.select_option("#country", "KZ")
    page.wait_for_function(
        "[...document.querySelectorAll('#results li')].every(e => e.dataset.countries.split(',').some(c => c == 'ALL' || c == 'KZ'))"
    )
    kz = page.locator("#results li").evaluate_all("els => els.map(e => e.dataset.countries)")
    assert kz != any_country and "RU" not in kz

    page.select_option("#country", "")
    page.fill("#q", "Passwort vergessen")
    page.wait_for_function("document.querySelector('#results li .crumb')?.textContent.includes('Passwort')")
    page.locator(".column[data-lang=ru] h3").wait_for()
    page.locator(".column[data-lang=en] h3").wait_for()
    assert page.locator(".column").count() == 3  # the section and its translations side by side
    page.screenshot(path=str(ARTIFACTS / "agent-console.png"), full_page=True)

    page.select_option("#answer-lang", "ru")
    page.click("#copy-answer")
    copied = page.locator("#copied").inner_text()
    assert "https://helpdesk.atomydoc.ru/ru/account/acc-password-reset" in copied
    assert "Восстановление пароля" in copied or "пароль" in copied.lower()

    page.keyboard.press("Alt+l")
    assert page.locator("#copied").inner_text().startswith("https://helpdesk.atomydoc.ru/ru/")
    page.locator("#q").focus()
    page.keyboard.press("ArrowDown")
    assert page.locator("#results li").nth(1).get_attribute("aria-selected") == "true"
