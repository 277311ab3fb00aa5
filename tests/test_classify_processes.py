"""`monitor classify` on many files, in a pool of processes, prints what it prints in one: the
same bytes, the same error and exit status for an unreadable file, the lines before it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.cli import classify_command
from tests.commandline import run_in_process

ROOT = Path(__file__).resolve().parent.parent
NEWS = Path(__file__).resolve().parent / "fixtures" / "rules" / "news.jsonl"
FILES = 500  # ~1.2 MB: more than `_PARALLEL_ABOVE`, and three chunks of `_CHUNK`


@pytest.fixture
def news_files(tmp_path: Path) -> list[str]:
    """FILES real news texts as files in tmp_path (the current folder of the commands); their
    names."""
    rows = [json.loads(line) for line in NEWS.read_text(encoding="utf-8").splitlines()]
    names = []
    for index in range(FILES):
        row = rows[index % len(rows)]
        names.append(f"{index:04d}.txt")
        (tmp_path / names[-1]).write_text(f"{row['title']}\n\n{row['text']}", encoding="utf-8")
    return names


def _classify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: int, *args: str):
    monkeypatch.setattr(classify_command, "_processes_for", lambda paths: processes)
    return run_in_process(["classify", "--config", str(ROOT / "config" / "monitor.yaml"), *args],
                          cwd=tmp_path)


@pytest.mark.parametrize("as_json", [["--json"], []], ids=["json", "text"])
def test_a_pool_prints_what_one_process_prints(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, news_files: list[str],
        as_json: list[str]) -> None:
    serial = _classify(tmp_path, monkeypatch, 1, *as_json, *news_files)
    pooled = _classify(tmp_path, monkeypatch, 2, *as_json, *news_files)
    assert serial.returncode == pooled.returncode == 0, pooled.stderr
    assert len(serial.stdout.splitlines()) == FILES and "relevant" in serial.stdout
    assert pooled.stdout == serial.stdout


def test_an_unreadable_file_stops_a_pool_as_it_stops_one_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, news_files: list[str]) -> None:
    paths = [*news_files[:150], "missing.txt", *news_files[150:]]  # in the second chunk
    serial = _classify(tmp_path, monkeypatch, 1, "--json", *paths)
    pooled = _classify(tmp_path, monkeypatch, 2, "--json", *paths)
    assert serial.returncode == pooled.returncode == 2
    assert "cannot read missing.txt" in pooled.stderr and pooled.stderr == serial.stderr
    assert [json.loads(line)["path"] for line in pooled.stdout.splitlines()] == news_files[:150]
    assert pooled.stdout == serial.stdout


def test_many_bytes_of_files_go_to_a_pool_and_standard_input_never(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, news_files: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(classify_command.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(classify_command.os, "cpu_count", lambda: 2)
    size = sum((tmp_path / name).stat().st_size for name in news_files)
    assert size > classify_command._PARALLEL_ABOVE
    assert classify_command._processes_for(news_files) == 2
    assert classify_command._processes_for(["-", *news_files]) == 1
    few = news_files[:len(news_files) * classify_command._PARALLEL_ABOVE // size // 2]
    assert classify_command._processes_for(few) == 1
