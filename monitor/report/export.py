"""Export stored items as JSON Lines or CSV, streamed. Pure (writes to the stream it is given).

In: item rows with `FIELDS` as they come from the store (`store.listings.items_to_export`,
oldest first, streamed), a text stream and the format (``jsonl`` or ``csv``). Out: one line (or
CSV record) per item, written as rows arrive: memory stays flat whatever the number of items.
Returns the number of items written. `parse_since` reads the ``--since`` option.

Columns, in order (the CSV header; the keys of each JSON object): see `FIELDS`. ``topics`` is a
list in JSON and ``;``-separated in CSV; booleans are ``true``/``false`` in CSV.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import TextIO

FORMATS = ("jsonl", "csv")
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


def export_items(rows: Iterable[dict], out: TextIO, *, fmt: str, header: bool = True) -> int:
    """Write the items (`rows`, dicts with `FIELDS`) to `out` in `fmt` as they come; the number
    of items written. `header`: the CSV's first line (without it, more records of a CSV)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    count = 0
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
        return count
    writer = csv.writer(out)
    if header:
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
