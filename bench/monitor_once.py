"""A temporary monitor project, and `monitor run --once` on it in a subprocess, for the benchmarks.

In: a folder, the feed URLs, the monitor.yaml keys to set. Out: the project's monitor.yaml
(`make_project`: config/ from the project's own config/ with those keys set, feeds.yaml listing
the feeds, storage/corpus with the seed texts, a SQLite database in storage/); then `run_once`:
the command's exit checked, its summary line parsed (``polled N feeds in S s``), its wall time
(Python start-up included), its peak memory, the process and its children (extraction
processes) apart, and the CPU time of the process and of its pool processes. Driving the
command line, not the library, keeps the benchmarks valid whatever the inside of `monitor run`
becomes.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
MB = 2**20
SAMPLE_SECONDS = 0.02
RUN_TIMEOUT_SECONDS = 600.0  # a hung run is killed, and the bench fails saying so
_SUMMARY = re.compile(r"^polled (\d+) feeds in ([\d.]+)s", re.MULTILINE)


@dataclass(frozen=True)
class Memory:
    """Peak resident memory in bytes, sampled from /proc every SAMPLE_SECONDS."""

    parent: int
    children: int  # the children's peak sum (their shared pages counted in each)
    total: int  # peak of parent + children at the same sample
    children_seen: int
    kernel_peak: int  # wait4's ru_maxrss: the largest of the process and each reaped child


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds (user + system) as last sampled before each process exited (the last
    SAMPLE_SECONDS of each are not seen)."""

    parent: float  # the `monitor` process itself, Python start-up included
    # Its grandchildren: the processes the fork server made (the extraction pool); the fork
    # server's own imports and the resource tracker, direct children, are not counted.
    pool: float
    pool_processes: int


@dataclass(frozen=True)
class OnceRun:
    polled: int | None  # as the summary line says; None when the command prints none
    reported_seconds: float | None  # the cycle time the command prints
    wall_seconds: float  # the process's whole life, Python start-up included
    memory: Memory
    cpu: CpuTimes
    output: str


def make_project(folder: Path, feeds: Sequence[tuple[str, str]],
                 settings: Mapping[str, Mapping[str, object]]) -> Path:
    """A monitor project in ``folder``; ``feeds`` are (url, name); ``settings`` e.g.
    {"http": {"per_host_delay": 0}}. Returns the path of its monitor.yaml."""
    config, corpus = folder / "config", folder / "storage" / "corpus"
    config.mkdir(parents=True)
    corpus.mkdir(parents=True)
    for seed in sorted((ROOT / "storage" / "corpus").glob("*.txt")):
        (corpus / seed.name).write_bytes(seed.read_bytes())
    (config / "rules.yaml").write_bytes((ROOT / "config" / "rules.yaml").read_bytes())
    (config / "feeds.yaml").write_text(yaml.safe_dump(
        {"feeds": [{"url": url, "name": name} for url, name in feeds]}, sort_keys=False))
    values = yaml.safe_load((ROOT / "config" / "monitor.yaml").read_text())
    values.update(storage_dir="../storage", feeds_file="feeds.yaml", rules_file="rules.yaml",
                  database_url=f"sqlite:///{database_path(config / 'monitor.yaml')}",
                  log_level="warning")
    for section, keys in settings.items():
        values.setdefault(section, {}).update(keys)
    (config / "monitor.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    return config / "monitor.yaml"


def database_path(config: Path) -> Path:
    return config.parent.parent / "storage" / "monitor.db"


def connect_database(config: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{database_path(config)}?mode=ro", uri=True)


def run_once(config: Path, *, timeout: float = RUN_TIMEOUT_SECONDS) -> OnceRun:
    """``python -m monitor run --once --config CONFIG``; SystemExit if it fails or hangs."""
    # The tree this file sits in, whatever is installed; no MONITOR_* variable may point the
    # command at another database or configuration.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    logs = config.parent.parent
    command = [sys.executable, "-m", "monitor", "run", "--once", "--config", str(config)]
    with (logs / "once.out").open("wb") as out, (logs / "once.err").open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=logs, env=env, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=err)
        watcher = _ProcessWatcher(process.pid)
        killer = threading.Timer(timeout, process.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # interrupted (Ctrl-C): leave no monitor behind
            process.kill()
            process.wait()
            raise
        wall = time.perf_counter() - started
        killer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
    memory, cpu = watcher.stop(kernel_peak=usage.ru_maxrss * 1024)
    output = (logs / "once.out").read_text(errors="replace")
    if process.returncode != 0:
        killed = (f" (killed: it had not exited after {timeout:.0f} s, hung or far too slow)"
                  if wall >= timeout else "")
        raise SystemExit(f"`{' '.join(command)}` exited with status {process.returncode}{killed}; "
                         f"its last output:\n{_tail(logs / 'once.err')}\n{output[-2000:]}")
    summary = _SUMMARY.search(output)
    return OnceRun(polled=int(summary[1]) if summary else None,
                   reported_seconds=float(summary[2]) if summary else None,
                   wall_seconds=wall, memory=memory, cpu=cpu, output=output)


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class _ProcessWatcher:
    """Samples the resident memory and CPU time of a process and of its descendants, from its
    own thread."""

    def __init__(self, pid: int) -> None:
        self.parent = self.children = self.total = 0
        self._seen: set[int] = set()
        self._parent_cpu = 0.0
        self._pool_cpu: dict[int, float] = {}  # pid -> CPU seconds last seen
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(pid,), daemon=True)
        self._thread.start()

    def _watch(self, pid: int) -> None:
        try:
            process = psutil.Process(pid)
        except psutil.NoSuchProcess:
            return
        while not self._done.wait(SAMPLE_SECONDS):
            try:
                parent, cpu = process.memory_info().rss, cpu_seconds(process)
                children = process.children(recursive=True)
            except psutil.Error:
                return  # it has exited
            self._parent_cpu = cpu
            children_rss = 0
            for child in children:
                try:
                    children_rss += child.memory_info().rss
                    if child.ppid() != pid:
                        self._pool_cpu[child.pid] = cpu_seconds(child)
                except psutil.Error:
                    continue  # exited between the listing and the reading
                self._seen.add(child.pid)
            self.parent = max(self.parent, parent)
            self.children = max(self.children, children_rss)
            self.total = max(self.total, parent + children_rss)

    def stop(self, *, kernel_peak: int) -> tuple[Memory, CpuTimes]:
        self._done.set()
        self._thread.join()
        return (Memory(self.parent, self.children, self.total, len(self._seen), kernel_peak),
                CpuTimes(self._parent_cpu, sum(self._pool_cpu.values()), len(self._pool_cpu)))


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def print_rows(rows: list[tuple[str, str, str, str]]) -> None:
    """A benchmark's figures as a table: what, value, target, result (PASS/FAIL or blank)."""
    what_width = max(len("what"), *(len(row[0]) for row in rows)) + 2
    value_width = max(len("value"), *(len(row[1]) for row in rows))
    target_width = max(len("target"), *(len(row[2]) for row in rows)) + 2
    print(f"{'what':<{what_width}}{'value':>{value_width}}  {'target':<{target_width}}result")
    for what, value, target, result in rows:
        print(f"{what:<{what_width}}{value:>{value_width}}  {target:<{target_width}}{result}")
