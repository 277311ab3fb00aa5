"""The quality gate of the shipped rules on the frozen split of the labelled texts; rules eval.

The gate runs on the frozen side only: texts nobody looked at while writing or tuning the rules
(tests/fixtures/rules/PROVENANCE.md). Its floors are the figures measured there, rounded down;
they may only be raised, or lowered with a reason in the commit. The digests fail the gate when a
labelled file or the opened list changes, so a relabelling cannot move the figures silently
(re-measure with `monitor rules eval tests/fixtures/rules/*.jsonl --split frozen`, then update
the digests and, if needed, the floors). A failure names the ids in error, never their texts:
showing them (`--show-errors`) opens them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from monitor.rules import load_ruleset
from monitor.rules.evaluate import Evaluation, evaluate
from monitor.rules.labelled import LabelError, read_labelled, read_labelled_files

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rules"
LABELLED = (FIXTURES / "news.jsonl", FIXTURES / "written.jsonl")
OPENED = FIXTURES / "opened.txt"

DIGESTS = {"news.jsonl": "871c973ed94526ed", "written.jsonl": "50642259f8f319be",
           "opened.txt": "8051e678edc5d91c"}

# floors (precision, recall, F1) on the frozen split, the measured figures rounded down (rules
# 46db656f4399, 508 frozen texts, 152 relevant; docs/relevance.md tells how they were reached)
FLOORS = {
    "all": (0.98, 0.96, 0.97),          # measured 0.980 0.967 0.974
    "clear": (0.99, 0.98, 0.99),        # 463 clear texts: 1.000 0.985 0.993
    "fr": (0.98, 0.98, 0.98),           # 204 texts: 0.982 0.982 0.982
    "ar": (0.97, 0.95, 0.96),           # 199 texts: 0.979 0.959 0.969
    "en": (0.97, 0.95, 0.96),           # 105 texts: 0.978 0.957 0.967
    "news.jsonl": (1.0, 1.0, 1.0),      # 300 real texts, 25 relevant: 1.000 1.000 1.000
    "written.jsonl": (0.97, 0.96, 0.96),  # 208 written texts: 0.976 0.961 0.968
}


@pytest.fixture(scope="module")
def rules():
    return load_ruleset(ROOT / "config" / "rules.yaml")


def _frozen(*paths: Path):
    return read_labelled_files(paths, opened=OPENED, split="frozen")


def _check(name: str, figures, result: Evaluation) -> None:
    precision, recall, f1 = FLOORS[name]
    errors = " ".join(f"{o.kind}:{o.item.id}" for o in result.frozen_errors)
    assert figures.precision >= precision, (name, "precision", figures.precision, errors)
    assert figures.recall >= recall, (name, "recall", figures.recall, errors)
    assert figures.f1 >= f1, (name, "F1", figures.f1, errors)


def test_the_labelled_files_are_those_measured() -> None:
    for name, digest in DIGESTS.items():
        assert hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest()[:16] == digest, (
            f"{name} changed: re-measure on the frozen split and update DIGESTS and FLOORS")


def test_quality_gate_on_the_frozen_split(rules) -> None:
    result = evaluate(rules, _frozen(*LABELLED))
    # the figures are those of the frozen texts, all of them: 508, 152 relevant
    assert (result.items, result.tp + result.fn) == (508, 152)
    assert all(i.split == "frozen" for i in _frozen(*LABELLED))
    _check("all", result, result)
    _check("clear", result.clear, result)
    for lang in ("fr", "ar", "en"):
        _check(lang, result.by_lang[lang], result)
    for path in LABELLED:
        part = evaluate(rules, _frozen(path))
        _check(path.name, part, part)


def test_the_frozen_split_holds_enough_relevant_texts() -> None:
    """At least 40 % of the relevant texts, in every language, are frozen and unopened."""
    items = list(read_labelled_files(LABELLED, opened=OPENED))
    for lang in ("fr", "ar", "en", None):
        relevant = [i for i in items if i.relevant and lang in (None, i.lang)]
        frozen = [i for i in relevant if i.split == "frozen"]
        assert len(frozen) >= 0.4 * len(relevant) > 0, lang
    assert sum(i.relevant for i in items) >= 150 and sum(not i.relevant for i in items) >= 600


def test_every_label_follows_the_format() -> None:
    topics = {"ai", "cyber", "data-protection", "digital-policy"}
    for path in LABELLED:
        for line in path.read_text(encoding="utf-8").splitlines():
            data = json.loads(line)
            assert data["split"] in ("tuning", "frozen") and data["confidence"] in (
                "clear", "borderline"), data["id"]
            assert set(data["topics"]) <= topics and bool(data["topics"]) == data["relevant"], (
                data["id"])
            assert len(data["why"].split()) <= 15, data["id"]


def test_figures(tmp_path: Path) -> None:
    result = Evaluation(tp=8, fp=2, fn=2, tn=88)
    assert (result.precision, result.recall, round(result.f1, 3)) == (0.8, 0.8, 0.8)
    assert result.summary()["confusion"] == {"tp": 8, "fp": 2, "fn": 2, "tn": 88}
    empty = Evaluation()
    assert (empty.precision, empty.recall) == (1.0, 1.0)


def test_labelled_lines_text_or_path(tmp_path: Path, rules) -> None:
    (tmp_path / "a.txt").write_text("Cybersécurité : le Maroc renforce sa défense\n\nTexte.",
                                    encoding="utf-8")
    labelled = tmp_path / "set.jsonl"
    labelled.write_text(
        '{"path": "a.txt", "relevant": true}\n\n'
        '{"text": "Le Wydad bat le Raja", "relevant": false, "id": "foot"}\n'
        '{"text": "Recette de la confiture de poires", "relevant": true}\n', encoding="utf-8")
    items = list(read_labelled(labelled))
    assert [i.id for i in items] == ["a.txt", "foot", "line 4"]
    result = evaluate(rules, items)
    assert (result.tp, result.tn, result.fn, result.fp) == (1, 1, 1, 0)
    assert [o.item.id for o in result.errors] == ["line 4"]


@pytest.mark.parametrize(("content", "line", "says"), [
    ('{"text": "x"}\n', 1, '"relevant"'),
    ('{"relevant": true}\n', 1, '"text" or "path"'),
    ('{"text": "x", "relevant": true}\nnot json\n', 2, "not JSON"),
    ('{"path": "missing.txt", "relevant": true}\n', 1, "cannot read missing.txt"),
])
def test_bad_labelled_file(tmp_path: Path, content: str, line: int, says: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LabelError) as caught:
        list(read_labelled(path))
    assert caught.value.line == line and says in str(caught.value) and str(path) in str(
        caught.value)


def test_eval_and_explain_commands(project) -> None:
    labelled = project.root / "set.jsonl"
    labelled.write_text('{"text": "Cybersécurité : le Maroc se protège\\n\\nTexte.", '
                        '"relevant": true}\n{"text": "Le Wydad bat le Raja", "relevant": true}\n',
                        encoding="utf-8")
    out = project.cli("rules", "eval", str(labelled), "--json").stdout.splitlines()
    rows = [json.loads(line) for line in out]
    assert rows[0]["kind"] == "FN" and rows[0]["line"] == 2
    assert rows[-1]["summary"] and rows[-1]["recall"] == 0.5 and rows[-1]["precision"] == 1.0
    text = project.cli("rules", "eval", str(labelled)).stdout
    assert "precision 1.000  recall 0.500" in text and "false negative" in text
    explained = project.cli("rules", "explain", "Le Maroc et l'IA\n\nLa stratégie.").stdout
    assert "ai-headline" in explained and "RELEVANT" in explained and "**IA**(ai)" in explained
    bad = project.cli("rules", "eval", str(project.root / "nope.jsonl"), check=False)
    assert bad.returncode == 2 and "nope.jsonl" in bad.stderr


CYBER = "Cybersécurité : le Maroc se protège\n\nTexte."
FOOT = "Le Wydad bat le Raja"


def _write_lines(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                    encoding="utf-8")
    return path


def test_what_is_classified_of_a_line(tmp_path: Path, rules) -> None:
    """A title given apart weighs as a stored item's title; a text carrying its title line (the
    first labelled files) counts it once; a stored seed file's text is classified alone."""
    body = "Le Maroc prépare sa stratégie. " + "La séance a duré toute la matinée. " * 30
    path = _write_lines(tmp_path / "set.jsonl", [
        {"id": "apart", "title": "Le Maroc et l'IA", "text": body, "relevant": True},
        {"id": "carried", "title": "Le Maroc et l'IA", "text": f"Le Maroc et l'IA\n\n{body}",
         "relevant": True},
        {"id": "in-text", "title": None, "text": f"Le Maroc et l'IA\n\n{body}", "relevant": True},
        {"id": "untitled", "title": "", "text": f"Le Maroc et l'IA\n\n{body}", "relevant": True},
        {"id": "seed", "title": "Le Maroc et l'IA", "text": f"Le Maroc et l'IA\n\n{body}",
         "text_source": "corpus", "relevant": True},
        {"id": "page", "title": "Le Maroc et l'IA", "text": body, "text_source": "page",
         "relevant": True},
    ])
    parts = {item.id: (item.title, item.body) for item in read_labelled(path)}
    assert parts == {
        "apart": ("Le Maroc et l'IA", body), "carried": ("Le Maroc et l'IA", body),
        "in-text": ("Le Maroc et l'IA", body), "untitled": ("", f"Le Maroc et l'IA\n\n{body}"),
        "seed": ("", f"Le Maroc et l'IA\n\n{body}"), "page": ("Le Maroc et l'IA", body)}
    # a title given apart is a headline; the first line of an untitled text is not
    assert rules.classify(*parts["apart"]).relevant
    assert not rules.classify(*parts["untitled"]).relevant


