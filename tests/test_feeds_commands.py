"""feeds check / add / import-opml / export-opml through the real command line, against
loopback sites (127.0.0.21, 127.0.0.22) serving real feeds and real pages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from monitor.settings import load_feeds
from tests.httpserver import LoopbackServer, Reply

FIXTURES = Path(__file__).parent / "fixtures"
RSS = (FIXTURES / "feeds" / "rsparser" / "EMarley.rss").read_bytes()  # 10 entries
RSS_2 = (FIXTURES / "feeds" / "rsparser" / "manton.rss").read_bytes()
GIVEWELL = (FIXTURES / "articles" / "aeb-ac3c035520461017.html").read_bytes()
NO_FEED_PAGE = (FIXTURES / "articles" / "traf-dw.com-elephants.html").read_bytes()
ROOT = Path(__file__).resolve().parent.parent


def _rss(body: bytes = RSS, **kwargs) -> Reply:
    return Reply(body, content_type="application/rss+xml; charset=utf-8", **kwargs)


def _html(body: bytes) -> Reply:
    return Reply(body, content_type="text/html; charset=utf-8")


def _page_linking(*hrefs: str) -> bytes:
    links = "".join(f'<link rel="alternate" type="application/rss+xml" title="t{i}" href="{h}">'
                    for i, h in enumerate(hrefs))
    return f"<!doctype html><html><head>{links}</head><body><p>home</p></body></html>".encode()


@pytest.fixture
def site():
    with LoopbackServer("127.0.0.21") as server:
        yield server


def _feeds_file(project) -> Path:
    return project.root / "config" / "feeds.yaml"


def test_check_a_feed_reports_what_the_daemon_will_see(project, site) -> None:
    site.route("/feed", _rss(conditional=True, headers={"Cache-Control": "max-age=600"}))

    report = json.loads(project.cli("feeds", "check", site.url("/feed"), "--json").stdout)

    assert report["is_feed"] and report["title"] == "Stories by Liz Marley on Medium"
    assert (report["version"], report["entries"]) == ("rss20", 10)
    assert report["newest_entry"] == "2016-05-07T23:53:30+00:00"
    assert report["encoding"] == "utf-8" and report["warnings"] == []
    assert report["conditional_get"] and report["etag"].startswith('"')
    assert report["last_modified"] == "Mon, 02 Jun 2025 08:00:00 GMT"
    assert report["cache_control"] == "max-age=600"
    text = project.cli("feeds", "check", site.url("/feed")).stdout
    assert "conditional GET: possible (etag, last_modified)" in text
    assert "entries: 10, newest 2016-05-07T23:53:30+00:00" in text
    assert len(site.requests("/feed")) == 2  # one fetch per check
    assert _feeds_file(project).read_text() == "feeds: []\n"  # nothing stored


def test_check_a_page_lists_its_feeds_and_fails(project, site) -> None:
    site.route("/", _html(GIVEWELL))

    proc = project.cli("feeds", "check", site.url("/"), "--json", check=False)

    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert not report["is_feed"] and not report["conditional_get"]
    assert [(f["url"], f["comments"]) for f in report["advertised_feeds"]] == [
        ("https://blog.givewell.org/feed/", False),
        ("https://blog.givewell.org/comments/feed/", True),
        ("https://blog.givewell.org/2018/09/10/september-2018-open-thread/feed/", True),
    ]
    assert "not a feed, found an HTML page" in proc.stderr
    assert "the page advertises feeds" in proc.stderr


def test_check_a_missing_url_names_the_reason(project, site) -> None:
    proc = project.cli("feeds", "check", site.url("/gone"), check=False)
    assert proc.returncode == 1 and "error (http-404)" in proc.stderr


def test_add_a_home_page_takes_its_main_feed_then_refuses_it_again(project, site) -> None:
    site.route("/", _html(_page_linking("/comments/feed", "/feed", "/other.xml")))
    site.route("/feed", _rss())
    site.route("/other.xml", _rss(RSS_2))
    project.write_feeds([{"url": "https://fr.hespress.com/feed", "name": "Hespress FR"}])
    before = _feeds_file(project).read_text()

    proc = project.cli("feeds", "add", site.url("/"), "--tag", "blogs", "--tag", "en",
                       "--lang", "en", "--interval", "2h")

    assert f"added {site.url('/feed')} as 'Stories by Liz Marley on Medium'" in proc.stdout
    assert f"also advertised: {site.url('/other.xml')}" in proc.stdout
    assert f"comments feed: {site.url('/comments/feed')}" in proc.stdout
    assert not site.requests("/other.xml") and not site.requests("/comments/feed")
    after = _feeds_file(project).read_text()
    assert after.startswith(before)
    added = load_feeds(_feeds_file(project))[-1]
    assert (added.url, added.lang, added.interval, added.tags) == (
        site.url("/feed"), "en", 7200.0, ("blogs", "en"))

    again = project.cli("feeds", "add", site.url("/feed/"), check=False)
    assert again.returncode == 2 and "is already in" in again.stderr
    via_page = project.cli("feeds", "add", site.url("/"), check=False)
    assert via_page.returncode == 2 and "already in" in via_page.stderr
    assert _feeds_file(project).read_text() == after


def test_add_all_takes_every_main_feed_across_sites(project, site) -> None:
    with LoopbackServer("127.0.0.22") as other:
        other.route("/news.rss", _rss(RSS_2))
        site.route("/", _html(_page_linking("/feed", other.url("/news.rss"), "/broken")))
        site.route("/feed", _rss())
        site.route("/broken", _html(NO_FEED_PAGE))

        proc = project.cli("feeds", "add", site.url("/"), "--all")

    assert [(f.url, f.name) for f in load_feeds(_feeds_file(project))] == [
        (site.url("/feed"), "Stories by Liz Marley on Medium"),
        (other.url("/news.rss"), "Manton Reece"),
    ]
    assert f"not usable (not-a-feed): {site.url('/broken')}" in proc.stdout


def test_add_a_page_without_links_tries_the_usual_feed_urls(project, site) -> None:
    site.route("/", _html(NO_FEED_PAGE))
    site.route("/feed", _html(NO_FEED_PAGE))  # answers 200, but is no feed
    site.route("/rss.xml", _rss())

    proc = project.cli("feeds", "add", site.url("/"), "--name", "Liz")

    assert "found at a usual feed URL" in proc.stdout
    assert [(f.url, f.name) for f in load_feeds(_feeds_file(project))] == [
        (site.url("/rss.xml"), "Liz")]
    assert [len(site.requests(p)) for p in ("/feed", "/rss", "/rss.xml", "/atom.xml")] == [
        1, 1, 1, 0]


def test_add_with_no_feed_anywhere_changes_nothing(project, site) -> None:
    site.route("/", _html(NO_FEED_PAGE))

    proc = project.cli("feeds", "add", site.url("/"), check=False)

    assert proc.returncode == 1
    assert "no feed found: the URL is not a feed, the page advertises no feed" in proc.stderr
    assert len(site.requests("/index.xml")) == 1
    assert _feeds_file(project).read_text() == "feeds: []\n"


def test_add_refuses_bad_options_before_fetching(project, site) -> None:
    proc = project.cli("feeds", "add", site.url("/feed"), "--interval", "soon", check=False)
    assert proc.returncode == 2 and "is not a duration" in proc.stderr
    assert not site.requests("/feed")


def test_import_opml_reports_added_skipped_invalid(project) -> None:
    project.write_feeds([{"url": "https://le360.ma/rss/", "name": "Le360"}])
    opml = FIXTURES / "opml"

    proc = project.cli("feeds", "import-opml", str(opml / "feedly-style.opml"))
    project.cli("feeds", "import-opml", str(opml / "miniflux-style.opml"))

    assert "skipped (already listed): https://le360.ma/rss" in proc.stdout
    assert "line 18: a link without xmlUrl (not a feed)" in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith("4 added, 2 skipped, 1 invalid")
    feeds = load_feeds(_feeds_file(project))
    assert [(f.url, f.tags) for f in feeds][:5] == [
        ("https://le360.ma/rss/", ()),
        ("https://fr.hespress.com/feed", ("Maroc",)),
        ("https://telquel.ma/feed", ("Maroc",)),
        ("https://medias24.com/feed/", ("Économie",)),
        ("https://www.moroccoworldnews.com/feed/", ()),
    ]
    assert [(f.name, f.lang, f.tags) for f in feeds[5:]] == [
        ("Yabiladi", "fr", ("News", "Morocco")),
        ("Hespress (arabe)", "ar", ("News", "Morocco", "general")),
        ("Le Desk", None, ()),
    ]


def test_import_of_a_file_that_is_not_opml_writes_nothing(project) -> None:
    proc = project.cli("feeds", "import-opml", str(FIXTURES / "opml" / "not-opml.xml"),
                       check=False)
    assert proc.returncode == 2
    assert "line 2: not an OPML file: the root element is <rss>" in proc.stderr
    assert _feeds_file(project).read_text() == "feeds: []\n"


def test_export_then_import_gives_the_same_feeds(project, tmp_path: Path) -> None:
    shipped = (ROOT / "config" / "feeds.yaml").read_text(encoding="utf-8")
    _feeds_file(project).write_text(
        shipped + "  - url: https://ledesk.ma/rss-ar\n    name: Le Desk AR\n    lang: ar\n"
        "    interval: 90m\n    enabled: false\n", encoding="utf-8")
    configured = load_feeds(_feeds_file(project))
    exported = tmp_path / "feeds.opml"

    project.cli("feeds", "export-opml", "-o", str(exported))
    undated = re.compile(rb"<dateCreated>.*</dateCreated>")  # the two exports' seconds may differ
    assert undated.sub(b"", project.cli("feeds", "export-opml").stdout.encode()) == undated.sub(
        b"", exported.read_bytes())
    project.write_feeds([])
    project.cli("feeds", "import-opml", str(exported))

    assert load_feeds(_feeds_file(project)) == configured


FEEDS_WITH_COMMENTS = """\
# the outlets we follow
feeds:
  - url: https://fr.hespress.com/feed  # French edition
    name: Hespress FR
    lang: fr
  - url: https://le360.ma/rss/
    name: Le360
    enabled: false
  - url: https://www.medias24.com/feed/
    name: Médias24
