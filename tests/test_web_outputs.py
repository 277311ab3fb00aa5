"""The inspector's other outputs over HTTP: the Atom feed (checked with feedparser and an XML
parser), /healthz, /metrics (Prometheus text), the access token (kept out of the access log,
accepted on the Atom URL by readers without cookies), the Host check and ``web.base_url``, and
`monitor serve` for real: its refusal to open itself up without a token, its address (IPv6 in
brackets), its access log (no token)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import feedparser
import httpx
import pytest

from monitor.settings import WebSettings, load_settings
from monitor.store.engine import read_engine
from monitor.web import create_app
from tests.httpserver import free_port, wait_until_serving
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


def test_the_atom_url_takes_the_token_without_cookies(site: Site) -> None:
    token = "s3cret-token-0123456789"
    engine = read_engine(site.settings.database_url)
    with running(create_app(site.settings, engine=engine, token=token)) as base:
        # a feed reader: a fresh client each time, no cookies kept, no redirects followed
        atom = httpx.get(f"{base}/feed.atom?topic=cyber&token={token}")
        assert atom.status_code == 200 and "set-cookie" not in atom.headers
        assert feedparser.parse(atom.content).entries
        assert httpx.get(f"{base}/feed.atom?token=wrong").status_code == 401
        assert httpx.get(f"{base}/feed.atom").status_code == 401
        assert httpx.get(f"{base}/items?token={token}").status_code == 303  # pages: the cookie
    engine.dispose()


def test_the_host_header_is_checked_and_atom_links_use_base_url(site: Site) -> None:
    engine = read_engine(site.settings.database_url)
    with running(create_app(site.settings, engine=engine)) as base, \
            httpx.Client(base_url=base) as client:
        forged = client.get("/feed.atom", headers={"Host": "evil.example"})
        assert forged.status_code == 400 and "web.allowed_hosts" in forged.text
        assert "evil.example" not in client.get("/feed.atom").text
        for host in ("localhost:8080", "LOCALHOST.", "[::1]:8080", "127.0.0.1"):
            assert client.get("/items", headers={"Host": host}).status_code == 200, host
        assert client.get("/healthz", headers={"Host": "10.1.2.3:8080"}).status_code == 200
    web = WebSettings(base_url="https://monitor.example.org/desk",
                      allowed_hosts=("*.example.net",))
    with running(create_app(replace(site.settings, web=web), engine=engine)) as base, \
            httpx.Client(base_url=base) as client:
        assert client.get("/items").status_code == 400  # 127.0.0.1 is not listed any more
        atom = client.get("/feed.atom?topic=cyber",
                          headers={"Host": "monitor.example.org"})  # base_url's host
        assert atom.status_code == 200
        root = ET.fromstring(atom.content)
        links = [link.get("href") for link in root.iter(f"{ATOM}link")]
        assert links[0] == "https://monitor.example.org/desk/feed.atom?topic=cyber"
        assert all(link.startswith("https://monitor.example.org/desk/") for link in links[:2])
        related = [link.get("href") for link in root.iter(f"{ATOM}link")
                   if link.get("rel") == "related"]
        assert related and all(link.startswith("https://monitor.example.org/desk/items/")
                               for link in related)
        assert client.get("/items", headers={"Host": "a.example.net"}).status_code == 200
    engine.dispose()


def _serve(project, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("MONITOR_CONFIG", "MONITOR_WEB_TOKEN")}
    return subprocess.Popen([sys.executable, "-m", "monitor", "serve", *args, "--config",
                             str(project.config)], cwd=project.root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_serve_keeps_the_token_out_of_its_access_log(project) -> None:
    project.cli("init")
    token = "s3cret-token-0123456789"
    port = free_port()
    server = _serve(project, "--port", str(port), "--token", token)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(server, f"{base}/healthz")
        assert httpx.get(f"{base}/items?relevant=1&token={token}").status_code == 303
        assert httpx.get(f"{base}/feed.atom?tok%65n={token}").status_code == 200
        forged = httpx.get(f"{base}/items/%0D%0A2030-01-01%20INFO%20forged%20line",
                           headers={"Authorization": f"Bearer {token}"})
        assert forged.status_code == 404
    finally:
        server.terminate()
        _, log = server.communicate(timeout=15)
    assert token not in log
    assert "GET /items?relevant=1&token=[redacted] HTTP/1.1" in log
    assert "GET /feed.atom?token=[redacted] HTTP/1.1" in log
    assert "GET /items/%0D%0A2030-01-01%20INFO%20forged%20line HTTP/1.1" in log
    assert not any(line.startswith("2030-01-01") for line in log.splitlines())


def test_serve_on_ipv6_loopback_prints_a_bracketed_address(project) -> None:
    project.cli("init")
    port = free_port("::1", socket.AF_INET6)
    server = _serve(project, "--host", "::1", "--port", str(port))
    try:
        wait_until_serving(server, f"http://[::1]:{port}/healthz")
        assert httpx.get(f"http://[::1]:{port}/items").status_code == 200  # Host: [::1]:port
    finally:
        server.terminate()
        _, log = server.communicate(timeout=15)
    assert f"monitor inspector on http://[::1]:{port}/ (read-only)" in log


def test_serve_on_a_busy_port_says_so_in_one_line_before_any_address(project) -> None:
    project.cli("init")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = project.cli("serve", "--port", str(port), check=False)
    assert busy.returncode == 1 and busy.stdout == ""
    assert busy.stderr.count("\n") == 1, busy.stderr
    assert f"the port {port} is in use" in busy.stderr and "choose another --port" in busy.stderr
    assert "monitor inspector on" not in busy.stderr
