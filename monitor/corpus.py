"""The corpus folder: relevant items as ``NNN_<h16>.txt`` text files. Does I/O.

In: a canonical URL (or another stable key), a title and a body. Out: the file name written.
Files are UTF-8: the title, a blank line, the body. Each file is written under a temporary name
and then linked into place with a call that fails if the name exists, so two writers never
take the same number and a reader never sees half a file. The number is the next free one
(at least three digits, after the seeds' 000-004); `<h16>` is the first 16 hex digits of the
SHA-256 of the key. Numbers are handed out under an exclusive lock on ``.lock`` with the next
free number kept in ``.next``, both hidden files of the folder, so several processes sharing the
folder never take the same number. Writing is idempotent per key: a file for that key already
present (left by a run that died before storing its item) is reused, not duplicated. Existing
files are never modified or deleted.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monitor.identity import url_key

_NAME = re.compile(r"^(\d{3,})_([0-9a-f]{16})\.txt$")


def corpus_text(title: str, body: str) -> str:
    return f"{title.strip()}\n\n{body.strip()}\n"


class Corpus:
    """The corpus folder of one storage directory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._by_key: dict[str, str] | None = None
        self._next = 0

    def remove_stale_temporaries(self, older_than: float = 3600.0) -> int:
        """Delete temporary files left by writers killed mid-write; returns how many."""
        removed = 0
        for path in self.folder.glob(".incoming-*.tmp"):
            try:
                if time.time() - path.stat().st_mtime > older_than:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.glob("*.txt") if _NAME.match(p.name))

    def write(self, key_source: str, title: str, body: str) -> str:
        """Write the item under the next free number; returns the file name."""
        key = url_key(key_source)
        data = corpus_text(title, body).encode("utf-8")
        with self._lock:
            index = self._index()
            existing = index.get(key)
            if existing and (self.folder / existing).exists():
                return existing
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".incoming-", suffix=".tmp", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                with self._numbering() as counter:
                    while True:
                        number = max(self._next, _read_number(counter))
                        name = f"{number:03d}_{key}.txt"
                        try:
                            os.link(tmp, self.folder / name)  # atomic; fails if the name exists
                        except FileExistsError:
                            self._rescan()
                            continue
                        self._next = number + 1
                        _write_number(counter, self._next)
                        index[key] = name
                        return name
            finally:
                os.unlink(tmp)

    @contextmanager
    def _numbering(self) -> Iterator[int]:
        """Hold the folder's numbering lock; yields the descriptor of the counter file."""
        lock = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            counter = os.open(self.folder / ".next", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                yield counter
            finally:
                os.close(counter)
        finally:
            os.close(lock)  # closing releases the lock

    def _index(self) -> dict[str, str]:
        if self._by_key is None:
            self._rescan()
        assert self._by_key is not None
        return self._by_key

    def _rescan(self) -> None:
        by_key: dict[str, str] = {}
        highest = -1
        if self.folder.is_dir():
            for entry in os.scandir(self.folder):
                match = _NAME.match(entry.name)
                if match:
                    highest = max(highest, int(match.group(1)))
                    by_key.setdefault(match.group(2), entry.name)
        self._by_key = by_key
        self._next = max(self._next, highest + 1)


def _read_number(fd: int) -> int:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 32).strip()
    return int(raw) if raw.isdigit() else 0


def _write_number(fd: int, number: int) -> None:
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    os.write(fd, str(number).encode())
