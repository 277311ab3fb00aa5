"""The process pool: parsing and extraction off the event loop, errors carried across by value, a
dead pool process replaced, no process left behind when the worker is killed, and no
KeyboardInterrupt traceback from the fork server or a pool process on Ctrl-C."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from monitor import neardup
from monitor.errors import NotAFeed, NoText
from monitor.feeds.parse import ParsedFeed, parse_feed
from monitor.worker import cpupool
from monitor.worker.cpupool import INLINE_PARSE_BYTES, TASK_PIPE_BYTES, CpuWork, pool_size
from monitor.worker.forkstart import start_fork_server
from tests.conftest import FIXTURES, SEEDS, Project
from tests.httpserver import LoopbackServer, Reply
from tests.sites import HTML, RSS, rss, seed_article, seed_page
from tests.test_feeds import ALL_FILES as FEED_FILES
from tests.test_feeds import FIXTURES as FEED_FIXTURES
from tests.test_feeds import feed_url, served_headers

PAGE = FIXTURES / "articles" / "aeb-14cc2a0ca59c62a8.html"


def test_parse_and_extract_in_pool_processes() -> None:
    feed = (FIXTURES / "feeds" / "rsparser" / "donthitsave.xml").read_bytes()
    # Over INLINE_PARSE_BYTES, so parsed in a pool process (a comment keeps the feed as it is).
    padding = b"<!-- " + b"x" * INLINE_PARSE_BYTES + b" -->"
    big = feed.replace(b"</channel>", padding + b"</channel>")
    page = b"<html><body>not a feed</body></html>"
    not_a_feed = page.replace(b"</body>", padding + b"</body>")

    async def work():
        cpu = CpuWork(2)
        try:
            small = await cpu.parse_feed(feed, "https://donthitsave.com/comic.rss", {})
            with pytest.raises(NotAFeed) as inline:
                await cpu.parse_feed(page, "https://x/", {})
            assert cpu._pool is None  # noqa: SLF001  (a small feed is parsed inline)
            parsed = await cpu.parse_feed(big, "https://donthitsave.com/comic.rss", {})
            assert cpu._pool is not None  # noqa: SLF001  (a large one went to the pool)
            pages = await asyncio.gather(*(cpu.extract_page(PAGE.read_bytes(), f"https://x/{i}",
                                                            "text/html") for i in range(4)))
            with pytest.raises(NotAFeed) as bad:
                await cpu.parse_feed(not_a_feed, "https://x/", {})
            with pytest.raises(NoText) as empty:
                await cpu.extract_page(b"<html><body></body></html>", "https://x/e", None)
            pids = set(cpu._pool._processes)  # noqa: SLF001
            return small, parsed, pages, inline.value, bad.value, empty.value, pids
        finally:
            cpu.close()

    small, parsed, pages, inline, bad, empty, pids = asyncio.run(work())
    assert len(big) > INLINE_PARSE_BYTES >= len(feed)
    assert len(parsed.entries) == 10 and parsed.entries == small.entries
    assert all(page.article is not None and len(page.article.text) > 500 for page in pages)
    assert len({page.signature for page in pages}) == 1 and pages[0].signature is not None
    assert pages[0].band_keys == tuple(neardup.band_keys(pages[0].signature))  # made there
    # Raised in a pool process, the error comes back as itself, as when parsed inline.
    assert type(bad) is type(inline) is NotAFeed
    assert bad.reason == inline.reason == "not-a-feed" and "https://x/" in bad.message
    assert type(empty) is NoText and empty.reason == "no-text"  # crossed back as itself
    assert len(pids) == 2 and os.getpid() not in pids


def _parsed_or_error(parse, name: str) -> object:
    """What parsing a fixture file gives: its `ParsedFeed`, or its error as (type, reason,
    message)."""
    content = (FEED_FIXTURES / name).read_bytes()
    try:
        return parse(content, feed_url(name), served_headers(name))
    except Exception as exc:
        return type(exc), getattr(exc, "reason", None), str(exc)


def test_small_feeds_go_to_the_running_pool_and_parse_as_inline() -> None:
    """Once the pool runs (news is coming), small feeds are parsed in it, in batches, leaving
    the worker's core to the fetching: each fixture feed gives the same entries, GUIDs, links,
    dates and warnings, or the same error, as when parsed on the loop; a broken feed does not
    stop the others of its batch."""
    inline = {name: _parsed_or_error(lambda c, u, h: parse_feed(c, url=u, headers=h), name)
              for name in FEED_FILES}
    small = [name for name in FEED_FILES
             if (FEED_FIXTURES / name).stat().st_size <= INLINE_PARSE_BYTES]
    batches: list[int] = []

    async def work():
        cpu = CpuWork(2)
        run = cpu._run  # noqa: SLF001

        async def counted(function, *args):
            if function is cpupool.parse_feeds:
                batches.append(len(args[0]))
            return await run(function, *args)

        cpu._run = counted  # noqa: SLF001
        try:
            cpu.start_soon()
            await cpu._pool_starting()  # noqa: SLF001
            results = await asyncio.gather(*(_async_parsed_or_error(cpu, name)
                                             for name in FEED_FILES))
            return dict(zip(FEED_FILES, results, strict=True))
        finally:
            cpu.close()

    pooled = asyncio.run(work())
    assert pooled == inline
    # Every small feed went to the pool, asked for together: a batch for each process.
    assert sum(batches) == len(small) > 300 and len(batches) == 2
    assert sum(isinstance(result, ParsedFeed) for result in pooled.values()) >= 250
    errors = [result for name, result in pooled.items() if name in small
              and isinstance(result, tuple)]
    assert len(errors) > 10 and {error[0] for error in errors} == {NotAFeed}


async def _async_parsed_or_error(cpu: CpuWork, name: str) -> object:
    try:
        return await cpu.parse_feed((FEED_FIXTURES / name).read_bytes(), feed_url(name),
                                    served_headers(name))
    except Exception as exc:
        return type(exc), getattr(exc, "reason", None), str(exc)


def test_an_error_from_a_batch_keeps_its_pool_traceback() -> None:
    """An unexpected error raised by one feed of a batch comes back as itself, with the pool
    process's traceback as its cause, as any task's error does; the batch's others parse."""
    feed = (FIXTURES / "feeds" / "rsparser" / "donthitsave.xml").read_bytes()

    async def work():
        cpu = CpuWork(1)
        try:
            cpu.start_soon()
            await cpu._pool_starting()  # noqa: SLF001
            return await asyncio.gather(
                cpu.parse_feed(feed, "https://donthitsave.com/comic.rss", {}),
                cpu.parse_feed(feed, "https://donthitsave.com/comic.rss", {"Content-Type": None}),
                return_exceptions=True)
        finally:
            cpu.close()

    parsed, error = asyncio.run(work())
    assert isinstance(parsed, ParsedFeed) and len(parsed.entries) == 10
    assert isinstance(error, AttributeError)  # None.strip(), in the pool process
    assert "parse.py" in str(error.__cause__)


