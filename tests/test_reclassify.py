"""`reclassify`: the current rules re-applied to stored items, on a real SQLite file."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
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
from tests.conftest import SEEDS, project_engine

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
def stored(tmp_path: Path, database_url: str):
    """Four items on each backend: two page items not relevant, one relevant page item with a
    corpus file (000), one corpus item (a file of the folder, like a seed: 001)."""
    engine = make_engine(database_url)
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
    yield engine, Corpus(corpus_dir, CorpusNumbers(engine)), load_ruleset(rules_path), ids
    engine.dispose()


def _rows(engine) -> dict[int, dict]:
    with engine.connect() as conn:
        return {r.id: r._asdict() for r in conn.execute(select(items))}


def _rewrite_rules(path: Path, text: str):
    path.write_text(text, encoding="utf-8")
    return load_ruleset(path)


def _folder(corpus: Corpus) -> dict[str, bytes]:
    """Every file under the corpus folder (withdrawn/ included): relative path -> bytes."""
    return {str(p.relative_to(corpus.folder)): p.read_bytes()
            for p in sorted(corpus.folder.rglob("*")) if p.is_file()}


def test_reclassify_changes_verdicts_writes_corpus_and_records_version(stored) -> None:
    engine, corpus, rules, ids = stored
    folder = corpus.folder
    foot_bytes = (folder / "000_aaaaaaaaaaaaaaaa.txt").read_bytes()
    seen = []
    report = reclassify(engine, rules, corpus, batch=3, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(3, 4), (4, 4)]
    assert report.summary() == {"version": rules.version, "dry_run": False, "items": 4,
                                "rewritten": 4, "skipped": 0, "newly_relevant": 2,
                                "no_longer_relevant": 1, "corpus_files_written": 2,
                                "corpus_files_withdrawn": 1, "corpus_files_restored": 0,
                                "pending_moves_finished": 0, "withdrawn_files": 1,
                                "alerts_queued": 0}
    assert {(c.id, c.was, c.now, c.corpus) for c in report.changes} == {
        (ids[0], False, True, "written"), (ids[1], True, False, "withdrawn"),
        (ids[2], False, True, "written")}
    rows = _rows(engine)
    assert {r["rules_version"] for r in rows.values()} == {rules.version}
    first = rows[ids[0]]
    assert first["relevant"] and first["topics"] == ["cyber"] and first["score"] == 2
    assert {(m["term"], m["field"], m["rules"][0]) for m in first["matches"]} == {
        ("cybersécurité", "title", "morocco-cyber"), ("maroc", "title", "morocco-cyber")}
    written = folder / first["corpus_file"]
    assert written.read_text(encoding="utf-8").startswith("Cybersécurité : le Maroc")
    assert rows[ids[2]]["corpus_file"] and (folder / rows[ids[2]]["corpus_file"]).exists()
    # no longer relevant: its file leaves the folder for withdrawn/, same name, same bytes
    foot = rows[ids[1]]
    assert not foot["relevant"] and foot["corpus_file"] == "withdrawn/000_aaaaaaaaaaaaaaaa.txt"
    assert not (folder / "000_aaaaaaaaaaaaaaaa.txt").exists()
    assert (folder / "withdrawn" / "000_aaaaaaaaaaaaaaaa.txt").read_bytes() == foot_bytes
    assert [c.corpus_file for c in report.changes if c.id == ids[1]] == [foot["corpus_file"]]
    # a corpus item is classified as one text (its title line is in it), as when imported
    assert rows[ids[3]]["relevant"] and rows[ids[3]]["corpus_file"] == "001_bbbbbbbbbbbbbbbb.txt"
    assert {m["field"] for m in rows[ids[3]]["matches"]} == {"body"}
    assert sorted(p.name for p in corpus.files()) == sorted(
        [first["corpus_file"], rows[ids[2]]["corpus_file"], "001_bbbbbbbbbbbbbbbb.txt"])


def test_reclassify_again_skips_then_force_changes_nothing(stored) -> None:
    engine, corpus, rules, _ = stored
    reclassify(engine, rules, corpus)
    files = _folder(corpus)
    again = reclassify(engine, rules, corpus)
    assert (again.rewritten, again.skipped, again.changes) == (0, 4, [])
    forced = reclassify(engine, rules, corpus, force=True)
    assert (forced.rewritten, forced.changes, forced.corpus_files) == (4, [], 0)
    assert (forced.withdrawn, forced.restored, forced.settled.moved) == (0, 0, 0)
    assert _folder(corpus) == files


def test_a_rules_edit_withdraws_files_never_a_seed_and_the_next_brings_them_back(
    stored, tmp_path: Path
) -> None:
    engine, corpus, rules, ids = stored
    reclassify(engine, rules, corpus)
    kept = {n: b for n, b in _folder(corpus).items() if "/" not in n}
    assert len(kept) == 3  # the two written, and the corpus item's file

    strict = _rewrite_rules(tmp_path / "rules.yaml", RULES.replace("threshold: 2", "threshold: 99"))
    report = reclassify(engine, strict, corpus)
    assert {(c.id, c.now, c.corpus) for c in report.changes} == {
        (ids[0], False, "withdrawn"), (ids[2], False, "withdrawn"), (ids[3], False, None)}
    rows = _rows(engine)
    # the corpus item (a seed) keeps its place, whatever the rules say
    seed = rows[ids[3]]
    assert not seed["relevant"] and seed["corpus_file"] == "001_bbbbbbbbbbbbbbbb.txt"
    assert _folder(corpus) == {
        "001_bbbbbbbbbbbbbbbb.txt": kept["001_bbbbbbbbbbbbbbbb.txt"],
        **{f"withdrawn/{n}": b for n, b in kept.items() if n != "001_bbbbbbbbbbbbbbbb.txt"},
        "withdrawn/000_aaaaaaaaaaaaaaaa.txt": b"Foot\n\nLe Wydad bat le Raja.\n"}
    assert report.withdrawn_files == 3 and report.withdrawn == 2

    back = reclassify(engine, _rewrite_rules(tmp_path / "rules.yaml", RULES), corpus)
    assert {(c.id, c.now, c.corpus) for c in back.changes} == {
        (ids[0], True, "restored"), (ids[2], True, "restored"), (ids[3], True, None)}
    assert (back.restored, back.corpus_files, back.withdrawn_files) == (2, 0, 1)
    folder = _folder(corpus)
    assert {n: b for n, b in folder.items() if "/" not in n} == kept
    assert list(n for n in folder if "/" in n) == ["withdrawn/000_aaaaaaaaaaaaaaaa.txt"]
    assert {r["corpus_file"] for r in _rows(engine).values()} == {*kept,
                                                                 "withdrawn/000_aaaaaaaaaaaaaaaa.txt"}


def _comparable(report) -> tuple:
    """What a dry run must predict of a run: its changes (a file to be written has no name
    before it is written) and its counts."""
    changes = {(c.id, c.title, c.was, c.now, c.score, c.topics, c.corpus,
                None if c.corpus == "written" else c.corpus_file) for c in report.changes}
    summary = {k: v for k, v in report.summary().items() if k not in ("dry_run", "withdrawn_files")}
    return changes, summary


def _database_bytes(engine) -> bytes:
    """The SQLite file's bytes, or, on PostgreSQL, every row of the tables a run writes."""
    if engine.dialect.name == "sqlite":
        return Path(engine.url.database).read_bytes()
    from monitor.store.schema import corpus_numbers

    with engine.connect() as conn:
        rows = [sorted(map(repr, conn.execute(select(table)))) for table in (items, corpus_numbers)]
    return repr(rows).encode()


