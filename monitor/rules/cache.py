"""Compiled rule sets kept on disk between processes, so a command does not compile them again.

In: a rules file's path and bytes, and a way to compile it. Out: the compiled rule set, read
from the cache folder when it was compiled from the same bytes by the same code, else compiled
and, when that took a while, written there for the next process. Does I/O: files
``rules-<key>.pickle`` in ``$XDG_CACHE_HOME/monitor`` (default ``~/.cache/monitor``), the
`_KEPT` last used.

Compiling the shipped rules (~1,800 terms into ~20,000 automaton keys and their tables) takes
about 0.4 s of CPU; reading them back about 0.07 s (the automaton itself is not stored: it is
rebuilt from its keys in a few hundredths of a second). Every process that classifies pays it
once: `monitor classify` on a folder of files, `rules explain`, each worker.

An entry is used only when its key matches: the exact bytes of the rules file, the source of
the code that compiles it (this package and the YAML reader) and the Python version; any edit
of either compiles again. The folder is the user's own (made 0700), and an entry not owned by
this user, or writable by others, is never read, since reading a pickle runs what it says. A
failure to read or write the cache only means compiling as without it.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import pickle
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

Compiled = TypeVar("Compiled")

_FORMAT = b"monitor-rules-cache 1"
_KEPT = 4  # entries: the rules in force and a few before, each ~2 MB for the shipped rules
_WORTH_STORING = 0.02  # s of CPU: a rule set compiled faster is not stored (reading costs more)
_CODE = [Path(__file__).parent, *(Path(__file__).parent.parent / name
                                    for name in ("yamlfile.py", "configmodel.py"))]


def cache_dir(env: dict[str, str] | os._Environ = os.environ) -> Path:
    """Where compiled rules are kept: $XDG_CACHE_HOME/monitor, else ~/.cache/monitor."""
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "monitor"


@lru_cache(maxsize=1)
def _code_digest() -> bytes:
    """A hash of the code a compiled rule set depends on, and of the Python that pickled it."""
    digest = hashlib.sha256(_FORMAT + sys.version.encode())
    for place in _CODE:
        for source in sorted(place.glob("*.py")) if place.is_dir() else [place]:
            digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.digest()


def cached_compile(path: Path, data: bytes, compile_rules: Callable[[], Compiled]) -> Compiled:
    """`compile_rules()` (which reads `path`), or its result as stored by an earlier call with
    the same bytes (`data`: the file as read just before) and the same code; what it compiles
    is stored for the next time when compiling took a while (errors it raises go through)."""
    key = hashlib.sha256(_code_digest() + data).hexdigest()
    folder = cache_dir()
    entry = folder / f"rules-{key[:32]}.pickle"
    found = _read(entry, key)
    if found is not None:
        return found
    started = time.process_time()
    compiled = compile_rules()
    if time.process_time() - started >= _WORTH_STORING:
        # no cache (a read-only or missing home, a full disk) only costs the time saved
        with contextlib.suppress(Exception):
            if path.read_bytes() == data:  # not edited while it was compiled: these bytes'
                _write(folder, entry, key, compiled)
    return compiled


def _read(entry: Path, key: str):  # -> the stored rule set, or None
    try:
        with entry.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return None  # someone else's file: never unpickled
            if pickle.load(handle) != key:
                return None
            found = _without_gc(pickle.load, handle)
        os.utime(entry)  # used: the last to be dropped (see `_write`)
        return found
    except Exception:  # noqa: BLE001  (missing, cut short, from another version: compile)
        return None


def _without_gc(function: Callable[..., Compiled], *args: object) -> Compiled:
    """`function(*args)` with the cyclic garbage collector paused: unpickling ~300,000
    objects, none of them garbage, would otherwise start two full collections (0.1 s)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return function(*args)
    finally:
        if was_enabled:
            gc.enable()


def _write(folder: Path, entry: Path, key: str, compiled: object) -> None:
    """Store `compiled` as `entry`, and keep only the `_KEPT` entries last used."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".rules-", delete=False) as handle:
        try:  # a file of this user's, 0600
            pickle.dump(key, handle, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(compiled, handle, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            os.unlink(handle.name)
            raise
    os.replace(handle.name, entry)  # whole or not at all, for a process reading it now
    entries = sorted(folder.glob("rules-*.pickle"), key=lambda p: p.stat().st_mtime)
    for old in entries[:-_KEPT]:
        old.unlink(missing_ok=True)
