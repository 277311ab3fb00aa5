"""`rules suggest`: phrases that tell the labelled sides apart and that the rules lack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.rules import load_ruleset
from monitor.rules.labelled import read_labelled
from monitor.rules.normalize import fold
from monitor.rules.suggest import log_odds_z, suggest

RULES = """threshold: 1
groups:
  morocco:
    fr: [maroc, marocain*]
    ar: [المغرب]
  ai:
    fr: [intelligence artificielle]
    any: [IA]
rules:
  - name: ai
    topic: ai
    all: [ai]
    weight: 1
"""
NO_SUCH_TERMS = """threshold: 1
groups:
  other:
    fr: [nulle part ailleurs]
rules:
  - name: other
    topic: ai
    all: [other]
    weight: 1
"""

# Eight relevant French texts: "cloud souverain" planted in six (each of its words is also in
# two texts of the other side, so the phrase is not the words alone), "intelligence
# artificielle" and "marocaines" (held by the rules: a phrase, a prefix term) in six;
# "annonce" everywhere.
RELEVANT = [
    "Rabat lance un cloud souverain pour les administrations marocaines. Annonce du ministère.",
    "Le cloud souverain des entreprises marocaines accueillera les données. Annonce attendue.",
    "Un cloud souverain et l'intelligence artificielle pour les PME marocaines. Annonce.",
    "L'intelligence artificielle entre dans les écoles marocaines via un cloud souverain. Annonce.",
    "Les banques marocaines choisissent un cloud souverain et l'intelligence artificielle. "
    "Annonce.",
    "Cloud souverain : l'intelligence artificielle des universités marocaines. Annonce.",
    "L'intelligence artificielle et la cybersécurité des hôpitaux. Annonce du plan.",
    "L'intelligence artificielle à l'université, plan national. Annonce officielle.",
]
# Eight not relevant: "ligue des champions" in six ("ligue" and "champions" nowhere else, so
# the phrase says no more than each word).
NOT_RELEVANT = [
    "Le cloud du jeu vidéo arrive sur les consoles. Annonce du studio.",
    "Un fonds souverain achète un club. Ligue des champions en vue. Annonce.",
    "Neige artificielle dans les stations. Ligue des champions. Annonce.",
    "Intelligence économique et commerce. Ligue des champions ce soir. Annonce.",
    "Le cloud gaming séduit les joueurs. Ligue des champions. Annonce.",
    "Le fonds souverain norvégien investit. Ligue des champions. Annonce.",
    "Pluie artificielle au Sahel, intelligence du jeu collectif. Ligue des champions. Annonce.",
    "Un festival de musique à la plage. Annonce des artistes.",
]
# Arabic: "والمغرب" (held: المغرب with the proclitic و) and "الحوسبة السحابية" in six of eight.
ARABIC_RELEVANT = [f"والمغرب يطلق الحوسبة السحابية للإدارة رقم {n}" for n in range(6)] + [
    "خطة وطنية للإدارة", "برنامج جديد للإدارة"]
ARABIC_NOT = [f"مباراة كرة القدم في الملعب الكبير رقم {n}" for n in range(8)]


def _write_labelled(path: Path) -> Path:
    lines = [{"text": t, "relevant": True, "lang": "fr"} for t in RELEVANT]
    lines += [{"text": t, "relevant": False, "lang": "fr"} for t in NOT_RELEVANT]
    lines += [{"text": t, "relevant": True, "lang": "ar"} for t in ARABIC_RELEVANT]
    lines += [{"text": t, "relevant": False, "lang": "ar"} for t in ARABIC_NOT]
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                    encoding="utf-8")
    return path


@pytest.fixture
def labelled(tmp_path: Path) -> list:
    return list(read_labelled(_write_labelled(tmp_path / "labelled.jsonl")))


def _rules(tmp_path: Path, text: str):
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return load_ruleset(path)


def _by_phrase(found) -> dict[str, tuple]:
    return {c.phrase: (s.lang, c.side, c.relevant, c.not_relevant)
            for s in found for c in s.candidates}


def test_a_planted_phrase_is_suggested_with_its_counts_held_and_generic_ones_are_not(
    labelled, tmp_path: Path
) -> None:
    found = suggest(labelled, _rules(tmp_path, RULES), top=50)
    assert [(s.lang, s.relevant_texts, s.not_relevant_texts) for s in found] == [
        ("fr", 8, 8), ("ar", 8, 8)]
    phrases = _by_phrase(found)
    assert phrases["cloud souverain"] == ("fr", "relevant", 6, 0)
    assert phrases["ligue"] == phrases["champions"] == ("fr", "not relevant", 0, 6)
    assert phrases[fold("الحوسبة")] == ("ar", "relevant", 6, 0)  # folded: ة as ه
    # the same texts as a word of it: the word says it
    assert "ligue des champions" not in phrases and fold("الحوسبة السحابية") not in phrases
    # held by a group (a phrase term, a prefix term, a term with a proclitic), or holding one
    held = ("intelligence artificielle", "marocaines", "والمغرب", "l intelligence artificielle")
    assert not set(held) & set(phrases)
    assert not [p for p in phrases if "والمغرب" in p or "marocaines" in p]
    # everywhere, or too evenly spread to tell anything
    assert "annonce" not in phrases and "souverain" not in phrases and "cloud" not in phrases
    best = found[0].candidates[0]
    assert (best.score, best.log_odds) == pytest.approx(log_odds_z(6, 8, 0, 8)[::-1])


def test_without_those_terms_in_the_rules_the_held_phrases_are_suggested(
    labelled, tmp_path: Path
) -> None:
    phrases = _by_phrase(suggest(labelled, _rules(tmp_path, NO_SUCH_TERMS), top=50))
    assert phrases["intelligence artificielle"] == ("fr", "relevant", 6, 0)
    assert phrases["marocaines"] == ("fr", "relevant", 6, 0)
    assert phrases["والمغرب"] == ("ar", "relevant", 6, 0)


def test_options_language_top_and_minimum_count(labelled, tmp_path: Path) -> None:
    rules = _rules(tmp_path, RULES)
    only_fr = suggest(labelled, rules, lang="fr", top=1)
    assert [s.lang for s in only_fr] == ["fr"]
    assert [(c.side, c.phrase) for c in only_fr[0].candidates] == [
        ("relevant", "cloud souverain"), ("not relevant", "champions")]
    assert "cloud souverain" not in _by_phrase(suggest(labelled, rules, min_count=7))
    assert suggest(labelled, rules, lang="en") == []


def test_the_score_favours_evidence_and_is_zero_for_an_even_spread() -> None:
    assert log_odds_z(8, 8, 8, 8) == (0.0, 0.0)
    assert log_odds_z(4, 8, 4, 8)[1] == pytest.approx(0.0)
    assert log_odds_z(60, 80, 0, 80)[1] > log_odds_z(6, 8, 0, 8)[1] > 1.96
    assert log_odds_z(3, 8, 1, 8)[1] < 1.96  # too few texts to say
    assert log_odds_z(0, 8, 6, 8)[1] == pytest.approx(-log_odds_z(6, 8, 0, 8)[1])


def test_rules_suggest_command(project, tmp_path: Path) -> None:
    (project.root / "config" / "rules.yaml").write_text(RULES, encoding="utf-8")
    first = _write_labelled(tmp_path / "a.jsonl")
    lines = first.read_text(encoding="utf-8").splitlines(keepends=True)
    second = tmp_path / "b.jsonl"
    second.write_text("".join(lines[8:]), encoding="utf-8")
    first.write_text("".join(lines[:8]), encoding="utf-8")  # the two files make the set
    rows = [json.loads(line) for line in project.cli(
        "rules", "suggest", str(first), str(second), "--lang", "fr", "--top", "2", "--json",
    ).stdout.splitlines()]
    log_odds, score = log_odds_z(6, 8, 0, 8)
    assert rows[0] == {"lang": "fr", "phrase": "cloud souverain", "words": 2, "side": "relevant",
                       "relevant": 6, "not_relevant": 0, "score": round(score, 3),
                       "log_odds": round(log_odds, 3)}
    assert rows[-1]["summary"] and rows[-1]["languages"] == [
        {"lang": "fr", "relevant_texts": 8, "not_relevant_texts": 8, "candidates": len(rows) - 1}]
    text = project.cli("rules", "suggest", str(first), str(second), "--top", "1").stdout
    assert text.splitlines()[:5] == [
        "fr: 8 relevant and 8 not relevant texts",
        "  pointing to relevant: 1",
        "    relevant  not  score  phrase",
        f"           6    0 {log_odds_z(6, 8, 0, 8)[1]:>6.2f}  cloud souverain",
        "  pointing to not relevant: 1",
    ]
    assert "ar: 8 relevant and 8 not relevant texts" in text
    one_side = project.cli("rules", "suggest", str(first)).stdout  # the relevant texts alone
    assert one_side.splitlines() == ["fr: 8 relevant and 0 not relevant texts",
                                     "  nothing to compare: texts of both sides are needed"]
    bad = project.cli("rules", "suggest", str(tmp_path / "missing.jsonl"), check=False)
    assert bad.returncode == 2 and "cannot read the labelled file" in bad.stderr


def test_suggest_learns_from_the_tuning_side_alone(project, tmp_path: Path) -> None:
    """With --split tuning, the frozen lines teach nothing, but those in the opened list do."""
    (project.root / "config" / "rules.yaml").write_text(RULES, encoding="utf-8")
    path = _write_labelled(tmp_path / "labelled.jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for number, line in enumerate(lines):  # the six planted French texts: four frozen
        line["id"] = f"t{number}"
        line["split"] = "frozen" if number in (0, 1, 2, 3) else "tuning"
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                    encoding="utf-8")

    def sides(*options: str) -> tuple[int, int]:
        rows = [json.loads(line) for line in project.cli(
            "rules", "suggest", str(path), "--lang", "fr", "--json", *options
        ).stdout.splitlines()]
        french = rows[-1]["languages"][0]
        return french["relevant_texts"], french["not_relevant_texts"]

    assert sides() == (8, 8)
    assert sides("--split", "tuning") == (4, 8)
    (tmp_path / "opened.txt").write_text("t0\nt1\n", encoding="utf-8")
    assert sides("--split", "tuning") == (6, 8)
    assert sides("--split", "frozen") == (2, 0)