def test_a_small_feed_survives_the_pool_failing(monkeypatch) -> None:
    """A pool process that dies is replaced (one more try); a pool that fails again leaves the
    small feeds to be parsed on the loop, as without a pool, each with its own outcome; a large
    one fails as before."""
    feed = (FIXTURES / "feeds" / "rsparser" / "donthitsave.xml").read_bytes()
    url = "https://donthitsave.com/comic.rss"
    big = feed.replace(b"</channel>", b"<!-- " + b"x" * INLINE_PARSE_BYTES + b" --></channel>")

    async def killed_then_parsed():
        cpu = CpuWork(1)
        try:
            cpu.start_soon()
            pool = await cpu._pool_starting()  # noqa: SLF001
            for pid in list(pool._processes):  # noqa: SLF001
                os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.2)
            parsed = await cpu.parse_feed(feed, url, {})
            return parsed, cpu._pool is not pool  # noqa: SLF001
        finally:
            cpu.close()

    parsed, replaced = asyncio.run(killed_then_parsed())
    assert replaced and parsed == parse_feed(feed, url=url)

    async def broken(self, function, *args):
        raise BrokenProcessPool("a process died")

    monkeypatch.setattr(CpuWork, "_run", broken)

    async def pool_failing():
        cpu = CpuWork(1)
        cpu._pool = ProcessPoolExecutor(1)  # noqa: SLF001  (running, as far as parsing knows)
        try:
            outcomes = await asyncio.gather(cpu.parse_feed(feed, url, {}),
                                            cpu.parse_feed(b"<html></html>", url, {}),
                                            cpu.parse_feed(big, url, {}), return_exceptions=True)
        finally:
            cpu.close()
        return outcomes

    small, not_a_feed, large = asyncio.run(pool_failing())
    assert small == parse_feed(feed, url=url)
    assert isinstance(not_a_feed, NotAFeed) and "an HTML page" in not_a_feed.message
    assert isinstance(large, BrokenProcessPool)


