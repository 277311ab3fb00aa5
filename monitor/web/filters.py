"""The query parameters of the item listings, parsed once for HTML, JSON, Atom and search.

Pure: of the store it takes only the `ItemSelection` type.

In: a mapping of query parameters (``relevant``, ``topic``, ``feed``, ``lang``, ``since``,
``until``, ``q``, ``before``, ``limit``). Out: a frozen `ItemFilters` (the store's
`ItemSelection` with the search and the page size), or `BadParameter` naming the parameter and
what would be valid. `ItemFilters.query()` gives the parameters back, so a page can link to the
next page or to itself without a filter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from urllib.parse import urlencode

from monitor.store.engine import LARGEST_ID
from monitor.store.listings import ItemSelection

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_LANG = re.compile(r"^[a-z]{2,3}$")
_TOPIC = re.compile(r"^[\w-]{1,60}$")


class BadParameter(ValueError):
    """A query parameter that cannot be used; the message names it and says what is valid."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"parameter {name!r}: {message}")
        self.name = name


@dataclass(frozen=True)
class ItemFilters(ItemSelection):
    """The store's `ItemSelection` (filters, keyset cursor), a search as typed and a page size,
    as they travel in a URL."""

    q: str | None = None
    limit: int = DEFAULT_LIMIT

    def query(self, **changes) -> dict[str, str]:
        """The non-default parameters (after `changes`), as strings, in a stable order."""
        current = replace(self, **changes)
        out: dict[str, str] = {}
        if current.relevant is not None:
            out["relevant"] = "1" if current.relevant else "0"
        for name in ("topic", "feed", "lang", "since", "until", "q", "before"):
            value = getattr(current, name)
            if value is not None and value != "":
                out[name] = value.isoformat() if isinstance(value, date) else str(value)
        if current.limit != DEFAULT_LIMIT:
            out["limit"] = str(current.limit)
        return out

    def query_string(self, **changes) -> str:
        params = self.query(**changes)
        return "?" + urlencode(params) if params else ""

    @property
    def active(self) -> dict[str, str]:
        """The filters in force (what narrows the list), without paging."""
        return self.query(before=None, limit=DEFAULT_LIMIT)


def parse_filters(params: Mapping[str, str]) -> ItemFilters:
    """`ItemFilters` from query parameters; empty values count as absent."""
    get = {key: value.strip() for key, value in params.items() if value and value.strip()}
    since, until = _date(get, "since"), _date(get, "until")
    if since and until and since > until:
        raise BadParameter("until", f"{until} is before since={since}")
    q = get.get("q")
    if q is not None and len(q) > 200:
        raise BadParameter("q", "a search is at most 200 characters")
    lang = get.get("lang")
    if lang is not None and not _LANG.match(lang):
        raise BadParameter("lang", f"{lang!r} is not a language code such as fr, ar, en")
    topic = get.get("topic")
    if topic is not None and not _TOPIC.match(topic):
        raise BadParameter("topic", f"{topic!r} is not a topic name such as ai or cyber")
    return ItemFilters(
        relevant=_boolean(get, "relevant"), topic=topic, feed=_integer(get, "feed", 1),
        lang=lang, since=since, until=until, q=q, before=_integer(get, "before", 1),
        limit=_integer(get, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT,
    )


def _boolean(params: Mapping[str, str], name: str) -> bool | None:
    value = params.get(name)
    if value is None or value.lower() in ("any", "all"):
        return None
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise BadParameter(name, f"{value!r} is not 1 or 0")


def whole_number(name: str, text: str, low: int, high: int = LARGEST_ID) -> int:
    """`text` as a whole number from `low` to `high`, else a `BadParameter` naming `name` and
    saying what is valid."""
    if len(text) > 30:  # past any bound, and int() refuses some thousands of digits
        number = high + 1 if text.isdigit() else None
    else:
        try:
            number = int(text)
        except ValueError:
            number = None
    shown = text if len(text) <= 30 else text[:27] + "..."
    if number is None:
        raise BadParameter(name, f"{shown!r} is not a whole number")
    if number < low or number > high:
        raise BadParameter(name, f"{shown} is out of range; use a number from {low} to {high}")
    return number


def _integer(
    params: Mapping[str, str], name: str, low: int, high: int = LARGEST_ID
) -> int | None:
    value = params.get(name)
    return None if value is None else whole_number(name, value, low, high)


def _date(params: Mapping[str, str], name: str) -> date | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise BadParameter(name, f"{value!r} is not a date; write YYYY-MM-DD") from None