"""


def test_remove_disable_enable_edit_feeds_yaml_and_keep_its_comments(project) -> None:
    path = _feeds_file(project)
    path.write_text(FEEDS_WITH_COMMENTS, encoding="utf-8")

    assert "disabled 'Hespress FR'" in project.cli("feeds", "disable", "hespress fr").stdout
    assert "enabled 'Le360'" in project.cli("feeds", "enable", "https://le360.ma/rss/").stdout
    assert "already enabled" in project.cli("feeds", "enable", "Le360").stdout
    removed = project.cli("feeds", "remove", "https://www.medias24.com/feed/").stdout
    assert "removed 'Médias24'" in removed

    text = path.read_text(encoding="utf-8")
    assert text.startswith("# the outlets we follow\nfeeds:\n")
    assert "https://fr.hespress.com/feed  # French edition" in text
    assert [(f.name, f.enabled) for f in load_feeds(path)] == [("Hespress FR", False),
                                                              ("Le360", True)]
    missing = project.cli("feeds", "remove", "Médias24", check=False)
    assert missing.returncode == 2 and "no feed with the URL or name 'Médias24'" in missing.stderr
    project.cli("feeds", "remove", "Le360")
    project.cli("feeds", "remove", "Hespress FR")
    assert load_feeds(path, empty_ok=True) == ()


def test_poll_one_feed_now_stores_its_items_and_reports_the_outcome(project, site) -> None:
    from tests.conftest import SEEDS
    from tests.sites import rss, seed_article, seed_page

    title, paragraphs = seed_article(SEEDS[0])
    site.route("/article", _html(seed_page(title, paragraphs)))
    site.route("/feed", _rss(rss([{"title": title, "link": site.url("/article"), "guid": "a"}],
                                 link=site.url("/"))))
    site.route("/broken", Reply(b"down", status=500))
    project.write_feeds([{"url": site.url("/feed"), "name": "Le Site"},
                         {"url": site.url("/broken"), "name": "Broken"},
                         {"url": site.url("/off"), "name": "Off", "enabled": False}])
    project.cli("init")

    [outcome] = [json.loads(line) for line in project.cli(
        "feeds", "poll", "Le Site", "--json").stdout.splitlines()]
    assert (outcome["status"], outcome["entries"], outcome["pages"]) == ("ok", 1, 1)
    assert (outcome["new_items"], outcome["relevant_items"]) == (1, 1)
    listed = json.loads(project.cli("items", "list", "--json", "--feed", "Le Site").stdout)
    assert listed["title"] == title and listed["relevant"]
    again = project.cli("feeds", "poll", site.url("/feed")).stdout
    assert again.startswith("Le Site: ") and "0 new items" in again

    failed = project.cli("feeds", "poll", "Broken", check=False)
    assert failed.returncode == 1 and "http-500" in failed.stdout
    assert "answered 500" in failed.stderr
    off = project.cli("feeds", "poll", "Off", check=False)
    assert off.returncode == 2 and "`monitor feeds enable` it first" in off.stderr
    health = {f["name"]: f for f in map(json.loads, project.cli(
        "feeds", "list", "--json").stdout.splitlines())}
    assert health["Le Site"]["items"] == 1 and health["Broken"]["status"] == "http-500"


def test_check_json_says_why_on_failure_too(project, site) -> None:
    proc = project.cli("feeds", "check", site.url("/gone"), "--json", check=False)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report == {"url": site.url("/gone"), "is_feed": False, "reason": "http-404",
                      "problem": report["problem"]}
    assert "404" in report["problem"]
    site.route("/page", _html(NO_FEED_PAGE))
    page = json.loads(project.cli("feeds", "check", site.url("/page"), "--json",
                                  check=False).stdout)
    assert (page["is_feed"], page["reason"]) == (False, "not-a-feed") and page["problem"]
