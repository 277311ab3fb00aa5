"""The corpus folder: relevant items as ``NNN_<h16>.txt`` text files. Does I/O.

In: a canonical URL (or another stable key), a title and a body. Out: the file name written.
Files are UTF-8: the title, a blank line, the body. Each file is written under a temporary name
and then linked into place with a call that fails if the name exists, so a reader never sees
half a file. The number has at least three digits and continues after the files already there
(the seeds are 000-004); `<h16>` is the first 16 hex digits of the SHA-256 of the key.

Who hands out numbers: with a database (``numbers``, a `CorpusNumbers` or anything with its
``reserve(key, floor)``), the database does: every worker on every machine sharing the folder
(even over a network filesystem, where file locks may not hold) gets a number no one else has,
and the key's number is reserved before its file is written. Without one (a lone process on
one machine), an exclusive ``flock`` on the hidden ``.lock`` file guards the next free number
kept in ``.next``. Either way writing is idempotent per key: a file for that key already present
(left by a run that died before storing its item) is reused, not duplicated. Existing files are
never modified or deleted.

Withdrawn files: the folder holds what the current rules keep. The file of an item that is no
longer relevant is moved (`place`, one rename within the folder's filesystem, so atomic) to
the ``withdrawn/`` subfolder, under the same name, and back when the item is relevant again.
An item's stored ``corpus_file`` is the file's path relative to the corpus folder: ``NAME`` or
``withdrawn/NAME`` (`stored_name`). Withdrawn files keep their numbers: numbering continues
after the highest number in either place. Who withdraws what is the worker's choice
(`worker/withdrawal.py`); this module only moves files.

A write the system refuses (a full disk, a read-only mount, missing rights) leaves as
`StorageError` (`write_refused`): the poll fails and its entries are tried again. The commands
that write check the folder at start-up (`check_writable_folder`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from monitor.errors import ConfigError, StorageError
from monitor.identity import url_key
from monitor.settings import WITHDRAWN_FOLDER

_NAME = re.compile(r"^(\d{3,})_([0-9a-f]{16})\.txt$")
_TEMPORARY = {"prefix": ".incoming-", "suffix": ".tmp"}
STORAGE_SETTING = "storage_dir (MONITOR_STORAGE_DIR)"


def write_refused(what: str, exc: OSError, setting: str = STORAGE_SETTING) -> StorageError:
    """The StorageError for a write the system refused in `what` ("the corpus folder …"):
    what it said, and what to do."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = "free some space on its disk"
    else:
        advice = f"make it writable by the user monitor runs as, or set {setting}"
    return StorageError(f"cannot write in {what}: {exc.strerror or exc}; {advice}")


def check_writable_folder(folder: Path, what: str, setting: str = STORAGE_SETTING) -> None:
    """Make `folder` if it is missing, then create and remove an empty file in it: a
    StorageError if monitor may not write there, a ConfigError if a file stands in its path.
    (An empty file takes no space: a full disk passes here, and its writes fail loudly later.)"""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, **_TEMPORARY)
        os.close(fd)
        os.unlink(probe)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"{what} {folder} cannot be made: a file stands in its path; check "
                          f"{setting}") from None
    except OSError as exc:
        raise write_refused(f"{what} {folder}", exc, setting) from exc


def corpus_text(title: str, body: str) -> str:
    return f"{title.strip()}\n\n{body.strip()}\n"


def parse_name(name: str) -> tuple[int, str] | None:
    """(number, key) of a corpus file name, or None if it is not one."""
    match = _NAME.match(name)
    return (int(match.group(1)), match.group(2)) if match else None


def stored_name(name: str, *, withdrawn: bool) -> str:
    """The ``corpus_file`` of an item whose file is `name`: ``withdrawn/NAME`` or ``NAME``."""
    return f"{WITHDRAWN_FOLDER}/{name}" if withdrawn else name


def file_name(corpus_file: str) -> str:
    """The bare file name of a stored ``corpus_file`` (``withdrawn/NAME`` -> ``NAME``)."""
    return corpus_file.rpartition("/")[2]


def is_withdrawn(corpus_file: str) -> bool:
    return corpus_file.startswith(f"{WITHDRAWN_FOLDER}/")


class Numbers(Protocol):
    """Hands out corpus numbers: the key's own if it has one, else a new one >= floor."""

    def reserve(self, key: str, floor: int = 0) -> int: ...


