"""Near-duplicate clusters of new items: which cluster each joins, as items are stored.

In: the MinHash signatures of a batch of new items, in the order they are stored, and a
connection inside the transaction storing them. Out: for each, the cluster it joins: a stored
item's cluster, an item of the same batch (`InBatch`: its id is known once the batch's rows are
inserted) or None. Reads the LSH bands of `item_bands` (monitor/neardup.py) and writes the
cluster of a stored item that a copy opens. Does I/O.

The result is the one of storing the items one after the other, each looking up the items
sharing a band with it: the stored ones in the database (one query per item), the ones before
it in the batch in memory (they are not inserted yet), the batch's items ranking as the newest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from monitor import neardup
from monitor.store.schema import item_bands, items

_CANDIDATES = 200  # near-duplicate candidates verified at most (the newest), per item
_NEWER = 2**62  # above any stored id: how the items of a batch rank among candidates


@dataclass(frozen=True)
class InBatch:
    """The cluster opened by an item of the batch, named by its id once inserted."""

    first: int  # the index in the batch of the item whose id names the cluster


def clusters_to_join(conn: Connection, signatures: Sequence[neardup.Signature | None],
                     band_keys: Sequence[set[int]]) -> list[int | InBatch | None]:
    """The cluster each new item joins, as if they were stored one after the other: that of the
    item most like its text (estimated Jaccard at least neardup.THRESHOLD) among the newest
    `_CANDIDATES` items sharing a band with it (`band_keys`: each signature's, an empty set for
    none), stored ones (one query per item) and the ones before it in the batch; None: none. A
    stored candidate alone until now opens its cluster under its own id; a candidate of the
    batch too (`InBatch`: the id is not known yet)."""
    joins: list[int | InBatch | None] = []
    for n, (signature, keys) in enumerate(zip(signatures, band_keys, strict=True)):
        if not signature:
            joins.append(None)
            continue
        # The batch's items get the newest ids: the later ones in the batch first.
        in_batch = [m for m in reversed(range(n))
                    if not keys.isdisjoint(band_keys[m])][:_CANDIDATES]
        candidates = (select(item_bands.c.item_id).where(item_bands.c.band.in_(sorted(keys)))
                      .distinct().order_by(item_bands.c.item_id.desc())
                      .limit(_CANDIDATES - len(in_batch)))
        stored = conn.execute(select(items.c.id, items.c.cluster, items.c.signature)
                              .where(items.c.id.in_(candidates.scalar_subquery()))).all() \
            if len(in_batch) < _CANDIDATES else []
        # (similarity, tie-break: the oldest first, then the candidate); batch items are newer
        # than every stored one.
        scored = [(neardup.similarity(signature, neardup.from_bytes(row.signature)), -row.id,
                   row) for row in stored if row.signature]
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
            joins.append(_open_cluster(conn, best[2]))
    return joins


def _open_cluster(conn: Connection, row) -> int:
    """The cluster of a stored item: its own id if it was alone until now."""
    if row.cluster is None:
        conn.execute(items.update().where(items.c.id == row.id, items.c.cluster.is_(None))
                     .values(cluster=row.id))
        return row.id
    return row.cluster
