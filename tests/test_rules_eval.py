"""The quality gate of the shipped rules on the labelled dev sets, and `rules eval` itself.

The floors are pinned slightly below the measured figures. They may only be raised, or lowered
with a reason in the commit: the digests below fail the gate when a labelled file changes, so a
relabelling cannot move the figures silently (re-measure with `monitor rules eval FILE`, then
update the digest and, if needed, the floors).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from monitor.rules import load_ruleset
from monitor.rules.evaluate import Evaluation, LabelError, evaluate, read_labelled

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rules"

# file: (digest of the file, floors: precision, recall, F1); measured: see the comments
GATES = {
    # 397 real texts (fr 243, en 82, ar 72): measured P 1.000, R 0.943, F1 0.971
    "devset.jsonl": ("b278c76eb68a2d08", 0.97, 0.92, 0.95),
    # 40 Arabic texts written for the purpose: measured P 1.000, R 1.000, F1 1.000
    "arabic_written.jsonl": ("c7843cea60b419d1", 0.95, 0.95, 0.95),
}


@pytest.fixture(scope="module")
def rules():
    return load_ruleset(ROOT / "config" / "rules.yaml")


@pytest.mark.parametrize("name", sorted(GATES))
def test_quality_gate(rules, name: str) -> None:
    path = FIXTURES / name
    digest, precision, recall, f1 = GATES[name]
    assert hashlib.sha256(path.read_bytes()).hexdigest()[:16] == digest, (
        f"{name} changed: re-measure with `monitor rules eval {path}` and update GATES")
    result = evaluate(rules, read_labelled(path))
    report = "\n".join(f"{o.kind} {o.item.id} score={o.verdict.score:g}" for o in result.errors)
    assert result.precision >= precision, report
    assert result.recall >= recall, report
    assert result.f1 >= f1, report


def test_no_language_is_left_behind(rules) -> None:
    """Per language of the dev set: no false positive, and French/English recall floors."""
    lines = [json.loads(x) for x in (FIXTURES / "devset.jsonl").read_text("utf-8").splitlines()]
    for lang, floor in (("fr", 0.9), ("en", 0.8), ("ar", 1.0)):
        result = evaluate(rules, (item for item in read_labelled(FIXTURES / "devset.jsonl")
                                  if lines[item.line - 1]["lang"] == lang))
        assert result.fp == 0, lang
        assert result.recall >= floor, lang


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