class Corpus:
    """The corpus folder of one storage directory."""

    def __init__(self, folder: Path, numbers: Numbers | None = None) -> None:
        self.folder = folder
        self.numbers = numbers
        self._lock = threading.Lock()
        self._by_key: dict[str, str] | None = None
        self._next = 0

    def remove_stale_temporaries(self, older_than: float = 3600.0) -> int:
        """Delete temporary files left by writers killed mid-write; returns how many."""
        removed = 0
        for path in self.folder.glob(f"{_TEMPORARY['prefix']}*{_TEMPORARY['suffix']}"):
            try:
                if time.time() - path.stat().st_mtime > older_than:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def files(self) -> list[Path]:
        """The corpus files the rules keep (the withdrawn ones are not among them)."""
        return sorted(p for p in self.folder.glob("*.txt") if _NAME.match(p.name))

    @property
    def withdrawn_folder(self) -> Path:
        return self.folder / WITHDRAWN_FOLDER

    def withdrawn_files(self) -> list[Path]:
        return sorted(p for p in self.withdrawn_folder.glob("*.txt") if _NAME.match(p.name))

    def locations(self) -> tuple[set[str], set[str]]:
        """(names in the folder, names in withdrawn/): one listing of each."""
        return _names_in(self.folder), _names_in(self.withdrawn_folder)

    def place(self, corpus_file: str) -> str:
        """Move the file to where `corpus_file` says (``NAME``: the folder, ``withdrawn/NAME``:
        the subfolder), if it is in the other place: "moved", "in place", or "missing" (in
        neither). Idempotent, and safe when another process moves the same file at once. A
        StorageError if the system refuses."""
        name = file_name(corpus_file)
        target = self.folder / corpus_file
        source = self.folder / (name if is_withdrawn(corpus_file) else stored_name(
            name, withdrawn=True))
        try:
            target.parent.mkdir(exist_ok=True)
            os.replace(source, target)  # atomic; the same name, the same text if both exist
        except FileNotFoundError:
            return "in place" if target.exists() else "missing"
        except OSError as exc:
            raise write_refused(f"the corpus folder {self.folder}", exc) from exc
        return "moved"

    def write(self, key_source: str, title: str, body: str) -> str:
        """Write the item under the next free number; returns the file name. A StorageError
        if the system refuses the write."""
        try:
            return self._write(key_source, title, body)
        except OSError as exc:
            raise write_refused(f"the corpus folder {self.folder}", exc) from exc

    def _write(self, key_source: str, title: str, body: str) -> str:
        key = url_key(key_source)
        data = corpus_text(title, body).encode("utf-8")
        if self.numbers is not None:
            return self._write_numbered(key, data)
        with self._lock:
            index = self._index()
            existing = index.get(key)
            if existing and (self.folder / existing).exists():
                return existing
            tmp = self._temporary(data)
            try:
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

    def _write_numbered(self, key: str, data: bytes) -> str:
        """The database's number for the key; the file written unless it is there already."""
        with self._lock:
            self._index()  # one scan of the folder: numbers continue after the files there
            floor = self._next
        assert self.numbers is not None
        name = f"{self.numbers.reserve(key, floor):03d}_{key}.txt"
        if (self.folder / name).exists():
            return name
        tmp = self._temporary(data)
        try:
            os.link(tmp, self.folder / name)  # atomic; fails if the name exists
        except FileExistsError:
            pass  # another worker wrote this key's file at the same moment: the same story
        finally:
            os.unlink(tmp)
        return name

    def _temporary(self, data: bytes) -> str:
        """`data` in a new hidden temporary file of the folder, on disk; returns its path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, **_TEMPORARY)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp

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
        kept, withdrawn = self.locations()
        for name in sorted(kept):
            number, key = _number_and_key(name)
            highest = max(highest, number)
            by_key.setdefault(key, name)
        for name in withdrawn:  # their numbers are taken; their keys are not in the folder
            highest = max(highest, _number_and_key(name)[0])
        self._by_key = by_key
        self._next = max(self._next, highest + 1)


def _number_and_key(name: str) -> tuple[int, str]:
    """`parse_name` of a name known to be a corpus file's."""
    found = parse_name(name)
    assert found is not None
    return found


def _names_in(folder: Path) -> set[str]:
    """The corpus file names in `folder` (none when it is missing)."""
    try:
        return {entry.name for entry in os.scandir(folder) if _NAME.match(entry.name)}
    except (FileNotFoundError, NotADirectoryError):
        return set()


def _read_number(fd: int) -> int:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 32).strip()
    return int(raw) if raw.isdigit() else 0


def _write_number(fd: int, number: int) -> None:
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    os.write(fd, str(number).encode())
