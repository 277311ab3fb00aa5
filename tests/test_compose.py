"""docker-compose.yml and the Dockerfile: the compose file is valid, it has what the service
needs (PostgreSQL with a volume and a healthcheck, migrations before workers, replicas, config/
and storage/ mounted, the inspector), and the command lines it gives the containers run for
real against the test PostgreSQL: `init`, then the workers until their stop signal."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from tests.conftest import ROOT, Project
from tests.sites import build_bulk_site

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # anchors and << merged


def _dockerfile(instruction: str) -> str:
    """The argument of the final stage's last `instruction`."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    final = text[text.rindex("\nFROM ") + 1:]
    return re.findall(rf"^{instruction}\s+(.+)$", final, re.M)[-1].strip()


def _interpolate(value: str, env: dict) -> str:
    """Compose's ${VAR}, ${VAR:-default}."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}",
                  lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)


def _duration(text: str) -> float:
    return float(text.rstrip("s"))


def test_compose_file_is_valid_for_docker_compose() -> None:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed here (.ci/run installs Debian's and runs "
                    "`docker-compose config -q`)")
    proc = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_compose_has_the_database_migrations_workers_and_inspector() -> None:
    services = _compose()["services"]
    postgres = services["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert services["init"]["command"] == ["init"]
    worker = services["worker"]
    assert worker["command"][:1] == ["run"] and worker["deploy"]["replicas"] >= 2
    assert worker["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("init", "worker", "web"):
        mounts = {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"]}
        assert mounts == {"/app/config": "./config", "/app/storage": "./storage"}
        url = services[name]["environment"]["MONITOR_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
    assert services["web"]["command"][0] == "serve"
    assert all(p.startswith("127.0.0.1:") for p in services["web"]["ports"])
    # the image: a slim base, a non-root user, monitor as the entry point
    assert _dockerfile("FROM").endswith("-slim")
    user = _dockerfile("USER").split(":")[0]
    assert user not in ("root", "0")
    assert json.loads(_dockerfile("ENTRYPOINT")) == ["monitor"]


def _container_command(service: dict) -> list[str]:
    """What the container runs: the image's entry point, then the service's command; the
    `monitor` entry point is this environment's own console script."""
    entrypoint = json.loads(_dockerfile("ENTRYPOINT"))
    script = Path(sys.executable).with_name("monitor")
    program = [str(script)] if script.exists() else [sys.executable, "-m", "monitor"]
    assert entrypoint[0] == "monitor"
    return program + entrypoint[1:] + [str(arg) for arg in service["command"]]


def _container_env(service: dict, project: Project, database_url: str) -> dict:
    """The service's environment, its container paths mapped to the project folder through
    the service's own volumes, the database URL pointed at the test PostgreSQL."""
    mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
    env = dict(os.environ)
    for key, value in service["environment"].items():
        value = _interpolate(str(value), os.environ)
        for inside, outside in mounts.items():
            value = value.replace(inside, str(project.root / outside))
        env[key] = value
    assert env["MONITOR_DATABASE_URL"].startswith("postgresql+psycopg://monitor:")
    env["MONITOR_DATABASE_URL"] = database_url  # the compose's host `postgres` is not here
    return env


@pytest.mark.slow
def test_the_compose_command_lines_run_against_postgres(
    project: Project, postgres_url: str
) -> None:
    services = _compose()["services"]
    site = build_bulk_site("127.0.0.7", 12)
    project.write_feeds([{"url": site.feed_url, "name": "Bulk", "lang": "fr"}])
    workdir = project.root  # the image's WORKDIR /app, where config/ and storage/ are mounted
    assert _dockerfile("WORKDIR") == "/app"
    proc = None
    try:
        init = subprocess.run(
            _container_command(services["init"]), capture_output=True, text=True, timeout=120,
            env=_container_env(services["init"], project, postgres_url), cwd=workdir)
        assert init.returncode == 0, init.stderr
        assert "database ready: postgresql+psycopg://" in init.stdout

        log_path = project.root / "worker.log"
        worker = services["worker"]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                _container_command(worker), stdout=log, stderr=subprocess.STDOUT,
                env=_container_env(worker, project, postgres_url), cwd=workdir)
        engine = sa.create_engine(postgres_url)
        deadline = time.monotonic() + 60
        while True:
            with engine.connect() as conn:
                stored = conn.execute(sa.text(
                    "SELECT count(*) FROM items WHERE feed_id IS NOT NULL")).scalar()
            if stored == len(site.links):
                break
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        processes = int(worker["command"][worker["command"].index("--workers") + 1])
        log = log_path.read_text()
        for number in range(1, processes + 1):
            assert f"worker {number}/{processes} started" in log
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # what `docker compose stop` sends
        assert proc.wait(timeout=60) == 0
        assert time.monotonic() - started < _duration(worker["stop_grace_period"])
        assert log_path.read_text().count("monitor stopped") == processes
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        site.server.close()
