"""Benchmark: feed parsing speed on the real feeds of tests/fixtures/feeds/, and of its step
that turns entry summaries from HTML into text.

In: every feed file listed in tests/fixtures/feeds/MANIFEST.jsonl (served headers included).
Out: CPU seconds (best of --rounds) and MB/s of `parse_feed` over all of them, then of the
HTML-to-text step alone over the HTML summaries, titles and contents those feeds hold (collected
while parsing). No network. Not a test: figures vary with the machine and its load.

    python bench/feed_parse_speed.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.errors import NotAFeed  # noqa: E402
from monitor.feeds import parse  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "feeds"


def fixture_feeds() -> list[tuple[bytes, dict]]:
    rows = [json.loads(line) for line in (FIXTURES / "MANIFEST.jsonl").read_text().splitlines()]
    return [((FIXTURES / row["file"]).read_bytes(), _headers(row.get("http_headers") or []))
            for row in rows if "file" in row and "/expected/" not in row["file"]]


def _headers(lines: list[str]) -> dict:
    """The manifest's "Name: value" header lines as a mapping."""
    return dict(tuple(part.strip() for part in line.split(":", 1)) for line in lines)


def parse_all(feeds: list[tuple[bytes, dict]]) -> int:
    entries = 0
    for content, headers in feeds:
        with contextlib.suppress(NotAFeed):
            entries += len(parse.parse_feed(content, url="https://example.org/feed",
                                            headers=headers).entries)
    return entries


def html_texts(feeds: list[tuple[bytes, dict]]) -> list[tuple[str, str]]:
    """The (markup, content type) of every HTML text the feeds hold, as parsing meets them."""
    seen, plain_text = [], parse._plain_text

    def record(value: str | None, content_type: str | None) -> str:
        if value and content_type in parse._HTML_TYPES:
            seen.append((value, content_type))
        return plain_text(value, content_type)

    parse._plain_text = record
    try:
        parse_all(feeds)
    finally:
        parse._plain_text = plain_text
    return seen


def best_of(rounds: int, function, *args) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        function(*args)
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    feeds = fixture_feeds()
    size = sum(len(content) for content, _ in feeds) / 1e6
    entries = parse_all(feeds)
    seconds = best_of(args.rounds, parse_all, feeds)
    print(f"parse_feed: {len(feeds)} files, {size:.2f} MB, {entries} entries: "
          f"{seconds * 1e3:.0f} ms, {size / seconds:.2f} MB/s")
    texts = html_texts(feeds)
    chars = sum(len(value) for value, _ in texts) / 1e6
    seconds = best_of(args.rounds, lambda: [parse._plain_text(v, t) for v, t in texts])
    print(f"  HTML to text: {len(texts)} texts, {chars:.2f} M characters: "
          f"{seconds * 1e3:.1f} ms, {chars / seconds:.1f} M characters/s")


if __name__ == "__main__":
    main()
