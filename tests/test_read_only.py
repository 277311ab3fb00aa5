"""The commands that only look never create, migrate nor write the database: on a database that
is missing or older than the code they ask for `monitor init` (exit 1); `feeds list` shows
feeds.yaml as it is now without syncing it; the read engine gives up on a PostgreSQL server
that does not answer."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime

import sqlalchemy as sa

from monitor.errors import StorageError
from monitor.settings import FeedSpec, ScheduleSettings
from monitor.store import engine as store_engine
from monitor.store import migrate
from monitor.store.engine import create_schema, make_engine, open_read_only
from monitor.store.feeds import claim_due_feeds, sync_feeds
from monitor.store.health import feed_health
from monitor.store.polls import PollRecord, record_polls
from monitor.store.schema import feeds
from tests.conftest import Project, project_engine

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
LISTINGS = (["items", "list"], ["items", "show", "1"], ["items", "search", "maroc"],
            ["feeds", "list"], ["stats", "--json"], ["export", "--format", "csv"],
            ["digest"], ["serve", "--port", "0"], ["labels", "list"], ["labels", "export"],
            ["rules", "eval", "--labels"])



def _cli(project: Project, *args: str) -> tuple[int, str, str]:
    """`monitor ARGS` as the tests run it: (exit status, stdout, stderr)."""
    proc = project.cli(*args, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def test_listings_on_no_database_ask_for_init_and_create_nothing(
        project: Project) -> None:
    for command in LISTINGS:
        status, out, err = _cli(project, *command)
        assert (status, out) == (1, ""), command
        assert err == ("monitor: error (storage-error): there is no database at "
                       f"{project.database}: run `monitor init` to create it\n")
    assert not project.database.exists() and not project.database.parent.joinpath(
        "monitor.db-wal").exists()


def test_listings_on_an_older_schema_ask_for_init_and_leave_it_as_it_is(
        project: Project, database_url: str) -> None:
    project.write_settings(database_url=database_url)
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0005")
    head = migrate.head_revision()
    for command in (["items", "list"], ["feeds", "list"], ["stats"]):
        status, _, err = _cli(project, *command)
        assert status == 1
        assert f"is at schema revision 0005, older than this monitor's {head}: run " \
               "`monitor init` to upgrade it" in err
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == "0005"
    assert _cli(project, "init")[0] == 0
    assert _cli(project, "stats")[0] == 0
    engine.dispose()


def test_an_empty_postgresql_schema_asks_for_init(project: Project, postgres_url: str) -> None:
    project.write_settings(database_url=postgres_url)
    status, _, err = _cli(project, "items", "list")
    assert status == 1 and "has no monitor schema yet: run `monitor init`" in err
    engine = project_engine(project)
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table("alembic_version")
    engine.dispose()


def _stopped_and_polled(engine) -> None:
    """site1 polled, site2 stopped by 410 Gone."""
    now = NOW
    claimed = {f.url: f.id for f in claim_due_feeds(engine, owner="w:1:a", now=now, limit=9,
                                                    lease_until=now, due_only=False)}
    record_polls(engine, [
        (PollRecord(feed_id=claimed["https://site1.ma/rss"], started_at=now, finished_at=now,
                    status="ok", next_due=now), 0),
        (PollRecord(feed_id=claimed["https://site2.ma/rss"], started_at=now, finished_at=now,
                    status="error", next_due=now, error_reason="http-410",
                    error_message="410 Gone", disabled_reason="http-410"), 1)])


SPECS = [FeedSpec(url=f"https://site{n}.ma/rss", name=f"site {n}") for n in (1, 2, 3)]
EDITED = [SPECS[0], FeedSpec(url="https://site2.ma/rss", name="site 2, new address checked"),
          FeedSpec(url="https://site4.ma/rss", name="site 4", interval=7200)]


def test_feed_health_shows_feeds_yaml_as_the_next_sync_makes_it(database_url: str) -> None:
    engine = make_engine(database_url)
    create_schema(engine)
    sync_feeds(engine, SPECS, NOW)
    _stopped_and_polled(engine)
    schedule = ScheduleSettings()
    shown = list(feed_health(engine, schedule, EDITED))
    sync_feeds(engine, EDITED, NOW)  # what the daemon will do
    synced = list(feed_health(engine, schedule))
    assert [row["url"] for row in shown] == [row["url"] for row in synced]
    for before, after in zip(shown, synced, strict=True):
        if before["id"] is None:  # site4: not stored yet
            assert after["url"] == "https://site4.ma/rss" and after["id"] is not None
            assert {**before, "id": after["id"], "next_due": after["next_due"]} == after
            continue
        if before["disabled_reason"] is None and before["url"] == "https://site2.ma/rss":
            assert before["next_due"] is None  # stopped, edited: due at once
            before = {**before, "next_due": after["next_due"]}
        assert before == after
    site2, site3 = shown[1], shown[2]
    assert site2["name"] == "site 2, new address checked" and site2["disabled_reason"] is None
    assert not site3["in_config"] and not site3["enabled"]
    engine.dispose()


def test_feeds_list_reads_feeds_yaml_and_never_writes(project: Project, backend: str) -> None:
    project.write_feeds([spec.model_dump(exclude_none=True) for spec in SPECS])
    assert _cli(project, "init")[0] == 0
    engine = project_engine(project)
    _stopped_and_polled(engine)
    project.write_feeds([spec.model_dump(exclude_none=True) for spec in EDITED])

    def stored():
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.select(feeds).order_by(feeds.c.id))]

    before = stored()
    status, out, _ = _cli(project, "feeds", "list", "--json")
    assert status == 0
    rows = {row["url"]: row for row in map(json.loads, out.splitlines())}
    assert rows["https://site4.ma/rss"]["id"] is None
    assert rows["https://site4.ma/rss"]["interval_source"] == "configured"
    assert rows["https://site2.ma/rss"]["disabled_reason"] is None
    assert rows["https://site3.ma/rss"]["in_config"] is False
    status, text, _ = _cli(project, "feeds", "list")
    assert status == 0 and "   - on  site 4 " in text and "never polled" in text
    assert stored() == before
    engine.dispose()


def test_the_read_engine_gives_up_on_a_silent_postgresql_server(monkeypatch) -> None:
    """A server that accepts the connection and never answers (a hung proxy)."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    monkeypatch.setattr(store_engine, "CONNECT_TIMEOUT_SECONDS", 2)
    failures: list[Exception] = []

    def connect() -> None:
        try:
            open_read_only(f"postgresql+psycopg://monitor@127.0.0.1:{port}/monitor")
        except StorageError as exc:
            failures.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(20)
    silent.close()
    assert not thread.is_alive(), "still waiting for the server after 20 s"
    assert time.monotonic() - started < 15
    assert failures and "monitor@127.0.0.1" in str(failures[0])


def test_a_one_statement_look_up_skips_begin_and_still_cannot_write(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    create_schema(make_engine(url))
    reader = store_engine.read_engine(url)
    statements: list[str] = []
    sa.event.listen(reader, "before_cursor_execute",
                    lambda conn, cursor, statement, *rest: statements.append(statement))
    for options in ({}, {store_engine.ONE_STATEMENT: True}):
        statements.clear()
        with reader.connect().execution_options(**options) as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(feeds)).scalar() == 0
        assert [s for s in statements if s == "BEGIN"] == ([] if options else ["BEGIN"])
        with reader.connect().execution_options(**options) as conn:
            try:
                conn.execute(feeds.delete())
            except sa.exc.OperationalError as exc:
                assert "readonly" in str(exc).replace(" ", "")
            else:
                raise AssertionError("a read-only connection wrote")
    reader.dispose()
