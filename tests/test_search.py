"""Full-text search on both backends (FTS5, tsvector): matching, accents, ranking, filters,
snippets; the query syntax, excerpts and snippets alone (pure); `monitor items search` end to
end."""

from __future__ import annotations

import json

import pytest

from monitor.store.engine import create_schema, make_engine
from monitor.store.search import best_matches
from monitor.textsearch import Query, excerpt, fts5_match, parse_query, snippet
from tests.conftest import Project
from tests.test_store import _item

DOCS = [
    ("La cybersécurité au Maroc", "La DGSSI publie un guide de cybersécurité pour les PME.", True),
    ("Météo du week-end", "Un week-end ensoleillé, sans rapport avec la CYBERSECURITE.", False),
    ("Protection des données", "La CNDP rappelle la loi 09-08 sur la protection des données "
     "personnelles au Maroc.", True),
    ("Sport", "Le Wydad bat le Raja; les données du match sont publiées.", False),
    ("Intelligence artificielle", "Le Royaume mise sur l'intelligence artificielle (IA) et les "
     "centres de données.", True),
]


@pytest.fixture
def engine(database_url: str):
    engine = make_engine(database_url)
    create_schema(engine)
    for n, (title, text, relevant) in enumerate(DOCS):
        assert insert(engine, title=title, text=text, relevant=relevant, n=n) is not None
    return engine


def insert(engine, *, title: str, text: str, relevant: bool, n: int):
    from monitor.store.items import insert_item

    return insert_item(engine, _item(url=f"https://a.ma/{n}", canonical_url=f"https://a.ma/{n}",
                                     title=title, text=text, relevant=relevant))


def titles(engine, query: str, **filters) -> list[str]:
    return [hit["title"] for hit in best_matches(engine, parse_query(query), **filters)]


def test_words_match_whatever_their_case_and_accents(engine) -> None:
    assert set(titles(engine, "cybersecurite")) == {"La cybersécurité au Maroc",
                                                    "Météo du week-end"}
    assert set(titles(engine, "CYBERSÉCURITÉ")) == set(titles(engine, "cybersecurite"))
    assert titles(engine, "meteo") == ["Météo du week-end"]


def test_the_title_weighs_more_and_every_word_must_match(engine) -> None:
    hits = titles(engine, "cybersécurité")
    assert hits[0] == "La cybersécurité au Maroc"  # in the title and the text
    assert titles(engine, "cybersécurité maroc") == ["La cybersécurité au Maroc"]
    assert titles(engine, "cybersécurité tombouctou") == []


def test_phrases_or_and_exclusion(engine) -> None:
    assert set(titles(engine, '"protection des données"')) == {"Protection des données"}
    assert set(titles(engine, '"des données protection"')) == set()
    assert set(titles(engine, "dgssi OR cndp")) == {"La cybersécurité au Maroc",
                                                    "Protection des données"}
    assert set(titles(engine, "données -sport")) == {"Protection des données",
                                                      "Intelligence artificielle"}
    assert set(titles(engine, "données", relevant=True)) == {"Protection des données",
                                                              "Intelligence artificielle"}


def test_prefixes_and_not(engine) -> None:
    assert set(titles(engine, "cyber*")) == {"La cybersécurité au Maroc", "Météo du week-end"}
    assert set(titles(engine, "CYBERSÉC*")) == set(titles(engine, "cyber*"))
    assert titles(engine, "cyber* NOT week") == ["La cybersécurité au Maroc"]
    assert set(titles(engine, '"protection des donn*"')) == {"Protection des données"}
    assert set(titles(engine, "donn* AND maroc")) == {"Protection des données"}
    assert titles(engine, "cybers* NOT dgssi NOT cybersecurite") == []


def test_hits_carry_a_rank_and_a_snippet_with_the_words_marked(engine) -> None:
    hits = best_matches(engine, parse_query('"intelligence artificielle" royaume'))
    assert len(hits) == 1
    hit = hits[0]
    assert hit["rank"] > 0 and hit["relevant"] is True
    assert "**intelligence artificielle**" in hit["snippet"]
    assert "**Royaume**" in hit["snippet"]
    assert {"id", "url", "title", "feed", "published", "score", "topics"} <= set(hit)


