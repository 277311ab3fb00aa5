"""A real nginx serving static files on many loopback addresses, for the benchmarks.

In: a folder ``root`` holding one sub-folder per address (``root/127.0.1.7/feeds/3.xml`` is
``http://127.0.1.7:PORT/feeds/3.xml``) and the loopback addresses to listen on. Out: a running
nginx (`serve_static`, a context manager yielding a `StaticSite`), stopped when the block ends.

nginx runs as a foreground child process (``daemon off``) with a master and one worker
process: static files need little CPU, and one worker leaves the machine's other core to the
client under test. Its nginx.conf, pid file, error log and temporary folders live in a
temporary folder of their own; no access log is kept. Connections are kept alive. nginx sends
ETag and Last-Modified for static files and answers 304 to a matching If-None-Match or
If-Modified-Since. The ``.html`` files go out as ``text/html`` with no charset parameter, so
pages keep the charset they declare themselves. Only loopback addresses are accepted.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = ("nginx is not installed (no `nginx` on PATH, nor /usr/sbin/nginx): install the "
                "Debian package with `apt-get install -y nginx`, then run this bench again")
START_SECONDS = 10.0
PORT_TRIES = 5

_TYPES = {
    "text/html": "html htm",
    "application/rss+xml": "xml rss",
    "application/atom+xml": "atom",
    "application/json": "json",
    "text/plain": "txt",
}


class NginxFailed(RuntimeError):
    """nginx could not start; the message carries its error log."""


@dataclass(frozen=True)
class StaticSite:
    port: int
    addresses: tuple[str, ...]

    def url(self, address: str, path: str) -> str:
        return f"http://{address}:{self.port}/{path.lstrip('/')}"


def nginx_binary() -> str:
    """The nginx executable, or SystemExit with how to install it."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise SystemExit(INSTALL_HINT)
    return found


def loopback_addresses(network: str, count: int) -> tuple[str, ...]:
    """``count`` addresses from ``network`` (e.g. "127.0.1.0/24"), from its first host on."""
    hosts = ipaddress.ip_network(network).hosts()
    addresses = tuple(str(next(hosts)) for _ in range(count))
    _check_loopback(addresses)
    return addresses


def _check_loopback(addresses: Sequence[str]) -> None:
    for address in addresses:
        parsed = ipaddress.ip_address(address)
        if parsed.version != 4 or not parsed.is_loopback:
            raise ValueError(f"{address} is not an IPv4 loopback address (127.0.0.0/8): the "
                             "benchmarks serve and fetch on this machine only")


@contextmanager
def serve_static(root: Path, addresses: Sequence[str]) -> Iterator[StaticSite]:
    """Serve ``root/<address>/`` on each address, all on one free port, until the block ends."""
    _check_loopback(addresses)
    binary = nginx_binary()
    for address in addresses:
        (root / address).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as folder:
        work = Path(folder)
        for attempt in range(PORT_TRIES):
            port = _free_port(addresses[0])
            (work / "nginx.conf").write_text(_config(work, root.resolve(), addresses, port))
            with (work / "stderr.log").open("wb") as stderr:
                process = subprocess.Popen(
                    [binary, "-p", str(work), "-c", str(work / "nginx.conf"),
                     "-e", str(work / "error.log")],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
            try:
                _wait_until_listening(process, work, addresses, port)
            except NginxFailed as exc:
                _stop(process)
                # Another program may have taken the port on one of the addresses: try another.
                if "Address already in use" in str(exc) and attempt + 1 < PORT_TRIES:
                    continue
                raise
            try:
                yield StaticSite(port, tuple(addresses))
            finally:
                _stop(process)
            return


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def _config(work: Path, root: Path, addresses: Sequence[str], port: int) -> str:
    # As root, the worker would switch to "nobody" and could not read a private temporary
    # folder: let it read the files as their owner instead.
    user = f"user {pwd.getpwuid(root.stat().st_uid).pw_name};\n" if os.geteuid() == 0 else ""
    listens = "".join(f"        listen {address}:{port};\n" for address in addresses)
    types = "".join(f"        {kind} {ends};\n" for kind, ends in _TYPES.items())
    temp_paths = "".join(f"    {name}_temp_path {work / name};\n"
                         for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""{user}daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
pid {work / "nginx.pid"};
error_log {work / "error.log"} warn;
events {{
    worker_connections 8192;
}}
http {{
    access_log off;
    types {{
{types}    }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 120s;
    keepalive_requests 1000000;
    # Each cached file holds a descriptor: keep the cache well under worker_rlimit_nofile.
    open_file_cache max=4096 inactive=120s;
{temp_paths}    server {{
{listens}        root {root}/$server_addr;
    }}
}}
"""


def _wait_until_listening(process: subprocess.Popen, work: Path, addresses: Sequence[str],
                          port: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NginxFailed(f"nginx exited with status {process.returncode}: "
                              f"{_logs(work)}")
        try:
            # The master binds every listen address before it starts its worker.
            for address in (addresses[0], addresses[-1]):
                socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise NginxFailed(f"nginx did not accept connections on {addresses[0]}:{port} within "
                      f"{START_SECONDS:.0f} s: {_logs(work)}")


def _logs(work: Path) -> str:
    texts = [(work / name).read_text(errors="replace").strip()
             for name in ("error.log", "stderr.log") if (work / name).exists()]
    return " | ".join(t for t in texts if t) or "(its logs are empty)"


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # SIGTERM: nginx's fast shutdown
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
