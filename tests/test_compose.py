"""docker-compose.yml, the Dockerfile, .dockerignore and .env.example: the compose file is
valid and starts as shipped (every variable has a default, .env.example names them all), it has
what the service needs (PostgreSQL with a volume and a healthcheck, migrations before workers,
replicas, config/ and storage/ mounted, storage/ owned by the image's user, the inspector on
loopback), the build context keeps out all but the package, the configuration and the seed
texts, and the command lines and health checks it gives the containers run for real against the
test PostgreSQL: `init`, then the workers until their stop signal, and the inspector with and
without a token."""

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

import httpx
import pytest
import sqlalchemy as sa
import yaml
from docker.utils.build import exclude_paths

from tests.conftest import ROOT, SEEDS, Project
from tests.httpserver import free_port, wait_until_serving
from tests.sites import build_bulk_site

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"


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


def _mounts(service: dict, env: dict) -> dict[str, str]:
    """The service's volumes, container path -> host folder (./x) or named volume."""
    pairs = (_interpolate(v, env).split(":")[:2] for v in service["volumes"])
    return {inside: source for source, inside in pairs}


def _duration(text: str) -> float:
    return float(text.rstrip("s"))


def test_compose_file_is_valid_for_docker_compose() -> None:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed here (.ci/run installs Debian's and runs "
                    "`docker-compose config -q`)")
    # as shipped, with .env.example's settings, and with storage/ kept on the host
    for extra in ([], ["--env-file", str(ENV_EXAMPLE)]):
        for storage in ("", "./storage"):
            proc = subprocess.run(
                ["docker-compose", "-f", str(COMPOSE), *extra, "config", "-q"],
                capture_output=True, text=True, timeout=60, cwd=ROOT,
                env={**os.environ, "MONITOR_STORAGE_VOLUME": storage})
            assert proc.returncode == 0, proc.stderr


