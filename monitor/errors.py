"""The error tree of monitor. Leaf module: imports nothing of ours.

Every error carries a stable short ``reason`` (stored on poll and item rows, shown to people)
and a message that names the file, line, feed or URL concerned and what to do.

    MonitorError                      reason
     +-- ConfigError                  config        bad monitor.yaml / feeds.yaml (exit 2)
     |    +-- RulesError              rules         bad rules.yaml (exit 2)
     +-- FetchError                   fetch-failed  any failure to get a URL's bytes
     |    +-- RefusedURL              refused-url   not http(s), or unusable URL
     |    +-- RefusedPrivate          refused-private  resolves to a private/loopback address
     |    +-- FetchTimeout            timeout       connect/read timeout or overall deadline
     |    +-- TooLarge                too-large     decoded body over the cap
     |    +-- TooManyRedirects        too-many-redirects
     |    +-- ConnectFailed           connect-failed  DNS or TCP/TLS failure
     |    +-- HTTPStatus              http-<code>   a 4xx/5xx answer
     |    +-- RobotsDisallowed        robots-disallowed  the site's robots.txt refuses the page
     +-- NotAFeed                     not-a-feed    the bytes are not RSS/Atom/RDF/JSON Feed
     +-- NoText                       no-text       extraction found no article text
     +-- StorageError                 storage-error  the database or the corpus folder refused
     |                                               a read or a write (full, read-only, locked)
     +-- PollDeadline                 poll-deadline  a poll ran past schedule.poll_deadline

Skipping an entry (already seen) is not an error. Every error pickles as itself (class,
message, reason and attributes), so one raised in a pool process is raised as it is here.
"""

from __future__ import annotations

import copyreg


class MonitorError(Exception):
    """Base of every error monitor raises on purpose."""

    reason = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.reason

    def __reduce__(self) -> tuple:
        # Rebuilt without calling __init__, whose keyword-only arguments (ConfigError's path,
        # HTTPStatus's status) pickle's default would not pass: the message is in `args`, and
        # the reason and the other attributes are in the instance's __dict__.
        return copyreg.__newobj__, (type(self), *self.args), self.__dict__


class ConfigError(MonitorError):
    """A configuration file is unreadable or invalid. The CLI exits 2 with the message."""

    reason = "config"

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.path, self.line, self.key = path, line, key
        where = path or ""
        if line is not None:
            where += f", line {line}"
        if key:
            where += f", key '{key}'"
        super().__init__(f"{where}: {message}" if where else message)


class RulesError(ConfigError):
    reason = "rules"


class FetchError(MonitorError):
    reason = "fetch-failed"


class RefusedURL(FetchError):
    reason = "refused-url"


class RefusedPrivate(FetchError):
    reason = "refused-private"


class FetchTimeout(FetchError):
    reason = "timeout"


class TooLarge(FetchError):
    reason = "too-large"


class TooManyRedirects(FetchError):
    reason = "too-many-redirects"


class ConnectFailed(FetchError):
    reason = "connect-failed"


class HTTPStatus(FetchError):
    def __init__(self, message: str, *, status: int, retry_after: str | None = None) -> None:
        super().__init__(message, reason=f"http-{status}")
        self.status = status
        self.retry_after = retry_after


class RobotsDisallowed(FetchError):
    """The site's robots.txt refuses the page to monitor, or could not be read (RFC 9309: a
    robots.txt that is unreachable means everything is disallowed until it can be read)."""

    reason = "robots-disallowed"


class NotAFeed(MonitorError):
    reason = "not-a-feed"


class NoText(MonitorError):
    reason = "no-text"


class StorageError(MonitorError):
    """What was to be stored was not: the poll fails, its entries are not seen, the next poll
    tries them again; a command exits 1."""

    reason = "storage-error"


class PollDeadline(MonitorError):
    """A poll ran past ``schedule.poll_deadline`` and was ended; the message names the stage it
    was stuck in."""

    reason = "poll-deadline"
