"""Stored labels on both backends: a label is checked before it is stored, every act is kept and
the latest counts, an unknown item stores nothing, and the labelled items come back with their
text as stored and the rules' stored verdict beside the label."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from monitor.store.items import NewItem, insert_item
from monitor.store.labels import (
    NOTE_CHARS,
    labelled_items,
    latest_label,
    make_label,
    record_label,
)
from monitor.store.schema import labels

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def _item(engine: sa.Engine, key: str, **overrides) -> int:
    values = dict(
        feed_id=None, guid=None, url=f"https://a.ma/{key}", canonical_url=f"https://a.ma/{key}",
        title=f"Titre {key}", summary="", published=None, fetched_at=NOW, lang="fr",
        text=f"Texte {key}", text_source="page", text_error=None, text_error_message=None,
        content_hash=key, relevant=False, score=0.0, topics=[], matches=[], rules_version="r1",
        corpus_file=None,
    )
    item_id = insert_item(engine, NewItem(**{**values, **overrides}))
    assert item_id is not None
    return item_id


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"relevant": True, "topics": ["ai", "sport"]}, "unknown topic 'sport'; use one of ai, cyber"),
    ({"relevant": False, "topics": ["cyber"]}, "topics go with a relevant label"),
    ({"relevant": True, "origin": "mail"}, "unknown origin 'mail'"),
    ({"relevant": True, "note": "x" * (NOTE_CHARS + 1)}, f"keep it under {NOTE_CHARS}"),
])
def test_a_label_is_checked_before_it_is_stored(kwargs: dict, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        make_label(1, **{"origin": "cli", **kwargs})


def test_topics_are_kept_once_in_their_order_and_the_note_trimmed() -> None:
    label = make_label(3, relevant=True, topics=["digital-policy", "ai", "ai"],
                       note="  Assises de l'IA \n", origin="web", labelled_at=NOW)
    assert (label.topics, label.note, label.labelled_at) == (("ai", "digital-policy"),
                                                            "Assises de l'IA", NOW)
    assert label.as_dict() == {"relevant": True, "topics": ["ai", "digital-policy"],
                               "note": "Assises de l'IA", "labelled_at": NOW.isoformat(),
                               "origin": "web"}


def test_every_act_is_kept_and_the_latest_counts(engine: sa.Engine) -> None:
    first = _item(engine, "a", relevant=True, score=4.0, topics=["cyber"])
    second = _item(engine, "b", title="Le Wydad gagne", text="Match de football.")
    _item(engine, "c")  # never labelled
    assert latest_label(engine, first) is None
    acts = [
        make_label(first, relevant=False, note="sport ?", origin="cli", labelled_at=NOW),
        make_label(second, relevant=False, origin="web", labelled_at=NOW),
        make_label(first, relevant=True, topics=["cyber", "ai"], note="DGSSI", origin="web",
                   labelled_at=NOW + timedelta(minutes=5)),
    ]
    for act in acts:
        assert record_label(engine, act) is True
    assert latest_label(engine, first) == acts[2]
    assert latest_label(engine, second) == acts[1]

    rows = list(labelled_items(engine))
    assert [(r["id"], r["relevant"], r["topics"], r["latest"]) for r in rows] == [
        (first, True, ["ai", "cyber"], True), (second, False, [], True)]
    assert rows[0]["verdict"] == {"relevant": True, "score": 4.0, "topics": ["cyber"],
                                  "rules_version": "r1"}
    assert rows[0]["labelled_at"] == (NOW + timedelta(minutes=5)).isoformat()
    assert rows[0]["note"] == "DGSSI" and rows[0]["origin"] == "web"
    assert "text" not in rows[0]

    history = list(labelled_items(engine, every_act=True, text=True))
    assert [(r["id"], r["relevant"], r["latest"]) for r in history] == [
        (first, False, False), (first, True, True), (second, False, True)]
    assert history[2]["text"] == "Match de football." and history[2]["title"] == "Le Wydad gagne"
    assert history[2]["text_source"] == "page" and history[2]["lang"] == "fr"


def test_a_label_for_an_unknown_item_stores_nothing(engine: sa.Engine) -> None:
    assert record_label(engine, make_label(404, relevant=True, origin="cli")) is False
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(labels)).scalar() == 0


def test_labels_keep_text_postgresql_refuses_out(engine: sa.Engine) -> None:
    item = _item(engine, "d")
    assert record_label(engine, make_label(item, relevant=False, note="nul\x00 \udcff ici",
                                           origin="cli"))
    assert latest_label(engine, item).note == "nul ? ici"