def test_figures_per_language_on_clear_items_and_topics(tmp_path: Path, rules) -> None:
    path = _write_lines(tmp_path / "set.jsonl", [
        {"text": CYBER, "relevant": True, "lang": "fr", "confidence": "clear",
         "topics": ["cyber"]},
        {"text": FOOT, "relevant": True, "lang": "fr", "confidence": "borderline"},
        {"text": "Morocco's DGSSI warns of a cyber-attack on Moroccan ministries",
         "relevant": True, "lang": "en", "confidence": "clear", "topics": ["ai"]},
        {"text": "Recette de la confiture de poires", "relevant": False, "lang": "fr",
         "confidence": "clear"},
    ])
    result = evaluate(rules, read_labelled(path))
    summary = result.summary()
    assert summary["confusion"] == {"tp": 2, "fp": 0, "fn": 1, "tn": 1}
    assert summary["by_lang"]["fr"]["confusion"] == {"tp": 1, "fp": 0, "fn": 1, "tn": 1}
    assert summary["by_lang"]["en"]["confusion"] == {"tp": 1, "fp": 0, "fn": 0, "tn": 0}
    assert summary["clear"]["confusion"] == {"tp": 2, "fp": 0, "fn": 0, "tn": 1}
    assert summary["clear"]["f1"] == 1.0 and summary["recall"] == round(2 / 3, 4)
    assert summary["topics"] == {"same": 1, "of": 2}
    plain = evaluate(rules, read_labelled(_write_lines(tmp_path / "plain.jsonl", [
        {"text": CYBER, "relevant": True}])))
    assert plain.summary()["clear"] is None and plain.summary()["topics"] is None