def test_pool_processes_import_no_database_code() -> None:
    # Asked inside a real pool process; `eval` is a builtin, so unpickling it there imports
    # nothing more.
    prefixes = ("sqlalchemy", "alembic", "psycopg", "monitor.store", "monitor.extract")
    ask = f"[name for name in __import__('sys').modules if name.startswith({prefixes!r})]"

    async def work() -> list[str]:
        cpu = CpuWork(1)
        try:
            await cpu.extract_page(PAGE.read_bytes(), "https://x/1", "text/html")
            return await cpu._run(eval, ask)  # noqa: SLF001
        finally:
            cpu.close()

    loaded = asyncio.run(work())
    assert "monitor.extract" in loaded  # asked where the extraction runs
    assert [name for name in loaded if not name.startswith("monitor.extract")] == []


def test_pool_processes_start_warm() -> None:
    # Asked in a new pool process before it reads any page: what a first page otherwise builds
    # (justext's stop words of every language, numpy's masked arrays) is there, made once by the
    # fork server's warm-up.
    ask = ("__import__('trafilatura.external', fromlist=['JT_STOPLIST']).JT_STOPLIST is not None"
           " and 'numpy.ma' in __import__('sys').modules")

    async def work() -> bool:
        cpu = CpuWork(1)
        try:
            return await cpu._run(eval, ask)  # noqa: SLF001
        finally:
            cpu.close()

    assert asyncio.run(work()) is True


def test_numpy_starts_no_blas_threads_in_the_pool() -> None:
    # The fork server imports numpy (no linear algebra is done with it, `neardup`): OpenBLAS
    # would start a thread per extra core there, spinning for a while after the import, CPU
    # taken from the start of a burst. Its setting is inherited by the pool processes.
    async def work() -> str | None:
        cpu = CpuWork(1)
        try:
            return await cpu._run(os.getenv, "OPENBLAS_NUM_THREADS")  # noqa: SLF001
        finally:
            cpu.close()

    assert asyncio.run(work()) == os.environ.get("OPENBLAS_NUM_THREADS", "1")


def test_the_task_pipe_holds_several_pages() -> None:
    # A page of ~160 KB goes to a pool process in one write, not in three turns of 64 KiB.
    async def work() -> tuple[int, int]:
        cpu = CpuWork(1)
        try:
            first = await cpu.extract_page(PAGE.read_bytes(), "https://x/1", "text/html")
            pipe = cpu._pool._call_queue._writer.fileno()  # noqa: SLF001
            return fcntl.fcntl(pipe, fcntl.F_GETPIPE_SZ), len(first.article.text)
        finally:
            cpu.close()

    size, text = asyncio.run(work())
    assert size >= TASK_PIPE_BYTES > 64 * 1024 and text > 500


def test_a_dead_pool_process_is_replaced() -> None:
    async def work():
        cpu = CpuWork(1)
        try:
            await cpu.extract_page(PAGE.read_bytes(), "https://x/1", "text/html")
            for pid in list(cpu._pool._processes):  # noqa: SLF001
                os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.2)
            return await cpu.extract_page(PAGE.read_bytes(), "https://x/2", "text/html")
        finally:
            cpu.close()

    assert asyncio.run(work()).article is not None


