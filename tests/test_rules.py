"""Keyword rules: folding, the rules.yaml language and its errors, verdicts on real texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import RulesError
from monitor.rules import load_ruleset, split_document
from monitor.rules.normalize import fold_word, tokenize, word_forms

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "config" / "rules.yaml"


@pytest.fixture(scope="module")
def rules():
    return load_ruleset(RULES)


def test_french_folding_and_elision() -> None:
    words = [t.forms[0] for t in tokenize("L’Intelligence d'État, qu'elle CYBERSÉCURITÉ")]
    assert words == ["l", "intelligence", "d", "etat", "qu", "elle", "cybersecurite"]


def test_offsets_point_into_the_original_text() -> None:
    text = "Le Maroc et l’IA"
    for token in tokenize(text):
        assert text[token.start : token.end] == token.exact


def test_arabic_normalisation() -> None:
    assert fold_word("الذَّكَاءُ") == fold_word("الذكاء")
    assert fold_word("الذكـــاء") == fold_word("الذكاء")
    assert fold_word("إدارة") == fold_word("ادارة") == "اداره"
    assert fold_word("مستشفى") == "مستشفي"
    assert "مغرب" in word_forms("بالمغرب")
    assert "ذكاء" in word_forms("والذكاء")
    assert "امن" in word_forms("للأمن")


def test_acronyms_are_case_sensitive(rules) -> None:
    verdict = rules.classify("", "J'ai pris la route via Rabat ; ai-je raison ?")
    assert not any(m.group == "ai" for m in verdict.matches)
    verdict = rules.classify("", "L'IA au Maroc et l’AI")
    assert [m.term for m in verdict.matches if m.group == "ai"] == ["IA", "AI"]


@pytest.mark.parametrize("seed", sorted((ROOT / "storage" / "corpus").glob("00[0-4]_*.txt")))
def test_every_seed_is_relevant(rules, seed: Path) -> None:
    verdict = rules.classify(*split_document(seed.read_text(encoding="utf-8")))
    assert verdict.relevant, verdict.rules


def test_negatives(rules) -> None:
    football = (
        "Botola Maroc Telecom : le Wydad bat le Raja",
        "Le Wydad de Casablanca a battu le Raja dimanche au complexe Mohammed V.",
    )
    assert not rules.classify(*football).relevant
    world_ai = (
        "OpenAI launches a new model",
        "Artificial intelligence company OpenAI released a new AI model in San Francisco.",
    )
    assert not rules.classify(*world_ai).relevant


def test_written_arabic_sentence_is_relevant(rules) -> None:
    # Written for this test: real Arabic items on the topic are rare in our fixtures.
    title = "المغرب يطلق استراتيجية وطنية للذكاء الاصطناعي"
    body = "أعلنت وزارة الانتقال الرقمي بالمغرب عن برنامج لتطوير الذكاء الاصطناعي."
    verdict = rules.classify(title, body)
    assert verdict.relevant and "ai" in verdict.topics


def test_title_counts_more_than_body(rules) -> None:
    body_only = rules.classify("", "Le Maroc. Un mot sur la cybersécurité.")
    in_title = rules.classify("Cybersécurité : le Maroc renforce sa défense", "Texte.")
    assert not body_only.relevant
    assert in_title.relevant and in_title.topics == ("cyber",)


def test_explanation_records_rules_and_offsets(rules) -> None:
    title, body = "Le Maroc et l'IA", "Le Maroc mise sur l'intelligence artificielle."
    verdict = rules.classify(title, body)
    fired = [o.name for o in verdict.rules if o.fired]
    assert fired == ["morocco-ai"]
    for match in verdict.matches_with_rules():
        text = title if match["field"] == "title" else body
        assert text[match["start"] : match["end"]].lower().startswith(match["term"][:3].lower())
        if match["group"] in ("ai", "morocco"):
            assert match["rules"] == ["morocco-ai"]
    assert verdict.term_counts()[0] == {"term": "maroc", "count": 2}


def _rules_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD_GROUPS = "groups:\n  a:\n    fr: [maroc]\n  b:\n    any: [IA]\n"
BAD_RULES = [
    (GOOD_GROUPS + "rules:\n  - name: r\n    all: [a, c]\n", 8, "all", "unknown group 'c'"),
    (
        GOOD_GROUPS + "rules:\n  - name: r\n    all: [a]\n    weight: heavy\n",
        9,
        "weight",
        "not a number",
    ),
    (GOOD_GROUPS + "rules:\n  - name: r\n", 7, "rules", "is empty"),
    (
        "groups:\n  a:\n    fr: ['ma*roc']\nrules:\n  - name: r\n    all: [a]\n",
        3,
        "fr",
        "'*' is allowed only at the end",
    ),
    (
        "groups:\n  a:\n    fr: ['--']\nrules:\n  - name: r\n    all: [a]\n",
        3,
        "fr",
        "no letters or digits",
    ),
    (
        "groups:\n  a:\n    klingon: [x]\nrules:\n  - name: r\n    all: [a]\n",
        3,
        "klingon",
        "unknown language",
    ),
    (
        GOOD_GROUPS + "rules:\n  - name: r\n    all: [a]\n    topic: sports\n",
        9,
        "topic",
        "unknown topic",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "says"), BAD_RULES)
def test_bad_rules_file(tmp_path: Path, text, line, key, says) -> None:
    path = _rules_file(tmp_path, text)
    with pytest.raises(RulesError) as caught:
        load_ruleset(path)
    assert caught.value.line == line, str(caught.value)
    assert caught.value.key == key
    assert says in str(caught.value) and str(path) in str(caught.value)


def test_version_changes_with_the_rules(tmp_path: Path) -> None:
    base = GOOD_GROUPS + "rules:\n  - name: r\n    all: [a, b]\n"
    first = load_ruleset(_rules_file(tmp_path, base)).version
    again = load_ruleset(_rules_file(tmp_path, "# comment\n" + base)).version
    other = load_ruleset(_rules_file(tmp_path, base + "    weight: 3\n")).version
    assert first == again != other
