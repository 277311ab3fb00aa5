"""Migrations: the first revision is the 0.1.0 schema, a 0.1.0 database upgrades without losing
data, data written at the first revision survives the way to head, head matches schema.py,
workers upgrading at once upgrade once, and the labels revision goes up and down."""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from monitor.settings import FeedSpec
from monitor.store import migrate, search
from monitor.store.corpusnumbers import CorpusNumbers
from monitor.store.engine import create_schema, make_engine
from monitor.store.feeds import sync_feeds
from monitor.store.labels import latest_label, make_label, record_label
from monitor.store.polls import PollRecord, record_polls
from monitor.store.schema import metadata
from monitor.store.search import best_matches
from monitor.store.totals import totals
from monitor.textsearch import parse_query
from tests.conftest import FIXTURES, Project

LEGACY = FIXTURES / "legacy"
WHEN = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)


def _backend(url: str) -> str:
    return sa.engine.make_url(url).get_backend_name()


def _legacy_database(url: str) -> sa.Engine:
    """A database exactly as monitor 0.1.0's `metadata.create_all` made it."""
    engine = make_engine(url)
    ddl = (LEGACY / f"schema-0.1.0-{_backend(url)}.sql").read_text(encoding="utf-8")
    with engine.begin() as conn:
        for statement in ddl.split(";\n"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    return engine


@contextmanager
def _second_database(url: str, tmp_path: Path):
    """Another empty database on the same backend as `url`."""
    if _backend(url) == "sqlite":
        yield f"sqlite:///{tmp_path / 'second.db'}"
        return
    base, _, _ = url.partition("?")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"drop schema {schema} cascade"))
        admin.dispose()


def _shape(engine: sa.Engine) -> dict:
    """Tables, columns, keys and indexes, as comparable plain data."""
    inspector = sa.inspect(engine)
    shape = {}
    for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        shape[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"])
                        for c in inspector.get_columns(table)],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "unique": sorted(tuple(u["column_names"]) for u in
                             inspector.get_unique_constraints(table)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in inspector.get_indexes(table)),
            "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"],
                           tuple(f["referred_columns"]))
                          for f in inspector.get_foreign_keys(table)),
        }
    return shape


def _insert_legacy_rows(engine: sa.Engine) -> None:
    """Data as monitor 0.1.0 stored it: a feed, a poll, an item with a corpus file, a seed."""
    stamp = WHEN if engine.dialect.name == "postgresql" else WHEN.replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO feeds (id, url, name, lang, tags, enabled, in_config, next_due, "
            "error_streak, created_at, etag) VALUES (1, 'https://lesite.ma/rss', 'Le Site', "
            "'fr', '[\"news\"]', true, true, :t, 0, :t, '\"abc\"')"), {"t": stamp})
        conn.execute(sa.text(
            "INSERT INTO polls (feed_id, started_at, finished_at, status, http_status, bytes, "
            "entries, new_items, relevant_items, page_errors) "
            "VALUES (1, :t, :t, 'ok', 200, 1234, 1, 1, 1, 0)"), {"t": stamp})
        item = ("INSERT INTO items (feed_id, guid, url, canonical_url, title, summary, "
                "fetched_at, text, text_source, content_hash, relevant, score, topics, matches, "
                "rules_version, corpus_file) VALUES (:feed, :guid, :url, :url, :title, '', :t, "
                ":text, :source, 'h', true, 3.0, '[\"cyber\"]', '[]', 'r1', :file)")
        conn.execute(sa.text(item), {
            "feed": 1, "guid": "g1", "url": "https://lesite.ma/a/1", "t": stamp,
            "title": "La cybersécurité au Maroc", "source": "page",
            "text": "La DGSSI renforce la cybersécurité des administrations marocaines.",
            "file": "012_0123456789abcdef.txt"})
        conn.execute(sa.text(item), {
            "feed": None, "guid": None, "url": None, "t": stamp, "title": "Seed",
            "source": "corpus", "text": "L'intelligence artificielle au service du Royaume.",
            "file": "000_48c1266c6006c126.txt"})


def _check_upgraded_data(engine: sa.Engine, *, items: int = 2) -> None:
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
        feed = conn.execute(sa.text("SELECT name, etag, tags FROM feeds")).one()
        assert (feed.name, feed.etag) == ("Le Site", '"abc"')
        poll = conn.execute(sa.text("SELECT bytes, worker FROM polls")).one()
        assert (poll.bytes, poll.worker) == (1234, None)
        assert conn.execute(sa.text("SELECT count(*) FROM items")).scalar() == items
    # the corpus numbers the items name are known, so the next one comes after them
    numbers = CorpusNumbers(engine)
    registered = numbers.registered()
    assert registered[12] == ("0123456789abcdef", "folder")
    assert registered[0] == ("48c1266c6006c126", "folder")
    assert numbers.reserve("fedcba9876543210") == 13
    # rows stored before the search index existed are found by it
    hits = best_matches(engine, parse_query("cybersecurite dgssi"))
    assert [hit["title"] for hit in hits] == ["La cybersécurité au Maroc"]
    hits = best_matches(engine, parse_query('"intelligence artificielle"'))
    assert "Seed" in [hit["title"] for hit in hits]


