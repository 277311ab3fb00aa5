"""`monitor classify` on many files, in several processes, prints what it prints in one: the
same bytes, the same error and exit status for an unreadable file, the lines before it; the
JSON lines it writes out itself are the JSON encoder's, byte for byte."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from monitor.cli import classify_command, classify_processes
from monitor.cli.output import _JSON
from monitor.rules import load_ruleset
from tests.commandline import run_in_process

ROOT = Path(__file__).resolve().parent.parent
NEWS = Path(__file__).resolve().parent / "fixtures" / "rules" / "news.jsonl"
FILES = 500  # ~1.2 MB: more than `_PARALLEL_ABOVE`; 32 chunks for 2 processes


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


@pytest.mark.parametrize("processes", [2, 3])
@pytest.mark.parametrize("as_json", [["--json"], []], ids=["json", "text"])
def test_several_processes_print_what_one_process_prints(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, news_files: list[str],
        as_json: list[str], processes: int) -> None:
    serial = _classify(tmp_path, monkeypatch, 1, *as_json, *news_files)
    shared = _classify(tmp_path, monkeypatch, processes, *as_json, *news_files)
    assert serial.returncode == shared.returncode == 0, shared.stderr
    assert len(serial.stdout.splitlines()) == FILES and "relevant" in serial.stdout
    assert shared.stdout == serial.stdout


# near the front (where this process takes chunks) and near the back (the forked ones)
@pytest.mark.parametrize("missing_at", [150, 480])
@pytest.mark.parametrize("processes", [2, 3])
def test_an_unreadable_file_stops_several_processes_as_it_stops_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, news_files: list[str],
        processes: int, missing_at: int) -> None:
    paths = [*news_files[:missing_at], "missing.txt", *news_files[missing_at:]]
    serial = _classify(tmp_path, monkeypatch, 1, "--json", *paths)
    shared = _classify(tmp_path, monkeypatch, processes, "--json", *paths)
    assert serial.returncode == shared.returncode == 2
    assert "cannot read missing.txt" in shared.stderr and shared.stderr == serial.stderr
    assert ([json.loads(line)["path"] for line in shared.stdout.splitlines()]
            == news_files[:missing_at])
    assert shared.stdout == serial.stdout


def test_chunks_taken_from_both_ends_by_two_processes_are_each_taken_once() -> None:
    chunks = classify_processes._Chunks(2000)
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the forked process: takes from the back, sends what it took
        status = 1
        try:
            taken = []
            while (index := chunks.take(front=False)) is not None:
                taken.append(index)
            os.write(writing, json.dumps(taken).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(writing)
    front = []
    while (index := chunks.take(front=True)) is not None:
        front.append(index)
    with os.fdopen(reading, "rb") as pipe:
        back = json.loads(pipe.read())
    _, status = os.waitpid(pid, 0)
    chunks.close()
    assert os.waitstatus_to_exitcode(status) == 0
    assert front == list(range(len(front))) and back == list(range(1999, len(front) - 1, -1))
    assert sorted(front + back) == list(range(2000))


@pytest.mark.parametrize("path", ["plain.txt", 'a "quoted" \\ name\tand\x01 control.txt',
                                  "دفتر\u2028é.txt", "undecodable-\udcff.txt"])
def test_json_lines_are_those_of_the_json_encoder(path: str) -> None:
    rules = load_ruleset(ROOT / "config" / "rules.yaml")
    texts = [json.loads(line) for line in NEWS.read_text(encoding="utf-8").splitlines()]
    verdicts = [rules.classify(row["title"] or "", row["text"]) for row in texts]
    assert any(v.relevant for v in verdicts) and any(v.score == 0 for v in verdicts)
    for verdict in verdicts:
        row = {"path": path, "relevant": verdict.relevant, "score": verdict.score,
               "topics": list(verdict.topics), "matches": verdict.term_counts()}
        assert classify_command._json_line(path, verdict) == _JSON.encode(row)


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


def test_a_forked_process_that_dies_makes_the_command_fail_saying_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, news_files: list[str]) -> None:
    def dies(*args: object) -> None:
        os._exit(3)  # only ever called in the forked process

    monkeypatch.setattr(classify_processes, "_take_from_back", dies)
    proc = _classify(tmp_path, monkeypatch, 2, "--json", *news_files)
    assert proc.returncode == 1
    assert "a process classifying files stopped with exit status 3" in proc.stderr
    printed = [json.loads(line)["path"] for line in proc.stdout.splitlines()]
    assert printed == news_files  # it took nothing: this process classified every file
