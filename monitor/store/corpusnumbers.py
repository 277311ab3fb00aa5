"""Corpus file numbers, handed out by the database. Does I/O.

In: an item key (the ``<h16>`` of ``NNN_<h16>.txt``) and a floor. Out: the number of that
key's file: the one already reserved for the key, else the next free one (never below the
floor). The number is the table's primary key and the key is unique, so two workers asking at
once, on one machine or several, never get the same number: one insert wins, the other fails
on the constraint and asks again. Numbers may have gaps (a reservation whose item was never
stored, a number a crashed worker took) but never repeat. Reserving the key before the file is
written also makes a restarted worker find the number it had, so it reuses its file.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from monitor.errors import StorageError
from monitor.store.engine import storage_errors
from monitor.store.schema import corpus_numbers

ATTEMPTS = 100


class CorpusNumbers:
    """The `corpus_numbers` table of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @storage_errors
    def reserve(self, key: str, floor: int = 0) -> int:
        """The number for `key`, reserved for it by this call if it had none."""
        table = corpus_numbers
        for _ in range(ATTEMPTS):
            with self.engine.connect() as conn:
                found = conn.execute(select(table.c.number).where(table.c.key == key)).scalar()
            if found is not None:
                return found
            try:
                with self.engine.begin() as conn:
                    number = conn.execute(
                        select(func.coalesce(func.max(table.c.number), -1) + 1)).scalar_one()
                    number = max(number, floor)
                    conn.execute(table.insert().values(number=number, key=key, origin="poll",
                                                       reserved_at=datetime.now(UTC)))
                return number
            except IntegrityError:
                continue  # another worker took that number, or reserved this key: look again
        raise StorageError(f"could not reserve a corpus number for key {key} in {ATTEMPTS} "
                           "attempts; is the corpus_numbers table locked or damaged?")

    @storage_errors
    def registered(self) -> dict[int, tuple[str, str]]:
        """Every number handed out: number -> (key, origin), origin 'poll' or 'folder'."""
        table = corpus_numbers
        with self.engine.connect() as conn:
            rows = conn.execute(select(table.c.number, table.c.key, table.c.origin))
            return {number: (key, origin) for number, key, origin in rows}

    @storage_errors
    def register(self, number: int, key: str) -> bool:
        """Record a file found in the corpus folder; False if its number or key is taken."""
        try:
            with self.engine.begin() as conn:
                conn.execute(corpus_numbers.insert().values(
                    number=number, key=key, origin="folder", reserved_at=datetime.now(UTC)))
        except IntegrityError:
            return False
        return True
