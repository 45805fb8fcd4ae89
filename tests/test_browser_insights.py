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
