"""Sending alerts through real services on loopback: e-mails to an SMTP server (aiosmtpd),
webhooks (`json://`) to an HTTP server, a service failing then recovering, an address that
accepted kept out of the retry; the commands (`alerts list/test/send`) and the inspector
(feeds page, /metrics) showing a failing alert; and `monitor run` as a
process: items announced once, a kill -9 while sending loses nothing, two workers on PostgreSQL
announce each item once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from monitor.alertsettings import AlertSettings, AlertTarget
from monitor.settings import load_settings
from monitor.store.engine import create_schema, make_engine, read_engine
from monitor.store.items import insert_items
from monitor.store.outbox import alert_figures
from monitor.store.schema import alert_outbox
from monitor.web import create_app
from monitor.worker.sender import send_due
from tests.conftest import Project, project_engine
from tests.httpserver import LoopbackServer, Reply
from tests.sites import build_bulk_site
from tests.smtpserver import MailServer
from tests.test_outbox import new_item
from tests.webdata import metric_values, running

BASE_URL = "https://monitor.example.org/"
MAIL_FROM = "from=monitor@example.org"


def _alert(name: str, *addresses: str, **values) -> AlertSettings:
    alert = AlertSettings(name=name, to=list(addresses), **values)
    alert._targets = tuple(AlertTarget(address, address) for address in addresses)
    return alert


def _webhooks(server: LoopbackServer, path: str = "/hook") -> list[dict]:
    return [json.loads(seen.body) for seen in server.requests(path)]


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'monitor.db'}")
    create_schema(engine)
    yield engine
    engine.dispose()


def test_an_email_and_a_webhook_for_each_item(engine) -> None:
    arabic = replace(new_item(1), title="هجوم سيبراني على المغرب", lang="ar")
    with MailServer("127.0.0.6") as mail, LoopbackServer("127.0.0.7") as hooks:
        hooks.route("/hook", Reply(b"ok"))
        alert = _alert("desk", f"mailto://{mail.address}?to=desk@example.org&{MAIL_FROM}",
                       f"json://{hooks.host}:{hooks.port}/hook")
        (item_id,) = insert_items(engine, [arabic])
        report = send_due(engine, [alert], owner="a", lease=60, base_url=BASE_URL)
        assert (report.sent, report.failed, report.messages) == (1, 0, 2)
        assert send_due(engine, [alert], owner="a", lease=60, base_url=BASE_URL).messages == 0

        (sent,) = mail.messages
        assert sent["Subject"] == "[desk] هجوم سيبراني على المغرب"
        assert sent["To"] == "desk@example.org" and "monitor@example.org" in sent["From"]
        assert sent.get_content_type() == "multipart/alternative"
        text, html = (part.get_content() for part in sent.iter_parts())
        assert f"inspector: {BASE_URL}items/{item_id}" in text
        assert "matched: maroc" in text and "topics: cyber" in text
        assert '<strong dir="auto" lang="ar">هجوم سيبراني على المغرب</strong>' in html
        (hook,) = _webhooks(hooks)
        assert hook["title"] == "[desk] هجوم سيبراني على المغرب"
        assert f"{BASE_URL}items/{item_id}" in hook["message"]
        assert "article: https://example.ma/news/1" in hook["message"]


def test_a_failing_service_is_retried_with_backoff_until_it_recovers(engine) -> None:
    with LoopbackServer("127.0.0.7") as hooks:
        hooks.route("/hook", Reply(b"down", status=503), Reply(b"down", status=503),
                    Reply(b"ok"))
        address = f"json://{hooks.host}:{hooks.port}/hook?token=s3cr3t-token"
        alert = _alert("desk", address, retry="0.3s", failing_after=2)
        insert_items(engine, [new_item(1)])

        def send():
            return send_due(engine, [alert], owner="a", lease=60, base_url=None)

        assert send().failed == 1
        assert send().messages == 0  # not due again yet: no request
        assert len(hooks.requests("/hook")) == 1
        figures = alert_figures(engine, {"desk": 2})["desk"]
        assert figures["failed"] == 0 and "503" in figures["last_error"]
        assert "s3cr3t" not in figures["last_error"]
        time.sleep(0.35)
        assert send().failed == 1
        assert alert_figures(engine, {"desk": 2})["desk"]["failed"] == 1  # failing now
        time.sleep(0.65)  # doubled
        assert send().sent == 1
        assert len(hooks.requests("/hook")) == 3
        assert alert_figures(engine, {"desk": 2})["desk"] == {
            "pending": 0, "sent": 1, "failed": 0, "resends": 0, "last_error": None}


def test_an_address_that_accepted_is_not_sent_the_retry(engine) -> None:
    with MailServer("127.0.0.6") as mail, LoopbackServer("127.0.0.7") as hooks:
        hooks.route("/hook", Reply(b"ok"))
        mail.refuse = 1
        alert = _alert("desk", f"json://{hooks.host}:{hooks.port}/hook",
                       f"mailto://{mail.address}?to=desk@example.org&{MAIL_FROM}",
                       retry="0.1s", max_items=5)
        insert_items(engine, [new_item(1), new_item(2)])
        first = send_due(engine, [alert], owner="a", lease=60, base_url=None)
        assert (first.failed, mail.refused, len(hooks.requests("/hook"))) == (2, 1, 1)
        assert "451" in first.errors[0]
        time.sleep(0.15)
        again = send_due(engine, [alert], owner="a", lease=60, base_url=None)
        assert (again.sent, again.messages) == (2, 1)
        assert len(hooks.requests("/hook")) == 1 and len(mail.messages) == 1
        assert mail.messages[0]["Subject"] == "[desk] 2 relevant items"


def test_a_digest_groups_what_was_queued_before_its_time(engine) -> None:
    with MailServer("127.0.0.6") as mail:
        now = datetime.now(UTC)
        at = (now - timedelta(minutes=1)).strftime("%H:%M")
        alert = _alert("morning", f"mailto://{mail.address}?to=desk@example.org&{MAIL_FROM}",
                       mode="digest", at=at)
        insert_items(engine, [replace(new_item(n, alerts=("morning",)), fetched_at=now)
                              for n in (1, 2, 3)])
        assert send_due(engine, [alert], owner="a", lease=60, base_url=None).messages == 0
        with engine.begin() as conn:  # queued yesterday: before the last digest time
            conn.execute(alert_outbox.update().values(created_at=now - timedelta(days=1)))
        report = send_due(engine, [alert], owner="a", lease=60, base_url=BASE_URL)
        assert (report.sent, report.messages) == (3, 1)
        (digest,) = mail.messages
        assert digest["Subject"].startswith("[morning] digest of ")
        assert digest["Subject"].endswith(": 3 relevant items")
        html = digest.get_body(("html",)).get_content()
        assert "<h2>cyber (3)</h2>" in html and html.count("<li>") == 3


def _alerts_settings(project: Project, alerts: list[dict], **schedule) -> None:
    project.write_settings(alerts=alerts, web={"base_url": BASE_URL},
                           schedule={"tick": "0.3s", "lease": "20s", **schedule})


def test_the_commands_list_test_and_send_with_addresses_masked(project: Project) -> None:
    with MailServer("127.0.0.6") as mail, LoopbackServer("127.0.0.7") as hooks:
        hooks.route("/t0k3n-value", Reply(b"down", status=500))
        env = {"HOOK_TOKEN": "t0k3n-value", "SMTP_TO": "desk@example.org"}
        _alerts_settings(project, [
            {"name": "mail", "to": [f"mailto://{mail.address}?to=${{SMTP_TO}}&{MAIL_FROM}"]},
            {"name": "hook", "to": [f"json://{hooks.host}:{hooks.port}/${{HOOK_TOKEN}}"],
             "failing_after": 1}])
        project.cli("init", env=env)
        engine = make_engine(f"sqlite:///{project.database}")
        insert_items(engine, [new_item(1, alerts=("mail", "hook"))])

        tested = project.cli("alerts", "test", "mail", env=env)
        assert tested.stdout.startswith("sent to mailto://")
        assert mail.messages[0]["Subject"] == "[mail] test message from monitor"
        assert project.cli("alerts", "test", "nope", env=env, check=False).returncode == 2

        sent = project.cli("alerts", "send", env=env, check=False)
        assert sent.returncode == 1
        assert "1 entries announced in 2 messages; 1 not sent" in sent.stdout
        listed = project.cli("alerts", "list", "--json", env=env)
        rows = {row["name"]: row for row in map(json.loads, listed.stdout.splitlines())}
        assert rows["mail"]["sent"] == 1 and not rows["mail"]["failing"]
        assert rows["hook"]["to"] == [f"json://{hooks.host}:{hooks.port}/${{HOOK_TOKEN}}"]
        assert rows["hook"]["failing"] and "500" in rows["hook"]["last_error"]
        text = project.cli("alerts", "list", env=env).stdout
        assert "FAILING" in text and "last error:" in text
        settings = load_settings(project.config, environ=env)
        with running(create_app(settings, engine=read_engine(settings.database_url))) as base:
            shown = {row["name"]: row for row in httpx.get(f"{base}/feeds.json").json()["alerts"]}
            page = httpx.get(f"{base}/feeds").text
            metrics = metric_values(httpx.get(f"{base}/metrics").text)
        assert shown["hook"]["failing"] and not shown["mail"]["failing"]
        assert '<span class="label unhealthy">failing</span>' in page
        assert metrics['monitor_alert_failing{alert="hook"}'] == 1
        assert metrics['monitor_alert_entries{alert="mail",state="sent"}'] == 1
        for output in (listed.stdout, text, sent.stdout, sent.stderr, page, json.dumps(shown)):
            assert "t0k3n-value" not in output
        engine.dispose()


def _outbox(engine) -> list[tuple]:
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(alert_outbox.c.item_id, alert_outbox.c.state,
                                          alert_outbox.c.resends)).all()
    except sa.exc.OperationalError:  # the database is being created
        return []


def _announced(hooks: LoopbackServer) -> Counter:
    """How many times each item id was announced, from the inspector links in the webhooks."""
    return Counter(int(number) for hook in _webhooks(hooks)
                   for number in re.findall(r"/items/(\d+)", hook["message"]))


def _start(project: Project, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "monitor", "run", *args, "--config",
                             str(project.config)], cwd=project.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return err


@pytest.mark.slow
def test_the_daemon_announces_each_item_once_and_a_kill_loses_nothing(project: Project) -> None:
    site = build_bulk_site("127.0.0.8", 12)
    with LoopbackServer("127.0.0.9") as hooks:
        hooks.route("/hook", Reply(b"ok", delay=1.0))  # slow: the kill lands while sending
        _alerts_settings(project, [{"name": "desk", "max_items": 1, "retry": "1s",
                                    "to": [f"json://{hooks.host}:{hooks.port}/hook"]}])
        project.write_feeds([{"url": site.feed_url, "name": "Bulk", "lang": "fr"}])
        project.cli("init")
        engine = project_engine(project)
        try:
            proc = _start(project)
            _wait(lambda: hooks.requests("/hook"), "a first webhook")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            hooks.route("/hook", Reply(b"ok"))
            proc = _start(project)
            relevant = len(site.relevant_links)
            _wait(lambda: [state for _, state, _ in _outbox(engine)] == ["sent"] * relevant,
                  "every entry sent")
            err = _stop(proc)
            assert "Traceback" not in err
        finally:
            site.server.close()
        rows = _outbox(engine)
        announced = _announced(hooks)
        assert set(announced) == {item_id for item_id, _, _ in rows}  # nothing lost
        resends = sum(resent for _, _, resent in rows)
        assert resends == 1  # the entry the kill caught while sending
        assert sum(announced.values()) - len(announced) <= resends  # the only duplicate
        with engine.connect() as conn:
            assert conn.execute(sa.text("select count(*) from items where relevant")).scalar() \
                == relevant + 5  # the seeds of the corpus are not announced
        engine.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_on_postgresql_announce_each_item_once(project: Project,
                                                           postgres_url: str) -> None:
    project.database_url = postgres_url
    site = build_bulk_site("127.0.0.10", 16, feeds=2)
    with LoopbackServer("127.0.0.11") as hooks:
        hooks.route("/hook", Reply(b"ok", delay=0.05))
        _alerts_settings(project, [{"name": "desk", "max_items": 2,
                                    "to": [f"json://{hooks.host}:{hooks.port}/hook"]}])
        project.write_feeds([{"url": url, "name": f"Bulk {n}", "lang": "fr"}
                             for n, url in enumerate(site.feed_urls)])
        project.cli("init")
        engine = project_engine(project)
        try:
            proc = _start(project, "--workers", "2")
            relevant = len(site.relevant_links)
            _wait(lambda: [state for _, state, _ in _outbox(engine)] == ["sent"] * relevant,
                  "every entry sent", timeout=90)
            _stop(proc)
        finally:
            site.server.close()
        announced = _announced(hooks)
        assert len(announced) == relevant and set(announced.values()) == {1}
        engine.dispose()
