"""deploy/monitor.service, the unit for running monitor without containers: `systemd-analyze
verify` accepts it; it runs `monitor run` as a dedicated user, restarts it on failure and names
the configuration; its command line, with its environment, runs for real on a test project and
stops on its KillSignal within TimeoutStopSec."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, Project

UNIT = ROOT / "deploy" / "monitor.service"


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(UNIT.read_text(encoding="utf-8"))
    return unit


def _environment(service) -> dict[str, str]:
    lines = [line for line in UNIT.read_text(encoding="utf-8").splitlines()
             if line.startswith("Environment=")]
    return dict(line.removeprefix("Environment=").split("=", 1) for line in lines)


def test_the_unit_runs_monitor_as_its_own_user_and_restarts_it() -> None:
    service = _unit()["Service"]
    command = shlex.split(service["ExecStart"])
    assert Path(command[0]).name == "monitor" and command[1:] == ["run"]
    assert service["User"] == "monitor" and service["Restart"] == "on-failure"
    assert _environment(service)["MONITOR_CONFIG"].endswith("/monitor.yaml")
    assert _unit()["Install"]["WantedBy"] == "multi-user.target"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "deploy/monitor.service" in readme[readme.index("## Running as a service"):]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # the installed program's path, as the unit would name it on a machine where it is installed
    here = shutil.which("monitor", path=str(Path(sys.executable).parent))
    unit = tmp_path / "monitor.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(
        shlex.split(_unit()["Service"]["ExecStart"])[0], here), encoding="utf-8")
    verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                              text=True, timeout=60)
    assert verified.returncode == 0, verified.stderr
    assert "Unknown" not in verified.stderr and "Invalid" not in verified.stderr


def test_its_command_line_runs_and_stops_on_its_kill_signal(project: Project) -> None:
    service = _unit()["Service"]
    env = {**os.environ, **_environment(service), "MONITOR_CONFIG": str(project.config),
           "MONITOR_STORAGE_DIR": str(project.root / "var-lib-monitor")}
    command = [sys.executable, "-m", "monitor", *shlex.split(service["ExecStart"])[1:]]
    daemon = subprocess.Popen(command, cwd=project.root, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (project.root / "var-lib-monitor" / "monitor.db").exists():
            assert daemon.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        checked = subprocess.run([sys.executable, "-m", "monitor", "healthcheck"], env=env,
                                 capture_output=True, text=True, timeout=60)
        while checked.returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            checked = subprocess.run([sys.executable, "-m", "monitor", "healthcheck"], env=env,
                                     capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        started = time.monotonic()
        daemon.send_signal(getattr(signal, service["KillSignal"]))
        status = daemon.wait(timeout=float(service["TimeoutStopSec"].removesuffix("s")))
    finally:
        if daemon.poll() is None:
            daemon.kill()
        output = daemon.communicate()[0]
    assert status == 0, output
    assert time.monotonic() - started < 10
    assert "SIGTERM received" in output
