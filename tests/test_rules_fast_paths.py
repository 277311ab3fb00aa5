"""What makes classifying many files fast gives what the slow, explained path gives: term counts
without offsets, files read as bytes, compiled rules read back from the cache folder."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import monitor.rules
from monitor.rules import cache, load_ruleset, split_document
from tests.commandline import run_in_process

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "config" / "rules.yaml"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rules"
TEXT = "Cybersécurité au Maroc\n\nLa DGSSI et le maCERT alertent sur la cybersécurité au Maroc."


def _fixture_texts() -> list[str]:
    texts = []
    for name in ("news.jsonl", "written.jsonl"):  # every labelled text with its own text
        for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts.append(f"{row['title']}\n\n{row['text']}" if row["title"] else row["text"])
    return texts


def _explained(text: str) -> dict:
    """What `rules explain --json` says of a file's text, as `classify --json` shows it: the
    term counts from every match with its offsets (a place matched by two groups once)."""
    verdict = load_ruleset(RULES).classify(*split_document(text))
    explained = verdict.as_dict()
    places = dict.fromkeys((m["term"], m["field"], m["start"]) for m in explained["matches"])
    counts = Counter(term for term, _, _ in places).most_common()
    return {"relevant": explained["relevant"], "score": explained["score"],
            "topics": explained["topics"],
            "matches": [{"term": term, "count": count} for term, count in counts]}


def test_classify_command_gives_the_explained_verdict_of_every_labelled_text(
        tmp_path: Path) -> None:
    texts = _fixture_texts()
    files = []
    for index, text in enumerate(texts):
        files.append(tmp_path / f"{index:04d}.txt")
        files[-1].write_text(text, encoding="utf-8")
    # line ends and bytes that are not UTF-8 read as text mode reads them
    files.append(tmp_path / "crlf.txt")
    files[-1].write_bytes(TEXT.replace("\n", "\r\n").encode() + b"\rloi\r\n\r\n09-08 \xff\xfe")
    proc = run_in_process(["classify", "--config", str(ROOT / "config" / "monitor.yaml"),
                           "--json", *(f.name for f in files)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [row.pop("path") for row in rows] == [f.name for f in files]
    expected = [_explained(f.read_text(encoding="utf-8", errors="replace")) for f in files]
    assert sum(row["relevant"] for row in expected) > 50  # the texts do test something
    mismatched = [f.name for f, row, want in zip(files, rows, expected, strict=True)
                  if row != want]
    assert mismatched == []


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A process without compiled rules in memory, its cache folder in tmp_path; yields the
    number of times rules were compiled so far (a one-item list)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    compiled = [0]
    load_rules = monitor.rules.load_rules

    def counted(path: Path):
        compiled[0] += 1
        return load_rules(path)

    monkeypatch.setattr(monitor.rules, "load_rules", counted)

    def forget() -> None:
        monkeypatch.setattr(monitor.rules, "_COMPILED", {})
        monkeypatch.setattr(monitor.rules, "_READ", {})

    forget()
    yield compiled, forget


def test_compiled_rules_are_read_back_until_the_file_or_the_code_changes(
        fresh, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled, forget = fresh
    rules = tmp_path / "a" / "rules.yaml"
    rules.parent.mkdir()
    shutil.copy(RULES, rules)
    first = load_ruleset(rules)
    assert compiled == [1]
    folder = tmp_path / "cache" / "monitor"
    (entry,) = folder.glob("rules-*.pickle")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600

    forget()  # as a new process
    again = load_ruleset(rules)
    assert compiled == [1] and again is not first
    assert again.spec == first.spec and again.matcher.keys == first.matcher.keys
    title, body = split_document(TEXT)
    assert again.classify(title, body).as_dict() == first.classify(title, body).as_dict()

    forget()  # the same bytes elsewhere: read back, with its own path
    elsewhere = tmp_path / "b" / "rules.yaml"
    elsewhere.parent.mkdir()
    shutil.copy(RULES, elsewhere)
    assert load_ruleset(elsewhere).spec.path == elsewhere and compiled == [1]

    forget()  # an edit: compiled again
    rules.write_text(RULES.read_text(encoding="utf-8").replace("threshold: ", "threshold: 9"),
                     encoding="utf-8")
    edited = load_ruleset(rules)
    assert compiled == [2] and edited.spec.threshold != first.spec.threshold
    assert not edited.classify(title, body).relevant

    forget()  # other code: compiled again
    monkeypatch.setattr(cache, "_code_digest", lambda: b"another version of monitor")
    load_ruleset(rules)
    assert compiled == [3]


def test_rules_compiled_by_one_process_are_read_back_by_another(fresh, tmp_path: Path) -> None:
    compiled, _ = fresh
    (tmp_path / "a.txt").write_text(TEXT, encoding="utf-8")
    command = [sys.executable, "-m", "monitor", "classify", "--config",
               str(ROOT / "config" / "monitor.yaml"), "a.txt"]
    subprocess.run(command, cwd=tmp_path, check=True, capture_output=True, timeout=60)
    (entry,) = (tmp_path / "cache" / "monitor").glob("rules-*.pickle")  # $XDG_CACHE_HOME's
    assert load_ruleset(RULES).classify(*split_document(TEXT)).relevant
    assert compiled == [0]  # this process compiled nothing: it read what the other wrote


def test_a_bad_or_foreign_cache_entry_is_not_used(fresh, tmp_path: Path) -> None:
    compiled, forget = fresh
    load_ruleset(RULES)
    (entry,) = (tmp_path / "cache" / "monitor").glob("rules-*.pickle")
    entry.chmod(0o666)  # writable by others: anyone could have put code in it
    forget()
    load_ruleset(RULES)
    assert compiled == [2] and stat.S_IMODE(entry.stat().st_mode) == 0o600  # replaced
    entry.write_bytes(entry.read_bytes()[:1000])  # cut short
    forget()
    assert load_ruleset(RULES).classify(*split_document(TEXT)).relevant
    assert compiled == [3]


def test_the_cache_keeps_the_entries_last_used(fresh, tmp_path: Path) -> None:
    compiled, forget = fresh
    rules = tmp_path / "rules.yaml"
    text = RULES.read_text(encoding="utf-8")
    for version in range(cache._KEPT + 2):
        forget()
        rules.write_text(f"# edit {version}\n{text}", encoding="utf-8")
        load_ruleset(rules)
    assert compiled == [cache._KEPT + 2]
    assert len(list((tmp_path / "cache" / "monitor").glob("rules-*.pickle"))) == cache._KEPT
    assert not list((tmp_path / "cache" / "monitor").glob(".rules-*"))  # no file left half-way


def test_small_rules_are_not_stored(fresh, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("groups:\n  a:\n    fr: [alpha]\nrules:\n  - name: r\n    all: [a]\n",
                     encoding="utf-8")
    assert load_ruleset(rules).classify("", "alpha").relevant
    assert not os.path.exists(tmp_path / "cache" / "monitor")


def test_files_classified_before_an_unreadable_one_are_printed(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(TEXT, encoding="utf-8")
    proc = run_in_process(["classify", "--config", str(ROOT / "config" / "monitor.yaml"),
                           "--json", "a.txt", "a.txt", "missing.txt", "a.txt"], cwd=tmp_path)
    assert proc.returncode == 2 and "cannot read missing.txt" in proc.stderr
    assert [json.loads(line)["path"] for line in proc.stdout.splitlines()] == ["a.txt"] * 2
