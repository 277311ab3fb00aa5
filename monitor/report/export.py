"""Export stored items as JSON Lines or CSV, streamed. Does I/O (reads the database).

In: an `Engine`, a text stream, the format (``jsonl`` or ``csv``), and optional filters (only
relevant items; only items kept since a time). Out: one line (or CSV record) per item, oldest
first, written as rows arrive (a server-side cursor on PostgreSQL, batches of `BATCH` rows):
memory stays flat whatever the number of items. Returns the number of items written.

Columns, in order (the CSV header; the keys of each JSON object): see `FIELDS`. ``topics`` is a
list in JSON and ``;``-separated in CSV; booleans are ``true``/``false`` in CSV.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from typing import TextIO

from sqlalchemy import Engine, select

from monitor.store.schema import feeds, items

FORMATS = ("jsonl", "csv")
BATCH = 500
FIELDS = ("id", "url", "canonical_url", "title", "feed", "feed_url", "published", "fetched_at",
          "lang", "relevant", "score", "topics", "rules_version", "corpus_file", "content_hash",
          "text_source", "text_error", "text")


def parse_since(value: str) -> datetime:
    """A ``YYYY-MM-DD`` day (its start, UTC) or an ISO 8601 time (UTC when no zone is given)."""
    value = value.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date; write YYYY-MM-DD or an ISO 8601 time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iter_items(engine: Engine, *, relevant: bool = False,
               since: datetime | None = None) -> Iterator[dict]:
    """Stored items as dicts with `FIELDS`, oldest first, streamed."""
    query = (select(items.c.id, items.c.url, items.c.canonical_url, items.c.title,
                    feeds.c.name.label("feed"), feeds.c.url.label("feed_url"), items.c.published,
                    items.c.fetched_at, items.c.lang, items.c.relevant, items.c.score,
                    items.c.topics, items.c.rules_version, items.c.corpus_file,
                    items.c.content_hash, items.c.text_source, items.c.text_error, items.c.text)
             .select_from(items.outerjoin(feeds, feeds.c.id == items.c.feed_id))
             .order_by(items.c.id))
    if relevant:
        query = query.where(items.c.relevant.is_(True))
    if since is not None:
        query = query.where(items.c.fetched_at >= since)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        for row in result:
            out = dict(row._mapping)
            for key in ("published", "fetched_at"):
                out[key] = out[key].isoformat() if out[key] is not None else None
            out["relevant"] = bool(out["relevant"])
            out["topics"] = list(out["topics"] or [])
            yield out


def export_items(engine: Engine, out: TextIO, *, fmt: str, relevant: bool = False,
                 since: datetime | None = None) -> int:
    """Write the items to `out` in `fmt`; the number of items written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    count = 0
    rows = iter_items(engine, relevant=relevant, since=since)
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
        return count
    writer = csv.writer(out)
    writer.writerow(FIELDS)
    for row in rows:
        writer.writerow([_csv_value(row[field]) for field in FIELDS])
        count += 1
    return count


def _csv_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return "" if value is None else value
