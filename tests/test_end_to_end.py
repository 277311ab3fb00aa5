"""End to end through the real command line: loopback sites -> init + run --once -> stored
items, verdicts, corpus files; a second run stores nothing and only sends conditional GETs."""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import urlsplit

import pytest

from monitor.identity import canonical_url
from tests.conftest import SEEDS, Project
from tests.sites import BROKEN_PATHS, build_sites


@pytest.fixture
def sites():
    built = build_sites()
    yield built
    built.close()


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _check_first_run(project: Project, sites) -> list[dict]:
    items = _jsonl(project.cli("items", "list", "--json", "--text").stdout)
    by_url = {item["url"]: item for item in items}
    # The five seeds (imported by init) plus every entry of the two good feeds.
    fed = sites.relevant_links + sites.other_links + sites.atom_links
    assert set(fed) <= set(by_url)
    assert sum(1 for i in items if i["feed"] is None) == len(SEEDS)
    # + the entries without a usable link, + those whose page fails
    assert len(items) == len(SEEDS) + len(fed) + 2 + len(sites.failing_pages)

    for link in sites.relevant_links:
        item = by_url[link]
        assert item["relevant"] is True, item["title"]
        assert item["lang"] == "fr"
        paragraphs = sites.seed_paragraphs[link]
        for paragraph in paragraphs[1:]:
            assert paragraph[:60] in item["text"]
        assert "Tous droits réservés" not in item["text"]
        name = item["corpus_file"]
        key = hashlib.sha256(canonical_url(link).encode()).hexdigest()[:16]
        assert re.fullmatch(rf"\d{{3}}_{key}\.txt", name)
        assert int(name[:3]) >= 5
        content = (project.corpus / name).read_text(encoding="utf-8")
        assert content == f"{item['title']}\n\n{item['text'].strip()}\n"
    for link in sites.other_links + sites.atom_links:
        assert by_url[link]["relevant"] is False and by_url[link]["corpus_file"] is None
        assert len(by_url[link]["text"]) > 200
    numbers = sorted(int(p.name[:3]) for p in project.corpus.glob("*.txt"))
    assert numbers == list(range(len(SEEDS) + len(sites.relevant_links)))
    for seed in SEEDS:
        assert (project.corpus / seed.name).read_bytes() == seed.read_bytes()
    return items


