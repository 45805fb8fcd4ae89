"""Feedback and insights in a real headless Chromium: ask in the widget, open a result,
answer "No" with the keyboard, and find the vote on /insights (behind the admin
token), over a few days of generated events. Screenshot: artifacts/insights.png."""

from __future__ import annotations

import pytest

from qa.store import SQLiteStore

from .conftest import Server
from .eventgen import GAPS, generate
from .test_browser import ARTIFACTS, browser, page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser
TOKEN = "browser-admin-token"


@pytest.fixture(scope="module")
def insights_server(sample_index_dir, tmp_path_factory):
    data = tmp_path_factory.mktemp("insights-data")
    store = SQLiteStore(data / "events.sqlite3")
    generate(store, days=6, per_day=40)
    store.close()
    s = Server(sample_index_dir, {"HELPDESK_QA_ADMIN_TOKEN": TOKEN, "HELPDESK_QA_DATA_DIR": str(data)})
    yield s
    s.stop()


def open_insights(page, url):
    page.goto(url + "/insights")
    page.locator("#login").wait_for()  # 401: the page asks for the token
    page.fill("#token", "wrong")
    page.click("#login button")
    page.wait_for_function("document.querySelector('#login-error').textContent.includes('not accepted')")
    page.fill("#token", TOKEN)
    page.click("#login button")
    page.locator("#main").wait_for()


def test_ask_open_say_no_and_see_it_on_insights(page, insights_server):  # noqa: F811
    url = insights_server.url
    page.goto(url + "/?lang=de")
    page.locator("#helpdesk-qa-widget .launcher").click()
    page.locator("#helpdesk-qa-widget input").type("wo ist mein Paket", delay=30)
    first = page.locator("#helpdesk-qa-widget li.result").first
    first.wait_for()
    page.wait_for_function(
        "document.querySelector('#helpdesk-qa-widget').shadowRoot.querySelector('li.result .crumb').textContent.includes('Paket')")
    first.click()
    box = first.locator(".feedback")
    box.wait_for()
    assert box.inner_text().startswith("Hat diese Antwort geholfen?")
    assert box.locator("button").all_inner_texts() == ["Ja", "Nein"]
    page.screenshot(path=str(ARTIFACTS / "widget-feedback.png"))

    # Keyboard only: Tab to "Nein", Enter.
    for _ in range(15):
        page.keyboard.press("Tab")
        if page.evaluate("document.querySelector('#helpdesk-qa-widget').shadowRoot.activeElement?.className") == "vote no":
            break
    else:
        pytest.fail("the No button is not reachable with Tab")
    page.keyboard.press("Enter")
    assert box.inner_text() == "Danke für Ihr Feedback!"
    assert page.evaluate("document.querySelector('#helpdesk-qa-widget').shadowRoot.activeElement?.className") == "thanks"
    first.locator(".crumb").click()  # collapse and open again: asked once per answer
    first.locator(".crumb").click()
    assert first.locator(".feedback").inner_text() == "Danke für Ihr Feedback!"
    article = "ord-tracking"

    open_insights(page, url)
    row = page.locator("#recent tbody tr").first
    row.wait_for()
    assert "wo ist mein Paket" in row.inner_text() and article in row.inner_text() and row.inner_text().endswith("no")
    assert article in page.locator("#not-helpful").inner_text()


def test_insights_page_shows_the_overview_with_charts(page, insights_server):  # noqa: F811
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
    page.screenshot(path=str(ARTIFACTS / "insights.png"), full_page=True)
    # nothing from another host (no CDN): every request went to the service itself
    assert requested and all(u.startswith(insights_server.url + "/") for u in requested), requested
    page.select_option("#since", "1d")
    page.wait_for_function("document.querySelectorAll('#per-day svg g.day').length === 2")


def test_gaps_panel_offers_nearest_articles_and_a_block_to_paste(page, insights_server):  # noqa: F811
    open_insights(page, insights_server.url)
    page.locator("#phrasings details.gap").first.wait_for()
    unanswered = page.locator("#phrasings details.gap[data-kind=unanswered]")
    assert unanswered.count() == len(GAPS)
    assert page.locator("#phrasings details.gap[data-kind=not_helpful]").count() >= 1
    gap = unanswered.first
    gap.locator("summary").click()
    block = gap.locator("pre.yaml").first
    block.wait_for()
    assert block.inner_text().startswith("# corpus/") and "\nquestions:\n  - " in block.inner_text()
    options = gap.locator("select.pick option")
    assert 1 <= options.count() <= 3
    if options.count() > 1:
        second = options.nth(1).get_attribute("value")
        gap.locator("select.pick").select_option(second)
        page.wait_for_function(
            "id => [...document.querySelectorAll('#phrasings details.gap[data-kind=unanswered]')][0]"
            ".querySelector('pre.yaml')?.textContent.includes('/' + id + '.md')", arg=second)


def test_agent_copies_a_question_as_a_phrasing(page, insights_server):  # noqa: F811
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
