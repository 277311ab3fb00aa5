"""Labels: what an analyst said of an item (relevant or not, topics, a note), kept as history.
Does I/O.

In: an engine, a `Label` to record, an item id. Out: whether the item exists (`record_label`),
an item's latest `Label`, and streamed rows of labelled items with their stored text and the
rules' stored verdict (`labelled_items`, read by `labels list`, `labels export` and `rules eval
--labels`). Each act is one row; an item's label is its latest row (the highest id).
`make_label` checks a label before it is stored: topics among the rules' four, none on a label
that says not relevant.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from monitor.rules.ruleset import TOPICS
from monitor.store.engine import storage_errors
from monitor.store.listings import BATCH, ITEMS_WITH_FEED, iso
from monitor.store.schema import feeds, items, labels

ORIGINS = ("cli", "web")
NOTE_CHARS = 2000


@dataclass(frozen=True)
class Label:
    item_id: int
    relevant: bool
    topics: tuple[str, ...]  # in the order of TOPICS; empty when not relevant
    note: str
    labelled_at: datetime  # UTC
    origin: str  # cli | web

    def as_dict(self) -> dict:
        """The label as plain data (the time as ISO 8601), without the item id."""
        return {"relevant": self.relevant, "topics": list(self.topics), "note": self.note,
                "labelled_at": iso(self.labelled_at), "origin": self.origin}


def make_label(item_id: int, *, relevant: bool, topics: Iterable[str] = (), note: str = "",
               origin: str, labelled_at: datetime | None = None) -> Label:
    """A label, checked; ValueError (saying what to change) for an unknown topic or origin, a
    topic on a not-relevant label, or a note over NOTE_CHARS characters. Topics are kept once
    each, in the order of TOPICS; the time defaults to now."""
    given = list(topics)
    unknown = [topic for topic in given if topic not in TOPICS]
    if unknown:
        raise ValueError(f"unknown topic {unknown[0]!r}; use one of {', '.join(TOPICS)}")
    if given and not relevant:
        raise ValueError("topics go with a relevant label; a label saying not relevant has none")
    if origin not in ORIGINS:
        raise ValueError(f"unknown origin {origin!r}; use one of {', '.join(ORIGINS)}")
    note = note.strip()
    if len(note) > NOTE_CHARS:
        raise ValueError(f"the note has {len(note)} characters; keep it under {NOTE_CHARS}")
    return Label(item_id=item_id, relevant=relevant,
                 topics=tuple(topic for topic in TOPICS if topic in given), note=note,
                 labelled_at=labelled_at or datetime.now(UTC), origin=origin)


@storage_errors
def record_label(engine: Engine, label: Label) -> bool:
    """Store one labelling act; False (nothing stored) when there is no such item."""
    with engine.begin() as conn:
        if conn.execute(select(items.c.id).where(items.c.id == label.item_id)).first() is None:
            return False
        conn.execute(labels.insert().values(
            item_id=label.item_id, relevant=label.relevant, topics=list(label.topics),
            note=label.note, labelled_at=label.labelled_at, origin=label.origin))
    return True


def _label(row) -> Label:
    return Label(item_id=row.item_id, relevant=bool(row.relevant), topics=tuple(row.topics or ()),
                 note=row.note or "", labelled_at=row.labelled_at, origin=row.origin)


@storage_errors
def latest_label(engine: Engine, item_id: int) -> Label | None:
    """The item's label (its latest act); None when it was never labelled."""
    query = (select(labels).where(labels.c.item_id == item_id)
             .order_by(labels.c.id.desc()).limit(1))
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return _label(row) if row is not None else None


@storage_errors
def labelled_items(engine: Engine, *, every_act: bool = False,
                   text: bool = False) -> Iterator[dict]:
    """Each labelled item with its label, in item id order, streamed; with `every_act`, every
    labelling act of each item, oldest first (``latest`` says which one counts).

    A row: the item's ``id``, ``title``, ``lang``, ``feed``, ``url``, ``text_source`` (and
    ``text`` as stored, with `text`); the label's ``relevant``, ``topics``, ``note``,
    ``labelled_at``, ``origin``, ``latest``; and ``verdict``, the rules' stored verdict
    (``relevant``, ``score``, ``topics``, ``rules_version``)."""
    latest = (select(func.max(labels.c.id).label("id")).group_by(labels.c.item_id)
              .subquery("latest"))
    columns = [items.c.id, items.c.title, items.c.lang, feeds.c.name.label("feed"), items.c.url,
               items.c.text_source, items.c.relevant.label("verdict_relevant"), items.c.score,
               items.c.topics.label("verdict_topics"), items.c.rules_version,
               labels.c.relevant, labels.c.topics, labels.c.note, labels.c.labelled_at,
               labels.c.origin, (latest.c.id.is_not(None)).label("latest")]
    if text:
        columns.append(items.c.text)
    source = (ITEMS_WITH_FEED.join(labels, labels.c.item_id == items.c.id)
              .outerjoin(latest, latest.c.id == labels.c.id))
    query = select(*columns).select_from(source).order_by(items.c.id, labels.c.id)
    if not every_act:
        query = query.where(latest.c.id.is_not(None))
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        for row in result:
            out = {"id": row.id, "title": row.title or "", "lang": row.lang, "feed": row.feed,
                   "url": row.url, "text_source": row.text_source,
                   "relevant": bool(row.relevant), "topics": list(row.topics or []),
                   "note": row.note or "", "labelled_at": iso(row.labelled_at),
                   "origin": row.origin, "latest": bool(row.latest),
                   "verdict": {"relevant": bool(row.verdict_relevant), "score": row.score,
                               "topics": list(row.verdict_topics or []),
                               "rules_version": row.rules_version}}
            if text:
                out["text"] = row.text or ""
            yield out
