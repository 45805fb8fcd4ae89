"""The widget and the agent console in a real headless Chromium (Debian's, driven by
Playwright). Screenshots go to artifacts/."""

from __future__ import annotations

import pytest

from qa.events.sqlite import SQLiteStore

# The browser fixtures live in conftest.py (one Chromium for the whole session); they are
# re-exported here for modules that import them from this one.
from .conftest import ARGS, ARTIFACTS, CHROMIUM, ROOT, Server, browser, page, write_article  # noqa: F401
from .eventgen import GAPS, generate

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
        if "parcel" in (route.request.post_data or route.request.url) and not held:
            held.append(route)
        else:
            route.continue_()

    page.route("**/v1/ask*", handle)  # the widget asks by POST: the question is in the body
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
                       return [r.querySelectorAll('ul.results img').length,
                               r.querySelectorAll('ul.results script').length,
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
        "[...document.querySelectorAll('#results li')]"
        ".every(e => e.dataset.countries.split(',').some(c => c == 'ALL' || c == 'KZ'))"
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


# -- feedback, insights and the loop to the articles -------------------------------------
# Ask in the widget, open a result, answer "No" with the keyboard, and find the vote on
# /insights (behind the admin token), over a few days of generated events
# (screenshot: artifacts/insights.png); the gaps panel; "copy as phrasing".
INSIGHTS_TOKEN = "browser-admin-token"


@pytest.fixture(scope="module")
def insights_server(sample_index_dir, tmp_path_factory):
    data = tmp_path_factory.mktemp("insights-data")
    store = SQLiteStore(data / "events.sqlite3")
    generate(store, days=6, per_day=40)
    store.close()
    s = Server(sample_index_dir, {"HELPDESK_QA_ADMIN_TOKEN": INSIGHTS_TOKEN, "HELPDESK_QA_DATA_DIR": str(data)})
    yield s
    s.stop()


def open_insights(page, url):
    page.goto(url + "/insights")
    page.locator("#login").wait_for()  # 401: the page asks for the token
    page.fill("#token", "wrong")
    page.click("#login button")
    page.wait_for_function("document.querySelector('#login-error').textContent.includes('not accepted')")
    page.fill("#token", INSIGHTS_TOKEN)
    page.click("#login button")
    page.locator("#main").wait_for()


def test_ask_open_say_no_and_see_it_on_insights(page, insights_server):
    url = insights_server.url
    page.goto(url + "/?lang=de")
    page.locator("#helpdesk-qa-widget .launcher").click()
    page.locator("#helpdesk-qa-widget input").type("wo ist mein Paket", delay=30)
    first = page.locator("#helpdesk-qa-widget li.result").first
    first.wait_for()
    page.wait_for_function(
        "document.querySelector('#helpdesk-qa-widget').shadowRoot"
        ".querySelector('li.result .crumb').textContent.includes('Paket')"
    )
    first.click()
    box = first.locator(".feedback")
    box.wait_for()
    assert box.inner_text().startswith("Hat diese Antwort geholfen?")
    assert box.locator("button").all_inner_texts() == ["Ja", "Nein"]
    page.screenshot(path=str(ARTIFACTS / "widget-feedback.png"))

    # Keyboard only: Tab to "Nein", Enter.
    for _ in range(15):
        page.keyboard.press("Tab")
        if (
            page.evaluate("document.querySelector('#helpdesk-qa-widget').shadowRoot.activeElement?.className")
            == "vote no"
        ):
            break
    else:
        pytest.fail("the No button is not reachable with Tab")
    page.keyboard.press("Enter")
    assert box.inner_text() == "Danke für Ihr Feedback!"
    assert (
        page.evaluate("document.querySelector('#helpdesk-qa-widget').shadowRoot.activeElement?.className") == "thanks"
    )
    first.locator(".crumb").click()  # collapse and open again: asked once per answer
    first.locator(".crumb").click()
    assert first.locator(".feedback").inner_text() == "Danke für Ihr Feedback!"
    article = "ord-tracking"

    open_insights(page, url)
    row = page.locator("#recent tbody tr").first
    row.wait_for()
    assert "wo ist mein Paket" in row.inner_text() and article in row.inner_text() and row.inner_text().endswith("no")
    assert article in page.locator("#not-helpful").inner_text()


def test_insights_page_shows_the_overview_with_charts(page, insights_server):
    page.set_viewport_size({"width": 1280, "height": 900})
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    open_insights(page, insights_server.url)
    assert page.locator("#per-day svg g.day").count() == 8  # 7 days back and today
    assert page.locator("#gaps details.group").count() == len(GAPS)
    assert page.locator("#by-lang svg rect").count() == 3
    assert page.locator("#top tbody tr").count() >= 5
    labels = page.locator("#gaps summary b").all_inner_texts()
    assert all(any(label in {t for t, _ in gap} for gap in GAPS) for label in labels)
    page.locator("#gaps details.group").first.locator("summary").click()
    page.locator("#phrasings details.gap").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "insights.png"), full_page=True)
    # nothing from another host (no CDN): every request went to the service itself
    assert requested and all(u.startswith(insights_server.url + "/") for u in requested), requested
    page.select_option("#since", "1d")
    page.wait_for_function("document.querySelectorAll('#per-day svg g.day').length === 2")


def test_gaps_panel_offers_nearest_articles_and_a_block_to_paste(page, insights_server):
    open_insights(page, insights_server.url)
    page.locator("#phrasings details.gap").first.wait_for()
    unanswered = page.locator("#phrasings details.gap[data-kind=unanswered]")
    assert unanswered.count() == len(GAPS)
    assert page.locator("#phrasings details.gap[data-kind=not_helpful]").count() >= 1
    gap = unanswered.first
    gap.locator("summary").click()
    block = gap.locator("pre.yaml").first
    block.wait_for()
    gap.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "insights-gaps.png"))
    assert block.inner_text().startswith("# corpus/") and "\nquestions:\n  - " in block.inner_text()
    options = gap.locator("select.pick option")
    assert 1 <= options.count() <= 3
    if options.count() > 1:
        second = options.nth(1).get_attribute("value")
        gap.locator("select.pick").select_option(second)
        page.wait_for_function(
            "id => [...document.querySelectorAll('#phrasings details.gap[data-kind=unanswered]')][0]"
            ".querySelector('pre.yaml')?.textContent.includes('/' + id + '.md')", arg=second)


def test_agent_copies_a_question_as_a_phrasing(page, insights_server):
    page.goto(insights_server.url + "/agent")
    assert page.locator("#insights-link").get_attribute("href") == "/insights"
    page.fill("#q", "Lieferadresse lässt sich nicht ändern")
    page.locator("#results li").first.wait_for()
    page.locator(".column h3").first.wait_for()
    article = page.locator("#results li").first.get_attribute("data-article")
    page.select_option("#answer-lang", "de")
    page.click("#copy-phrasing")
    page.wait_for_function("document.querySelector('#copied').textContent.includes('questions:')")
    copied = page.locator("#copied").inner_text()
    assert f"/{article}.md" in copied and copied.startswith("# corpus/de/")
    assert '  - "Lieferadresse lässt sich nicht ändern"' in copied
    page.fill("#q", "Meine Nummer 0171 1234567 ändern")  # personal data: redacted, not offered
    page.wait_for_function("document.querySelector('#results li .crumb')")
    page.wait_for_timeout(400)
    page.locator("#q").focus()
    page.keyboard.press("Alt+p")
    page.wait_for_function("document.querySelector('#copied').textContent.startsWith('Not usable')")
    assert "[phone]" in page.locator("#copied").inner_text()