def test_the_pool_starts_in_one_thread_however_many_wait_for_it(monkeypatch) -> None:
    # Every poll of a burst asks for the pool before it is ready; the database calls must still
    # find a free thread meanwhile (one thread per asker would take all of the loop's).
    made = []
    start = CpuWork._started  # noqa: SLF001

    def slow_start(cpu: CpuWork):
        made.append(cpu)
        time.sleep(0.5)  # a fork server still importing
        return start(cpu)

    monkeypatch.setattr(CpuWork, "_started", slow_start)

    async def work():
        cpu = CpuWork(1)
        try:
            for _ in range(64):
                cpu.start_soon()
            pages = [asyncio.ensure_future(cpu.extract_page(PAGE.read_bytes(), f"https://x/{i}",
                                                            "text/html")) for i in range(8)]
            began = time.monotonic()
            await asyncio.to_thread(time.sleep, 0)  # a database call meanwhile
            waited = time.monotonic() - began
            return waited, await asyncio.gather(*pages)
        finally:
            cpu.close()

    waited, pages = asyncio.run(work())
    assert waited < 0.25 and len(made) == 1
    assert all(page.article is not None for page in pages)


class _EachTaskDoneBeforeTheNext(ProcessPoolExecutor):
    """An executor whose tasks each end before the next is sent: the timing, made certain,
    of quick tasks sent in a row once the fork server is up."""

    def submit(self, *args, **kwargs):
        future = super().submit(*args, **kwargs)
        future.result()
        time.sleep(0.05)  # and the process is counted idle again
        return future


