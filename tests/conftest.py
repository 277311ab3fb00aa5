"""Shared fixtures: a project folder with config and corpus, its command line (run in this
process, or in a process of its own), PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.commandline import run_in_process

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SEEDS = sorted((ROOT / "storage" / "corpus").glob("00[0-4]_*.txt"))


@dataclass
class Project:
    """A monitor installation in a temporary folder: config/, storage/corpus with the seeds."""

    root: Path
    database_url: str | None = None  # the `backend` fixture's PostgreSQL; None: SQLite

    @property
    def config(self) -> Path:
        return self.root / "config" / "monitor.yaml"

    @property
    def corpus(self) -> Path:
        return self.root / "storage" / "corpus"

    @property
    def database(self) -> Path:
        return self.root / "storage" / "monitor.db"

    def write_feeds(self, feeds: list[dict]) -> None:
        text = yaml.safe_dump({"feeds": feeds}, allow_unicode=True, sort_keys=False)
        path = self.root / "config" / "feeds.yaml"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)

    def write_settings(self, **overrides) -> None:
        """monitor.yaml: the test defaults with `overrides` (a dict updates its section), on the
        project's database."""
        settings = {
            "storage_dir": "../storage",
            "feeds_file": "feeds.yaml",
            "rules_file": "rules.yaml",
            "http": {
                "allow_private_networks": True,
                "per_host_delay": 0,
                "deadline": "4s",
                "read_timeout": "3s",
                "connect_timeout": "3s",
            },
            "schedule": {"tick": "1s", "workers": 4},
        }
        if self.database_url:
            settings["database_url"] = self.database_url
        for key, value in overrides.items():
            if isinstance(value, dict):
                settings.setdefault(key, {}).update(value)
            else:
                settings[key] = value
        self.config.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")

    def cli(
        self,
        *args: str,
        check: bool = True,
        env: dict | None = None,
        timeout: float = 120,
        input: str = "",
        own_process: bool = False,
    ) -> subprocess.CompletedProcess:
        """Run the real `monitor` command line, within `timeout` seconds: in this process
        (`tests.commandline`), or with `own_process` in a process of its own, `python -m
        monitor`, where the process boundary is what is tested."""
        argv = [*args, "--config", str(self.config)]
        if own_process:
            full_env = {**os.environ, **(env or {})}
            full_env.pop("MONITOR_CONFIG", None)
            proc = subprocess.run(
                [sys.executable, "-m", "monitor", *argv],
                capture_output=True,
                text=True,
                env=full_env,
                timeout=timeout,
                cwd=self.root,
                input=input,
            )
        else:
            proc = run_in_process(argv, cwd=self.root, input=input, timeout=timeout,
                                  env={**(env or {}), "MONITOR_CONFIG": None})
        if check and proc.returncode != 0:
            raise AssertionError(
                f"monitor {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc


@pytest.fixture(scope="session", autouse=True)
def cache_home(tmp_path_factory: pytest.TempPathFactory):
    """$XDG_CACHE_HOME in a temporary folder for the whole run (the commands run in processes
    of their own inherit it): compiled rules are never written into the user's own cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache-home")))
        yield


@pytest.fixture
def project(tmp_path: Path) -> Project:
    proj = Project(tmp_path / "monitor")
    (proj.root / "config").mkdir(parents=True)
    proj.corpus.mkdir(parents=True)
    for seed in SEEDS:
        shutil.copy2(seed, proj.corpus / seed.name)
    shutil.copy(ROOT / "config" / "rules.yaml", proj.root / "config" / "rules.yaml")
    proj.write_settings()
    proj.write_feeds([])
    return proj


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, project: Project) -> str:
    """The `project` on the embedded SQLite, or on PostgreSQL (database_url set)."""
    if request.param == "postgres":
        project.database_url = request.getfixturevalue("postgres_url")
        project.write_settings()
    return request.param


def project_engine(project: Project):
    """An engine on the project's database, whichever backend its settings name."""
    import sqlalchemy as sa

    from monitor.settings import load_settings

    return sa.create_engine(load_settings(project.config, environ={}).database_url)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path: Path) -> str:
    """A fresh, empty database on each backend: an SQLite file, or a new PostgreSQL schema."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def engine(database_url: str):
    """An engine on a fresh database of each backend, its schema created."""
    from monitor.store.engine import create_schema, make_engine

    engine = make_engine(database_url)
    create_schema(engine)
    yield engine
    engine.dispose()


def _postgres_url() -> str | None:
    return os.environ.get("MONITOR_TEST_POSTGRES_URL") or (
        "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )


@pytest.fixture
def postgres_url() -> str:
    """A fresh schema-less database URL on the test PostgreSQL (a new schema per test)."""
    required = os.environ.get("MONITOR_REQUIRE_POSTGRES") == "1"
    url = _postgres_url()
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:  # no server here: skip, unless CI says it must be there
        if required:
            pytest.fail(f"PostgreSQL required (MONITOR_REQUIRE_POSTGRES=1) but {url} failed: {exc}")
        pytest.skip(
            f"no PostgreSQL at {url} ({exc.__class__.__name__}); "
            "set MONITOR_TEST_POSTGRES_URL to run these tests"
        )
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    yield f"{url}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"drop schema {schema} cascade"))
    engine.dispose()
