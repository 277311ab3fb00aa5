"""`monitor export`: JSON Lines and CSV of stored items, filters, the real command line, and
memory that stays flat while thousands of large items stream through."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from monitor.report.export import FIELDS, export_items, parse_since
from monitor.rules import load_ruleset
from monitor.settings import load_settings
from monitor.store.engine import create_schema, make_engine
from monitor.store.listings import items_to_export
from monitor.store.schema import items
from tests.conftest import Project
from tests.webdata import HOSTILE_TEXT, NOW, fill_database


@pytest.fixture
def filled(project: Project):
    settings = load_settings(project.config)
    engine = make_engine(settings.database_url)
    create_schema(engine)
    data = fill_database(engine, load_ruleset(settings.rules_file), filler=20)
    yield engine, data
    engine.dispose()


def test_jsonl_has_every_item_oldest_first(filled) -> None:
    engine, data = filled
    out = io.StringIO()
    count = export_items(items_to_export(engine), out, fmt="jsonl")
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == len(rows) == len(data.all_ids)
    assert [r["id"] for r in rows] == sorted(data.all_ids)
    assert list(rows[0]) == list(FIELDS)
    hostile = next(r for r in rows if r["id"] == data.ids["hostile"])
    assert hostile["text"] == HOSTILE_TEXT and hostile["feed"] == "Le Site"
    assert hostile["relevant"] is True and isinstance(hostile["topics"], list)
    assert hostile["fetched_at"].endswith("+00:00")


def test_csv_round_trips_text_with_quotes_newlines_and_arabic(filled) -> None:
    engine, data = filled
    with engine.begin() as conn:
        conn.execute(items.update().where(items.c.id == data.ids["arabic"])
                     .values(text='سطر "أول"\nسطر, ثانٍ'))
    out = io.StringIO(newline="")
    count = export_items(items_to_export(engine, relevant=True), out, fmt="csv")
    records = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert list(records[0]) == list(FIELDS)
    assert count == len(records) == len(data.relevant_ids)
    assert {int(r["id"]) for r in records} == set(data.relevant_ids)
    arabic = next(r for r in records if int(r["id"]) == data.ids["arabic"])
    assert arabic["text"] == 'سطر "أول"\nسطر, ثانٍ' and arabic["relevant"] == "true"
    assert ";" in arabic["topics"] or arabic["topics"] in ("ai", "cyber")


def test_since_filters_on_the_day_kept(filled) -> None:
    engine, data = filled
    since = parse_since(NOW.date().isoformat())
    out = io.StringIO()
    export_items(items_to_export(engine, since=since), out, fmt="jsonl")
    got = [json.loads(line)["id"] for line in out.getvalue().splitlines()]
    assert got == sorted(i for i in data.all_ids if data.by_id[i]["fetched_at"] >= since)
    assert parse_since("2026-01-02T03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_since("2026-01-02T03:04:05+01:00") == datetime(2026, 1, 2, 2, 4, 5, tzinfo=UTC)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_since("last week")


def test_memory_stays_flat_while_streaming(project: Project) -> None:
    settings = load_settings(project.config)
    engine = make_engine(settings.database_url)
    create_schema(engine)
    body = "Le Maroc numérique. " * 1000  # 20 KB per item, 3,000 items: 60 MB of text
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(items.insert(), [
            {"feed_id": None, "guid": f"g{n}", "url": f"https://x.ma/{n}",
             "canonical_url": f"https://x.ma/{n}", "title": f"T{n}", "summary": "",
             "published": None, "fetched_at": now - timedelta(seconds=n), "lang": "fr",
             "text": body + str(n), "text_source": "page", "content_hash": str(n),
             "relevant": n % 2 == 0, "score": 1.0, "topics": [], "matches": [],
             "rules_version": "t"} for n in range(3000)])

    class Counting(io.TextIOBase):
        written = 0

        def write(self, text: str) -> int:
            self.written += len(text)
            return len(text)

    for fmt in ("jsonl", "csv"):
        sink = Counting()
        tracemalloc.start()
        count = export_items(items_to_export(engine), sink, fmt=fmt)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count == 3000 and sink.written > 60_000_000
        assert peak < 20_000_000, f"{fmt}: peak {peak / 1e6:.1f} MB for 60 MB exported"
    engine.dispose()


def test_export_command(project: Project, filled) -> None:
    _, data = filled
    out = project.cli("export", "--format", "jsonl", "--relevant")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["id"] for r in rows] == sorted(data.relevant_ids)
    assert f"exported {len(rows)} items" in out.stderr
    target = project.root / "items.csv"
    project.cli("export", "--format", "csv", "--since", NOW.date().isoformat(),
                "--output", str(target))
    with target.open(encoding="utf-8", newline="") as handle:
        records = list(csv.DictReader(handle))
    assert {int(r["id"]) for r in records} == {
        i for i in data.all_ids if data.by_id[i]["fetched_at"].date() >= NOW.date()}
    assert project.cli("export", "--format", "xml", check=False).returncode == 2
    bad = project.cli("export", "--format", "csv", "--since", "soon", check=False)
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
