"""The corpus writer: names, contents, atomicity, two writers, idempotence."""

from __future__ import annotations

import hashlib
import multiprocessing
import re
import shutil
from pathlib import Path

from monitor.corpus import Corpus
from tests.conftest import SEEDS


def _seeded(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for seed in SEEDS:
        shutil.copy2(seed, folder / seed.name)
    return folder


def test_name_and_content_follow_the_contract(tmp_path: Path) -> None:
    folder = _seeded(tmp_path)
    url = "https://example.ma/article/1"
    name = Corpus(folder).write(url, "Titre", "Corps du texte.\n")
    assert name == f"005_{hashlib.sha256(url.encode()).hexdigest()[:16]}.txt"
    assert (folder / name).read_text(encoding="utf-8") == "Titre\n\nCorps du texte.\n"
    for seed in SEEDS:
        assert (folder / seed.name).read_bytes() == seed.read_bytes()
    assert not list(folder.glob(".incoming-*"))


def test_same_key_is_written_once_even_after_a_restart(tmp_path: Path) -> None:
    folder = _seeded(tmp_path)
    first = Corpus(folder).write("https://example.ma/a", "A", "a")
    assert Corpus(folder).write("https://example.ma/a", "A", "a") == first
    second = Corpus(folder).write("https://example.ma/b", "B", "b")
    assert second.startswith("006_")


def _write_many(args: tuple[str, int, int]) -> list[str]:
    folder, worker, count = args
    corpus = Corpus(Path(folder))
    return [corpus.write(f"https://w{worker}.ma/{i}", f"T{i}", "x" * 2000) for i in range(count)]


def test_two_writing_processes_never_share_a_number(tmp_path: Path) -> None:
    folder = _seeded(tmp_path)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        names = [
            n
            for batch in pool.map(_write_many, [(str(folder), w, 40) for w in (1, 2)])
            for n in batch
        ]
    assert len(names) == 80 == len(set(names))
    numbers = [int(re.match(r"(\d+)_", n).group(1)) for n in names]
    assert len(set(numbers)) == 80 and min(numbers) == 5
    for name in names:
        assert (folder / name).read_text(encoding="utf-8").endswith("x" * 2000 + "\n")
    assert len(list(folder.glob("*.txt"))) == 85


def test_stale_temporaries_are_removed_young_ones_kept(tmp_path: Path) -> None:
    import os
    import time

    folder = _seeded(tmp_path)
    old, young = folder / ".incoming-old.tmp", folder / ".incoming-young.tmp"
    old.write_text("half")
    young.write_text("in flight")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert Corpus(folder).remove_stale_temporaries(older_than=3600) == 1
    assert not old.exists() and young.exists()


def _write_many_numbered(args: tuple[str, str, int, int]) -> list[str]:
    from monitor.store.corpusnumbers import CorpusNumbers
    from monitor.store.engine import make_engine

    folder, url, worker, count = args
    corpus = Corpus(Path(folder), CorpusNumbers(make_engine(url)))
    return [corpus.write(f"https://w{worker}.ma/{i}", f"T{i}", "x" * 2000) for i in range(count)]


def test_workers_numbered_by_the_database_never_share_a_number(
    tmp_path: Path, database_url: str
) -> None:
    from monitor.store.engine import create_schema, make_engine

    create_schema(make_engine(database_url))
    folder = _seeded(tmp_path)
    # Each worker sees its own folder (as on machines whose network filesystem does not share
    # locks): only the database keeps them apart.
    folders = [tmp_path / "a", tmp_path / "b"]
    for other in folders:
        shutil.copytree(folder, other)
    jobs = [(str(f), database_url, w, 30) for w, f in enumerate(folders)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        names = [n for batch in pool.map(_write_many_numbered, jobs) for n in batch]
    numbers = [int(re.match(r"(\d+)_", n).group(1)) for n in names]
    assert len(set(numbers)) == 60 and min(numbers) == 5
    for other in folders:
        assert len(list(other.glob("*.txt"))) == 35


def test_a_numbered_key_keeps_its_number_after_a_crash(tmp_path: Path, database_url: str) -> None:
    from monitor.store.corpusnumbers import CorpusNumbers
    from monitor.store.engine import create_schema, make_engine

    engine = make_engine(database_url)
    create_schema(engine)
    folder = _seeded(tmp_path)
    numbers = CorpusNumbers(engine)
    url = "https://example.ma/article/1"
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    assert numbers.reserve(key, 5) == 5  # a worker reserved, then died before writing
    assert numbers.reserve("ffffffffffffffff", 5) == 6  # others went on
    name = Corpus(folder, CorpusNumbers(engine)).write(url, "Titre", "Corps.")
    assert name == f"005_{key}.txt"
    assert Corpus(folder, CorpusNumbers(engine)).write(url, "Titre", "Corps.") == name
    assert (folder / name).read_text(encoding="utf-8") == "Titre\n\nCorps.\n"
    assert not list(folder.glob(".incoming-*"))


def test_a_file_is_placed_where_its_stored_name_says_once(tmp_path: Path) -> None:
    folder = _seeded(tmp_path)
    corpus = Corpus(folder)
    name = corpus.write("https://example.ma/a", "A", "a")
    data = (folder / name).read_bytes()
    assert corpus.place(f"withdrawn/{name}") == "moved"
    assert corpus.place(f"withdrawn/{name}") == "in place"
    assert (folder / "withdrawn" / name).read_bytes() == data and not (folder / name).exists()
    assert [p.name for p in corpus.withdrawn_files()] == [name]
    assert name not in [p.name for p in corpus.files()]
    assert corpus.locations() == ({s.name for s in SEEDS}, {name})
    assert corpus.place(name) == "moved" and (folder / name).read_bytes() == data
    assert corpus.place("withdrawn/007_ffffffffffffffff.txt") == "missing"
    # numbering goes on after a withdrawn file's number, even without the counter file
    corpus.place(f"withdrawn/{name}")
    (folder / ".next").unlink()
    assert Corpus(folder).write("https://example.ma/b", "B", "b").startswith("006_")
