"""The workers' heartbeats (monitor/worker/heartbeat.py) and `monitor healthcheck`: real files,
real processes; a running daemon's beat is tested in tests/test_compose.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from monitor.worker.heartbeat import Heartbeat, heartbeat_folder, stale_after, worker_health
from tests.conftest import Project


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_a_fresh_beat_is_healthy_a_stale_one_is_not(tmp_path: Path) -> None:
    heartbeat = Heartbeat(tmp_path / "beats")
    assert not worker_health(tmp_path / "beats", 30).healthy  # no tick yet
    heartbeat.beat()
    health = worker_health(tmp_path / "beats", 30)
    assert health.healthy and "1 workers ticking" in health.message
    old = time.time() - 45
    os.utime(heartbeat.path, (old, old))
    health = worker_health(tmp_path / "beats", 30)
    assert not health.healthy
    assert f"pid {os.getpid()} 45 s ago" in health.message and "limit 30 s" in health.message
    heartbeat.close()
    assert not heartbeat.path.exists()


def test_the_beats_of_dead_workers_are_left_out_and_cleared(tmp_path: Path) -> None:
    folder = tmp_path / "beats"
    folder.mkdir()
    dead = folder / str(_dead_pid())
    dead.touch()
    health = worker_health(folder, 30)
    assert not health.healthy and "no worker is running" in health.message
    Heartbeat(folder)  # a worker starting clears the dead ones' files
    assert not dead.exists()


def test_each_configuration_has_its_folder_and_a_floor_on_staleness(tmp_path: Path) -> None:
    assert heartbeat_folder(tmp_path / "a.yaml") != heartbeat_folder(tmp_path / "b.yaml")
    same = tmp_path / "x" / ".." / "a.yaml"
    assert heartbeat_folder(tmp_path / "a.yaml") == heartbeat_folder(same)
    assert stale_after(1) == 30 and stale_after(60) == 180


def test_healthcheck_fails_without_a_worker_and_passes_with_one(project: Project) -> None:
    idle = project.cli("healthcheck", check=False)
    assert idle.returncode == 1 and "unhealthy: no worker is running" in idle.stderr
    heartbeat = Heartbeat(heartbeat_folder(project.config))
    try:
        heartbeat.beat()
        assert "healthy: 1 workers ticking" in project.cli("healthcheck").stdout
    finally:
        heartbeat.close()
