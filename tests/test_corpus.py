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
