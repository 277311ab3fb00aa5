"""The analyst's commands through the real command line: items label, labels list and export,
items show with its label, rules eval --labels; and the exported file scored by rules eval
exactly as the items were scored when stored (a real run --once over the loopback sites)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Project
from tests.sites import build_sites


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def stored(project: Project, backend: str) -> list[dict]:
    """A real `run --once` over the loopback sites: the stored items (seeds, pages, summaries),
    with their text."""
    sites = build_sites()
    try:
        project.write_feeds([f for f in sites.feeds() if "broken" not in f["name"]])
        project.cli("init")
        project.cli("run", "--once")
    finally:
        sites.close()
    return _jsonl(project.cli("items", "list", "--json", "--text").stdout)


def test_label_list_show_and_evaluate_the_stored_labels(project: Project,
                                                        stored: list[dict]) -> None:
    relevant = next(i for i in stored if i["relevant"] and i["feed"])
    other = next(i for i in stored if not i["relevant"] and i["feed"])
    said = project.cli("items", "label", str(relevant["id"]), "--not-relevant", "--note",
                       "un doute").stdout
    assert said.startswith(f"item {relevant['id']}: not relevant, labelled ")
    assert said.rstrip().endswith("UTC (cli): un doute")
    project.cli("items", "label", str(relevant["id"]), "--relevant", "--topic", "cyber",
                "--topic", "ai", "--note", "DGSSI et IA")
    project.cli("items", "label", str(other["id"]), "--relevant", "--topic", "digital-policy")

    listed = _jsonl(project.cli("labels", "list", "--json").stdout)
    assert [(r["id"], r["relevant"], r["topics"], r["agrees"]) for r in listed] == sorted([
        (relevant["id"], True, ["ai", "cyber"], True),
        (other["id"], True, ["digital-policy"], False)])
    row = next(r for r in listed if r["id"] == other["id"])
    assert row["verdict"]["relevant"] is False and row["origin"] == "cli"
    history = _jsonl(project.cli("labels", "list", "--all", "--json").stdout)
    assert [(r["id"], r["relevant"], r["latest"]) for r in history
            if r["id"] == relevant["id"]] == [(relevant["id"], False, False),
                                              (relevant["id"], True, True)]
    text = project.cli("labels", "list").stdout
    assert text.count("DIFFERS") == 1 and text.count("agrees") == 1
    assert "label: relevant (ai, cyber)" in text and ": DGSSI et IA" in text

    shown = json.loads(project.cli("items", "show", str(relevant["id"]), "--json").stdout)
    assert shown["label"]["topics"] == ["ai", "cyber"] and shown["label"]["note"] == "DGSSI et IA"
    assert "label: relevant (ai, cyber), labelled " in project.cli(
        "items", "show", str(relevant["id"])).stdout
    unlabelled = next(i for i in stored if i["id"] not in (relevant["id"], other["id"]))
    assert json.loads(project.cli("items", "show", str(unlabelled["id"]), "--json")
                      .stdout)["label"] is None
    assert "label: none" in project.cli("items", "show", str(unlabelled["id"])).stdout

    rows = _jsonl(project.cli("rules", "eval", "--labels", "--json").stdout)
    assert [(r["kind"], r["id"], r["source"]) for r in rows[:-1]] == [
        ("FN", str(other["id"]), "stored label")]
    assert rows[-1]["confusion"] == {"tp": 1, "fp": 0, "fn": 1, "tn": 0}
    assert rows[-1]["labels"] is True and rows[-1]["by_lang"]["fr"]["items"] >= 1
    explained = project.cli("rules", "eval", "--labels").stdout
    assert "stored labels: 2 items" in explained and "precision 1.000  recall 0.500" in explained
    assert f"false negative: {other['id']} (stored label)" in explained
    assert "threshold" in explained and "terms:" in explained


def test_rules_suggest_learns_from_the_stored_labels(project: Project,
                                                     stored: list[dict]) -> None:
    fed = [i for i in stored if i["feed"]]
    for item in fed:
        verdict = "--relevant" if item["relevant"] else "--not-relevant"
        topic = ("--topic", "ai") if item["relevant"] else ()
        project.cli("items", "label", str(item["id"]), verdict, *topic)
    rows = _jsonl(project.cli("rules", "suggest", "--labels", "--min-count", "1",
                              "--json").stdout)
    summary = rows[-1]
    assert summary["labels"] is True and summary["files"] == []
    by_lang = {s["lang"]: s for s in summary["languages"]}
    assert sum(s["relevant_texts"] + s["not_relevant_texts"] for s in by_lang.values()) == len(
        fed) > 0 and any(s["relevant_texts"] for s in by_lang.values())
    for lang, part in by_lang.items():
        assert part["relevant_texts"] == sum(1 for i in fed if i["lang"] == lang
                                             and i["relevant"]), lang
        assert part["not_relevant_texts"] == sum(1 for i in fed if i["lang"] == lang
                                                 and not i["relevant"]), lang
    assert len(rows) - 1 == sum(s["candidates"] for s in summary["languages"])
    refused = project.cli("rules", "suggest", check=False)
    assert refused.returncode == 2 and "--labels" in refused.stderr


def test_the_export_is_scored_exactly_as_the_items_were_stored(project: Project,
                                                               stored: list[dict]) -> None:
    """Every item labelled against its stored verdict: each is then an error of rules eval on
    the export, with the score it was stored with (titles weigh as in the pipeline; a seed
    file's title line counts once)."""
    assert {i["feed"] is None for i in stored} == {True, False}  # seeds and fetched items
    for item in stored:
        project.cli("items", "label", str(item["id"]),
                    "--not-relevant" if item["relevant"] else "--relevant")
    exported = project.root / "labels.jsonl"
    run = project.cli("labels", "export", "-o", str(exported))
    assert run.stderr.strip() == f"exported {len(stored)} labelled items"
    lines = _jsonl(exported.read_text(encoding="utf-8"))
    by_id = {item["id"]: item for item in stored}
    for line in lines:
        item = by_id[line["id"]]
        assert (line["title"], line["text"], line["lang"]) == (item["title"], item["text"],
                                                               item["lang"])
        assert set(line) == {"id", "title", "text", "text_source", "lang", "feed", "url",
                             "relevant", "topics", "note", "labelled_at", "origin"}
    rows = _jsonl(project.cli("rules", "eval", str(exported), "--json").stdout)
    errors, summary = rows[:-1], rows[-1]
    assert summary["items"] == len(stored) and summary["f1"] == 0.0
    assert {int(r["id"]): r["score"] for r in errors} == {i["id"]: i["score"] for i in stored}
    assert project.cli("labels", "export").stdout.splitlines() == exported.read_text(
        encoding="utf-8").splitlines()


def test_label_refusals(project: Project) -> None:
    project.cli("init")
    cases = [
        (("99", "--relevant"), 1, "no item with id 99; see `monitor items list`"),
        (("1",), 2, "say --relevant or --not-relevant"),
        (("1", "--not-relevant", "--topic", "ai"), 2, "topics go with a relevant label"),
        (("1", "--relevant", "--topic", "sport"), 2,
         "'sport' is not one of 'ai', 'cyber', 'data-protection', 'digital-policy'"),
    ]
    for args, status, says in cases:
        run = project.cli("items", "label", *args, check=False)
        assert (run.returncode, says in run.stderr) == (status, True), run.stderr
    assert project.cli("labels", "list", "--json").stdout == ""
    for args, says in [((), "give labelled FILEs, or --labels"),
                       (("--labels", "x.jsonl"), "give labelled FILEs, or --labels"),
                       (("--labels", "--split", "frozen"), "the stored labels have no frozen")]:
        run = project.cli("rules", "eval", *args, check=False)
        assert run.returncode == 2 and says in run.stderr, run.stderr