def test_the_pool_starts_all_its_processes_at_once_when_the_fork_server_is_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With the server already up, the executor alone would start one process for a first page
    (one more only when no process is idle): the pool starts them all when it is made."""
    monkeypatch.setattr(cpupool, "ProcessPoolExecutor", _EachTaskDoneBeforeTheNext)
    start_fork_server()

    async def work():
        cpu = CpuWork(2)
        try:
            page = await cpu.extract_page(PAGE.read_bytes(), "https://x/1", "text/html")
            return page, len(cpu._pool._processes)  # noqa: SLF001
        finally:
            cpu.close()

    page, processes = asyncio.run(work())
    assert page.article is not None and processes == 2


def test_a_pool_closed_before_any_work_leaves_no_process_behind() -> None:
    """A pool started for news that did not come (the feed failed) and closed: its processes
    end, and so does the program (it would wait for them for ever at exit)."""
    script = (
        "import asyncio\n"
        "from monitor.worker.cpupool import CpuWork\n"
        "async def main():\n"
        "    cpu = CpuWork(2)\n"
        "    cpu.start_soon()\n"
        "    await cpu._pool_starting()\n"
        "    cpu.close()\n"
        "asyncio.run(main())\n"
        "print('closed')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0 and done.stdout == "closed\n", done.stderr
    assert done.stderr == ""  # no pool process failed to start (nor any traceback)


def test_work_that_outlived_its_poll_does_not_hold_the_close() -> None:
    """At the close every poll has ended or been given up: an extraction still running (a page
    that took longer than its poll's deadline) is nobody's, and ends with the pool, instead of
    keeping `run --once` from exiting for as long as it takes."""

    async def main() -> tuple[float, list]:
        cpu = CpuWork(2)
        waiting = asyncio.ensure_future(cpu._run(time.sleep, 120))  # as a hung extraction
        await asyncio.sleep(0)
        await cpu._pool_starting()
        processes = list(cpu._pool._processes.values())
        await asyncio.sleep(0.5)  # taken by a process
        waiting.cancel()  # its poll gave up
        started = time.monotonic()
        await asyncio.to_thread(cpu.close)
        return time.monotonic() - started, processes

    seconds, processes = asyncio.run(main())
    assert seconds < 10
    assert not any(process.is_alive() for process in processes)


def test_pool_size_follows_the_cores() -> None:
    assert pool_size(3) == 3
    assert pool_size(0) == len(os.sched_getaffinity(0))


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_bytes()
        except OSError:
            continue
        if proc.name.isdigit() and int(stat.rsplit(b")", 1)[1].split()[1]) == pid:
            found.append(int(proc.name))
    return found


def _exists(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


def _slow_pages_for_two_extraction_processes(site: LoopbackServer, project: Project) -> None:
    """A feed of 40 relevant pages, each answering after 0.2 s, for a project with two
    extraction processes: a `run --once` keeps its pool at work for seconds."""
    title, paragraphs = seed_article(SEEDS[1])
    entries = []
    for i in range(40):
        site.route(f"/p{i}", Reply(seed_page(f"{title} {i}", [f"Dépêche {i}."] + paragraphs),
                                   content_type=HTML, delay=0.2))
        entries.append({"title": f"{title} {i}", "link": site.url(f"/p{i}"), "guid": str(i)})
    site.route("/feed.xml", Reply(rss(entries, link=site.base_url), content_type=RSS))
    project.write_feeds([{"url": site.url("/feed.xml"), "name": "Site"}])
    project.write_settings(schedule={"extract_processes": 2})
    project.cli("init")


@pytest.mark.slow
def test_no_pool_process_outlives_a_killed_worker(project: Project) -> None:
    with LoopbackServer("127.0.0.48") as site:
        _slow_pages_for_two_extraction_processes(site, project)
        log = (project.root / "run.log").open("w+")
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--once", "--config",
                                 str(project.config)], cwd=project.root,
                                stdout=log, stderr=subprocess.STDOUT)
        pool: list[int] = []
        deadline = time.monotonic() + 30
        while len(pool) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            helpers = _children(proc.pid)  # the fork server (and multiprocessing's tracker)
            pool = [pid for helper in helpers for pid in _children(helper)]
        log.seek(0)
        # the two extraction processes, forked by the fork server
        assert len(pool) == 2, f"pool {pool}, exit {proc.poll()}; the run said:\n{log.read()}"
        pool += helpers
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 10
        while any(_exists(pid) for pid in pool) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_exists(pid) for pid in pool)


@pytest.mark.slow
def test_ctrl_c_stops_a_run_without_a_traceback(project: Project) -> None:
    """Ctrl-C at a terminal sends SIGINT to the whole process group: the worker, its fork server
    and the pool processes. The worker stops the run; the others print nothing."""
    with LoopbackServer("127.0.0.49") as site:
        _slow_pages_for_two_extraction_processes(site, project)
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--once", "--config",
                                 str(project.config)], cwd=project.root, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            pool: list[int] = []
            deadline = time.monotonic() + 30
            while len(pool) < 2 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
                pool = [pid for helper in _children(proc.pid) for pid in _children(helper)]
            assert len(pool) == 2, f"pool {pool}, exit {proc.poll()}"
            time.sleep(0.5)  # the pool at work: pages extracted
            os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "status=interrupted" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_the_fork_server_ignores_sigint_while_it_imports() -> None:
    """SIGINT sent to the fork server as soon as it starts (it still imports the extraction
    code) neither stops it nor prints anything; the pool it forks then works."""
    script = (
        "import asyncio, os, signal, sys\n"
        "from monitor.worker.cpupool import CpuWork, start_fork_server\n"
        "from tests.test_cpupool import _children\n"
        "start_fork_server()\n"
        "for pid in _children(os.getpid()):\n"
        "    os.kill(pid, signal.SIGINT)\n"
        "cpu = CpuWork(1)\n"
        f"page = asyncio.run(cpu.extract_page(open({str(PAGE)!r}, 'rb').read(), 'https://x/1',"
        " 'text/html'))\n"
        "cpu.close()\n"
        "print(page.article is not None)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parent.parent)
    assert (done.returncode, done.stdout, done.stderr) == (0, "True\n", "")
