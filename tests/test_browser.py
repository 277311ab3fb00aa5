"""The inspector in a real browser: headless Chromium (Debian's, driven by Playwright; no browser
download) against `monitor serve` on loopback, over a database filled by a real `run --once` on
the loopback fixture sites plus an Arabic site with a hostile story. Search, filter, open an
item, see the highlights, right-to-left Arabic, no stored script ever runs; then every main
page at 360 and 1280 px: nothing wider than the screen, the text above the rules, j/k/o, dark
mode; label an item with the buttons of a token-guarded inspector (none without a token).
Screenshots of the pages go to a temporary folder, or to $MONITOR_SCREENSHOTS (CI sets
artifacts/screenshots and keeps it; never committed).

Skipped when Playwright or /usr/bin/chromium is missing, unless MONITOR_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import contextlib
import html
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.store.engine import read_engine
from monitor.store.labels import latest_label
from tests.conftest import Project
from tests.httpserver import LoopbackServer, Reply, free_port, wait_until_serving
from tests.sites import HTML, RSS, build_sites, rss
from tests.webdata import make_site

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("MONITOR_SCREENSHOTS")
                   or Path(tempfile.gettempdir()) / "monitor-screenshots")
WIDTHS = (360, 1280)  # a small phone, a laptop

ARABIC_TITLE = "المغرب يعتمد استراتيجية وطنية للذكاء الاصطناعي والأمن السيبراني"
ARABIC_PARAGRAPHS = [
    "أعلنت وزارة الانتقال الرقمي وإصلاح الإدارة في المغرب عن إطلاق استراتيجية وطنية جديدة "
    "للذكاء الاصطناعي، تهدف إلى دعم التحول الرقمي للإدارة العمومية وتكوين الكفاءات الشابة.",
    "وتشمل الاستراتيجية تعزيز الأمن السيبراني بتنسيق مع المديرية العامة لأمن نظم المعلومات، "
    "وحماية المعطيات الشخصية وفق القانون 09-08 تحت إشراف اللجنة الوطنية لمراقبة حماية "
    "المعطيات ذات الطابع الشخصي.",
    "وأكدت الوزارة أن المغرب يسعى إلى أن يصبح مركزا إقليميا للابتكار في مجال الذكاء "
    "الاصطناعي، عبر الشراكات مع الجامعات ومراكز البحث والمقاولات الناشئة.",
    "كما ستخصص ميزانية لتكوين آلاف المهندسين والباحثين في مجالات البيانات والأمن السيبراني "
    "خلال السنوات المقبلة، في إطار رؤية المغرب الرقمي 2030.",
]
HOSTILE_TITLE = "Le Maroc et l'IA <script>alert('title')</script>"
HOSTILE_PARAGRAPHS = [
    "La cybersécurité au Maroc <script>alert('body')</script> : la DGSSI et le maCERT "
    "renforcent la protection des infrastructures, selon la loi 05-20.",
    "\"><img src=x onerror=alert('img')> L'intelligence artificielle au Maroc progresse, "
    "et la CNDP veille à la protection des données personnelles (loi 09-08).",
    "Le ministère de la Transition numérique prépare la stratégie Maroc Digital 2030 avec "
    "l'Agence de Développement du Digital et les universités du Royaume.",
]


def _page(title: str, paragraphs: list[str], lang: str) -> bytes:
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    direction = ' dir="rtl"' if lang == "ar" else ""
    return (f'<!DOCTYPE html><html lang="{lang}"{direction}><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head><body><main><article>"
            f"<h1>{html.escape(title)}</h1>{body}</article></main></body></html>").encode()


@pytest.fixture(scope="module")
def browser():
    required = os.environ.get("MONITOR_REQUIRE_BROWSER") == "1"

    def unavailable(reason: str):
        if required:
            pytest.fail(f"a browser is required (MONITOR_REQUIRE_BROWSER=1) but {reason}")
        pytest.skip(reason)

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def served(project: Project):
    """`run --once` over the loopback sites, then `monitor serve` on loopback: its base URL."""
    sites = build_sites()
    extra = LoopbackServer("127.0.0.5")
    extra.route("/ar/1.html", Reply(_page(ARABIC_TITLE, ARABIC_PARAGRAPHS, "ar"),
                                    content_type=HTML))
    extra.route("/fr/hostile.html", Reply(_page(HOSTILE_TITLE, HOSTILE_PARAGRAPHS, "fr"),
                                          content_type=HTML))
    extra.route("/rss.xml", Reply(rss([
        {"title": ARABIC_TITLE, "link": extra.url("/ar/1.html"), "guid": "ar-1"},
        {"title": HOSTILE_TITLE, "link": extra.url("/fr/hostile.html"), "guid": "hostile"},
    ], link=extra.url("/")), content_type=RSS))
    feeds = [f for f in sites.feeds() if "broken" not in f["name"]]
    feeds += [{"url": extra.url("/rss.xml"), "name": "موقع عربي", "lang": "ar"},
              {"url": sites.broken.url("/missing.xml"), "name": "broken /missing.xml"}]
    project.write_feeds(feeds)
    project.cli("init")
    # Playwright's sync API keeps an event loop running in this thread: the run, which starts
    # its own, goes to a process of its own.
    project.cli("run", "--once", own_process=True)

    try:
        with serving(project.config) as base:
            yield base
    finally:
        sites.close()
        extra.close()


@contextlib.contextmanager
def serving(config: Path, *args: str) -> Iterator[str]:
    """`monitor serve` (with `args`) on a free loopback port, in a process of its own; yields
    its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("MONITOR_CONFIG", "MONITOR_WEB_TOKEN")}
    server = subprocess.Popen(
        [sys.executable, "-m", "monitor", "serve", "--port", str(port), *args,
         "--config", str(config)],
        cwd=config.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(server, f"{base}/healthz")
        yield base
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.slow
def test_search_filter_open_and_read_in_a_browser(browser, served: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # The list, newest first, readable without JavaScript.
    page.goto(f"{served}/")
    assert page.locator("ol.items > li").count() >= 20
    assert page.locator("li.item h2").first.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "items.png"), full_page=True)

    # Search: type, submit the form, every result shows its hits marked.
    page.fill("input[name=q]", "cybersécurité")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/items?*q=cybers*")
    results = page.locator("ol.items > li")
    assert results.count() >= 3
    for index in range(results.count()):
        assert results.nth(index).locator("mark").count() >= 1
    page.screenshot(path=str(SCREENSHOTS / "search.png"), full_page=True)

    # Filter: relevant only, kept with the search; newest kept first (the polled items, not
    # the seeds `monitor init` imported first).
    page.select_option("select[name=relevant]", "1")
    page.select_option("select[name=sort]", "kept")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**relevant=1**")
    assert "q=cybers" in page.url
    relevant = page.locator("ol.items > li")
    assert relevant.count() >= 1
    assert relevant.count() == page.locator("ol.items > li.is-relevant").count()

    # Open an item: the text with highlighted terms, the score rule by rule.
    first_title = relevant.first.locator("h2 a").inner_text()
    relevant.first.locator("h2 a").click()
    page.wait_for_url("**/items/*")
    assert page.locator("h1").inner_text() == first_title
    marks = page.locator("div.body mark")
    assert marks.count() >= 3 and marks.first.is_visible()
    assert page.locator("table.rules tr.fired").count() >= 1
    assert page.locator("a.original").get_attribute("href").startswith("http://127.0.0.")
    page.screenshot(path=str(SCREENSHOTS / "item.png"), full_page=True)

    # The hostile story: its markup is shown as text, nothing ran.
    page.goto(f"{served}/items?q=DGSSI+maCERT+onerror")
    page.locator("ol.items > li h2 a").first.click()
    page.wait_for_url("**/items/*")
    assert "<script>alert('title')</script>" in page.locator("h1").inner_text()
    assert "<img src=x onerror=alert('img')>" in page.locator("div.body").inner_text()
    assert page.locator("div.body img, h1 script, div.body script").count() == 0

    # Arabic reads right to left.
    page.goto(f"{served}/items?lang=ar")
    page.locator("ol.items > li h2 a").first.click()
    page.wait_for_url("**/items/*")
    assert page.locator("h1").inner_text() == ARABIC_TITLE
    assert page.eval_on_selector("div.body", "e => getComputedStyle(e).direction") == "rtl"
    page.screenshot(path=str(SCREENSHOTS / "item-ar.png"), full_page=True)

    # Feeds: health, yield and the charts.
    page.goto(f"{served}/feeds")
    assert page.locator("table.feeds tbody tr").count() == 4
    assert page.locator("svg.chart").count() == 5
    assert "http-404" in page.locator("tr.failing").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "feeds.png"), full_page=True)

    assert dialogs == [] and errors == []
    context.close()
    check_layout(browser, served)


