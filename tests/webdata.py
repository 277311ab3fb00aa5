"""A small stored database for the inspector, export and digest tests, made through the real
schema and the real rules: three feeds (one failing), a French relevant story syndicated by a
second feed, an Arabic story, a hostile one (markup in its title and text), English filler for
paging, items over several days, and polls with outcomes and durations.

    data = fill_database(engine, rules, now=NOW)
    data.ids["hostile"], data.relevant_ids, data.all_ids (newest first)

`served_site` serves the inspector over such a database (SQLite) with uvicorn on loopback, for
a module-scoped fixture: ``yield from served_site(tmp_path_factory)``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
import yaml
from sqlalchemy import Engine

from monitor.identity import content_hash
from monitor.rules import RuleSet, load_ruleset
from monitor.settings import load_settings
from monitor.store.engine import create_schema, make_engine, read_engine
from monitor.store.schema import feeds, items, polls
from monitor.web import create_app
from tests.conftest import ROOT, SEEDS

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
HOSTILE_TITLE = 'Le Maroc et l\'IA <script>alert(1)</script> "><img src=x onerror=alert(2)>'
HOSTILE_TEXT = ("La cybersécurité au Maroc <script>alert(3)</script> : la DGSSI et le maCERT "
                "préparent la loi 05-20. \"><img src=x onerror=alert(4)> L'intelligence "
                "artificielle au Maroc & la protection des données (CNDP, loi 09-08).")
ARABIC_TITLE = "المغرب يطلق استراتيجية وطنية للذكاء الاصطناعي والأمن السيبراني"
ARABIC_TEXT = ("أعلنت وزارة الانتقال الرقمي وإصلاح الإدارة في المغرب عن استراتيجية وطنية للذكاء "
               "الاصطناعي. وتشمل الاستراتيجية تعزيز الأمن السيبراني وحماية المعطيات الشخصية "
               "بتنسيق مع المديرية العامة لأمن نظم المعلومات.")
# name, URL, language, error streak, last error, last status
FEEDS = (
    ("Le Site", "https://lesite.example.ma/rss", "fr", 0, None, "ok"),
    ("الموقع العربي", "https://ar.example.ma/rss", "ar", 0, None, "ok"),
    ("Broken <b>feed</b>", "https://broken.example.ma/rss", None, 3,
     "https://broken.example.ma/rss: <script>alert(5)</script> timed out", "timeout"),
)
FILLER = ("The weather in the north was mild this week, with light rain expected on the coast "
          "and sunshine inland. Farmers welcomed the showers after a dry winter.")


@dataclass
class Filled:
    ids: dict[str, int] = field(default_factory=dict)
    all_ids: list[int] = field(default_factory=list)  # newest first
    relevant_ids: list[int] = field(default_factory=list)  # newest first
    feed_ids: dict[str, int] = field(default_factory=dict)
    by_id: dict[int, dict] = field(default_factory=dict)


def fill_database(engine: Engine, rules: RuleSet, *, now: datetime = NOW,
                  filler: int = 130) -> Filled:
    data = Filled()
    with engine.begin() as conn:
        for name, url, lang, streak, error, status in FEEDS:
            data.feed_ids[name] = conn.execute(feeds.insert().values(
                url=url, name=name, lang=lang, tags=[], enabled=True, in_config=True,
                next_due=now - timedelta(minutes=5) if streak else now + timedelta(hours=2),
                last_polled_at=now - timedelta(minutes=30), last_status=status,
                last_success_at=None if streak else now - timedelta(minutes=30),
                last_error=error, error_streak=streak, created_at=now - timedelta(days=40),
            )).inserted_primary_key[0]
        for index, (status, reason, seconds) in enumerate((
            ("ok", None, 0.4), ("ok", None, 1.7), ("not-modified", None, 0.05),
            ("error", "timeout", 20.0), ("error", "timeout", 20.0), ("error", "http-404", 0.2),
        )):
            started = now - timedelta(hours=index + 1)
            conn.execute(polls.insert().values(
                feed_id=data.feed_ids["Broken <b>feed</b>" if reason else "Le Site"],
                started_at=started, finished_at=started + timedelta(seconds=seconds),
                status=status, error_reason=reason, page_errors=1 if index == 1 else 0,
                new_items=5 if status == "ok" else 0,
                error_message=f"{reason} happened" if reason else None))

    seed_text = SEEDS[0].read_text(encoding="utf-8")
    seed_title, _, seed_body = seed_text.partition("\n\n")
    stories = []
    for n in range(filler):  # oldest: filler, one per hour back from 3 days ago
        stories.append((f"filler-{n}", "Le Site", f"World news {n}", FILLER + f" ({n})", "en",
                        now - timedelta(days=3, hours=filler - n)))
    stories += [
        ("seed", "Le Site", seed_title[:120], seed_body, "fr", now - timedelta(days=2)),
        ("copy", "الموقع العربي", seed_title[:120], seed_body, "fr", now - timedelta(days=1)),
        ("arabic", "الموقع العربي", ARABIC_TITLE, ARABIC_TEXT, "ar", now - timedelta(hours=5)),
        ("hostile", "Le Site", HOSTILE_TITLE, HOSTILE_TEXT, "fr", now - timedelta(hours=1)),
    ]
    with engine.begin() as conn:
        for key, feed, title, text, lang, fetched in stories:
            verdict = rules.classify(title, text)
            row = {
                "feed_id": data.feed_ids[feed], "guid": key, "url": f"https://news.example.ma/{key}",
                "canonical_url": f"https://news.example.ma/{key}", "title": title,
                "summary": text[:200], "published": fetched - timedelta(hours=2),
                "fetched_at": fetched, "lang": lang, "text": text, "text_source": "page",
                "text_error": None, "text_error_message": None,
                "content_hash": content_hash(text), "relevant": verdict.relevant,
                "score": verdict.score, "topics": list(verdict.topics),
                "matches": verdict.matches_with_rules(), "rules_version": verdict.version,
                "corpus_file": None,
            }
            item_id = conn.execute(items.insert().values(**row)).inserted_primary_key[0]
            data.ids[key] = item_id
            data.by_id[item_id] = {**row, "id": item_id}
    data.all_ids = sorted(data.by_id, reverse=True)
    data.relevant_ids = [i for i in data.all_ids if data.by_id[i]["relevant"]]
    return data


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 (an ephemeral port); yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def write_config(folder: Path, database_url: str) -> Path:
    """A config folder (the shipped rules, the feeds of `FEEDS`) pointing at `database_url`."""
    config = folder / "config"
    config.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "config" / "rules.yaml", config / "rules.yaml")
    (config / "feeds.yaml").write_text(yaml.safe_dump({"feeds": [
        {"url": url, "name": name, **({"lang": lang} if lang else {})}
        for name, url, lang, *_ in FEEDS]}, allow_unicode=True), encoding="utf-8")
    (config / "monitor.yaml").write_text(
        yaml.safe_dump({"storage_dir": "../storage", "database_url": database_url}),
        encoding="utf-8")
    return config / "monitor.yaml"


class Site:
    def __init__(self, base: str, data, settings) -> None:
        self.base, self.data, self.settings = base, data, settings
        self.client = httpx.Client(base_url=base, timeout=30)

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def json(self, path: str) -> dict:
        response = self.get(path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        return response.json()

    def html(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/html")
        assert "built-in method" not in response.text and "Undefined" not in response.text
        return response.text


def make_site(folder: Path, database_url: str):
    config = write_config(folder, database_url)
    settings = load_settings(config)
    engine = make_engine(database_url)
    create_schema(engine)
    data = fill_database(engine, load_ruleset(settings.rules_file))
    engine.dispose()
    return settings, data


def served_site(tmp_path_factory) -> Iterator[Site]:
    """For a module-scoped `site` fixture: the inspector over a filled SQLite database."""
    folder = tmp_path_factory.mktemp("web")
    settings, data = make_site(folder, f"sqlite:///{folder / 'monitor.db'}")
    engine = read_engine(settings.database_url)
    with running(create_app(settings, engine=engine)) as base:
        built = Site(base, data, settings)
        yield built
        built.client.close()
    engine.dispose()


def metric_values(text: str) -> dict[str, float]:
    """name{labels} -> value, checking the exposition format line by line."""
    values = {}
    declared = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram")
            declared.add(name)
            continue
        if line.startswith("#"):
            continue
        match = re.fullmatch(r'([a-z_]+)(\{[a-z]+="[^"]*"(?:,[a-z]+="[^"]*")*\})? (\S+)', line)
        assert match, line
        base = re.sub(r"_(bucket|sum|count)$", "", match.group(1))
        assert base in declared or match.group(1) in declared, line
        values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return values
