"""`reclassify`: the current rules re-applied to stored items, on a real SQLite file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor.corpus import Corpus
from monitor.rules import load_ruleset
from monitor.store.corpusnumbers import CorpusNumbers
from monitor.store.engine import create_schema, make_engine
from monitor.store.items import NewItem, insert_item
from monitor.store.schema import items
from monitor.worker.reclassify import reclassify

ROOT = Path(__file__).resolve().parent.parent

RULES = """threshold: 2
groups:
  morocco:
    fr: [maroc]
  cyber:
    fr: [cybersécurité]
rules:
  - name: morocco-cyber
    topic: cyber
    all: [morocco, cyber]
    weight: 2
"""


def _item(n: int, title: str, text: str, *, relevant: bool, url: str | None,
          corpus_file: str | None = None, source: str = "page") -> NewItem:
    return NewItem(
        feed_id=None, guid=f"g{n}", url=url, canonical_url=url, title=title, summary="",
        published=None, fetched_at=datetime(2025, 1, n, tzinfo=UTC), lang="fr", text=text,
        text_source=source, text_error=None, text_error_message=None, content_hash=f"h{n}",
        relevant=relevant, score=2.0 if relevant else 0.0, topics=[], matches=[],
        rules_version="old", corpus_file=corpus_file)


@pytest.fixture
def stored(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'monitor.db'}")
    create_schema(engine)
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    (corpus_dir / "000_aaaaaaaaaaaaaaaa.txt").write_text("Foot\n\nLe Wydad bat le Raja.\n")
    (corpus_dir / "001_bbbbbbbbbbbbbbbb.txt").write_text("Maroc\n\nLa cybersécurité du Maroc.\n")
    ids = [insert_item(engine, item) for item in [
        _item(1, "Cybersécurité : le Maroc renforce sa défense", "Un texte.", relevant=False,
              url="https://example.ma/cyber"),
        _item(2, "Foot", "Le Wydad bat le Raja.", relevant=True, url="https://example.ma/foot",
              corpus_file="000_aaaaaaaaaaaaaaaa.txt"),
        _item(3, "Sans lien", "Le Maroc et la cybersécurité.", relevant=False, url=None),
        _item(4, "Maroc", "Maroc\n\nLa cybersécurité du Maroc.", relevant=True, url=None,
              source="corpus", corpus_file="001_bbbbbbbbbbbbbbbb.txt"),
    ]]
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(RULES, encoding="utf-8")
    return engine, Corpus(corpus_dir, CorpusNumbers(engine)), load_ruleset(rules_path), ids


def _rows(engine) -> dict[int, dict]:
    with engine.connect() as conn:
        return {r.id: r._asdict() for r in conn.execute(select(items))}


def test_reclassify_changes_verdicts_writes_corpus_and_records_version(stored) -> None:
    engine, corpus, rules, ids = stored
    folder = corpus.folder
    kept = (folder / "000_aaaaaaaaaaaaaaaa.txt").stat()
    seen = []
    report = reclassify(engine, rules, corpus, batch=3, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(3, 4), (4, 4)]
    assert report.summary() == {"version": rules.version, "items": 4, "rewritten": 4,
                                "skipped": 0, "newly_relevant": 2, "no_longer_relevant": 1,
                                "corpus_files_written": 2, "alerts_queued": 0}
    assert {(c.id, c.was, c.now) for c in report.changes} == {
        (ids[0], False, True), (ids[1], True, False), (ids[2], False, True)}
    rows = _rows(engine)
    assert {r["rules_version"] for r in rows.values()} == {rules.version}
    first = rows[ids[0]]
    assert first["relevant"] and first["topics"] == ["cyber"] and first["score"] == 2
    assert {(m["term"], m["field"], m["rules"][0]) for m in first["matches"]} == {
        ("cybersécurité", "title", "morocco-cyber"), ("maroc", "title", "morocco-cyber")}
    written = folder / first["corpus_file"]
    assert written.read_text(encoding="utf-8").startswith("Cybersécurité : le Maroc")
    assert rows[ids[2]]["corpus_file"] and (folder / rows[ids[2]]["corpus_file"]).exists()
    # no longer relevant: the row keeps its file name, the file is neither deleted nor rewritten
    foot = rows[ids[1]]
    assert not foot["relevant"] and foot["corpus_file"] == "000_aaaaaaaaaaaaaaaa.txt"
    assert (folder / "000_aaaaaaaaaaaaaaaa.txt").stat().st_mtime_ns == kept.st_mtime_ns
    # a corpus item is classified as one text (its title line is in it), as when imported
    assert rows[ids[3]]["relevant"] and rows[ids[3]]["corpus_file"] == "001_bbbbbbbbbbbbbbbb.txt"
    assert {m["field"] for m in rows[ids[3]]["matches"]} == {"body"}


def test_reclassify_again_skips_then_force_changes_nothing(stored) -> None:
    engine, corpus, rules, _ = stored
    reclassify(engine, rules, corpus)
    files = sorted(p.name for p in corpus.folder.glob("*.txt"))
    again = reclassify(engine, rules, corpus)
    assert (again.rewritten, again.skipped, again.changes) == (0, 4, [])
    forced = reclassify(engine, rules, corpus, force=True)
    assert (forced.rewritten, forced.changes, forced.corpus_files) == (4, [], 0)
    assert sorted(p.name for p in corpus.folder.glob("*.txt")) == files


def test_reclassify_command(project) -> None:
    project.cli("init")
    rules = project.root / "config" / "rules.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("threshold: 3", "threshold: 99"),
                     encoding="utf-8")
    files = sorted(p.name for p in project.corpus.glob("*.txt"))
    out = project.cli("reclassify", "--json").stdout.splitlines()
    rows = [json.loads(line) for line in out]
    assert [r["now"] for r in rows[:-1]] == [False] * 5
    assert rows[-1]["summary"] and rows[-1]["no_longer_relevant"] == 5
    assert sorted(p.name for p in project.corpus.glob("*.txt")) == files
    text = project.cli("reclassify").stdout
    assert "0 re-classified (5 already at this version)" in text