def test_a_dry_run_writes_nothing_and_predicts_the_run(stored, tmp_path: Path) -> None:
    engine, corpus, rules, _ = stored
    digest = (hashlib.sha256(_database_bytes(engine)).hexdigest(), _folder(corpus))
    dry = reclassify(engine, rules, corpus, dry_run=True)
    assert (hashlib.sha256(_database_bytes(engine)).hexdigest(), _folder(corpus)) == digest
    assert not corpus.withdrawn_folder.exists()
    real = reclassify(engine, rules, corpus)
    assert _comparable(dry) == _comparable(real)
    assert dry.summary()["corpus_files_withdrawn"] == 1 and dry.summary()["dry_run"]

    strict = _rewrite_rules(tmp_path / "rules.yaml", RULES.replace("threshold: 2", "threshold: 99"))
    digest = (hashlib.sha256(_database_bytes(engine)).hexdigest(), _folder(corpus))
    dry = reclassify(engine, strict, corpus, dry_run=True)
    assert (hashlib.sha256(_database_bytes(engine)).hexdigest(), _folder(corpus)) == digest
    real = reclassify(engine, strict, corpus)
    assert _comparable(dry) == _comparable(real) and real.withdrawn == 2


KILL_BEFORE_MOVES = """
import os, sys
from pathlib import Path

from monitor.corpus import Corpus
from monitor.rules import load_ruleset
from monitor.store.corpusnumbers import CorpusNumbers
from monitor.store.engine import make_engine
from monitor.worker.reclassify import reclassify
from tests.conftest import SEEDS, project_engine

Corpus.place = lambda self, corpus_file: os._exit(9)  # killed once the batch is committed
engine = make_engine(sys.argv[1])
reclassify(engine, load_ruleset(Path(sys.argv[3])),
           Corpus(Path(sys.argv[2]), CorpusNumbers(engine)))
"""