@pytest.mark.slow
def test_init_run_once_twice(project: Project, sites, backend: str) -> None:
    project.write_feeds(sites.feeds())
    # The endless trickle fails at the deadline, once per run: a short one keeps the test short
    # (loopback answers take milliseconds).
    project.write_settings(http={"deadline": "1.5s", "read_timeout": "1s"})
    init = project.cli("init")
    assert f"database ready: {backend}" in init.stdout
    assert "corpus files imported: 5" in init.stdout
    again = project.cli("init")
    assert "corpus files imported: 0 (already present: 5)" in again.stdout

    first = project.cli("run", "--once")
    good, broken = 2, len(BROKEN_PATHS)
    assert f"polled {good + broken} feeds" in first.stdout
    assert f"{good} ok, {broken} failed" in first.stdout
    assert "poll feed='Le Site' status=ok" in first.stderr
    items = _check_first_run(project, sites)

    # Entries without a usable link are kept with the feed's summary and the reason.
    no_link = [i for i in items if i["url"] is None and i["feed"] == "Le Site"]
    assert len(no_link) == 2
    shown = [json.loads(project.cli("items", "show", str(i["id"]), "--json").stdout)
             for i in no_link]
    assert {s["text_error"] for s in shown} == {"no-link", "unsafe-scheme"}
    assert {s["text_source"] for s in shown} == {"summary"}
    failing = [json.loads(project.cli("items", "show", str(i["id"]), "--json").stdout)
               for i in items if i["url"] in sites.failing_pages]
    assert {f["text_error"] for f in failing} == {"http-404", "no-text"}
    for item in failing:
        assert item["text_source"] == "summary"
        assert item["text"] == f"Résumé de la page {sites.failing_pages[item['url']]}."
        assert item["url"] in item["text_error_message"]

    # Every broken feed is recorded with its reason; the good ones are healthy.
    health = {f["url"]: f for f in _jsonl(project.cli("feeds", "list", "--json").stdout)}
    for path, reason in BROKEN_PATHS.items():
        feed = health[sites.broken.url(path)]
        assert feed["status"] == reason, (path, feed)
        assert feed["error_streak"] == 1 and feed["last_error"]
    assert health[sites.news.url("/rss.xml")]["status"] == "ok"
    assert health[sites.news.url("/rss.xml")]["relevant_items"] == len(sites.relevant_links)

    page_requests = {link: len(sites.news.requests(urlsplit(link).path))
                     for link in sites.relevant_links}
    second = project.cli("run", "--once")
    assert "0 new items" in second.stdout
    assert len(_jsonl(project.cli("items", "list", "--json").stdout)) == len(items)
    feed_requests = sites.news.requests("/rss.xml")
    assert len(feed_requests) == 2
    assert feed_requests[1].headers.get("if-none-match")
    assert feed_requests[1].headers.get("if-modified-since")
    assert sites.atom.requests("/comic.rss")[1].headers.get("if-none-match")
    assert "status=not-modified" in second.stderr
    for link, count in page_requests.items():
        assert len(sites.news.requests(urlsplit(link).path)) == count == 1  # never twice
    health = {f["url"]: f for f in _jsonl(project.cli("feeds", "list", "--json").stdout)}
    assert health[sites.broken.url("/missing.xml")]["error_streak"] == 2

    stats = json.loads(project.cli("stats", "--json").stdout)
    assert stats["items"] == len(items)
    assert stats["relevant_items"] == len(SEEDS) + len(sites.relevant_links)
    assert stats["polls"] == 2 * (good + broken)
    assert stats["errors"] == 2 * broken
    assert stats["errors_by_reason"]["http-404"] == 2


def test_classify_command(project: Project) -> None:
    out = _jsonl(project.cli("classify", "--json", *map(str, SEEDS)).stdout)
    assert [o["relevant"] for o in out] == [True] * 5
    assert {"path", "relevant", "score", "topics", "matches"} == set(out[0])
    assert out[0]["matches"][0].keys() == {"term", "count"}
    piped = _jsonl(project.cli("classify", "--json", "-",
                               input="Cybersécurité au Maroc\n\nLa DGSSI et le maCERT.").stdout)
    assert piped[0]["path"] == "-" and piped[0]["relevant"] is True
    assert piped[0]["topics"] == ["cyber"]


def test_bad_config_exits_2_with_file_line_key(project: Project) -> None:
    feeds = project.root / "config" / "feeds.yaml"
    feeds.write_text("feeds:\n  - url: https://a.ma/rss\n    name: A\n    interval: soon\n")
    proc = project.cli("run", "--once", check=False)
    assert proc.returncode == 2
    assert f"{feeds}, line 4, key 'interval'" in proc.stderr
    assert "'15m'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [
    ("items", "show", "9223372036854775808"),
    ("items", "show", "9" * 5000),
    ("items", "list", "--limit", "9223372036854775808"),
    ("items", "search", "maroc", "--limit", "9223372036854775808"),
])
def test_integers_past_what_the_database_holds_exit_2(project: Project, backend: str,
                                                      args: tuple[str, ...]) -> None:
    project.cli("init")
    proc = project.cli(*args, check=False)
    # was a traceback (OverflowError) on SQLite, "integer out of range" on PostgreSQL: exit 1
    assert proc.returncode == 2, proc.stderr
    assert "Invalid value" in proc.stderr and "Traceback" not in proc.stderr
    assert "2147483647" in proc.stderr or "not a valid integer" in proc.stderr
    largest = project.cli("items", "show", "2147483647", check=False)
    assert largest.returncode == 1 and "no item with id 2147483647" in largest.stderr
