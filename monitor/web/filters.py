"""The query parameters of the item listings, parsed once for HTML, JSON, Atom and search.

Pure: of the store it takes only the `ItemSelection` type.

In: a mapping of query parameters (``relevant``, ``topic``, ``feed``, ``lang``, ``since`` and
``until`` (publication days), ``kept_since`` and ``kept_until`` (days kept), ``q``, ``sort``,
``before``, ``start``, ``limit``). Out: a frozen `ItemFilters` (the store's `ItemSelection` with
the search, its order and the page size), or `BadParameter` naming the parameter and what would
be valid. `ItemFilters.query()` gives the parameters back, so a page can link to the next page
or to itself without a filter.

Orders (``sort``): ``published`` (newest published first, the default), ``kept`` (newest kept
first), ``score`` (best score first) and, for a search, ``match`` (best match first, its
default). Pages in the first three follow a keyset cursor (``before``: the last id shown); best
match pages an offset (``start``), the rank being worked out for every match anyway.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from urllib.parse import urlencode

from monitor.store.engine import LARGEST_ID
from monitor.store.listings import ItemSelection, Sort

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
SORTS = ("published", "kept", "score")
MATCH = "match"  # best match first: a search's order
MAX_START = 10_000  # best-match pages go this deep (each ranks every match)
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

    sort: Sort = "published"
    q: str | None = None
    ranked: bool = False  # a search, best match first (else in `sort` order)
    start: int = 0  # best match first: the matches skipped
    limit: int = DEFAULT_LIMIT

    @property
    def order(self) -> str:
        """The order as written in a URL: one of `SORTS`, or `MATCH`."""
        return MATCH if self.ranked else self.sort

    def query(self, **changes) -> dict[str, str]:
        """The non-default parameters (after `changes`), as strings, in a stable order; an
        ``order`` change is written as ``sort``."""
        order = changes.pop("order", None)
        current = replace(self, **changes)
        if order is not None:
            current = replace(current, ranked=order == MATCH,
                              sort=current.sort if order == MATCH else order)
        out: dict[str, str] = {}
        if current.relevant is not None:
            out["relevant"] = "1" if current.relevant else "0"
        for name, field in _PARAMETERS:
            value = getattr(current, field)
            if value is not None and value != "":
                out[name] = value.isoformat() if isinstance(value, date) else str(value)
        if current.order != (MATCH if current.q else "published"):
            out["sort"] = current.order
        if current.ranked and current.start:
            out["start"] = str(current.start)
        elif not current.ranked and current.before is not None:
            out["before"] = str(current.before)
        if current.limit != DEFAULT_LIMIT:
            out["limit"] = str(current.limit)
        return out

    def query_string(self, **changes) -> str:
        params = self.query(**changes)
        return "?" + urlencode(params) if params else ""

    @property
    def active(self) -> dict[str, str]:
        """The filters in force (what narrows the list), without paging."""
        return self.query(before=None, start=0, limit=DEFAULT_LIMIT)


# query parameter -> ItemFilters field (paging and the order apart)
_PARAMETERS = (("topic", "topic"), ("feed", "feed"), ("lang", "lang"),
               ("since", "published_since"), ("until", "published_until"),
               ("kept_since", "since"), ("kept_until", "until"), ("q", "q"))


def parse_filters(params: Mapping[str, str]) -> ItemFilters:
    """`ItemFilters` from query parameters; empty values count as absent."""
    get = {key: value.strip() for key, value in params.items() if value and value.strip()}
    since, until = _date(get, "since"), _date(get, "until")
    if since and until and since > until:
        raise BadParameter("until", f"{until} is before since={since}")
    kept_since, kept_until = _date(get, "kept_since"), _date(get, "kept_until")
    if kept_since and kept_until and kept_since > kept_until:
        raise BadParameter("kept_until", f"{kept_until} is before kept_since={kept_since}")
    q = get.get("q")
    order = get.get("sort", MATCH if q else "published")
    if order not in (*SORTS, MATCH) or (order == MATCH and not q):
        valid = ", ".join((*SORTS, MATCH) if q else SORTS)
        raise BadParameter("sort", f"{order!r} is not an order; use one of {valid}")
    if q is not None and len(q) > 200:
        raise BadParameter("q", "a search is at most 200 characters")
    lang = get.get("lang")
    if lang is not None and not _LANG.match(lang):
        raise BadParameter("lang", f"{lang!r} is not a language code such as fr, ar, en")
    topic = get.get("topic")
    if topic is not None and not _TOPIC.match(topic):
        raise BadParameter("topic", f"{topic!r} is not a topic name such as ai or cyber")
    ranked = order == MATCH
    return ItemFilters(
        relevant=_boolean(get, "relevant"), topic=topic, feed=_integer(get, "feed", 1),
        lang=lang, since=kept_since, until=kept_until, published_since=since,
        published_until=until, sort="published" if ranked else order, q=q, ranked=ranked,
        before=None if ranked else _integer(get, "before", 1),
        start=(_integer(get, "start", 0, MAX_START) or 0) if ranked else 0,
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
