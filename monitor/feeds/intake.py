"""Which of a feed's new entries one poll takes: those with something to store, the newest
first, at most ``http.max_entries``; the others wait for the next polls.

In: the entries of a feed that it never brought before, and the cap. Out: an `Intake` (the
entries taken, in the feed's order, and how many were left or skipped). Pure.

An entry with neither a link nor any text (a bare ``<guid>``) is skipped: it would be an empty
item. It is not marked seen either, so it costs nothing but this check on every poll. The cap
keeps a poll's work, memory and time bounded whatever a feed lists (a feed of 100,000 items
fits in the feed size cap): the entries left are still new to the next poll, which takes the
newest of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.feeds.parse import Entry

_UNDATED = datetime.min.replace(tzinfo=UTC)  # undated entries rank after the dated ones


@dataclass(frozen=True)
class Intake:
    taken: tuple[Entry, ...]  # in the feed's order
    left: int  # entries with something to store, left for the next polls
    empty: int  # entries with neither a link nor any text, skipped


def has_content(entry: Entry) -> bool:
    """Whether the entry would make an item with something in it: a link or some text."""
    return entry.link is not None or bool(entry.title.strip() or entry.summary.strip())


def take_newest(entries: Sequence[Entry], cap: int) -> Intake:
    """The `cap` newest entries with content (by date; among equal or missing dates, those the
    feed lists first), kept in the feed's order."""
    storable = [entry for entry in entries if has_content(entry)]
    empty = len(entries) - len(storable)
    if len(storable) <= cap:
        return Intake(tuple(storable), 0, empty)
    # A stable sort, reversed: equal dates keep the feed's order.
    ranked = sorted(range(len(storable)), reverse=True,
                    key=lambda index: storable[index].published or _UNDATED)
    chosen = set(ranked[:cap])
    taken = tuple(entry for index, entry in enumerate(storable) if index in chosen)
    return Intake(taken, len(storable) - cap, empty)