def test_frozen_errors_stay_unseen_until_shown_then_count_as_tuning(project) -> None:
    labelled = _write_lines(project.root / "set.jsonl", [
        {"id": "t1", "split": "tuning", "text": CYBER, "relevant": True},
        {"id": "t2", "split": "tuning", "text": FOOT, "relevant": True},
        {"id": "f1", "split": "frozen", "text": FOOT, "relevant": True},
        {"id": "f2", "split": "frozen", "text": CYBER, "relevant": False},
        {"id": "f3", "split": "frozen", "text": "Recette de la confiture", "relevant": False},
    ])
    opened = project.root / "opened.txt"

    def run(*args: str) -> str:
        return project.cli("rules", "eval", str(labelled), *args).stdout

    frozen = run("--split", "frozen")
    assert "3 items (frozen split)" in frozen and "precision 0.000  recall 0.000" in frozen
    assert "false " not in frozen and "f1" not in frozen
    assert "2 errors on frozen lines not shown" in frozen and "--show-errors" in frozen
    rows = [json.loads(x) for x in run("--split", "frozen", "--json").splitlines()]
    assert len(rows) == 1 and rows[0]["errors_hidden"] == 2 and rows[0]["items"] == 3
    everything = run()  # the frozen errors stay hidden without --split too
    assert "false negative: t2" in everything and "f1 (" not in everything
    assert not opened.exists()

    shown = run("--split", "frozen", "--show-errors")
    assert "false negative: f1" in shown and "false positive: f2" in shown
    assert f"added 2 ids to {opened}" in shown
    assert opened.read_text(encoding="utf-8").split() == ["f1", "f2"]
    after = run("--split", "frozen")
    assert "1 items (frozen split)" in after and "not shown" not in after
    tuning = [json.loads(x) for x in run("--split", "tuning", "--json").splitlines()]
    assert [r["id"] for r in tuning[:-1]] == ["t2", "f1", "f2"] and tuning[-1]["items"] == 4

    elsewhere = project.root / "elsewhere.txt"
    elsewhere.write_text("# looked at while tuning\nf1", encoding="utf-8")
    hidden = run("--split", "frozen", "--opened", str(elsewhere), "--show-errors")
    assert "2 items (frozen split)" in hidden and "false positive: f2" in hidden
    assert elsewhere.read_text(encoding="utf-8") == "# looked at while tuning\nf1\nf2\n"


def test_several_files_and_bad_split(tmp_path: Path, project) -> None:
    first = _write_lines(project.root / "a.jsonl", [{"text": CYBER, "relevant": True}])
    second = _write_lines(project.root / "b.jsonl", [{"text": FOOT, "relevant": True}])
    rows = [json.loads(x) for x in project.cli("rules", "eval", str(first), str(second),
                                               "--json").stdout.splitlines()]
    assert rows[0]["source"] == str(second) and rows[0]["line"] == 1
    assert rows[-1]["files"] == [str(first), str(second)] and rows[-1]["items"] == 2
    bad = _write_lines(tmp_path / "bad.jsonl", [{"text": "x", "relevant": True, "split": "dev"}])
    with pytest.raises(LabelError, match="\"split\" is one of tuning, frozen, not 'dev'"):
        list(read_labelled(bad))
