"""Settings: monitor.yaml + feeds.yaml + environment -> one typed `Settings` and `FeedSpec`s.

In: the path of monitor.yaml (``--config`` or ``MONITOR_CONFIG``), the environment
(``MONITOR_DATABASE_URL``, ``MONITOR_STORAGE_DIR``). Out: frozen `Settings` and a tuple of
`FeedSpec`; raises `ConfigError` naming the file, the line and the key, and what would be valid.
The values people write (durations, sizes) are read by `configvalues`, the alerts by
`alertsettings` (their addresses' ``${VAR}`` expanded from the environment given here).
Built once at start-up and passed down; nothing here is read at import time. The files people
edit while monitor runs (feeds.yaml, rules.yaml) are read again when they change (`WatchedFile`,
for the daemon and the web inspector alike).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from monitor.alertsettings import AlertSettings, with_targets
from monitor.configmodel import ConfigModel, validated
from monitor.configpaths import FEEDS_FILE, RULES_FILE, named_file, settings_file
from monitor.configvalues import describe_duration, language_code, parse_duration, parse_size
from monitor.errors import ConfigError
from monitor.yamlfile import YamlDocument, quoted, read_yaml

# the corpus folder's subfolder of the files whose items the rules no longer keep
WITHDRAWN_FOLDER = "withdrawn"
POLL_DEADLINE_REQUESTS = 5  # the default poll deadline, in request deadlines (http.deadline)

_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # CR, LF, tab, ESC ...
_HOST_NAME = re.compile(r"^(\*|(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*|[0-9a-f:.]+)$")
LOG_LEVELS = ("debug", "info", "warning", "error")


class HttpSettings(ConfigModel):
    allow_private_networks: bool = False
    per_host_connections: int = Field(2, ge=1, le=64)
    per_host_delay: float = Field(1.0, ge=0, le=3600)
    max_connections: int = Field(16, ge=1, le=1024)
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    deadline: float = 60.0
    max_feed_bytes: int = 5 * 2**20
    max_page_bytes: int = 10 * 2**20
    max_redirects: int = Field(5, ge=0, le=30)
    # New entries taken per poll, newest first (the rest by the next polls); strict: no `true`.
    max_entries: int = Field(300, ge=1, le=100_000, strict=True)
    robots_txt: bool = True  # obey the sites' robots.txt for article pages
    robots_cache: float = 86400.0  # how long a site's robots.txt is kept before it is re-read

    _durations = field_validator("connect_timeout", "read_timeout", "deadline", "robots_cache",
                                 mode="before")(parse_duration)
    _sizes = field_validator("max_feed_bytes", "max_page_bytes", mode="before")(parse_size)


class ScheduleSettings(ConfigModel):
    default_interval: float = 1800.0
    min_interval: float = 300.0
    max_interval: float = Field(86400.0, validate_default=True)  # checked against min_interval
    max_backoff: float = 21600.0
    tick: float = 10.0
    lease: float = 600.0
    workers: int = Field(16, ge=1, le=1024)  # feeds polled at once
    adaptive: bool = True  # follow each feed's publication rate and the server's hints
    unhealthy_after: int = Field(5, ge=1)  # consecutive failures that mark a feed unhealthy
    extract_processes: int = Field(0, ge=0, le=256)  # extraction processes; 0: one per core
    poll_deadline: float | None = None  # a poll running longer is ended; None: see Settings

    _durations = field_validator(
        "default_interval", "min_interval", "max_interval", "max_backoff", "tick", "lease",
        "poll_deadline", mode="before",
    )(parse_duration)

    @field_validator("max_interval")
    @classmethod
    def _not_below_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("min_interval")  # absent when it was refused itself
        if low is not None and value < low:
            raise ValueError(f"max_interval ({describe_duration(value)}) is shorter than "
                             f"min_interval ({describe_duration(low)}); raise it or lower "
                             "min_interval")
        return value


class WebSettings(ConfigModel):
    # Host names the inspector answers to ("*.example.org" and "*" allowed); None: the host it
    # serves on, localhost, 127.0.0.1 and ::1 (and the host of base_url).
    allowed_hosts: tuple[str, ...] | None = None
    base_url: str | None = None  # its public address, for the links of /feed.atom

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, hosts: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if hosts is None:
            return None
        names = tuple(host.strip().lower().strip("[]").rstrip(".") for host in hosts)
        for name in names:
            if not _HOST_NAME.match(name):
                raise ValueError(f"{name!r} is not a host name; write e.g. monitor.example.org, "
                                 "*.example.org or 192.0.2.7 (no scheme, no port)")
        return names

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError(f"{url!r} is not the inspector's address; write e.g. "
                             "https://monitor.example.org/")
        return url.strip().rstrip("/") + "/"


class _MonitorFile(ConfigModel):
    storage_dir: str = "../storage"
    database_url: str | None = None
    feeds_file: str = FEEDS_FILE
    rules_file: str = RULES_FILE
    log_level: str = "info"
    http: HttpSettings = HttpSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    web: WebSettings = WebSettings()
    alerts: tuple[AlertSettings, ...] = ()

    @field_validator("alerts", mode="before")
    @classmethod
    def _no_alerts(cls, value: Any) -> Any:
        return () if value is None else value  # `alerts:` with every entry commented out

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value not in LOG_LEVELS:
            raise ValueError(f"{quoted(value)} is not a log level; use {', '.join(LOG_LEVELS)}")
        return value


class FeedSpec(ConfigModel):
    """One feed as configured in feeds.yaml."""

    url: str
    name: str = Field(min_length=1)
    lang: str | None = None
    interval: float | None = None
    tags: tuple[str, ...] = ()
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        url = url.strip()
        if control := _CONTROL_CHARACTER.search(url):
            raise ValueError(f"{url!r} contains the control character "
                             f"{control.group()!r}; write the URL on one line, without it")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL; write e.g. https://example.ma/rss")
        return url

    _language = field_validator("lang")(language_code)

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)


class _FeedsFile(ConfigModel):
    feeds: tuple[FeedSpec, ...] = ()


@dataclass(frozen=True)
class Settings:
    config_path: Path
    storage_dir: Path
    corpus_dir: Path
    database_url: str
    feeds_file: Path
    rules_file: Path
    log_level: str
    http: HttpSettings
    schedule: ScheduleSettings
    web: WebSettings
    alerts: tuple[AlertSettings, ...] = ()

    @functools.cached_property  # asked at every poll; the settings are read-only
    def poll_deadline(self) -> float:
        """How long one poll may run: ``schedule.poll_deadline``, by default a few request
        deadlines (the feed, robots.txt, pages fetched side by side, extraction, storing)."""
        return self.schedule.poll_deadline or POLL_DEADLINE_REQUESTS * self.http.deadline


def load_settings(
    config_path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read monitor.yaml (explicit path, else ``MONITOR_CONFIG``, else ./config/monitor.yaml)."""
    env = os.environ if environ is None else environ
    path = settings_file(config_path, env)
    doc = read_yaml(path)
    raw = {} if doc.data is None else doc.data
    parsed = _validate(_MonitorFile, raw, doc)
    base = path.parent
    storage_dir = Path(env.get("MONITOR_STORAGE_DIR") or (base / parsed.storage_dir)).resolve()
    database_url = (
        env.get("MONITOR_DATABASE_URL")
        or parsed.database_url
        or f"sqlite:///{storage_dir / 'monitor.db'}"
    )
    # in this order, the first problem said: the alerts, the rules file, the feeds file
    alerts = with_targets(parsed.alerts, doc, env)
    rules_file = named_file(doc, "rules_file", parsed.rules_file)
    feeds_file = named_file(doc, "feeds_file", parsed.feeds_file)
    return Settings(
        config_path=path,
        storage_dir=storage_dir,
        corpus_dir=storage_dir / "corpus",
        database_url=database_url,
        feeds_file=feeds_file,
        rules_file=rules_file,
        log_level=parsed.log_level,
        http=parsed.http,
        schedule=parsed.schedule,
        web=parsed.web,
        alerts=alerts,
    )


