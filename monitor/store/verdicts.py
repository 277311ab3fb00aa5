"""Stored verdicts, for re-applying the rules: read items in id order, write new verdicts. Does I/O.

In: an engine, a last id (keyset paging: ``id > after ORDER BY id``, so a batch costs the same
at the end of a big table as at its start) and rows of new verdicts. Out: plain
`StoredVerdict`s. One call of `save_verdicts` is one transaction, one statement run for many
rows (executemany), with the outbox entries of the items it makes relevant. For the corpus
folder's withdrawn files: every item holding a corpus file (`corpus_holders`) and new places for
some of them (`save_corpus_files`, one transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, Engine, bindparam, func, select

from monitor.store import outbox
from monitor.store.engine import storage_errors
from monitor.store.schema import feeds, items


@dataclass(frozen=True)
class StoredVerdict:
    id: int
    title: str
    text: str
    text_source: str  # page | summary | corpus
    canonical_url: str | None
    relevant: bool
    score: float
    topics: list[str]
    rules_version: str
    corpus_file: str | None
    lang: str | None = None
    published: datetime | None = None
    feed_name: str | None = None  # None: the seed corpus
    feed_url: str | None = None


@dataclass(frozen=True)
class CorpusHolder:
    id: int
    relevant: bool
    text_source: str
    corpus_file: str  # NAME or withdrawn/NAME, relative to the corpus folder


@storage_errors
def count_items(engine: Engine, *, not_version: str | None = None) -> int:
    """Stored items (those not classified by `not_version` when given)."""
    query = select(func.count()).select_from(items)
    if not_version is not None:
        query = query.where(items.c.rules_version != not_version)
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


@storage_errors
def verdicts_after(engine: Engine, after: int, limit: int, *,
                   not_version: str | None = None) -> list[StoredVerdict]:
    """The next `limit` items with an id above `after`, in id order, with their verdicts."""
    query = (select(items.c.id, items.c.title, items.c.text, items.c.text_source,
                    items.c.canonical_url,
                    items.c.relevant, items.c.score, items.c.topics, items.c.rules_version,
                    items.c.corpus_file, items.c.lang, items.c.published,
                    feeds.c.name.label("feed_name"), feeds.c.url.label("feed_url"))
             .select_from(items.outerjoin(feeds, feeds.c.id == items.c.feed_id))
             .where(items.c.id > after).order_by(items.c.id).limit(limit))
    if not_version is not None:
        query = query.where(items.c.rules_version != not_version)
    with engine.connect() as conn:
        return [StoredVerdict(id=r.id, title=r.title or "", text=r.text or "",
                              text_source=r.text_source, canonical_url=r.canonical_url,
                              relevant=bool(r.relevant), score=r.score,
                              topics=list(r.topics or []), rules_version=r.rules_version,
                              corpus_file=r.corpus_file, lang=r.lang, published=r.published,
                              feed_name=r.feed_name, feed_url=r.feed_url)
                for r in conn.execute(query)]


# topics and matches hold only the rules' own names and terms: plain JSON, no cleaning pass
_UPDATE = (items.update().where(items.c.id == bindparam("item_id"))
           .values(relevant=bindparam("relevant"), score=bindparam("score"),
                   topics=bindparam("topics", type_=JSON),
                   matches=bindparam("matches", type_=JSON),
                   rules_version=bindparam("rules_version"),
                   corpus_file=bindparam("corpus_file")))


@storage_errors
def save_verdicts(engine: Engine, rows: list[dict], *, now: datetime,
                  announce: Sequence[tuple[int, Sequence[str]]] = ()) -> None:
    """Write new verdicts in one transaction: each row has item_id, relevant, score, topics,
    matches, rules_version and corpus_file (the current one when unchanged); and queue the
    items of `announce` (item id, alert names) in the outbox, at `now`."""
    if rows:
        with engine.begin() as conn:
            conn.execute(_UPDATE, rows)
            for item_id, alerts in announce:
                outbox.queue(conn, item_id, alerts, now)


@storage_errors
def corpus_holders(engine: Engine) -> list[CorpusHolder]:
    """Every item that holds a corpus file, in id order."""
    query = (select(items.c.id, items.c.relevant, items.c.text_source, items.c.corpus_file)
             .where(items.c.corpus_file.isnot(None)).order_by(items.c.id))
    with engine.connect() as conn:
        return [CorpusHolder(r.id, bool(r.relevant), r.text_source, r.corpus_file)
                for r in conn.execute(query)]


_MOVE = (items.update().where(items.c.id == bindparam("item_id"))
         .values(corpus_file=bindparam("corpus_file")))


@storage_errors
def save_corpus_files(engine: Engine, places: dict[int, str]) -> None:
    """Record where the files of some items are now (item id -> corpus_file), in one
    transaction."""
    if places:
        with engine.begin() as conn:
            conn.execute(_MOVE, [{"item_id": i, "corpus_file": f} for i, f in places.items()])
