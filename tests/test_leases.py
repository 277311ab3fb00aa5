"""Worker identities and liveness: a killed worker is dead as soon as it is killed, even before
its parent reaps it; a worker of another host is never judged from here."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from monitor.worker.leases import is_dead_local_worker, worker_identity
from monitor.worker.liveness import process_alive


def test_a_killed_process_is_dead_before_it_is_reaped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert process_alive(child.pid)
        assert not is_dead_local_worker(f"{socket.gethostname()}:{child.pid}:abcd1234")
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while process_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(child.pid)  # a zombie: not reaped yet, gone all the same
        assert is_dead_local_worker(f"{socket.gethostname()}:{child.pid}:abcd1234")
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)


def test_identities_of_this_process_and_of_other_hosts_are_not_dead() -> None:
    me = worker_identity()
    host, pid, nonce = me.split(":")
    assert (host, int(pid), len(nonce)) == (socket.gethostname(), os.getpid(), 8)
    assert not is_dead_local_worker(me)
    assert not is_dead_local_worker(f"another-host.example:{2**22 + 7}:abcd1234")
    assert not is_dead_local_worker("not an identity")