def test_first_revision_is_the_schema_of_0_1_0(database_url: str, tmp_path: Path) -> None:
    legacy = _legacy_database(database_url)
    with _second_database(database_url, tmp_path) as other:
        first = make_engine(other)
        assert migrate.upgrade(first, migrate.FIRST_REVISION) == "0001"
        assert _shape(first) == _shape(legacy)
        first.dispose()


def test_database_of_0_1_0_is_stamped_and_upgraded_by_init(
    database_url: str, project: Project
) -> None:
    engine = _legacy_database(database_url)
    _insert_legacy_rows(engine)
    project.write_settings(database_url=database_url)
    out = project.cli("init").stdout
    assert "corpus files imported: 4 (already present: 1)" in out  # seed 000 was stored
    _check_upgraded_data(engine, items=2 + 4)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM feeds")).scalar() == 1


def test_data_written_at_the_first_revision_survives_the_upgrade(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0001")
    _insert_legacy_rows(engine)
    create_schema(engine)
    _check_upgraded_data(engine)
    create_schema(engine)  # at head: nothing to do
    _check_upgraded_data(engine)


def test_tables_made_by_create_all_are_recognised_and_upgraded(database_url: str) -> None:
    engine = make_engine(database_url)
    metadata.create_all(engine)  # as a script or a test may do: no alembic_version, no index
    _insert_legacy_rows(engine)
    create_schema(engine)
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
    hits = best_matches(engine, parse_query("dgssi"))
    assert [hit["title"] for hit in hits] == ["La cybersécurité au Maroc"]


def test_head_matches_schema_py(database_url: str) -> None:
    engine = make_engine(database_url)
    create_schema(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, metadata)
    # Only the full-text index, which schema.py leaves to the migrations, may differ.
    unexplained = [d for d in diffs if not (
        (d[0] == "remove_table" and d[1].name.startswith("items_fts"))
        or (d[0] == "remove_column" and d[3].name == "search_vector")
        or (d[0] == "remove_index" and d[1].name == "ix_items_search"))]
    assert unexplained == [], "schema.py and the migrations disagree: add a revision"


def test_workers_starting_together_upgrade_once(database_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            create_schema(make_engine(database_url))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with make_engine(database_url).connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()


def test_the_fold_of_the_query_is_the_fold_of_the_index() -> None:
    import importlib

    revision = importlib.import_module("monitor.store.migrations.versions.0003_search")
    assert (search.FOLD_FROM, search.FOLD_TO) == (revision.FOLD_FROM, revision.FOLD_TO)
    assert len(search.FOLD_FROM) == len(search.FOLD_TO)
    import unicodedata

    for accented, bare in zip(search.FOLD_FROM, search.FOLD_TO, strict=True):
        assert unicodedata.normalize("NFKD", accented)[0] == bare


def test_an_unreachable_database_is_named_without_its_password(project: Project) -> None:
    project.write_settings(
        database_url="postgresql+psycopg://monitor:s3cret@127.0.0.1:9/monitor")
    proc = project.cli("items", "list", check=False)
    assert proc.returncode == 1
    assert "postgresql+psycopg://monitor:***@127.0.0.1:9/monitor" in proc.stderr
    assert "s3cret" not in proc.stderr and "Traceback" not in proc.stderr


def test_stored_storage_reasons_are_renamed_storage_error(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0006")
    sync_feeds(engine, [FeedSpec(url="https://lesite.ma/rss.xml", name="Le Site"),
                        FeedSpec(url="https://autre.ma/rss.xml", name="Autre")], WHEN)
    with engine.connect() as conn:
        first, second = conn.execute(sa.text("SELECT id FROM feeds ORDER BY id")).scalars()
    record_polls(engine, [
        (PollRecord(feed_id=feed, started_at=WHEN, finished_at=WHEN, status="error",
                    next_due=WHEN, error_reason=reason, error_message="..."), 1)
        for feed, reason in ((first, "storage"), (first, "storage"), (second, "http-404"))])

    def reasons() -> tuple[list, list]:
        with engine.connect() as conn:
            return (conn.execute(sa.text("SELECT error_reason FROM polls ORDER BY id")).scalars()
                    .all(),
                    conn.execute(sa.text("SELECT last_status FROM feeds ORDER BY id")).scalars()
                    .all())

    assert reasons() == (["storage", "storage", "http-404"], ["storage", "http-404"])
    create_schema(engine)
    assert reasons() == (["storage-error", "storage-error", "http-404"],
                         ["storage-error", "http-404"])
    assert totals(engine)["errors_by_reason"] == {"storage-error": 2, "http-404": 1}
    engine.dispose()


def test_the_labels_revision_upgrades_and_downgrades(database_url: str) -> None:
    """0008 adds the labels table to a database at 0007 and takes it away again, the items
    kept either way; upgraded again, it starts empty."""
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0007")
    _insert_legacy_rows(engine)
    create_schema(engine)
    with engine.connect() as conn:
        item = conn.execute(sa.text("SELECT min(id) FROM items")).scalar()
    assert record_label(engine, make_label(item, relevant=True, topics=["cyber"], origin="cli"))
    assert latest_label(engine, item).topics == ("cyber",)

    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0007")
    assert not sa.inspect(engine).has_table("labels")
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == "0007"
        assert conn.execute(sa.text("SELECT count(*) FROM items")).scalar() == 2

    create_schema(engine)
    assert latest_label(engine, item) is None
    assert record_label(engine, make_label(item, relevant=False, origin="web"))
    engine.dispose()