def check_layout(browser, served: str) -> None:
    """Every main page at each of `WIDTHS`: no horizontal overflow, the item's text above its
    rules; the keys j/k/o on the listing; dark mode. A screenshot of each."""
    errors: list[str] = []
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 800})
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{served}/items?lang=ar")
        arabic = page.locator("ol.items > li h2 a").first.get_attribute("href")
        page.goto(f"{served}/items?relevant=1&lang=fr")
        french = page.locator("ol.items > li h2 a").first.get_attribute("href")
        pages = {"items": "/items", "search": "/items?q=cybers%C3%A9curit%C3%A9",
                 "item": french, "item-ar": arabic, "feeds": "/feeds"}
        for name, path in pages.items():
            page.goto(f"{served}{path}")
            overflow = page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= width, f"{name} is {overflow} px wide at {width} px"
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
            if name.startswith("item-") or name == "item":
                text_top = page.locator("div.body").bounding_box()["y"]
                rules_top = page.locator("table.rules").first.bounding_box()["y"]
                assert text_top < rules_top and text_top < 800, (name, width)
                assert not page.locator("details.more-rules table.rules").is_visible()
        # j twice, k once: the first item; o opens it
        page.goto(f"{served}/items")
        first = page.locator("ol.items > li h2 a").first.get_attribute("href")
        for key in "jjk":
            page.keyboard.press(key)
        assert page.evaluate("document.activeElement.getAttribute('href')") == first
        page.keyboard.press("o")
        page.wait_for_url(f"**{first}")
        assert errors == []
        context.close()
    dark = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")
    page = dark.new_page()
    page.goto(f"{served}/items")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(21, 24, 30)", background
    page.screenshot(path=str(SCREENSHOTS / "items-dark.png"))
    dark.close()