def test_a_run_killed_between_commit_and_move_is_finished_by_the_next(
    stored, tmp_path: Path
) -> None:
    engine, corpus, rules, ids = stored
    reclassify(engine, rules, corpus)
    strict = tmp_path / "strict.yaml"
    strict.write_text(RULES.replace("threshold: 2", "threshold: 99"), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", KILL_BEFORE_MOVES,
                           engine.url.render_as_string(hide_password=False), str(corpus.folder),
                           str(strict)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    rows = _rows(engine)
    moved = [rows[i]["corpus_file"] for i in (ids[0], ids[2])]
    assert all(f.startswith("withdrawn/") for f in moved)  # committed...
    assert all((corpus.folder / f.removeprefix("withdrawn/")).exists() for f in moved)  # not moved

    again = reclassify(engine, load_ruleset(strict), corpus)
    assert (again.rewritten, again.changes, again.settled.withdrawn) == (0, [], 2)
    assert again.summary()["pending_moves_finished"] == 2
    assert all((corpus.folder / f).exists() for f in moved)
    assert not any((corpus.folder / f.removeprefix("withdrawn/")).exists() for f in moved)
    assert reclassify(engine, load_ruleset(strict), corpus).settled.moved == 0


def test_a_file_kept_before_withdrawal_existed_is_withdrawn_by_init(project, backend: str) -> None:
    """A database where a no-longer-relevant item still holds its file in the folder (the
    corpus was append-only): `monitor init` withdraws it once; the seeds stay."""
    project.cli("init")
    engine = project_engine(project)
    try:
        corpus = Corpus(project.corpus, CorpusNumbers(engine))
        name = corpus.write("https://example.ma/old", "Ancien", "Un vieux texte.")
        item = insert_item(engine, _item(7, "Ancien", "Un vieux texte.", relevant=False,
                                         url="https://example.ma/old", corpus_file=name))
        out = project.cli("init").stdout
        assert "corpus files moved as the stored verdicts say: 1 to withdrawn/, 0 back" in out
        assert _rows(engine)[item]["corpus_file"] == f"withdrawn/{name}"
        assert (project.corpus / "withdrawn" / name).exists()
        assert sorted(p.name for p in project.corpus.glob("*.txt")) == [s.name for s in SEEDS]
        assert "moved" not in project.cli("init").stdout
        stats = json.loads(project.cli("stats", "--json").stdout)
        assert (stats["corpus_files"], stats["withdrawn_corpus_files"]) == (len(SEEDS), 1)
    finally:
        engine.dispose()


def test_withdrawn_files_keep_their_numbers(project, backend: str) -> None:
    """Numbering continues after the withdrawn files, with or without a database; `monitor
    init` on a fresh database registers their numbers, and does not import their texts."""
    withdrawn = project.corpus / "withdrawn"
    withdrawn.mkdir()
    (withdrawn / "009_cccccccccccccccc.txt").write_text("Neuf\n\nNeuf.\n", encoding="utf-8")
    assert "corpus files imported: 5 " in project.cli("init").stdout
    engine = project_engine(project)
    try:
        assert CorpusNumbers(engine).registered()[9] == ("cccccccccccccccc", "folder")
        assert len(_rows(engine)) == len(SEEDS)
    finally:
        engine.dispose()
    lone = Corpus(project.corpus)  # no database: the folder's counter and files
    assert lone.write("https://example.ma/n", "N", "n").startswith("010_")


def test_reclassify_command(project) -> None:
    project.cli("init")
    rules = project.root / "config" / "rules.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("threshold: 3", "threshold: 99"),
                     encoding="utf-8")
    files = sorted(p.name for p in project.corpus.glob("*.txt"))
    before = (project.database.read_bytes(), _folder(Corpus(project.corpus)))
    dry = project.cli("reclassify", "--dry-run").stdout
    assert (project.database.read_bytes(), _folder(Corpus(project.corpus))) == before
    assert dry.startswith(tuple(f"{i:>7} no longer relevant" for i in range(1, 6)))
    assert dry.splitlines()[-1].startswith("dry run, nothing written: rules ")
    assert "5 would be re-classified" in dry
    out = project.cli("reclassify", "--json").stdout.splitlines()
    rows = [json.loads(line) for line in out]
    assert [(r["now"], r["corpus"]) for r in rows[:-1]] == [(False, None)] * 5  # seeds stay
    assert rows[-1]["summary"] and rows[-1]["no_longer_relevant"] == 5
    assert rows[-1]["withdrawn_files"] == 0
    assert sorted(p.name for p in project.corpus.glob("*.txt")) == files
    text = project.cli("reclassify").stdout
    assert "0 re-classified (5 already at this version)" in text
    assert text.rstrip().endswith("0 withdrawn, 0 restored; 0 in withdrawn/")
