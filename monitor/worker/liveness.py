"""Is a process of this host still running? Reads the process table only.

In: a process id. Out: True while the process runs. Used by the lease keeper (a dead worker's
leases are taken back) and by the pool processes (they exit once their worker is gone), so it
imports nothing of ours: the pool's processes load no database code.
"""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """Does process `pid` of this host still run? (A killed one its parent has not reaped yet
    is a zombie: gone all the same.)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):  # no /proc (not Linux), or the process just ended
        return True
