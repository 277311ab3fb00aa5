"""The ``alerts:`` of monitor.yaml: who hears of which relevant items, how and when.

In: each alert's mapping as read from monitor.yaml, then the environment. Out: `AlertSettings`
whose `targets` are its addresses both ways (`AlertTarget`): as written, ``${VAR}`` kept (the
only form ever shown, masked), and expanded (for the sender alone); raises `ConfigError` naming
the file, the line and the key (a variable not set is named, its value never). Pure.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PrivateAttr, field_validator

from monitor.configmodel import ConfigModel
from monitor.configvalues import language_code, parse_duration
from monitor.yamlfile import YamlDocument, quoted

_ALERT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$")
_DIGEST_TIME = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)(?:\s+(\S+))?\s*$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NOTIFICATION_URL = re.compile(r"^[a-z][a-z0-9+.-]*://\S", re.IGNORECASE)


@dataclass(frozen=True)
class AlertTarget:
    """One address of an alert: `written` as in monitor.yaml (``${VAR}`` kept; shown masked,
    never expanded) and `url` with the variables expanded (for the sender only: not in its
    repr, so a logged alert does not show it); `line` of monitor.yaml it is written on."""

    written: str
    url: str = field(repr=False)
    line: int | None = None

    @property
    def key(self) -> str:
        """What the outbox records of an address that accepted an entry (stable across runs,
        revealing nothing)."""
        return hashlib.sha256(self.written.encode()).hexdigest()[:12]


class AlertSettings(ConfigModel):
    """One alert of monitor.yaml's ``alerts:`` list: who hears of which relevant items, how."""

    name: str
    to: tuple[str, ...]  # Apprise URLs, as written
    topics: tuple[str, ...] = ()  # filters; empty: any
    lang: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()  # feed names or URLs
    min_score: float | None = None
    mode: Literal["immediate", "digest"] = "immediate"
    at: str = "07:30"  # the digest's time of day, "HH:MM" and an optional time zone (UTC)
    max_items: int = Field(20, ge=1, le=1000)  # items per message; the rest in the next one
    max_age: float = 2 * 86400.0  # reclassify announces only items published this recently
    retry: float = 60.0  # the first wait after a failed send, doubled each time up to 1 h
    failing_after: int = Field(5, ge=1, le=1000)  # failed sends before it shows as failing
    _targets: tuple[AlertTarget, ...] = PrivateAttr(default=())

    _durations = field_validator("max_age", "retry", mode="before")(parse_duration)

    @property
    def targets(self) -> tuple[AlertTarget, ...]:
        return self._targets

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _ALERT_NAME.match(value):
            raise ValueError(f"{quoted(value)} is not an alert name; use letters, digits, "
                             "'-', '_' or '.', e.g. cyber-desk")
        return value

    @field_validator("to", mode="before")
    @classmethod
    def _some_address(cls, value: Any) -> Any:
        if value in ([], (), None, ""):
            raise ValueError("this list must not be empty: give the alert at least one address, "
                             "e.g. mailto://user:pass@smtp.example.org?to=desk@example.org")
        return (value,) if isinstance(value, str) else value

    @field_validator("topics", "lang", "feeds", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("lang")
    @classmethod
    def _languages(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            language_code(value)
        return values

    @field_validator("at")
    @classmethod
    def _at(cls, value: str) -> str:
        digest_time(value)
        return value

    def digest_time(self) -> tuple[int, int, ZoneInfo]:
        """(hour, minute, zone) of `at`."""
        return digest_time(self.at)


def digest_time(text: str) -> tuple[int, int, ZoneInfo]:
    """``"07:30"`` or ``"07:30 Africa/Casablanca"`` -> (7, 30, zone); UTC when none is named."""
    match = _DIGEST_TIME.match(text)
    if not match:
        raise ValueError(f"{quoted(text)} is not a time of day; write e.g. '07:30' or "
                         "'07:30 Africa/Casablanca'")
    try:
        zone = ZoneInfo(match.group(3) or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{quoted(match.group(3))} is not a time zone; write e.g. UTC or "
                         "Africa/Casablanca") from None
    return int(match.group(1)), int(match.group(2)), zone


def with_targets(alerts: tuple[AlertSettings, ...], doc: YamlDocument,
                  env: Mapping[str, str]) -> tuple[AlertSettings, ...]:
    """Each alert with its `targets`: its ``to`` addresses with their ``${VAR}`` expanded from
    `env`. Refused, naming the line: a name used twice, a variable not set, an address that is
    not a URL (the error names the variable, never its value)."""
    names: set[str] = set()
    for index, alert in enumerate(alerts):
        if alert.name in names:
            raise doc.error(["alerts", index, "name"],
                            f"alert {alert.name!r} is defined twice; give each alert its name")
        names.add(alert.name)
        targets = []
        for number, written in enumerate(alert.to):
            where = ["alerts", index, "to", number]
            missing = [name for name in _VARIABLE.findall(written) if name not in env]
            if missing:
                raise doc.error(where, f"the environment variable {missing[0]} is not set; "
                                       "export it before starting monitor")
            url = _VARIABLE.sub(lambda match: env[match.group(1)], written).strip()
            if not _NOTIFICATION_URL.match(url):
                raise doc.error(where, "not a notification URL; write e.g. "
                                       "mailto://user:pass@smtp.example.org?to=desk@example.org "
                                       "or json://hooks.example.org/monitor")
            targets.append(AlertTarget(written, url, doc.line_of(where)))
        alert._targets = tuple(targets)
    return alerts
