"""Database failures leave the store as StorageError (reason ``storage-error``), on both
backends: a poll whose database lost a table is recorded as ``storage-error`` (not as an
internal error), a command prints what the database said and what to do and exits 1, and the
inspector answers 503 with the same message. An SQLite file that is not a database, or is
corrupt, is named as such, with what to do (a backup, a rescue), not as a URL or a server to
check."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from monitor.errors import StorageError
from monitor.rules import load_ruleset
from monitor.settings import FeedSpec, load_settings
from monitor.store.engine import create_schema, make_engine, open_read_only, storage_errors
from monitor.store.feeds import claim_due_feeds, sync_feeds
from monitor.store.schema import polls
from monitor.web import create_app
from monitor.worker.daemon import build_context
from monitor.worker.pipeline import poll_feed
from tests.conftest import Project, project_engine
from tests.httpserver import LoopbackServer, Reply
from tests.sites import RSS, rss
from tests.webdata import running


def _drop(project: Project, backend: str, table: str) -> None:
    """The table gone, as after a botched restore or a hand-made schema change."""
    engine = project_engine(project)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {table}" + (" CASCADE" if backend == "postgres"
                                                       else ""))
    engine.dispose()



def _cli(project: Project, *args: str) -> tuple[int, str, str]:
    """`monitor ARGS` as the tests run it: (exit status, stdout, stderr)."""
    proc = project.cli(*args, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def test_a_poll_whose_database_fails_is_recorded_as_storage_error(
        project: Project, backend: str) -> None:
    settings = load_settings(project.config)
    engine = make_engine(settings.database_url)
    create_schema(engine)
    rules = load_ruleset(settings.rules_file)
    with LoopbackServer("127.0.0.61") as site:
        site.route("/rss.xml", Reply(rss([{"title": "Un", "link": site.url("/a1"),
                                           "guid": "a1"}], link=site.base_url),
                                     content_type=RSS))
        now = datetime.now(UTC)
        sync_feeds(engine, [FeedSpec(url=site.url("/rss.xml"), name="Le Site")], now)
        [feed] = claim_due_feeds(engine, owner="w:1:a", now=now, limit=1,
                                 lease_until=now + timedelta(minutes=5))
        _drop(project, backend, "item_sources")  # the poll's first look-up needs it

        async def poll():
            ctx = build_context(settings, asyncio.Event(), lambda: rules, worker="w:1:a")
            try:
                record = await poll_feed(ctx, feed)
                assert await ctx.recorder.flush()  # the polls table is still there
                return record
            finally:
                await ctx.fetcher.close()
                ctx.cpu.close()
                ctx.reader.dispose()
                ctx.engine.dispose()

        record = asyncio.run(poll())
    assert record.status == "error" and record.error_reason == "storage-error"
    assert "item_sources" in record.error_message and "run `monitor init`" in record.error_message
    assert "please report" not in record.error_message
    assert record.etag is None and record.body_hash is None  # seen again once repaired
    with engine.connect() as conn:
        stored = conn.execute(sa.select(polls.c.status, polls.c.error_reason)).all()
    assert [tuple(row) for row in stored] == [("error", "storage-error")]
    engine.dispose()


def test_commands_and_the_inspector_report_a_missing_table(
        project: Project, backend: str) -> None:
    assert _cli(project, "init")[0] == 0
    settings = load_settings(project.config)
    _drop(project, backend, "feeds")
    for command in (["items", "list"], ["stats"], ["feeds", "list", "--json"]):
        status, out, err = _cli(project, *command)
        assert status == 1, command
        assert err.startswith("monitor: error (storage-error): the database ")
        assert "feeds" in err and "run `monitor init`" in err and "Traceback" not in err
    engine = open_read_only(settings.database_url)  # the schema's revision is the newest
    with running(create_app(settings, engine=engine)) as base, httpx.Client(
            base_url=base) as client:
        page = client.get("/items")
        assert page.status_code == 503 and "run `monitor init`" in page.text
        twin = client.get("/items.json")
        assert twin.status_code == 503 and twin.json()["error"].startswith("the database ")
        assert client.get("/feeds.json").status_code == 503
        assert client.get("/feed.atom").status_code == 503
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["error"] == "storage-error"
        assert "password" not in health.text and "sqlite" not in health.text
        metrics = client.get("/metrics")
        assert metrics.status_code == 503 and "run `monitor init`" in metrics.text
    engine.dispose()


def test_store_functions_map_errors_of_calls_and_of_streams(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")

    @storage_errors
    def rows(engine):
        with engine.connect() as conn:
            yield from conn.exec_driver_sql("SELECT * FROM nowhere")

    @storage_errors
    def count(engine):
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT count(*) FROM nowhere").scalar()

    for call in (lambda: list(rows(engine)), lambda: count(engine)):
        with pytest.raises(StorageError) as failed:
            call()
        assert failed.value.reason == "storage-error"
        assert str(failed.value) == (
            f"the database sqlite:///{tmp_path / 'x.db'} failed: no such table: nowhere; a "
            "table is missing: run `monitor init` to create or upgrade the schema (and check "
            "database_url)")
        assert isinstance(failed.value.__cause__, sa.exc.OperationalError)
    engine.dispose()


def _damage(path, how: str) -> None:
    """An SQLite file overwritten at its header (no longer a database), or with its pages
    beyond the schema scribbled over (a corrupt database), as a failing disk or a copy made
    mid-write leaves it."""
    content = bytearray(path.read_bytes())
    if how == "overwritten":
        content[:100] = b"\x00not a database header\x00".ljust(100, b"\xa5")
    else:
        for page in range(3 * 4096, len(content), 4096):
            content[page:page + 64] = b"\xff" * 64
    path.write_bytes(bytes(content))


@pytest.mark.parametrize(("how", "said"), [
    ("overwritten", "is not an SQLite database"),
    ("corrupt", "is damaged (SQLite: database disk image is malformed)"),
])
def test_a_damaged_sqlite_file_is_named_as_such(project: Project, how: str, said: str) -> None:
    project.cli("init")  # its connections closed, as at a process's exit: no WAL left over
    _damage(project.database, how)
    for command in (["init"], ["run", "--once"], ["items", "list"], ["stats"]):
        done = project.cli(*command, check=False)
        assert done.returncode == 1, command
        assert done.stderr.startswith("monitor: error (storage-error): "), done.stderr
        assert said in done.stderr and str(project.database) in done.stderr, command
        assert "backup" in done.stderr and "Traceback" not in done.stderr
        for misleading in ("database server", "check the database URL", "user's rights"):
            assert misleading not in done.stderr


class _WithoutJson:
    """A connection to an SQLite built without its JSON functions."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, *args):
        if "json_each" in sql:
            raise sqlite3.OperationalError("no such table: json_each")
        return self._connection.execute(sql, *args)

    def close(self) -> None:
        self._connection.close()


@pytest.mark.parametrize(("version", "json", "said"), [
    ((3, 31, 1), True, "this Python's SQLite is 3.31.1; monitor needs 3.35 or newer"),
    ((3, 37, 2), False, "this Python's SQLite (3.37.2) has no JSON functions"),
])
def test_an_sqlite_library_too_old_is_named_with_what_to_do(
        project: Project, monkeypatch: pytest.MonkeyPatch, version: tuple[int, int, int],
        json: bool, said: str) -> None:
    """An SQLite older than the store needs (RETURNING, json_each) is refused when the engine
    is made, with what to do, not met as a syntax error at the first claim. No older library
    can be loaded beside this one: its version, and its missing functions, are stood in for."""
    real_connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "sqlite_version_info", version)
    monkeypatch.setattr(sqlite3, "sqlite_version", ".".join(map(str, version)))
    if not json:
        monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: _WithoutJson(real_connect(*a, **k)))
    with pytest.raises(StorageError) as refused:
        make_engine(f"sqlite:///{project.database}")
    assert str(refused.value).startswith(said)
    done = project.cli("init", check=False)
    assert done.returncode == 1 and said in done.stderr, done.stderr
    assert "PostgreSQL (database_url)" in done.stderr and "Traceback" not in done.stderr
