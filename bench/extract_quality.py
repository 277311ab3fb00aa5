"""Extraction quality and speed: bare trafilatura against monitor.extract, in one run.

    python bench/extract_quality.py [ARTICLES_DIR]

ARTICLES_DIR (default: tests/fixtures/articles) holds ``<id>.html`` + ``<id>.json`` and an
``INDEX.jsonl`` listing the ids. A page whose ``gold_type`` starts with ``full_text`` has the gold
body in ``articleBody``; a ``snippets`` page has ``gold.with`` (must appear in the text) and
``gold.without`` (must not).

Measured on one core, in this process, both sides on the same pages:
  (a) bare: ``trafilatura.extract(html_bytes)`` with its defaults;
  (b) ours: ``monitor.extract.extract_article(html_bytes, url=url)``; NoText counts as "".

Scoring follows the Zyte article-extraction-benchmark's evaluate.py
(scrapinghub/article-extraction-benchmark): tokens are the matches of the Unicode regex ``\\w+``
(no lower-casing, punctuation dropped); per page, true positives = size of the multiset
intersection of gold and extracted tokens, false positives / negatives = what is left on each
side; precision and recall are averaged over pages (a page with nothing extracted adds no
precision term) and F1 is the harmonic mean of those two averages. "token F1" uses single
tokens; evaluate.py itself uses 4-token shingles, printed too as "shingle F1". "mean page F1" is
the plain mean of per-page F1, which punishes a page that fails completely harder.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trafilatura

from monitor.errors import NoText
from monitor.extract import extract_article

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "articles"
_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class Page:
    id: str
    url: str | None
    html: bytes
    gold: dict


@dataclass(frozen=True)
class Scores:
    token_f1: float
    shingle_f1: float
    mean_page_f1: float
    precision: float
    recall: float


def load_pages(folder: Path) -> list[Page]:
    pages = []
    for line in (folder / "INDEX.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        page_id = json.loads(line)["id"]
        gold = json.loads((folder / f"{page_id}.json").read_text(encoding="utf-8"))
        html = (folder / f"{page_id}.html").read_bytes()
        pages.append(Page(page_id, gold.get("url"), html, gold))
    return pages


def shingles(text: str, n: int) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(text or "")
    return Counter(tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)))


def precision_recall(gold: str, extracted: str, n: int = 1) -> tuple[float | None, float | None]:
    """Per-page precision and recall as evaluate.py computes them; None where it skips a term."""
    true, pred = shingles(gold, n), shingles(extracted, n)
    true.pop((), None)
    pred.pop((), None)
    tp = sum((true & pred).values())
    fp = sum((pred - true).values())
    fn = sum((true - pred).values())
    if fp == fn == 0:
        return (1.0 if tp else None), (1.0 if tp else None)
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return precision, recall


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def score(golds: list[str], texts: list[str]) -> Scores:
    def corpus_f1(n: int) -> tuple[float, float, float]:
        pairs = [precision_recall(g, t, n) for g, t in zip(golds, texts, strict=True)]
        precision = statistics.mean(p for p, _ in pairs if p is not None)
        recall = statistics.mean(r for _, r in pairs if r is not None)
        return f1(precision, recall), precision, recall

    token_f1, precision, recall = corpus_f1(1)
    page_f1s = [f1(p or 0.0, r or 0.0) for p, r in map(precision_recall, golds, texts)]
    return Scores(token_f1, corpus_f1(4)[0], statistics.mean(page_f1s), precision, recall)


def bare(page: Page) -> str:
    return trafilatura.extract(page.html) or ""


def ours(page: Page) -> str:
    try:
        return extract_article(page.html, url=page.url).text
    except NoText:
        return ""


def timed(extractor: Callable[[Page], str], pages: list[Page]) -> tuple[list[str], float]:
    extractor(pages[0])  # warm-up: first calls load trafilatura's data files
    started = time.perf_counter()
    texts = [extractor(page) for page in pages]
    return texts, len(pages) / (time.perf_counter() - started)


def snippet_passes(texts: list[str], pages: list[Page]) -> tuple[int, int, int]:
    """Pages with every snippet right, `with` snippets present, `without` snippets absent."""
    whole = present = absent = 0
    for text, page in zip(texts, pages, strict=True):
        found = sum(s in text for s in page.gold["gold"]["with"])
        missing = sum(s not in text for s in page.gold["gold"]["without"])
        present += found
        absent += missing
        whole += (found, missing) == (
            len(page.gold["gold"]["with"]),
            len(page.gold["gold"]["without"]),
        )
    return whole, present, absent


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else DEFAULT_DIR
    pages = load_pages(folder)
    full = [p for p in pages if str(p.gold.get("gold_type", "")).startswith("full_text")]
    snippet = [p for p in pages if p.gold.get("gold_type") == "snippets"]
    if not full:
        print(f"no full-text pages in {folder}", file=sys.stderr)
        return 2
    golds = [p.gold["articleBody"] for p in full]
    results = {}
    for name, extractor in (("bare", bare), ("ours", ours)):
        texts, speed = timed(extractor, full)
        results[name] = (score(golds, texts), speed, extractor)

    print(f"{len(full)} full-text pages, {len(snippet)} snippet pages, one core")
    print(f"{'':6}{'token F1':>9}{'P':>7}{'R':>7}{'shingle F1':>12}{'page F1':>9}{'pages/s':>9}")
    for name, (s, speed, _) in results.items():
        print(
            f"{name:6}{s.token_f1:9.3f}{s.precision:7.3f}{s.recall:7.3f}"
            f"{s.shingle_f1:12.3f}{s.mean_page_f1:9.3f}{speed:9.1f}"
        )
    (b, b_speed, _), (o, o_speed, _) = results["bare"], results["ours"]
    print(
        f"ours/bare: token F1 {o.token_f1 / b.token_f1:.3f}, "
        f"shingle F1 {o.shingle_f1 / b.shingle_f1:.3f}, pages/s {o_speed / b_speed:.2f}"
    )
    if snippet:
        n_with = sum(len(p.gold["gold"]["with"]) for p in snippet)
        n_without = sum(len(p.gold["gold"]["without"]) for p in snippet)
        for name, (_, _, extractor) in results.items():
            whole, present, absent = snippet_passes([extractor(p) for p in snippet], snippet)
            print(
                f"snippets {name}: {whole}/{len(snippet)} pages pass; "
                f"with present {present}/{n_with}, without absent {absent}/{n_without}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