def test_compose_starts_as_shipped_and_env_example_names_its_settings() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    used = re.findall(r"\$\{(\w+)([^}]*)\}", text)
    assert used
    for name, rest in used:  # no ${VAR} without a default, no ${VAR:?error}: no .env needed
        assert rest.startswith(":-"), f"${{{name}{rest}}} needs a default"
    example = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
                   if line and not line.startswith("#"))
    assert set(example) == {name for name, _ in used}
    for name, rest in used:  # its values are the defaults
        assert example[name] == rest[2:], name


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
        # storage/ is the named volume `storage`, or the host folder MONITOR_STORAGE_VOLUME names
        assert _mounts(services[name], {}) == {"/app/config": "./config",
                                               "/app/storage": "storage"}
        assert _mounts(services[name], {"MONITOR_STORAGE_VOLUME": "./storage"}) == {
            "/app/config": "./config", "/app/storage": "./storage"}
        url = services[name]["environment"]["MONITOR_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
    assert "storage" in _compose()["volumes"]
    assert services["web"]["command"][0] == "serve"
    assert all(p.startswith("127.0.0.1:") for p in services["web"]["ports"])
    for name in ("worker", "web"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"
    # the image: a slim base, a non-root user, monitor as the entry point
    assert _dockerfile("FROM").endswith("-slim")
    user = _dockerfile("USER").split(":")[0]
    assert user not in ("root", "0")
    assert json.loads(_dockerfile("ENTRYPOINT")) == ["monitor"]


def test_the_storage_volume_belongs_to_the_image_user() -> None:
    """A new named volume is made from the image's /app/storage, owner included: that folder
    and the seeds must belong to the user monitor runs as (COPY alone leaves storage/ to root)."""
    user = _dockerfile("USER")
    text = DOCKERFILE.read_text(encoding="utf-8")
    uid, gid = user.split(":")
    assert re.search(rf"^RUN install -d -o {uid} -g {gid} /app/storage\b", text, re.M)
    for copied in re.findall(r"^COPY (--chown=\S+) (?:config|storage/corpus) ", text, re.M):
        assert copied == f"--chown={user}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"sudo chown -R {user} storage" in readme  # how to let it write a bind mount


def test_dockerignore_keeps_the_local_corpus_databases_and_caches_out(tmp_path: Path) -> None:
    """What `docker build` sends, by the Docker SDK's own filter: the package, its metadata,
    config/ and the five seed texts; not the corpus a local run wrote, nor databases, virtual
    environments, caches or .env."""
    kept = ["pyproject.toml", "README.md", "monitor/__init__.py", "monitor/web/templates/a.html",
            "monitor/store/migrations/versions/0001_a.py", "config/monitor.yaml",
            "config/feeds.yaml", "config/rules.yaml",
            *(f"storage/corpus/00{n}_0123456789abcdef.txt" for n in range(5))]
    left_out = ["storage/corpus/005_0123456789abcdef.txt", "storage/corpus/1234_a.txt",
                "storage/corpus/.tmp-000_x.txt", "storage/corpus/notes.md",
                "storage/monitor.db", "storage/monitor.db-wal", "monitor.db", "config/x.sqlite3",
                ".venv/bin/python", "venv/lib/site.py", "monitor/__pycache__/cli.cpython-311.pyc",
                "monitor/cli/x.pyc", ".pytest_cache/v/x", ".ruff_cache/x", ".git/HEAD", ".env",
                "tests/test_x.py", "artifacts/screenshots/a.png", "bench/results/a.json",
                "docs/design.md"]
    for name in kept + left_out:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    sent = {path for path in exclude_paths(str(tmp_path), patterns) if (tmp_path / path).is_file()}
    assert sent == set(kept)
    # the sources the Dockerfile copies are all in the real build context
    context = set(exclude_paths(str(ROOT), patterns))
    text = DOCKERFILE.read_text(encoding="utf-8")
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
        for source in [w for w in line.split() if not w.startswith("--")][:-1]:
            assert any(p == source or p.startswith(source + "/") for p in context), source
    seeds = {p for p in context if p.startswith("storage/corpus/")}
    assert seeds == {f"storage/corpus/{seed.name}" for seed in SEEDS}


def _container_command(service: dict) -> list[str]:
    """What the container runs: the image's entry point, then the service's command; the
    `monitor` entry point is this environment's own console script."""
    entrypoint = json.loads(_dockerfile("ENTRYPOINT"))
    script = Path(sys.executable).with_name("monitor")
    program = [str(script)] if script.exists() else [sys.executable, "-m", "monitor"]
    assert entrypoint[0] == "monitor"
    return program + entrypoint[1:] + [str(arg) for arg in service["command"]]


def _healthcheck_command(service: dict, port: int | None = None) -> list[str]:
    """The service's health check as the container runs it (`monitor` and `python` being
    this environment's; the container's port 8080 the test's `port`)."""
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD"
    program = {"monitor": _container_command({"command": []}), "python": [sys.executable]}
    args = [arg.replace(":8080/", f":{port}/") if port else arg for arg in test[2:]]
    return program[test[1]] + args


def _container_env(service: dict, project: Project, database_url: str) -> dict:
    """The service's environment as shipped (no .env), its container paths mapped to the
    project folder (the image's WORKDIR /app) through the service's own volumes, the database
    URL pointed at the test PostgreSQL."""
    mounts = _mounts(service, {})
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    for key, value in service["environment"].items():
        value = _interpolate(str(value), {})
        for inside in mounts:
            value = value.replace(inside, str(project.root / Path(inside).relative_to("/app")))
        env[key] = value
    assert env["MONITOR_DATABASE_URL"].startswith("postgresql+psycopg://monitor:")
    env["MONITOR_DATABASE_URL"] = database_url  # the compose's host `postgres` is not here
    return env


def _run_init(project: Project, database_url: str) -> None:
    init = _compose()["services"]["init"]
    proc = subprocess.run(
        _container_command(init), capture_output=True, text=True, timeout=120,
        env=_container_env(init, project, database_url), cwd=project.root)
    assert proc.returncode == 0, proc.stderr
    assert "database ready: postgresql+psycopg://" in proc.stdout


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
        _run_init(project, postgres_url)
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
        # the health check: every worker process ticks
        env = _container_env(worker, project, postgres_url)
        deadline = time.monotonic() + 30
        while True:
            health = subprocess.run(
                _healthcheck_command(worker), capture_output=True, text=True, env=env,
                cwd=workdir, timeout=_duration(worker["healthcheck"]["timeout"]))
            if f"healthy: {processes} workers ticking" in health.stdout:
                break
            assert time.monotonic() < deadline, health.stdout + health.stderr
            time.sleep(0.5)
        assert health.returncode == 0
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # what `docker compose stop` sends
        assert proc.wait(timeout=60) == 0
        assert time.monotonic() - started < _duration(worker["stop_grace_period"])
        assert log_path.read_text().count("monitor stopped") == processes
        stopped = subprocess.run(_healthcheck_command(worker), capture_output=True, text=True,
                                 env=env, cwd=workdir, timeout=30)
        assert stopped.returncode == 1 and "no worker is running" in stopped.stderr
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        site.server.close()


def test_the_web_command_line_needs_no_token_and_checks_a_given_one(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inspector's command line as shipped starts without a token (it listens on the
    container's every address, published on this machine's loopback only), and a token set in
    .env is required, or refused with a message when malformed. uvicorn is not started here
    and the address is not bound: a test binds loopback addresses only."""
    import uvicorn

    from monitor.cli import web_commands

    project.cli("init")
    web = _compose()["services"]["web"]
    command = [str(arg) for arg in web["command"]]
    served: list[dict] = []
    monkeypatch.setattr(web_commands, "_listening_socket",
                        lambda host, port: served.append({"host": host, "port": port}))
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets: None)
    shipped = _interpolate(web["environment"]["MONITOR_WEB_TOKEN"], {})
    started = project.cli(*command, env={"MONITOR_WEB_TOKEN": shipped})
    assert served[-1]["host"] == "0.0.0.0" and "token required" not in started.stderr
    guarded = project.cli(*command, env={"MONITOR_WEB_TOKEN": "a-token-of-24-characters"})
    assert len(served) == 2 and "token required" in guarded.stderr
    short = project.cli(*command, env={"MONITOR_WEB_TOKEN": "short"}, check=False)
    assert short.returncode == 2 and "16 to 200" in short.stderr and len(served) == 2


@pytest.mark.slow
def test_the_web_service_serves_and_passes_its_healthcheck(
    project: Project, postgres_url: str
) -> None:
    """The inspector's command line (on loopback, at a free port) after `init`, without and
    with a token: /healthz answers, the service's health check passes, the pages ask for the
    token only when one is set."""
    _run_init(project, postgres_url)
    web = _compose()["services"]["web"]
    port = free_port()
    command = [arg.replace("0.0.0.0", "127.0.0.1").replace("8080", str(port))
               for arg in _container_command(web)]
    base = f"http://127.0.0.1:{port}"
    token = "a-token-of-24-characters"
    for given in (None, token):
        env = _container_env(web, project, postgres_url)
        assert env["MONITOR_WEB_TOKEN"] == ""
        if given:
            env["MONITOR_WEB_TOKEN"] = given
        server = subprocess.Popen(command, env=env, cwd=project.root,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_until_serving(server, f"{base}/healthz")
            health = subprocess.run(
                _healthcheck_command(web, port), capture_output=True, text=True, env=env,
                timeout=_duration(web["healthcheck"]["timeout"]))
            assert health.returncode == 0, health.stderr
            assert httpx.get(f"{base}/items").status_code == (401 if given else 200)
            bearer = {"Authorization": f"Bearer {token}"}
            assert httpx.get(f"{base}/items", headers=bearer).status_code == 200
        finally:
            server.terminate()
            server.wait(10)
        down = subprocess.run(_healthcheck_command(web, port), capture_output=True, env=env,
                              timeout=_duration(web["healthcheck"]["timeout"]))
        assert down.returncode != 0  # a stopped inspector fails its health check
