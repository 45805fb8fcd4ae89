"""Issue 22 in a real headless Chromium: a rule pinning and expiring, suggestions from the
keyboard, marks (with a hostile article and a hostile question), the explanation panel,
and the rough edges a new user hit. Screenshots go to artifacts/."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from qa.events.sqlite import SQLiteStore
from qa.events.store import FeedbackEvent, QueryEvent
from qa.ingest import ingest

from .conftest import ARTIFACTS, Server, browser, page, write_article  # noqa: F401
from .test_browser import insights_server, open_insights  # noqa: F401
from .test_rules import parcel_corpus

pytestmark = pytest.mark.browser
SHADOW = "document.querySelector('#helpdesk-qa-widget').shadowRoot"


def open_widget(page, url):
    page.goto(url)
    page.locator("#helpdesk-qa-widget .launcher").click()
    return page.locator("#helpdesk-qa-widget input")


def no_markup(page, where: str) -> list[int]:
    return page.evaluate(f"""() => {{ const r = {where};
        return [r.querySelectorAll('img').length, r.querySelectorAll('script').length,
                r.querySelectorAll('b').length]; }}""")


# -- a small corpus of our own: parcels, passwords, a hostile article -------------------
HOSTILE_TITLE = "Zebra <img src=x onerror=\"window.__xss=1\"> guide"
HOSTILE_QUESTION = "zebra crossing clear <svg/onload=\"alert(3)\"><b>now</b>"


@pytest.fixture(scope="module")
def own(tmp_path_factory, encoder):
    folder = parcel_corpus(tmp_path_factory.mktemp("b22") / "corpus")
    write_article(folder, "en", "zebra",
                  "Intro <script>window.__xss=2</script>.\n\n## Zebra crossing <b>steps</b>\n\n"
                  "1. Walk to the kerb <img src=x onerror=\"window.__xss=4\">.\n"
                  "2. Wait until the zebra crossing is clear.\n3. Cross.\n", title=HOSTILE_TITLE)
    steps = [f"{n}. Unfold panel {n} and let the fabric settle for a moment before you go on to the next one."
             for n in range(1, 17)]
    steps[13] = "14. Press the brass latch under the canopy until it clicks."
    write_article(folder, "en", "umbrella", "Intro.\n\n## Opening the garden umbrella\n\n" + "\n".join(steps) + "\n",
                  title="Garden umbrella", category="account")
    out = folder.parent / "idx"
    ingest(folder, out, encoder)
    server = Server(out)
    yield folder, out, server
    server.stop()


def test_a_rule_pins_then_expires_in_widget_and_console(browser, own, encoder):
    folder, out, server = own
    until = datetime.now(UTC) + timedelta(seconds=40)
    (folder / "rules.yaml").write_text(
        "- name: lockers-outage\n  when: {query: [parcel]}\n  pin: ord-tracking#parcel-lockers\n"
        f"  until: {until.isoformat(timespec='seconds')}\n"
        "- name: old-rule\n  when: {query: [parcel]}\n  pin: acc-password\n  until: 2020-01-31\n", encoding="utf-8")
    ingest(folder, out, encoder)  # the running service reloads the index, and the rules with it
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    try:
        box = open_widget(page, server.url + "/?lang=en")
        crumbs = page.locator("#helpdesk-qa-widget li.result .crumb")
        deadline = time.time() + 20
        while time.time() < deadline:
            box.fill("")
            box.fill("where is my parcel")
            page.wait_for_timeout(700)
            if crumbs.count() and "Parcel lockers" in crumbs.first.inner_text():
                break
        assert "Parcel lockers" in crumbs.first.inner_text(), "the pin did not arrive with the new index"
        page.screenshot(path=str(ARTIFACTS / "rule-pinned-widget.png"))

        page.goto(server.url + "/agent")
        page.fill("#q", "where is my parcel")
        page.locator("#results li").first.wait_for()
        first = page.locator("#results li").first
        assert first.get_attribute("data-rule") == "lockers-outage"
        assert first.locator(".rule").inner_text() == "rule: lockers-outage"
        assert "rule lockers-outage: pinned ord-tracking#parcel-lockers at position 1" in page.inner_text("#status")
        assert "old-rule" not in page.inner_text("#status")  # expired: it does nothing
        page.keyboard.press("Alt+e")
        assert "lockers-outage" in page.locator("#why tr[data-key=rule]").inner_text()
        page.screenshot(path=str(ARTIFACTS / "rule-pinned-console.png"))

        page.wait_for_timeout(max(0.0, (until - datetime.now(UTC)).total_seconds() + 1) * 1000)
        page.fill("#q", "where is my parcel now")  # a new search after the rule's end
        page.wait_for_function("document.querySelector('#status').textContent.includes('sections')"
                               " && !document.querySelector('#status').textContent.includes('rule')")
        assert page.locator("#results li").first.get_attribute("data-rule") == ""
        assert page.locator("#results .rule").count() == 0
        page.screenshot(path=str(ARTIFACTS / "rule-expired-console.png"))
    finally:
        context.close()


def test_a_long_section_opens_scrolled_to_its_best_step(page, own):
    box = open_widget(page, own[2].url + "/?lang=en")
    box.fill("garden umbrella brass latch")
    first = page.locator("#helpdesk-qa-widget li.result").first
    first.wait_for()
    assert "Garden umbrella" in first.locator(".crumb").inner_text()
    first.click()
    best = first.locator(".detail .best")
    best.wait_for()
    assert best.inner_text().startswith("Press the brass latch")  # step 14 of 16
    results = page.locator("#helpdesk-qa-widget ul.results")
    assert results.evaluate("ul => ul.scrollTop") > 0  # scrolled: step 14 is far below the title
    view, step = results.bounding_box(), best.bounding_box()
    assert view["y"] <= step["y"] and step["y"] + step["height"] <= view["y"] + view["height"], (view, step)
    page.screenshot(path=str(ARTIFACTS / "expanded-long-section-best-step.png"))


def test_marks_with_a_hostile_article_and_question(page, own):
    server = own[2]
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    box = open_widget(page, server.url + "/?lang=en")
    box.fill(HOSTILE_QUESTION)
    result = page.locator("#helpdesk-qa-widget li.result", has_text="Zebra crossing").first
    result.wait_for()
    marks = result.locator(".crumb mark").all_inner_texts()
    assert "Zebra" in marks and "Zebra crossing" in marks  # in the article title and the section title
    assert "<img src=x" in result.locator(".crumb").inner_text()  # the markup is text
    result.click()
    best = result.locator(".detail .best")
    best.wait_for()
    assert "Wait until the zebra crossing is clear" in best.inner_text()  # opened on the best step
    assert no_markup(page, SHADOW + ".querySelector('ul.results')") == [0, 0, 0]
    page.screenshot(path=str(ARTIFACTS / "marks-hostile-widget.png"))

    page.goto(server.url + "/agent")
    page.fill("#q", HOSTILE_QUESTION)
    page.locator("#results li mark").first.wait_for()
    assert "Zebra" in page.locator("#results li").first.locator("mark").all_inner_texts()
    page.locator(".column .best").first.wait_for()
    assert no_markup(page, "document.querySelector('main')") == [0, 0, 0]
    assert page.evaluate("window.__xss") is None and not dialogs
    page.screenshot(path=str(ARTIFACTS / "marks-hostile-console.png"))


def test_the_explanation_panel_is_one_key_away(page, server):
    page.goto(server.url + "/agent")
    page.fill("#q", "Passwort vergessen")
    page.locator(".column h3").first.wait_for()
    why = page.locator("#why")
    assert why.is_hidden()
    page.keyboard.press("Alt+e")
    assert why.is_visible()
    keys = why.locator("tr").evaluate_all("rows => rows.map(r => r.dataset.key)")
    for key in ("dense", "lexical_bm25", "phrasing", "article_context", "country_lift", "rule", "second_stage"):
        assert key in keys
    assert float(why.locator("tr[data-key=dense] td").inner_text()) > 0
    score = float(why.locator("tr[data-key=score] td").inner_text())
    assert abs(score - float(page.locator("#results li .score").first.inner_text())) < 1e-3
    page.keyboard.press("ArrowDown")  # the next result: its own evidence, the panel stays open
    page.wait_for_function("document.querySelector('#results li:nth-child(2)').getAttribute('aria-selected') == 'true'")
    assert page.locator("#why").is_visible()
    page.screenshot(path=str(ARTIFACTS / "explain-console.png"))
    page.keyboard.press("Alt+e")
    assert page.locator("#why").is_hidden()


# -- suggestions ------------------------------------------------------------------------
def _asked(store, text: str, n: int, answered: bool = True, opened: bool = True) -> None:
    now = time.time()
    queries, feedback = [], []
    for i in range(n):  # an hour apart: different members (one sitting counts once)
        qid, ts = f"{abs(hash((text, i))):032x}"[-32:].rjust(32, "0"), now - i * 3600
        queries.append(QueryEvent(qid, ts, text, "de", "DE", "", answered, "ord-tracking", "", 0.6, 2.0, None))
        if opened:
            feedback.append(FeedbackEvent(qid, "opened", "ord-tracking", "", 1, None, ts))
    store.write(queries, feedback)


@pytest.fixture(scope="module")
def suggest_server(sample_index_dir, tmp_path_factory):
    data = tmp_path_factory.mktemp("suggest-browser")
    store = SQLiteStore(data / "events.sqlite3")
    _asked(store, "wo ist mein Paket", 4)
    _asked(store, "Paket verloren [phone]", 5)  # stored redacted: personal, never offered
    _asked(store, "Paket im Urlaub verloren gegangen", 1)  # one member's question
    _asked(store, "Paketpreis für Pizza", 4, answered=False)  # unanswered
    store.close()
    server = Server(sample_index_dir, {"HELPDESK_QA_DATA_DIR": str(data)})
    yield server
    server.stop()


def test_suggestions_from_the_keyboard(page, suggest_server):
    page.goto(suggest_server.url + "/?lang=de")
    page.keyboard.press("/")
    items = page.locator("#helpdesk-qa-widget li.suggestion")
    items.first.wait_for()
    assert page.locator("#helpdesk-qa-widget .suggest-head").inner_text().lower() == "häufig gefragt"
    assert items.first.inner_text() == "wo ist mein Paket" and items.first.get_attribute("data-source") == "asked"
    texts = " | ".join(items.all_inner_texts())
    for never in ("[phone]", "Urlaub", "Pizza"):
        assert never not in texts
    page.screenshot(path=str(ARTIFACTS / "suggestions-empty-box.png"))
    page.keyboard.press("ArrowDown")
    assert items.first.get_attribute("aria-selected") == "true"
    page.keyboard.press("Enter")
    box = page.locator("#helpdesk-qa-widget input")
    assert box.input_value() == "wo ist mein Paket"
    page.locator("#helpdesk-qa-widget li.result").first.wait_for()
    assert "Paket" in page.locator("#helpdesk-qa-widget li.result .crumb").first.inner_text()

    box.fill("")
    box.type("passw", delay=30)
    page.wait_for_function(SHADOW + ".querySelector('.suggest-head')?.textContent == 'Vorschläge'")
    first = items.first.inner_text()
    assert "passw" in first.lower()
    page.screenshot(path=str(ARTIFACTS / "suggestions-typing.png"))
    # Below the results, in the same keyboard order: ↓ goes through the results, then on.
    for _ in range(page.locator("#helpdesk-qa-widget li.result").count() + 1):
        page.keyboard.press("ArrowDown")
    assert items.first.get_attribute("aria-selected") == "true"
    page.keyboard.press("Enter")
    assert box.input_value() == first
    page.locator("#helpdesk-qa-widget li.result").first.wait_for()


# The widget's two requests per question: as-you-type (first stage, 200 ms pause) and the
# final one (rerank=true, 600 ms pause or Enter). The page's clock is paused and moved by
# hand, and the first-stage requests are held until the test lets them go: the orders a
# slow service or a busy phone produce, made certain.
HOLD_FIRST_STAGE = """
window.__held = []; window.__hold = true;
var realFetch = window.fetch;
window.fetch = function (url, opts) {
  var final = opts && opts.body && JSON.parse(opts.body).rerank;
  if (!String(url).endsWith('/v1/ask') || !window.__hold || final) return realFetch(url, opts);
  return new Promise(function (resolve, reject) {
    window.__held.push(function () { realFetch(url, opts).then(resolve, reject); });
    if (opts.signal) opts.signal.addEventListener('abort', function () {
      reject(new DOMException('aborted', 'AbortError')); });
  });
};
window.__release = function () { window.__hold = false; window.__held.splice(0).forEach(function (go) { go(); }); };
"""


def paused_widget(page, url):
    page.add_init_script(HOLD_FIRST_STAGE)
    page.clock.install()
    box = open_widget(page, url)
    page.clock.pause_at(int(time.time() * 1000) + 60_000)
    return box


def test_the_final_question_never_loses_the_results(page, server):
    """A service without a second stage; results must come whatever order the two
    requests of a question end in."""
    box = paused_widget(page, server.url + "/?lang=de")
    results = page.locator("#helpdesk-qa-widget li.result")
    asked = []
    page.on("request", lambda r: asked.append(json.loads(r.post_data)) if r.url.endswith("/v1/ask") else None)
    # 1. The first stage is slower than the 600 ms pause: the final request overtakes it.
    box.fill("Passwort vergessen")
    page.clock.run_for(250)  # the first stage is asked (and held)
    page.clock.run_for(400)  # the final question is asked; its answer comes first
    results.first.wait_for(timeout=10_000)
    assert "Passwort" in results.first.inner_text()
    page.evaluate("window.__release()")
    page.wait_for_function("document.querySelector('#helpdesk-qa-widget').shadowRoot"
                           ".querySelector('.status').textContent === ''")
    # 2. Enter right after typing, on a service now known to have no second stage:
    # the question is asked once, as it is.
    box.fill("wo ist mein Paket")
    box.press("Enter")
    results.first.wait_for()
    page.wait_for_function(SHADOW + ".querySelector('li.result .crumb').textContent.includes('Paket')")
    page.clock.run_for(1000)
    assert [a["question"] for a in asked].count("wo ist mein Paket") == 1
    page.screenshot(path=str(ARTIFACTS / "final-question-results.png"))


def test_a_vote_holds_when_the_final_answer_comes_after_it(page, server):
    """The final answer (a new query id) arrives after the member voted: the section,
    opened again, still says thank you instead of asking again."""
    box = paused_widget(page, server.url + "/?lang=de")
    page.evaluate("window.__release()")  # the first stage answers at once here
    box.fill("wo ist mein Paket")
    page.clock.run_for(250)
    first = page.locator("#helpdesk-qa-widget li.result").first
    first.wait_for()
    first.locator(".crumb").click()
    first.locator(".feedback button.no").click()
    with page.expect_response(lambda r: r.url.endswith("/v1/ask") and "rerank" in (r.request.post_data or "")):
        page.clock.run_for(400)  # the typing pause's final question
    time.sleep(0.5)  # the page handles the answer (its clock is paused, real time is not)
    first.locator(".crumb").click()  # collapse and open again
    first.locator(".crumb").click()
    assert first.locator(".feedback").inner_text() == "Danke für Ihr Feedback!"


def test_a_picked_suggestion_is_not_lost_to_the_typing_pause(page, server):
    box = paused_widget(page, server.url + "/?lang=de")
    box.fill("passw")
    page.clock.run_for(250)  # the typed text's suggestions (and a held first-stage request)
    page.wait_for_function(SHADOW + ".querySelector('.suggest-head')?.textContent == 'Vorschläge'")
    suggestion = page.locator("#helpdesk-qa-widget li.suggestion").first
    picked = suggestion.inner_text()
    while suggestion.get_attribute("aria-selected") != "true":
        box.press("ArrowDown")
    box.press("Enter")  # picked before the typing pause's final request (600 ms) was due
    page.clock.run_for(1000)
    page.evaluate("window.__release()")
    page.locator("#helpdesk-qa-widget li.result").first.wait_for(timeout=10_000)
    assert box.input_value() == picked


# -- rough edges ------------------------------------------------------------------------
def test_no_answer_points_to_support_with_the_member_id(page, server):
    box = open_widget(page, server.url + "/?lang=de")
    box.fill("Welche Pizza schmeckt am besten")
    empty = page.locator("#helpdesk-qa-widget .empty")
    empty.wait_for()
    text = empty.inner_text()
    assert "Kontaktieren Sie den Support und nennen Sie dort Ihre Mitgliedsnummer." in text
    assert "Bitte geben Sie Ihre Mitgliedsnummer an" not in text
    assert empty.locator("a.support").get_attribute("href").endswith("/de/faq/faq-contact-support")
    page.screenshot(path=str(ARTIFACTS / "edge-no-answer.png"))


def test_an_expanded_section_shows_its_text_once_on_the_best_step(page, server):
    box = open_widget(page, server.url + "/?lang=en&country=DE")
    box.fill("my order came in several parcels, how do I track all of them")
    first = page.locator("#helpdesk-qa-widget li.result").first
    first.wait_for()
    assert first.locator(".snippet").is_visible()
    first.click()
    first.locator(".detail").wait_for()
    assert first.locator(".snippet").is_hidden()  # not repeated above the full text
    best = first.locator(".detail .best")
    assert best.count() == 1 and "parcel" in best.inner_text().lower()
    assert best.bounding_box()["y"] >= page.locator("#helpdesk-qa-widget ul.results").bounding_box()["y"] - 1
    page.screenshot(path=str(ARTIFACTS / "edge-expanded-best-step.png"))


def test_category_tiles_open_the_help_and_language_links_keep_the_country(page, server):
    asked, bodies = [], []
    page.on("request", lambda r: asked.append(r.url) if "/v1/" in r.url else None)
    page.on("request", lambda r: bodies.append(json.loads(r.post_data)) if r.url.endswith("/v1/ask") else None)
    typed = []  # what the suggestions were asked for, by POST
    page.on("request", lambda r: typed.append(json.loads(r.post_data)) if r.url.endswith("/v1/suggest") else None)
    page.goto(server.url + "/?lang=de&country=KZ")
    page.locator("#helpdesk-qa-widget .launcher").wait_for()
    page.click("button.tile[data-category=orders]")
    chip = page.locator("#helpdesk-qa-widget .chip")
    chip.wait_for()
    assert "Bestellungen" in chip.inner_text()
    page.locator("#helpdesk-qa-widget li.suggestion").first.wait_for()
    page.locator("#helpdesk-qa-widget input").fill("wo ist mein Paket")
    page.locator("#helpdesk-qa-widget li.result").first.wait_for()
    # the widget asks by POST (no question in any URL): the filters travel in the body
    assert any(b.get("category") == "orders" and b.get("country") == "KZ" for b in bodies)
    assert not any("/v1/ask?" in u or "/v1/suggest?" in u or "Paket" in u for u in asked), asked
    assert any(b.get("category") == "orders" and b.get("limit") == 6 and "q" not in b for b in typed), typed
    assert any(b.get("q") and b["q"] in "wo ist mein Paket" and b.get("limit") == 3 for b in typed), typed
    page.screenshot(path=str(ARTIFACTS / "edge-category-tile.png"))
    for lang in ("ru", "en", "de"):
        assert "country=KZ" in page.get_attribute(f"nav a[data-lang={lang}]", "href")
    page.click("nav a[data-lang=ru]")
    page.wait_for_url("**lang=ru**")
    assert page.evaluate("document.querySelector('script[src*=\"widget.js\"]').dataset.country") == "KZ"
    assert page.input_value("#country") == "KZ"


def test_the_english_page_says_it_has_no_country_and_marks_country_sections(page, server):
    box = open_widget(page, server.url + "/?lang=en")
    assert "No country chosen" in page.inner_text("#country-note")
    box.fill("track a CDEK or Boxberry parcel")
    note = page.locator("#helpdesk-qa-widget li.result .only-for").first
    note.wait_for()
    assert note.inner_text() == "Only for members in RU"
    page.screenshot(path=str(ARTIFACTS / "edge-english-no-country.png"))
    page.keyboard.press("Escape")
    page.select_option("#country", "DE")
    page.wait_for_url("**country=DE**")
    assert "Answers for members in: DE" in page.inner_text("#country-note")


def test_docs_try_it_out_on_post_ask_succeeds(page, server):
    page.goto(server.url + "/docs")
    op = page.locator("#operations-search-ask_post_v1_ask_post")
    op.locator(".opblock-summary").click()
    op.locator("button.try-out__btn").click()
    body = op.locator("textarea.body-param__text").input_value()
    assert '"country": "DE"' in body and '"string"' not in body
    op.locator("button.execute").click()
    status = op.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    page.screenshot(path=str(ARTIFACTS / "edge-docs-try-it-out.png"))


def test_console_copied_preview_in_view_and_detail_first_on_a_phone(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(server.url + "/agent")
    page.fill("#q", "Passwort vergessen")
    page.locator(".column h3").first.wait_for()
    page.keyboard.press("Alt+c")
    page.wait_for_function("document.querySelector('#copied').textContent.includes('›')")
    box = page.locator("#copied").bounding_box()
    assert box["y"] + min(box["height"], 200) <= 860, box  # in view, not at y ≈ 1100
    page.screenshot(path=str(ARTIFACTS / "edge-console-copied.png"))
    context.close()

    phone = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    page.goto(server.url + "/agent")
    page.fill("#q", "Passwort vergessen")
    page.locator(".column h3").first.wait_for()
    page.wait_for_function("document.querySelectorAll('#results li').length >= 10")
    detail, results = page.locator("#detail").bounding_box(), page.locator("#results").bounding_box()
    assert detail["y"] < results["y"], (detail, results)  # the chosen section above the list of 20
    page.screenshot(path=str(ARTIFACTS / "edge-console-phone.png"))
    phone.close()


def test_console_copy_asked_before_the_answer_loaded_copies_it_once_it_has(browser, server):
    """Alt+C right after a search, while the result's own translation is still on its
    way (held here; on a busy machine it is simply late): the copy waits for it. It
    used to do nothing, which made the test above fail now and then."""
    page = browser.new_page()
    held = []
    page.route(lambda url: "/v1/articles/" in url and "lang=de" in url, lambda route: held.append(route))
    page.goto(server.url + "/agent")
    page.fill("#q", "Passwort vergessen")
    page.locator(".column[data-lang=en] h3").wait_for()  # another translation is in, the German one held
    page.keyboard.press("Alt+c")
    assert "Loading" in page.locator("#copied").inner_text()
    assert held
    for route in held:
        route.continue_()
    page.wait_for_function("document.querySelector('#copied').textContent.includes('›')")
    german = page.locator(".column[data-lang=de] h3").inner_text()
    assert page.locator("#copied").inner_text().startswith(german)
    page.close()


def test_insights_token_error_without_loading_and_at_360_px(browser, insights_server):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    page.goto(insights_server.url + "/insights")
    page.locator("#login").wait_for()
    page.fill("#token", "wrong")
    page.click("#login button")
    page.wait_for_function("document.querySelector('#login-error').textContent.includes('not accepted')")
    assert page.inner_text("#status") == ""  # no "Loading…" beside the error
    page.screenshot(path=str(ARTIFACTS / "edge-insights-token-error.png"))
    open_insights(page, insights_server.url)
    page.locator("#per-day svg").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for chart in ("#per-day svg", "#by-lang svg"):
        drawn, shown = page.evaluate(f"[document.querySelector('{chart}').viewBox.baseVal.width,"
                                     f" document.querySelector('{chart}').getBoundingClientRect().width]")
        assert drawn <= shown * 1.5, (chart, drawn, shown)  # text stays about its size
    page.screenshot(path=str(ARTIFACTS / "edge-insights-360.png"), full_page=True)
    context.close()