@pytest.mark.slow
def test_label_an_item_with_the_buttons(browser, tmp_path: Path) -> None:
    token = "s3cret-token-0123456789"
    settings, data = make_site(tmp_path, f"sqlite:///{tmp_path / 'monitor.db'}")
    config, item = tmp_path / "config" / "monitor.yaml", data.ids["arabic"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    with serving(config) as base:  # no token: read only, no buttons
        page.goto(f"{base}/items/{item}")
        assert "Not labelled yet." in page.locator("section.labelling").inner_text()
        assert page.locator("section.labelling button, section.labelling form").count() == 0

    with serving(config, "--token", token) as base:
        page.goto(f"{base}/items/{item}?token={token}")  # signs in: the cookie, then the page
        page.wait_for_url(f"{base}/items/{item}")
        buttons = page.locator("form.label-form button")
        assert buttons.all_inner_texts() == ["Relevant", "Not relevant"]
        page.check("input[name=topic][value=cyber]")
        page.check("input[name=topic][value=ai]")
        page.fill("input[name=note]", "استراتيجية وطنية، DGSSI")
        page.click("form.label-form button[value='1']")
        page.wait_for_url(f"{base}/items/{item}#label")
        shown = page.locator("section.labelling").inner_text()
        assert "Labelled relevant" in shown and "ai" in shown and "cyber" in shown
        assert "استراتيجية وطنية، DGSSI" in shown and "web" in shown
        assert page.locator("input[name=topic][value=cyber]").is_checked()
        page.screenshot(path=str(SCREENSHOTS / "item-labelled.png"), full_page=True)

        page.click("form.label-form button[value='0']")
        page.wait_for_url(f"{base}/items/{item}#label")
        assert "Labelled not relevant" in page.locator("section.labelling").inner_text()

    engine = read_engine(settings.database_url)
    stored = latest_label(engine, item)
    engine.dispose()
    assert (stored.relevant, stored.topics, stored.origin) == (False, (), "web")
    assert errors == []
    context.close()