def test_items_stored_later_are_found_and_nul_does_not_break_the_index(engine) -> None:
    assert insert(engine, title="Cloud\x00 souverain", text="Un datacenter à Benguerir.",
                  relevant=True, n=99) is not None
    assert titles(engine, "benguerir") == ["Cloud souverain"]
    assert titles(engine, "souverain") == ["Cloud souverain"]


def test_query_syntax_becomes_quoted_fts5() -> None:
    query = parse_query('"loi 09-08" OR cndp maroc -sport -"coupe du trône"')
    assert query.clauses == ((("loi", "09", "08"), ("cndp",)), (("maroc",),))
    assert query.excluded == (("sport",), ("coupe", "du", "trône"))
    assert fts5_match(query) == (
        '((("loi 09 08" OR "cndp") AND ("maroc")) NOT "sport") NOT "coupe du trône"')
    # operators and quotes that FTS5 would read cannot slip in; AND and NOT are ours
    assert fts5_match(parse_query('NEAR(a b) AND "x')) == '("NEAR a") AND ("b") AND ("x")'
    assert parse_query("maroc AND cyber* NOT sport NOT \"coupe du*\"") == Query(
        clauses=((("maroc",),), (("cyber*",),)), excluded=(("sport",), ("coupe", "du*")))
    assert fts5_match(parse_query('cyber* OR "protection des don"*')) == (
        '("cyber" * OR "protection des don" *)')
    assert parse_query("and not or").clauses == ((("and",),), (("not",),))  # words, not operators
    for nothing in ("", "   ", "-sport", '""', "OR", "-- !!"):
        with pytest.raises(ValueError, match="nothing to look for"):
            parse_query(nothing)


def test_snippet_marks_folded_matches_and_trims_around_them() -> None:
    text = " ".join(f"mot{n}" for n in range(100)) + " La Cybersécurité du Royaume. " + \
        " ".join(f"fin{n}" for n in range(100))
    cut = snippet(text, parse_query("cybersecurite royaume"), width=80)
    assert cut.startswith("…") and cut.endswith("…") and len(cut) <= 80 + 2 + 8  # two marks
    assert "**Cybersécurité** du **Royaume**" in cut
    assert snippet("Straße à Rabat", parse_query("strasse")) == "**Straße** à Rabat"
    assert snippet("rien ici", parse_query("maroc")) == "rien ici"
    assert snippet("l'intelligence\n  artificielle, enfin", parse_query(
        '"intelligence artificielle"')) == "l'**intelligence artificielle**, enfin"
    # a prefix marks every word it starts, accents aside; a French quotation stays as it is
    assert snippet("« La cyberattaque » vise la Cybersécurité, pas le cyclisme",
                   parse_query("cyber*")) == (
        "« La **cyberattaque** » vise la **Cybersécurité**, pas le cyclisme")


def test_the_excerpt_is_the_snippet_before_marking() -> None:
    text = "Préambule. " * 40 + "La CYBERSÉCURITÉ du Royaume, encore la cybersécurité."
    query = parse_query("cybersecurite")
    cut, hits = excerpt(text, query.words(), query.typed(), width=120)
    assert cut.startswith("…") and not cut.endswith("…")
    assert [cut[start:end] for start, end in hits] == ["CYBERSÉCURITÉ", "cybersécurité"]
    marked = snippet(text, query, width=120)
    assert marked == " ".join(cut.replace("CYBERSÉCURITÉ", "**CYBERSÉCURITÉ**")
                              .replace("la cybersécurité", "la **cybersécurité**").split())


def test_items_search_command(project: Project, database_url: str) -> None:
    project.write_settings(database_url=database_url)
    project.cli("init")
    out = [json.loads(line) for line in project.cli(
        "items", "search", "--json", "cybersécurité", "maroc").stdout.splitlines()]
    assert out and all(hit["feed"] is None and hit["corpus_file"] for hit in out)
    assert all("**" in hit["snippet"] for hit in out)
    assert [hit["rank"] for hit in out] == sorted((hit["rank"] for hit in out), reverse=True)
    text = project.cli("items", "search", "--relevant", "--limit", "1", "cybersécurité").stdout
    assert len(text.splitlines()) == 2 and "**" in text
    bad = project.cli("items", "search", " -sport", check=False)
    assert bad.returncode == 2 and "nothing to look for" in bad.stderr
