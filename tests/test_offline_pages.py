"""Every page of the service works on a server without internet (issue 12).

Each page is opened in real headless Chromium with every request to another host
blocked. Per page: its main content renders, the console shows no error, nothing
was blocked, no element or loaded resource points at another host, and it links
the service's own favicon. To cover a new page, add one line to PAGES.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .conftest import ARTIFACTS, Server

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class Page:
    path: str
    ready: str  # a selector that becomes visible only once the page's main content has rendered
    query: str = ""  # typed into the page's search box, to exercise the page's own API calls
    optional: bool = False  # built on another branch: skipped while it answers 404
    admin: bool = False  # opened as the support team: the admin token in the header and in the tab


ADMIN_TOKEN = "offline-pages-test-token"
PAGES = [
    Page("/", "#helpdesk-qa-widget li.result .crumb", query="Passwort vergessen"),
    Page("/?lang=ru", "#helpdesk-qa-widget li.result .crumb", query="как сменить центр"),
    Page("/agent", "#results li .crumb", query="Passwort vergessen"),
    Page("/docs", ".opblock-summary-path[data-path='/v1/ask']"),
    Page("/insights", "#kpis .kpi", optional=True, admin=True),
]

# Elements whose URL the browser fetches by itself (links to articles are navigation, not fetched).
FETCHED = """() => [...document.querySelectorAll(
    'script[src], img[src], iframe[src], source[src], video[src], audio[src], embed[src], object[data],' +
    'link[rel~=stylesheet], link[rel~=icon], link[rel~=preload], link[rel~=modulepreload], link[rel~=manifest]')]
  .map(e => e.src || e.href || e.data)"""
LOADED = "() => performance.getEntriesByType('resource').map(e => e.name)"


@pytest.fixture(scope="module")
def site(sample_index_dir):
    """The service with every page enabled (the insights page needs an admin token)."""
    s = Server(sample_index_dir, extra_env={"HELPDESK_QA_ADMIN_TOKEN": ADMIN_TOKEN})
    yield s
    s.stop()


def same_host(url: str, origin: str) -> bool:
    return url.startswith(("data:", "blob:", "about:")) or urlsplit(url).netloc == urlsplit(origin).netloc


def search_box(page):
    if page.locator("#q").count():
        return page.locator("#q")  # the agent console
    page.locator("#helpdesk-qa-widget .launcher").click()
    return page.locator("#helpdesk-qa-widget input")


@pytest.mark.parametrize("spec", PAGES, ids=[p.path for p in PAGES])
def test_page_works_offline(spec, browser, site):
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if spec.admin else {}
    context = browser.new_context(viewport={"width": 1280, "height": 860}, extra_http_headers=auth)
    if spec.admin:  # where the insights page keeps the token it asked for
        context.add_init_script(f"sessionStorage.setItem('helpdesk-qa-admin-token', '{ADMIN_TOKEN}')")
    blocked, elsewhere, errors = [], [], []

    def gate(route):
        if same_host(route.request.url, site.url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", gate)
    page = context.new_page()
    # Requests that bypass routing (the browser's own favicon fetch) still show up here.
    page.on("request", lambda r: None if same_host(r.url, site.url) else elsewhere.append(r.url))
    page.on(
        "console", lambda m: errors.append(f"console {m.type}: {m.text} {m.location}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    try:
        response = page.goto(site.url + spec.path)
        if spec.optional and response.status == 404:
            pytest.skip(f"{spec.path} does not exist on this branch yet")
        assert response.ok, f"{spec.path} answered {response.status}"
        if spec.query:
            search_box(page).fill(spec.query)
        try:
            page.locator(spec.ready).first.wait_for(timeout=15_000)
            rendered = True
        except PlaywrightTimeout:
            rendered = False
        page.wait_for_load_state("networkidle")

        name = re.sub(r"[^a-z0-9]+", "-", spec.path.lower()).strip("-") or "portal"
        page.screenshot(path=str(ARTIFACTS / f"offline-{name}.png"))
        foreign = [u for u in page.evaluate(FETCHED) + page.evaluate(LOADED) if not same_host(u, site.url)]
        icon = page.evaluate("() => document.querySelector('link[rel~=icon]')?.href")
    finally:
        context.close()

    assert not blocked, f"{spec.path} asked another host for: {blocked}"
    assert not elsewhere, f"{spec.path} asked another host for: {elsewhere}"
    assert not foreign, f"{spec.path} points at another host: {foreign}"
    assert not errors, errors
    assert rendered, f"{spec.path}: the main content ({spec.ready}) did not render"
    assert icon == site.url + "/favicon.svg", f"{spec.path} links the favicon {icon!r}"


def test_favicon_and_docs_assets_are_served_here(site):
    for path in ("/favicon.svg", "/favicon.ico"):
        r = httpx.get(site.url + path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
        assert r.text.lstrip().startswith("<svg")
    docs = httpx.get(site.url + "/docs").text
    assert (
        "cdn." not in docs
        and "fastapi.tiangolo.com" not in docs
        and "/static-offline-docs/swagger-ui-bundle.js" in docs
    )
    assert httpx.get(site.url + "/static-offline-docs/swagger-ui-bundle.js").status_code == 200
