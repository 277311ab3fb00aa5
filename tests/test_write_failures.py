"""Storage that refuses a write is loud and loses nothing, on real filesystems: a read-only
corpus folder or database stops `init`, `run` and `reclassify` at start-up with one line; a
corpus folder or an SQLite database that fills up during a run fails the polls concerned
(`storage-error`, exit status 1) without marking their entries seen, and once space returns
the next run stores everything that was missed, once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from tests.conftest import SEEDS, Project, project_engine
from tests.sites import build_bulk_site
from tests.smallfs import small_filesystem

ENTRIES = 8  # every other one relevant (a seed text)


def _items(project: Project) -> list[dict]:
    return [json.loads(line) for line in project.cli("items", "list", "--json").stdout.splitlines()]


def _polls(project: Project) -> list[tuple[str, str | None]]:
    engine = project_engine(project)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(
                "select status, error_reason from polls order by id"))]
    finally:
        engine.dispose()


def _everything_stored_once(project: Project, site) -> None:
    items = _items(project)
    urls = Counter(item["url"] for item in items if item["url"])
    assert sorted(urls) == sorted(site.links) and set(urls.values()) == {1}
    files = sorted(path.name for path in project.corpus.glob("*.txt"))
    assert len(files) == len(SEEDS) + len(site.relevant_links)
    assert len({name[:3] for name in files}) == len(files)  # no number twice
    assert len({name[4:] for name in files}) == len(files)  # no story twice
    stored = {item["corpus_file"] for item in items if item["corpus_file"]}
    assert stored == set(files)


def _copy_seeds(project: Project) -> None:
    for seed in SEEDS:
        shutil.copy2(seed, project.corpus / seed.name)


def test_commands_that_write_refuse_a_read_only_corpus_folder(project: Project) -> None:
    site = build_bulk_site("127.0.0.71", ENTRIES)
    project.write_feeds([{"url": site.feed_url, "name": "Bulk", "lang": "fr"}])
    try:
        with small_filesystem(project.corpus, 1024) as corpus:
            _copy_seeds(project)
            project.cli("init")
            corpus.read_only()
            for command in (["init"], ["run", "--once"], ["reclassify"]):
                proc = project.cli(*command, check=False)
                assert (proc.returncode, proc.stdout) == (1, ""), (command, proc.stderr)
                assert proc.stderr.splitlines()[-1] == (
                    f"monitor: error (storage-error): cannot write in the corpus folder "
                    f"{project.corpus}: Read-only file system; make it writable by the user "
                    "monitor runs as, or set storage_dir (MONITOR_STORAGE_DIR)")
                assert "Traceback" not in proc.stderr
            assert site.server.requests("/bulk.xml") == []  # nothing polled, nothing seen
            corpus.read_write()
            project.cli("run", "--once")
            _everything_stored_once(project, site)
    finally:
        site.server.close()


def test_commands_that_write_refuse_a_read_only_database(project: Project) -> None:
    folder = project.root / "database"
    with small_filesystem(folder, 4096) as database:
        project.write_settings(database_url=f"sqlite:///{folder / 'monitor.db'}")
        project.cli("init")
        database.read_only()
        for command in (["init"], ["run", "--once"], ["reclassify"]):
            proc = project.cli(*command, check=False)
            assert (proc.returncode, proc.stdout) == (1, ""), (command, proc.stderr)
            assert proc.stderr.splitlines()[-1].startswith(
                f"monitor: error (storage-error): cannot write in the database's folder "
                f"{folder}: Read-only file system; ")
            assert "Traceback" not in proc.stderr


def test_commands_that_write_refuse_a_read_only_postgresql_database(
        project: Project, postgres_url: str) -> None:
    project.write_settings(database_url=postgres_url)
    project.cli("init")
    # Every transaction of these sessions read-only, as for a user with no right to write.
    project.write_settings(database_url=postgres_url + "%20-cdefault_transaction_read_only%3Don")
    for command in (["init"], ["run", "--once"], ["reclassify"]):
        proc = project.cli(*command, check=False)
        assert (proc.returncode, proc.stdout) == (1, ""), (command, proc.stderr)
        line = proc.stderr.splitlines()[-1]
        assert line.startswith("monitor: error (storage-error): cannot write to the database "
                               "postgresql+psycopg://postgres@")
        assert line.endswith(": cannot execute UPDATE in a read-only transaction; make it "
                             "writable (the rights of the user monitor runs as on the file and "
                             "its folder, or of the database user on its tables), or set "
                             "database_url (MONITOR_DATABASE_URL)")


def test_a_storage_folder_that_is_a_file_is_a_configuration_error(project: Project) -> None:
    (project.root / "not-a-folder").write_text("a file\n")
    project.write_settings(storage_dir="../not-a-folder")
    for command in (["init"], ["run", "--once"], ["reclassify"]):
        proc = project.cli(*command, check=False)
        assert (proc.returncode, proc.stdout) == (2, ""), (command, proc.stderr)
        assert proc.stderr == (
            f"monitor: configuration error: the corpus folder {project.root / 'not-a-folder'}"
            "/corpus cannot be made: a file stands in its path; check storage_dir "
            "(MONITOR_STORAGE_DIR)\n")


def test_a_corpus_folder_that_fills_up_loses_nothing(project: Project) -> None:
    site = build_bulk_site("127.0.0.72", ENTRIES)
    project.write_feeds([{"url": site.feed_url, "name": "Bulk", "lang": "fr"}])
    try:
        with small_filesystem(project.corpus, 1024) as corpus:
            _copy_seeds(project)
            project.cli("init")
            corpus.fill()
            full = project.cli("run", "--once", check=False)
            assert full.returncode == 1, full.stderr
            assert "0 ok, 1 failed" in full.stdout
            assert "1 could not be stored (storage-error)" in full.stdout
            assert "status=storage-error" in full.stderr
            assert "No space left on device" in full.stderr
            assert "Traceback" not in full.stderr
            assert _polls(project) == [("error", "storage-error")]
            assert [item for item in _items(project) if item["url"]] == []  # none seen

            corpus.free()
            again = project.cli("run", "--once")
            assert "1 ok, 0 failed" in again.stdout
            _everything_stored_once(project, site)
            assert len(site.server.requests("/bulk.xml")) == 2  # fetched again, in full
            assert not list(project.corpus.glob(".incoming-*"))
    finally:
        site.server.close()


def test_an_sqlite_database_that_fills_up_mid_run_loses_nothing(project: Project) -> None:
    site = build_bulk_site("127.0.0.73", ENTRIES, page_delay=0.5)
    project.write_feeds([{"url": site.feed_url, "name": "Bulk", "lang": "fr"}])
    folder = project.root / "database"
    try:
        with small_filesystem(folder, 8192) as database:
            project.write_settings(database_url=f"sqlite:///{folder / 'monitor.db'}")
            project.cli("init")
            # A process of its own: the disk fills while its pages are on their way.
            run = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--once", "--config",
                 str(project.config)], cwd=project.root, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 60
            while not site.server.requests("/news/0.html"):
                assert time.monotonic() < deadline and run.poll() is None
                time.sleep(0.02)
            database.fill()
            out, err = run.communicate(timeout=120)
            assert run.returncode == 1, err
            assert "0 ok, 1 failed" in out and "1 could not be stored (storage-error)" in out
            assert "database or disk is full" in err and "status=storage-error" in err
            assert "Traceback" not in err and "Unclosed" not in err

            database.free()
            again = project.cli("run", "--once")
            assert "1 ok, 0 failed" in again.stdout
            _everything_stored_once(project, site)
            assert [status for status, _ in _polls(project)][-1] == "ok"
    finally:
        site.server.close()


@pytest.mark.parametrize("strict", [False, True])
def test_run_once_exit_status(project: Project, strict: bool) -> None:
    site = build_bulk_site("127.0.0.74", 2)
    gone = [{"url": site.server.url(f"/missing-{n}.xml"), "name": f"missing {n}"}
            for n in range(2)]
    good = {"url": site.feed_url, "name": "Bulk", "lang": "fr"}
    flag = ["--strict"] if strict else []
    try:
        project.write_feeds(gone)
        every = project.cli("run", "--once", *flag, check=False)
        assert every.returncode == 1
        assert "0 ok, 2 failed" in every.stdout
        assert every.stderr.splitlines()[-1] == "monitor: every feed failed (2 of 2)"

        project.write_feeds([good, *gone])
        some = project.cli("run", "--once", *flag, check=False)
        assert "1 ok, 2 failed" in some.stdout
        if strict:
            assert some.returncode == 1
            assert some.stderr.splitlines()[-1] == "monitor: 2 of 3 feeds failed (--strict)"
        else:
            assert some.returncode == 0, some.stderr
    finally:
        site.server.close()
