"""The listings' orders and counts on both backends: newest published first (the time kept when
the feed gave none), newest kept first, best score first; keyset pages in each order give the
whole list once; publication-date filters; a count with and without a cap; the indexes of
migration 0010 drive the publication and score orders on SQLite."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from monitor.store.engine import create_schema, make_engine
from monitor.store.listings import ItemSelection, count_selected, newest_items, newest_items_select
from monitor.store.schema import items

KEPT = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
# (published, score), in the order they are kept: old news kept last, a tie, no date at all
ROWS = [
    (datetime(2025, 6, 9, 8, 0, tzinfo=UTC), 1.0),
    (datetime(2025, 6, 10, 9, 0, tzinfo=UTC), 4.0),
    (None, 2.0),  # kept at KEPT + 2 h: its publication time
    (datetime(2025, 6, 10, 9, 0, tzinfo=UTC), 4.0),  # the same time and score as the second
    (datetime(2023, 1, 1, 0, 0, tzinfo=UTC), 9.0),  # old news, found by a first import
]


@pytest.fixture
def engine(database_url: str):
    engine = make_engine(database_url)
    create_schema(engine)
    with engine.begin() as conn:
        for n, (published, score) in enumerate(ROWS):
            conn.execute(items.insert().values(
                guid=f"g{n}", url=f"https://a.ma/{n}", canonical_url=f"https://a.ma/{n}",
                title=f"item {n}", published=published, fetched_at=KEPT + timedelta(hours=n),
                text="x", text_source="page", content_hash=f"h{n}", relevant=score > 3,
                score=score, topics=[], matches=[], rules_version="t"))
    yield engine
    engine.dispose()


def _ids(engine, **selection) -> list[int]:
    return [row["id"] for row in newest_items(engine, ItemSelection(**selection))]


def test_each_order_and_its_keyset_pages(engine) -> None:
    assert _ids(engine, sort="kept") == [5, 4, 3, 2, 1]
    assert _ids(engine, sort="published") == [3, 4, 2, 1, 5]  # old news last; tie: newer id
    assert _ids(engine, sort="score") == [5, 4, 2, 3, 1]
    for sort in ("kept", "published", "score"):
        whole, paged, before = _ids(engine, sort=sort), [], None
        while True:
            page = [row["id"] for row in newest_items(
                engine, ItemSelection(sort=sort, before=before), limit=2)]
            if not page:
                break
            paged += page
            before = page[-1]
        assert paged == whole, sort


def test_publication_days_and_counts(engine) -> None:
    [first] = newest_items(engine, ItemSelection(sort="published"), limit=1)
    assert first["published_at"] == (KEPT + timedelta(hours=2)).isoformat()
    june_10 = ItemSelection(published_since=date(2025, 6, 10), published_until=date(2025, 6, 10))
    assert sorted(_ids(engine, **june_10.__dict__)) == [2, 3, 4]
    assert _ids(engine, published_until=date(2024, 12, 31)) == [5]
    assert count_selected(engine, june_10) == 3
    assert count_selected(engine, ItemSelection(relevant=True)) == 3
    assert count_selected(engine, ItemSelection(), cap=2) == 2
    assert count_selected(engine, ItemSelection(before=2)) == 5  # the cursor is no filter


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_indexes_drive_the_publication_and_score_orders(engine) -> None:
    for selection, index in ((ItemSelection(sort="published", before=3), "ix_items_published_at"),
                             (ItemSelection(sort="published", relevant=True),
                              "ix_items_relevant_published_at"),
                             (ItemSelection(sort="score"), "ix_items_score_id")):
        query = newest_items_select(selection, limit=51)
        sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            plan = " ".join(row[3] for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
        assert index in plan and "TEMP B-TREE" not in plan, plan
