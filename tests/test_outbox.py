"""The alerts' outbox on both backends: entries written with their items (and by reclassify,
within max_age), claimed by one sender at a time, the entries of a sender that died claimed
again and counted, two senders on PostgreSQL never taking the same entry."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.alertsettings import AlertSettings
from monitor.corpus import Corpus
from monitor.rules import load_ruleset
from monitor.store.corpusnumbers import CorpusNumbers
from monitor.store.engine import create_schema, make_engine
from monitor.store.items import NewItem, insert_items
from monitor.store.outbox import (
    alert_figures,
    claim_entries,
    mark_failed,
    mark_sent,
    release_dead_sends,
)
from monitor.store.schema import alert_outbox
from monitor.worker.reclassify import reclassify
from tests.test_reclassify import RULES

NOW = datetime.now(UTC)


def new_item(number: int, *, alerts: tuple[str, ...] = ("desk",), relevant: bool = True,
             published: datetime | None = NOW, text: str | None = None) -> NewItem:
    url = f"https://example.ma/news/{number}"
    return NewItem(
        feed_id=None, guid=f"g{number}", url=url, canonical_url=url, title=f"Item {number}",
        summary="", published=published, fetched_at=NOW, lang="fr",
        text=text or f"Texte numéro {number}.", text_source="page", text_error=None,
        text_error_message=None, content_hash=f"h{number}", relevant=relevant,
        score=2.0 if relevant else 0.0, topics=["cyber"] if relevant else [],
        matches=[{"term": "maroc", "group": "morocco"}] if relevant else [],
        rules_version="old", corpus_file=None, alerts=alerts if relevant else ())


def _states(engine) -> list[tuple[str, int, str]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            sa.select(alert_outbox.c.alert, alert_outbox.c.item_id, alert_outbox.c.state)
            .order_by(alert_outbox.c.id))]


def _claim(engine, owner: str, *, alert: str = "desk", limit: int = 10, now=None):
    now = now or datetime.now(UTC)
    return claim_entries(engine, alert=alert, owner=owner, now=now,
                         lease_until=now + timedelta(seconds=60), queued_before=now,
                         limit=limit)


def test_entries_are_stored_with_their_item_and_once(engine) -> None:
    first = insert_items(engine, [new_item(1, alerts=("desk", "ops")), new_item(2),
                                  new_item(3, relevant=False)])
    # the same story again (same URL) is one more source, not one more entry
    again = insert_items(engine, [replace(new_item(1), guid="other-guid")])
    assert again == [None]
    assert _states(engine) == [("desk", first[0], "pending"), ("ops", first[0], "pending"),
                               ("desk", first[1], "pending")]


def test_an_item_refused_by_the_database_leaves_no_entry(engine) -> None:
    """The entry is in the item's savepoint: a failure after it takes both back."""
    with pytest.raises(Exception), engine.begin() as conn:  # noqa: B017 (the backend's own)
        from monitor.store.items import _store_new
        _store_new(conn, new_item(5))
        conn.execute(sa.text("select * from no_such_table"))
    assert _states(engine) == []


def test_claimed_once_marked_and_counted(engine) -> None:
    ids = insert_items(engine, [new_item(n) for n in range(1, 6)])
    mine = _claim(engine, "a", limit=3)
    assert [entry.item["id"] for entry in mine] == ids[:3]
    assert mine[0].item["title"] == "Item 1" and mine[0].attempts == 1
    others = _claim(engine, "b")
    assert [entry.item["id"] for entry in others] == ids[3:]  # never the same entry
    mark_sent(engine, "a", [entry.id for entry in mine], NOW)
    mark_sent(engine, "a", [entry.id for entry in others], NOW)  # not a's lease: unchanged
    later = datetime.now(UTC) + timedelta(seconds=30)
    mark_failed(engine, "b", [entry.id for entry in others], "json://h/****: 503", later)
    assert _claim(engine, "c") == []  # sent, or waiting for their next attempt
    figures = alert_figures(engine, {"desk": 1})
    assert figures == {"desk": {"pending": 2, "sent": 3, "failed": 2, "resends": 0,
                                "last_error": "json://h/****: 503"}}
    retried = _claim(engine, "c", now=later + timedelta(seconds=1))
    assert [entry.attempts for entry in retried] == [2, 2]


def test_entries_of_a_dead_sender_are_claimed_again_and_counted(engine) -> None:
    insert_items(engine, [new_item(1), new_item(2)])
    _claim(engine, "host:1:dead")
    assert _claim(engine, "b") == []  # leased for a minute
    assert release_dead_sends(engine, lambda owner: owner.endswith(":dead"),
                              datetime.now(UTC) - timedelta(seconds=1)) == ["host:1:dead"]
    assert len(_claim(engine, "b")) == 2
    assert alert_figures(engine, {})["desk"]["resends"] == 2


def test_a_digest_takes_what_was_queued_before_its_time(engine) -> None:
    insert_items(engine, [new_item(1)])
    now = datetime.now(UTC)
    assert claim_entries(engine, alert="desk", owner="a", now=now, lease_until=now,
                         queued_before=now - timedelta(hours=1), limit=10) == []


@pytest.mark.postgres
def test_two_senders_on_postgresql_never_take_the_same_entry(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    create_schema(engine)
    ids = insert_items(engine, [new_item(n) for n in range(1, 81)])
    taken: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def sender(owner: str) -> None:
        own = make_engine(postgres_url)
        start.wait()
        while entries := _claim(own, owner, limit=3):
            taken[owner] += [entry.item["id"] for entry in entries]
            mark_sent(own, owner, [entry.id for entry in entries], datetime.now(UTC))
        own.dispose()

    threads = [threading.Thread(target=sender, args=(owner,)) for owner in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken["a"] + taken["b"]) == sorted(ids)
    assert taken["a"] and taken["b"], "both senders took a share"
    assert alert_figures(engine, {})["desk"]["sent"] == 80
    engine.dispose()


def test_reclassify_announces_newly_relevant_items_within_max_age(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'monitor.db'}")
    create_schema(engine)
    text = "La cybersécurité du Maroc."
    ids = insert_items(engine, [
        new_item(1, relevant=False, text=text),  # published now
        new_item(2, relevant=False, text=text + " Hier.",
                 published=NOW - timedelta(days=3)),  # older than 2 days
        new_item(3, relevant=False, text=text + " Sans date.", published=None),
        new_item(4, relevant=False, text="Le Wydad bat le Raja.")])  # stays irrelevant
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    (tmp_path / "corpus").mkdir()
    alerts = [AlertSettings(name="desk", to=["json://h.example/"]),
              AlertSettings(name="week", to=["json://h.example/"], max_age="7d"),
              AlertSettings(name="ai", to=["json://h.example/"], topics=["ai"])]
    report = reclassify(engine, load_ruleset(rules),
                        Corpus(tmp_path / "corpus", CorpusNumbers(engine)), alerts=alerts)
    assert report.newly_relevant == 3 and report.announced == 3
    assert _states(engine) == [("desk", ids[0], "pending"), ("week", ids[0], "pending"),
                               ("week", ids[1], "pending")]
    again = reclassify(engine, load_ruleset(rules),
                       Corpus(tmp_path / "corpus", CorpusNumbers(engine)), alerts=alerts,
                       force=True)
    assert again.announced == 0 and len(_states(engine)) == 3
