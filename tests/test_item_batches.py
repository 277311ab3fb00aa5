"""A batch of new items, on both backends: stored as if one after the other (same items, same
sources, same near-duplicate clusters), the same story twice in one batch is one item, and the
statements do not grow with the batch but for a row and a near-duplicate query per new item."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa
from sqlalchemy import Engine, select

from monitor import neardup
from monitor.store.items import NewItem, insert_items
from monitor.store.schema import item_bands, item_sources, items
from tests.test_stories import (
    OCP,
    OCP_FNH,
    OTHER,
    RECORDS,
    _dispatch_copies,
    _engine,
    _item,
    _sources,
)


def _batch() -> list[NewItem]:
    copies = _dispatch_copies()
    return [
        _item(1, "a-1", "https://a.ma/1", OTHER),
        _item(2, "b-1", "https://b.ma/ocp", copies[0]),
        _item(3, "c-1", "https://www.le360.ma/ocp?utm_source=rss", OCP),  # the stored story
        _item(1, "a-2", "https://a.ma/2", copies[1]),  # a copy of b-1, in the same batch
        _item(2, "b-2", "https://b.ma/ocp?fbclid=1", copies[0] + " (MAP)"),  # b-1's URL
        _item(3, "c-2", "https://c.ma/fnh", OCP_FNH),
        _item(1, "a-3", "https://a.ma/3", "Un article court, sans copie."),
        _item(3, "c-3", "https://c.ma/same-text", copies[1]),  # a-2's text, another URL
        _item(1, "a-1", "https://a.ma/1-moved", "Le même GUID qu'a-1."),  # (feed, guid) taken
        _item(2, "b-3", "https://b.ma/3", copies[2], corpus_file="001_x.txt"),
        _item(3, "c-4", "https://c.ma/4", "Autre chose.", corpus_file="001_x.txt"),  # taken
    ]


def _stored(engine: Engine) -> tuple[list, list]:
    """The items (cluster given as the guid of the item naming it) and the sources, by guid."""
    with engine.connect() as conn:
        rows = conn.execute(select(items.c.id, items.c.guid, items.c.canonical_url,
                                   items.c.cluster, items.c.corpus_file)
                            .order_by(items.c.id)).all()
        guid_of = {row.id: row.guid for row in rows}
        sources = conn.execute(select(item_sources.c.item_id, item_sources.c.feed_id,
                                      item_sources.c.guid).order_by(item_sources.c.id)).all()
        bands = conn.execute(select(sa.func.count()).select_from(item_bands)).scalar_one()
    return ([(r.guid, r.canonical_url, guid_of.get(r.cluster), r.corpus_file) for r in rows],
            sorted((guid_of[s.item_id], s.feed_id, s.guid) for s in sources) + [bands])


def _empty(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (item_bands, item_sources, items):
            conn.execute(table.delete())


def test_a_batch_is_stored_as_if_one_item_after_the_other(database_url: str) -> None:
    engine = _engine(database_url)
    results = []
    for together in (False, True):
        _empty(engine)
        insert_items(engine, [_item(1, "old", "https://www.le360.ma/ocp", OCP)])
        if together:
            ids = insert_items(engine, _batch())
        else:
            ids = [insert_items(engine, [item])[0] for item in _batch()]
        results.append((_stored(engine), [item_id is None for item_id in ids]))
    assert results[1] == results[0]
    (stored, sources), new = results[1]
    # c-1 and b-2 are sources of stored stories, c-3 of a-2's text; a-1's GUID and the corpus
    # file are taken: those entries are not items of their own
    assert new == [False, False, True, False, True, False, False, True, True, False, True]
    clusters = {guid: cluster for guid, _, cluster, _ in stored}
    assert clusters["b-1"] == clusters["a-2"] == clusters["b-3"] == "old"
    assert clusters["c-2"] == "old" and clusters["a-1"] is None


def test_merge_hashes_given_with_the_items_are_those_used(database_url: str) -> None:
    # The extraction processes compute each text's merge hash with its signature; the store
    # takes it as given (the same as it would compute) and computes the others.
    engine = _engine(database_url)
    results = []
    for given in (False, True):
        _empty(engine)
        batch = _batch()
        if given:
            batch = [replace(item, merge_hash=neardup.merge_hash(item.text, item.content_hash))
                     for item in batch]
        results.append((insert_items(engine, batch), _stored(engine)))
    assert [item_id is None for item_id in results[1][0]] == [
        item_id is None for item_id in results[0][0]]
    assert results[1][1] == results[0][1]
    # A given hash is the one the story is found by: another text, said to be the same one.
    said_same = _item(2, "b-9", "https://b.ma/9", "Un autre texte.",
                      merge_hash=_batch()[0].content_hash)
    assert insert_items(engine, [said_same]) == [None]


def test_copies_within_a_batch_open_their_cluster_as_if_stored_one_after_the_other(
        database_url: str) -> None:
    engine = _engine(database_url)
    results = []
    for together in (False, True):
        _empty(engine)  # no stored story: the first copy of the batch names the cluster
        ids = insert_items(engine, _batch()) if together else [
            insert_items(engine, [item])[0] for item in _batch()]
        results.append((_stored(engine), [item_id is None for item_id in ids]))
    assert results[1] == results[0]
    clusters = {guid: cluster for guid, _, cluster, _ in results[1][0][0]}
    assert clusters["a-2"] == clusters["b-3"] == clusters["b-1"] == "b-1"

def test_a_batch_of_new_items_takes_a_statement_per_item_and_a_few(database_url: str) -> None:
    engine = _engine(database_url)
    texts = list(dict.fromkeys(record["text"] for record in RECORDS.values()
                               if len(record["text"]) > 800))[:12]
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *rest: statements.append(statement))
    ids = insert_items(engine, [_item(1 + n % 3, f"g-{n}", f"https://site.ma/{n}", text)
                                for n, text in enumerate(texts)])
    assert None not in ids and len(texts) == 12
    near_duplicate_queries = [s for s in statements if "item_bands" in s and "SELECT" in s]
    # BEGIN, 3 look-ups, SAVEPOINT, the batch's near-duplicate candidates (their bands, then
    # their signatures), bands, sources, RELEASE (and an UPDATE of the clusters opened in the
    # batch); a row each on SQLite (one INSERT of them all on PostgreSQL)
    assert len(near_duplicate_queries) == 1
    assert len(statements) <= 12 + 10, statements
    assert [s[:2] for s in _sources(engine, ids[5])] == [(3, "g-5")]


def test_the_newest_stored_items_of_a_band_are_the_candidates(database_url: str,
                                                              monkeypatch) -> None:
    """An item's candidates are the newest stored items of its bands together, each band read
    up to its newest `_CANDIDATES` (a band shared by many stored items stays bounded)."""
    from monitor.store import clusters

    engine = _engine(database_url)
    texts = list(dict.fromkeys(record["text"] for record in RECORDS.values()
                               if len(record["text"]) > 800))[:5]
    ids = insert_items(engine, [_item(1, f"g-{n}", f"https://site.ma/{n}", text)
                                for n, text in enumerate(texts)])
    assert None not in ids and len(ids) == 5
    with engine.begin() as conn:  # band 7 held by all five, band 8 by the oldest alone
        conn.execute(item_bands.delete())
        conn.execute(item_bands.insert(), [{"band": 7, "item_id": item_id} for item_id in ids]
                     + [{"band": 8, "item_id": ids[0]}])
    monkeypatch.setattr(clusters, "_CANDIDATES", 3)
    with engine.connect() as conn:
        stored_of, rows = clusters._stored_candidates(conn, [{7}, {8}, {7, 8}, set()],
                                                      [3, 3, 2, 3])
    assert stored_of == [sorted(ids, reverse=True)[:3], [ids[0]],
                         sorted(ids, reverse=True)[:2], []]
    assert sorted(rows) == sorted(ids[2:] + [ids[0]])  # only the candidates' rows are read


def _bands(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(items.c.guid, item_bands.c.band)
                                   .join(item_bands, item_bands.c.item_id == items.c.id)).all())


def test_band_keys_made_with_the_signature_are_stored_as_given(database_url: str,
                                                              monkeypatch) -> None:
    """A page's band keys come with its signature, made in the extraction process: the store
    writes them as given (it computes none), the bands and clusters it would have made."""
    engine = _engine(database_url)
    insert_items(engine, _batch())
    computed = (_stored(engine), _bands(engine))
    _empty(engine)
    given = []
    for item in _batch():
        signature = neardup.signature(item.text)
        given.append(replace(item, signature=signature, band_keys=tuple(
            neardup.band_keys(signature)) if signature else None))

    def no_band_keys(signature):
        raise AssertionError("band keys computed again")

    monkeypatch.setattr(neardup, "band_keys", no_band_keys)
    insert_items(engine, given)
    assert (_stored(engine), _bands(engine)) == computed
    assert len(computed[1]) > 5 * neardup.BANDS
