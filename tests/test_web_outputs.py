"""The inspector's other outputs over HTTP: the Atom feed (checked with feedparser and an XML
parser), /healthz, /metrics (Prometheus text), the access token, and `monitor serve`'s refusal
to open itself up without one."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import feedparser
import httpx
import pytest

from monitor.settings import load_settings
from monitor.store.engine import read_engine
from monitor.web import create_app
from tests.webdata import (
    HOSTILE_TITLE,
    NOW,
    Site,
    metric_values,
    running,
    served_site,
    write_config,
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    yield from served_site(tmp_path_factory)


ATOM = "{http://www.w3.org/2005/Atom}"


# --- Atom --------------------------------------------------------------------------------------

def test_atom_feed_is_valid_and_lists_relevant_items(site: Site) -> None:
    response = site.get("/feed.atom")
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    relevant = site.data.relevant_ids
    assert [e.link for e in parsed.entries] == [site.data.by_id[i]["url"] for i in relevant]
    hostile = next(e for e in parsed.entries if e.link.endswith("/hostile"))
    assert hostile.title == HOSTILE_TITLE
    root = ET.fromstring(response.content)
    assert root.tag == f"{ATOM}feed"
    for tag in ("id", "title", "updated", "author"):
        assert root.find(f"{ATOM}{tag}") is not None
    assert root.find(f"{ATOM}link[@rel='self']").get("href").endswith("/feed.atom")
    for entry in root.findall(f"{ATOM}entry"):
        assert entry.find(f"{ATOM}id").text.startswith("urn:uuid:")
        assert entry.find(f"{ATOM}updated").text
    titles = [e.find(f"{ATOM}title").text for e in root.findall(f"{ATOM}entry")]
    assert HOSTILE_TITLE in titles  # escaped in the XML, intact once parsed
    only_cyber = feedparser.parse(site.get("/feed.atom?topic=cyber").content)
    assert only_cyber.entries and all("cyber" in [t.term for t in e.tags]
                                      for e in only_cyber.entries)


# --- health and metrics ------------------------------------------------------------------------

def test_healthz(site: Site, tmp_path: Path) -> None:
    health = site.get("/healthz").json()
    assert health["status"] == "ok" and health["database"] == "ok"
    assert health["last_successful_poll"] == (NOW - timedelta(minutes=30)).isoformat()
    assert health["last_successful_poll_age_seconds"] > 0
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'nowhere' / 'missing.db'}")
    with running(create_app(load_settings(config))) as base:
        down = httpx.get(f"{base}/healthz")
        assert down.status_code == 503 and down.json()["database"] == "unreachable"
        assert httpx.get(f"{base}/items").status_code == 503


def test_metrics(site: Site) -> None:
    text = site.get("/metrics").text
    values = metric_values(text)
    assert values['monitor_polls_total{status="ok"}'] == 2
    assert values['monitor_polls_total{status="error"}'] == 3
    assert values['monitor_poll_errors_total{reason="timeout"}'] == 2
    assert values['monitor_poll_errors_total{reason="http-404"}'] == 1
    assert values["monitor_page_errors_total"] == 1
    assert values["monitor_items_total"] == len(site.data.all_ids)
    assert values["monitor_relevant_items_total"] == len(site.data.relevant_ids)
    assert values["monitor_feeds_due"] == 1  # the failing feed is overdue (in the real now)
    assert values['monitor_feeds{state="failing"}'] == 1
    buckets = [(k, v) for k, v in values.items() if k.startswith("monitor_poll_duration_seconds_b")]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and buckets[-1][0].endswith('{le="+Inf"}')
    assert values["monitor_poll_duration_seconds_count"] == 6 == counts[-1]
    assert values['monitor_poll_duration_seconds_bucket{le="0.1"}'] == 1
    assert values['monitor_poll_duration_seconds_bucket{le="10.0"}'] == 4
    assert abs(values["monitor_poll_duration_seconds_sum"] - 42.35) < 0.01
    prometheus = pytest.importorskip("prometheus_client.parser")
    families = {f.name: f for f in prometheus.text_string_to_metric_families(text)}
    assert families["monitor_poll_duration_seconds"].type == "histogram"
    assert families["monitor_polls"].type == "counter"


# --- token -------------------------------------------------------------------------------------

def test_token_protects_everything_but_healthz(site: Site) -> None:
    token = "s3cret-token-0123456789"
    engine = read_engine(site.settings.database_url)
    with running(create_app(site.settings, engine=engine, token=token)) as base, \
            httpx.Client(base_url=base) as client:
        for path in ("/items", "/items.json", "/feeds", "/feed.atom", "/metrics",
                     f"/items/{site.data.ids['seed']}"):
            assert client.get(path).status_code == 401, path
        assert client.get("/healthz").status_code == 200
        assert client.get("/items", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/items", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert client.get("/items?token=wrong").status_code == 401
        first = client.get(f"/items?relevant=1&token={token}")
        assert first.status_code == 303 and first.headers["location"] == "/items?relevant=1"
        assert "HttpOnly" in first.headers["set-cookie"]
        assert client.get("/feeds").status_code == 200  # the cookie now opens the pages
    engine.dispose()


def test_serve_refuses_an_open_address_without_a_token(project) -> None:
    open_host = project.cli("serve", "--host", "0.0.0.0", check=False)
    assert open_host.returncode == 2 and "--token" in open_host.stderr
    short = project.cli("serve", "--token", "short", check=False)
    assert short.returncode == 2 and "16 to 200" in short.stderr