def load_feeds(path: Path, *, empty_ok: bool = False) -> tuple[FeedSpec, ...]:
    """Read feeds.yaml: ``feeds:`` a list of {url, name, lang?, interval?, tags?, enabled?}.
    A file that holds nothing (empty, or comments only) is refused unless `empty_ok` (a file
    about to be given its first feeds): it is what an editor truncating the file while it
    saves leaves for a moment, and taken as "no feeds" it would stop every feed. None is
    written ``feeds: []``."""
    doc = read_yaml(path)
    if doc.data is None or doc.data == {}:
        if empty_ok:
            return ()
        raise ConfigError("the file holds no `feeds:` list; write `feeds: []` if no feed is to "
                          "be polled", path=str(path), line=1)
    raw = doc.data
    feeds = _validate(_FeedsFile, raw, doc).feeds
    seen: dict[str, int] = {}
    for index, feed in enumerate(feeds):
        key = feed_url_key(feed.url)
        if key in seen:
            raise doc.error(["feeds", index, "url"],
                            f"duplicate feed URL {feed.url} (already listed as feed "
                            f"#{seen[key] + 1}); list each feed once")
        seen[key] = index
    return feeds


def feed_url_key(url: str) -> str:
    """Two feed URLs with the same key are the same feed: feeds.yaml lists each feed once, up
    to a final slash and letter case."""
    return url.strip().rstrip("/").lower()


def _validate(model: type[BaseModel], raw: Any, doc: YamlDocument) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping of keys at the top level", path=str(doc.path), line=1)
    return validated(model, raw, doc)


T = TypeVar("T")
FileSignature = tuple[int, int, int]


def file_signature(path: Path) -> FileSignature | None:
    """What tells a file's edits apart: modification time (ns), size and inode; None when the
    file cannot be looked at. The inode catches an editor's save by rename that keeps the time
    and the size (a file system with coarse timestamps, an edit within the same tick)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


class WatchedFile(Generic[T]):
    """A configuration file's contents (`load(path)`), read again when the file changes. An
    invalid edit, or the file gone, keeps the last good contents in `value` (None if it never
    loaded) and the `ConfigError` in `error`, until the next change."""

    def __init__(self, path: Path, load: Callable[[Path], T]) -> None:
        self.path, self._load = path, load
        self.value: T | None = None
        self.error: ConfigError | None = None
        self._read = False
        self._signature: FileSignature | None = None

    def refresh(self) -> bool:
        """Look at the file and read it again if it changed since the last look (the first look
        reads it). True when it changed: `value` is then the new contents, or `error` says why
        they are refused."""
        signature = file_signature(self.path)
        if self._read and signature == self._signature:
            return False
        self._read, self._signature = True, signature
        try:
            self.value, self.error = self._load(self.path), None
        except ConfigError as exc:
            self.error = exc
        return True

    def current(self) -> T | None:
        """The last good contents, after a look at the file."""
        self.refresh()
        return self.value
