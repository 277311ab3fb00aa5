"""Near-duplicate clusters of new items: which cluster each joins, as items are stored.

In: the MinHash signatures of a batch of new items, in the order they are stored, and a
connection inside the transaction storing them. Out: for each, the cluster it joins: a stored
item's cluster, an item of the same batch (`InBatch`: its id is known once the batch's rows are
inserted) or None. Reads the LSH bands of `item_bands` (monitor/neardup.py) and writes the
cluster of a stored item that a copy opens. Does I/O.

The result is the one of storing the items one after the other, each looking up the items
sharing a band with it: the stored ones in the database (two queries for the whole batch: the
items holding its bands, then their signatures), the ones before it in the batch in memory (they
are not inserted yet), the batch's items ranking as the newest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from monitor import neardup
from monitor.store.schema import item_bands, items

_CANDIDATES = 200  # near-duplicate candidates verified at most (the newest), per item
_NEWER = 2**62  # above any stored id: how the items of a batch rank among candidates
_KEYS_PER_QUERY = 5000  # integers in one IN (...) list (SQLite takes 1 MB statements)


@dataclass(frozen=True)
class InBatch:
    """The cluster opened by an item of the batch, named by its id once inserted."""

    first: int  # the index in the batch of the item whose id names the cluster


def clusters_to_join(conn: Connection, signatures: Sequence[neardup.Signature | None],
                     band_keys: Sequence[set[int]]) -> list[int | InBatch | None]:
    """The cluster each new item joins, as if they were stored one after the other: that of the
    item most like its text (estimated Jaccard at least neardup.THRESHOLD) among the newest
    `_CANDIDATES` items sharing a band with it (`band_keys`: each signature's, an empty set for
    none), stored ones and the ones before it in the batch; None: none. A stored candidate
    alone until now opens its cluster under its own id; a candidate of the batch too
    (`InBatch`: the id is not known yet). The stored candidates of the whole batch are read in
    two statements (`_stored_candidates`)."""
    in_batches = _batch_candidates(band_keys)
    wanted = [set() if not signature or len(in_batch) >= _CANDIDATES else keys
              for signature, keys, in_batch in zip(signatures, band_keys, in_batches,
                                                   strict=True)]
    stored_of, rows = _stored_candidates(conn, wanted, [_CANDIDATES - len(in_batch)
                                                        for in_batch in in_batches])
    joins: list[int | InBatch | None] = []
    opened: set[int] = set()  # stored items whose cluster this batch opened
    for n, (signature, in_batch) in enumerate(zip(signatures, in_batches, strict=True)):
        if not signature:
            joins.append(None)
            continue
        # (similarity, tie-break: the oldest first, then the candidate); batch items are newer
        # than every stored one.
        scored = [(neardup.similarity(signature, rows[item_id].signature), -item_id,
                   rows[item_id]) for item_id in stored_of[n]]
        scored += [(neardup.similarity(signature, signatures[m]), -(_NEWER + m), m)
                   for m in in_batch]
        best = max((s for s in scored if s[0] >= neardup.THRESHOLD), default=None,
                   key=lambda s: s[:2])
        if best is None:
            joins.append(None)
        elif isinstance(best[2], int):  # an item of this batch
            first = best[2]
            if joins[first] is None:
                joins[first] = InBatch(first)
            joins.append(joins[first])
        else:
            joins.append(_open_cluster(conn, best[2], opened))
    return joins


def _batch_candidates(band_keys: Sequence[set[int]]) -> list[list[int]]:
    """For each item, the newest `_CANDIDATES` items before it in the batch sharing a band
    with it (their indexes, the latest first): by band, not by comparing every pair."""
    holders: dict[int, list[int]] = {}  # band key -> the items of the batch so far having it
    candidates = []
    for n, keys in enumerate(band_keys):
        sharing = {m for key in keys for m in holders.get(key, ())}
        candidates.append(sorted(sharing, reverse=True)[:_CANDIDATES])
        for key in keys:
            holders.setdefault(key, []).append(n)
    return candidates


@dataclass(frozen=True)
class _Stored:
    id: int
    cluster: int | None
    signature: neardup.Signature


def _stored_candidates(conn: Connection, wanted: Sequence[set[int]], limits: Sequence[int]
                       ) -> tuple[list[list[int]], dict[int, _Stored]]:
    """For each item, the newest `limits[n]` stored items sharing one of the bands
    `wanted[n]` (with a signature), and those items' clusters and signatures: the bands of the
    whole batch in one query per `_KEYS_PER_QUERY`, the items in one per `_KEYS_PER_QUERY`
    ids. The keys and ids are integers written in the statement (no parameter to bind)."""
    keys = sorted(set().union(*wanted))
    holders: dict[int, list[int]] = {}  # band key -> the newest stored items having it
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        listed = ",".join(f"{key:d}" for key in keys[start:start + _KEYS_PER_QUERY])
        # The newest `_CANDIDATES` of each band are enough (an item among the newest of all
        # its bands together is among the newest of its own band), and keep what a band
        # shared by many stored items sends back bounded as the table grows.
        for band, item_id in conn.exec_driver_sql(
                f"SELECT band, item_id FROM (SELECT band, item_id, ROW_NUMBER() OVER "
                f"(PARTITION BY band ORDER BY item_id DESC) AS newest FROM {item_bands.name} "
                f"WHERE band IN ({listed})) AS held WHERE newest <= {_CANDIDATES:d}"):
            holders.setdefault(band, []).append(item_id)
    stored_of = [sorted(set().union(*(holders.get(key, ()) for key in item_keys)),
                        reverse=True)[:limit]
                 for item_keys, limit in zip(wanted, limits, strict=True)]
    ids = sorted(set().union(*stored_of))
    rows: dict[int, _Stored] = {}
    for start in range(0, len(ids), _KEYS_PER_QUERY):
        listed = ",".join(f"{item_id:d}" for item_id in ids[start:start + _KEYS_PER_QUERY])
        for item_id, cluster, signature in conn.exec_driver_sql(
                f"SELECT id, cluster, signature FROM {items.name} WHERE id IN ({listed}) "
                "AND signature IS NOT NULL"):
            rows[item_id] = _Stored(item_id, cluster, neardup.from_bytes(signature))
    return [[item_id for item_id in found if item_id in rows] for found in stored_of], rows


def _open_cluster(conn: Connection, row: _Stored, opened: set[int]) -> int:
    """The cluster of a stored item: its own id if it was alone until now (`opened`: the ones
    this batch has opened already)."""
    if row.cluster is None:
        if row.id not in opened:
            conn.execute(items.update().where(items.c.id == row.id, items.c.cluster.is_(None))
                         .values(cluster=row.id))
            opened.add(row.id)
        return row.id
    return row.cluster
