"""The Starlette application: routes, HTML/JSON rendering, headers. Does I/O (HTTP, the DB).

In: the one `Settings` (and optionally an engine and a token). Out: an ASGI app. Every page is
one context builder (`pages`) rendered twice: by a Jinja2 template (autoescaped) and as JSON at
the same path plus ``.json``, with the same query parameters. The pages are read only (GET and
HEAD); the writes, an analyst's label posted from an item's page and the feeds page's poll
buttons (``POST /feeds/poll``), exist only when the inspector runs with a token (`labelform`
checks the label's form; without a token the label route is 403 and there is no poll route).

Routes: ``/`` and ``/items`` (+ ``/items.json``, and its items as ``/items.csv`` and
``/items.jsonl``), ``/items/ID`` (+ ``.json``), ``POST /items/ID/label``, ``/feeds`` (+
``/feeds.json``), ``POST /feeds/poll``, ``/feed.atom``, ``/healthz``, ``/metrics``,
``/static/…``.
"""

from __future__ import annotations

import io
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from monitor.errors import MonitorError, StorageError
from monitor.report.digest import http_url
from monitor.report.export import export_items
from monitor.rules import load_ruleset
from monitor.rules.ruleset import TOPICS
from monitor.settings import Settings, WatchedFile, describe_duration, load_feeds
from monitor.store.engine import Engine, make_engine, read_engine
from monitor.store.labels import record_label
from monitor.store.listings import items_to_export
from monitor.store.search import match_condition
from monitor.store.totals import health_figures, metric_figures
from monitor.web import listing, pages
from monitor.web.atom import atom_feed
from monitor.web.auth import TokenGate
from monitor.web.charts import bar_chart
from monitor.web.facets import FacetCounts
from monitor.web.filters import BadParameter, parse_filters, whole_number
from monitor.web.highlight import span_segments
from monitor.web.hosts import HostCheck, allowed_hosts
from monitor.web.labelform import (
    FormRefused,
    bounded_body,
    check_origin,
    form_token,
    origin_of,
    posted_label,
)
from monitor.web.metrics import CONTENT_TYPE, DURATION_BUCKETS, render_metrics

ATOM_ITEMS = 50
MAX_FORM = 4096  # bytes of a poll button's form read
EXPORT_CHUNK = 200  # items written at a time in a streamed export
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}
SECURITY_HEADERS = [
    # one script of ours (static/keys.js: j/k/o), none inline, none from elsewhere
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; "
                                 b"img-src 'self' data:; form-action 'self'; "
                                 b"frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    # no referrer leaves for another site; the label form's POST carries its Origin (under
    # no-referrer a browser sends "Origin: null", which the form's check could not tell apart)
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class NotFound(Exception):
    pass


class Digits(Convertor[str]):
    """A path segment of digits, left as text: Starlette's ``int`` converts it before any page
    can refuse it, and int() of some thousands of digits raises (a 500)."""

    regex = "[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("digits", Digits())


def templates() -> Environment:
    env = Environment(loader=PackageLoader("monitor.web", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(bar_chart=bar_chart, span_segments=span_segments)
    env.filters["http_url"] = http_url
    env.filters["duration"] = describe_duration
    return env


def json_response(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, ensure_ascii=False, default=str, indent=1)
    return Response(body + "\n", status_code=status,
                    media_type="application/json; charset=utf-8")


def json_href(request: Request) -> str:
    """The address of a page's JSON twin: its path plus .json, the same query."""
    path = request.url.path
    path = "/items.json" if path in ("/", "") else path.removesuffix(".json") + ".json"
    return path + (f"?{request.url.query}" if request.url.query else "")


def create_app(settings: Settings, *, engine: Engine | None = None, token: str | None = None,
               host: str = "127.0.0.1", writer: Engine | None = None) -> Any:
    """The inspector over `settings.database_url`, `token` guarding all but /healthz,
    answering to the Host names of `settings.web` (by default `host`, the address it serves
    on, and the local names). Pages read through `engine` (default: a read-only one); with a
    token, labels are written through `writer` (default: an engine that writes)."""
    engine = engine or read_engine(settings.database_url)
    if token and writer is None:
        writer = make_engine(settings.database_url)
    env = templates()
    rules = WatchedFile(settings.rules_file, load_ruleset)  # the last good rules, if an edit is bad
    # feeds.yaml, for the feeds configured but never polled yet (an empty list is no error here)
    feed_list = WatchedFile(settings.feeds_file, partial(load_feeds, empty_ok=True))
    counts = FacetCounts(engine)

    def twin(template: str, build: Callable[[Request], dict],
             html_only: Callable[[dict], dict] | None = None) -> tuple[Callable, Callable]:
        """The HTML and JSON endpoints of one page, both rendering `build(request)`; the page
        alone also gets `html_only(context)` (a form's hidden fields, not data)."""

        def render(request: Request, as_json: bool) -> Response:
            try:
                context = build(request)
            except BadParameter as exc:
                return error(request, 400, str(exc), as_json)
            except NotFound as exc:
                return error(request, 404, str(exc), as_json)
            except StorageError as exc:
                return error(request, 503, str(exc), as_json)
            if as_json:
                return json_response(context)
            html = env.get_template(template).render(
                **context, **(html_only(context) if html_only else {}), path=request.url.path,
                json_href=json_href(request), rules_error=rules.error)
            return HTMLResponse(html)

        return (lambda request: render(request, False)), (lambda request: render(request, True))

    def error(request: Request, status: int, message: str, as_json: bool) -> Response:
        if as_json:
            return json_response({"error": message, "status": status}, status)
        html = env.get_template("error.html").render(
            status=status, message=message, path=request.url.path, json_href=json_href(request))
        return HTMLResponse(html, status_code=status)

    def configured_feeds() -> int:
        return len(feed_list.current() or ())

    def build_items(request: Request) -> dict:
        return listing.items_page(engine, parse_filters(request.query_params), rules.current(),
                                  counts=counts, configured_feeds=configured_feeds())

    def build_item(request: Request) -> dict:
        item_id = whole_number("id", request.path_params["item_id"], 0)
        context = pages.item_page(engine, item_id, rules.current())
        if context is None:
            raise NotFound(f"no item with id {item_id}")
        return context

    def build_feeds(request: Request) -> dict:
        raw = request.query_params.get("days") or "30"
        if not raw.isdigit() or not 1 <= int(raw) <= 366:
            raise BadParameter("days", f"{raw!r} is not a number of days between 1 and 366")
        context = pages.feeds_page(engine, days=int(raw), schedule=settings.schedule,
                                   alerts=settings.alerts, configured=feed_list.current())
        # the poll buttons are for those who hold the token; `polled`: the feed just polled
        polled = request.query_params.get("polled")
        return {**context, "can_poll": token is not None,
                "polled": next((f for f in context["feeds"] if f["url"] == polled), None)}

    def label_form(context: dict) -> dict:
        if not token:
            return {}
        return {"label_form": {"csrf": form_token(token, context["item"]["id"]),
                               "topics": TOPICS}}

    async def post_label(request: Request) -> Response:
        if writer is None:
            return error(request, 403, "the inspector is read-only: labels are recorded when "
                         "it runs with --token, or with `monitor items label`", False)
        own = {origin_of(f"{request.url.scheme}://{request.headers.get('host', '')}"),
               origin_of(settings.web.base_url or "")} - {""}
        try:
            item_id = whole_number("id", request.path_params["item_id"], 0)
            check_origin(request.headers, own)
            label = posted_label(token, item_id, await bounded_body(request.stream()))
            stored = await run_in_threadpool(record_label, writer, label)
        except BadParameter as exc:
            return error(request, 400, str(exc), False)
        except FormRefused as exc:
            return error(request, exc.status, str(exc), False)
        except StorageError as exc:
            return error(request, 503, str(exc), False)
        except ClientDisconnect:  # gone before its form arrived: nothing to store or answer
            return Response(status_code=400)
        if not stored:
            return error(request, 404, f"no item with id {item_id}", False)
        return RedirectResponse(f"/items/{item_id}#label", status_code=303)

    items_html, items_json = twin("items.html", build_items)
    item_html, item_json = twin("item.html", build_item, label_form)
    feeds_html, feeds_json = twin("feeds.html", build_feeds)

    def atom(request: Request) -> Response:
        try:
            filters = parse_filters(request.query_params)
        except BadParameter as exc:
            return Response(f"{exc}\n", status_code=400, media_type="text/plain")
        # newest kept first, as readers expect new entries on top (and as before)
        filters = replace(filters, relevant=True, before=None, ranked=False, start=0, sort="kept",
                          limit=min(filters.limit, ATOM_ITEMS))
        try:
            context = listing.items_page(engine, filters, None, counts=counts)
        except StorageError as exc:
            return Response(f"{exc}\n", status_code=503, media_type="text/plain")
        base = settings.web.base_url or str(request.base_url)
        query = f"?{request.url.query}" if request.url.query else ""
        body = atom_feed(self_url=f"{base}feed.atom{query}", base_url=base,
                         items=context["items"],
                         title="monitor: relevant items"
                         + (f" ({', '.join(f'{k}={v}' for k, v in filters.active.items())})"
                            if len(filters.active) > 1 else ""))
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    def export(request: Request) -> Response:
        """The items of the listing's filters and search, oldest first, as CSV or JSON Lines,
        streamed."""
        fmt = request.url.path.rsplit(".", 1)[1]
        try:
            filters = parse_filters(request.query_params)
            query = listing.parsed_query(filters.q)
            extra = [match_condition(engine, query)] if query else []
            rows = items_to_export(engine, selection=filters, extra=extra)
            first = next(rows, None)  # a database that cannot be read fails here, as a 503
        except BadParameter as exc:
            return Response(f"{exc}\n", status_code=400, media_type="text/plain")
        except StorageError as exc:
            return Response(f"{exc}\n", status_code=503, media_type="text/plain")
        chunks = export_chunks(itertools.chain([first] if first else [], rows), fmt)
        return StreamingResponse(chunks, media_type=EXPORT_TYPES[fmt], headers={
            "content-disposition": f'attachment; filename="items.{fmt}"'})

    async def poll_now(request: Request) -> Response:
        """``POST /feeds/poll`` with ``url``, a feed of feeds.yaml: polled now (what
        `monitor feeds poll` does), then back to the feeds page, which says how it went."""
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            return error(request, 403, "a poll is asked from the inspector's own pages", False)
        # the poll's code (fetching, extraction) is loaded by the first poll, not at start-up
        from monitor.worker.pollnow import poll_feed_now
        from monitor.worker.writable import open_storage

        body = await request.body()
        url = parse_qs(body[:MAX_FORM].decode("utf-8", "replace")).get("url", [""])[0]
        try:
            open_storage(settings)  # may it write the database and the corpus folder?
            await poll_feed_now(settings, url)
        except MonitorError as exc:
            status = {"config": 400, "storage-error": 503}.get(exc.reason, 409)
            return error(request, status, str(exc), False)
        return RedirectResponse(f"/feeds?{urlencode({'polled': url})}", status_code=303)

    def healthz(request: Request) -> Response:
        now = datetime.now(UTC)
        try:
            figures = health_figures(engine)
        except StorageError as exc:
            # /healthz answers without the token: the reason only, no address nor detail
            return json_response({"status": "error", "database": "unreachable",
                                  "error": exc.reason}, 503)
        last = figures["last_success"]
        return json_response({
            "status": "ok", "database": "ok",
            "last_successful_poll": last.isoformat() if last else None,
            "last_successful_poll_age_seconds": round((now - last).total_seconds(), 1)
            if last else None,
        })

    def metrics(request: Request) -> Response:
        now = datetime.now(UTC)
        try:
            figures = metric_figures(engine, now=now, buckets=DURATION_BUCKETS)
            figures["alerts"] = pages.alerts_shown(engine, settings.alerts)
        except StorageError as exc:
            return Response(f"# database unreachable: {exc}\n",
                            status_code=503, media_type=CONTENT_TYPE)
        return Response(render_metrics(figures, now=now), media_type=CONTENT_TYPE)

    routes = [
        Route("/", items_html), Route("/items", items_html), Route("/items.json", items_json),
        Route("/items/{item_id:digits}", item_html),
        Route("/items/{item_id:digits}.json", item_json),
        Route("/items/{item_id:digits}/label", post_label, methods=["POST"]),
        Route("/items.csv", export), Route("/items.jsonl", export),
        Route("/feeds", feeds_html), Route("/feeds.json", feeds_json),
        Route("/feed.atom", atom), Route("/healthz", healthz), Route("/metrics", metrics),
        Mount("/static", StaticFiles(packages=[("monitor.web", "static")]), name="static"),
    ]
    if token:  # a poll writes: only behind the token
        routes.append(Route("/feeds/poll", poll_now, methods=["POST"]))
    app = Starlette(routes=routes)
    app.state.engine = engine
    asgi: Any = ServerHeaders(app)
    if token:
        asgi = TokenGate(asgi, token)
    return HostCheck(asgi, allowed_hosts(settings.web.allowed_hosts, served_host=host,
                                         base_url=settings.web.base_url))


def export_chunks(rows: Iterator[dict], fmt: str) -> Iterator[str]:
    """The export of `rows` in `fmt`, `EXPORT_CHUNK` items at a time."""
    header = True
    while True:
        batch = list(itertools.islice(rows, EXPORT_CHUNK))
        if not batch and not header:
            return
        out = io.StringIO()
        export_items(batch, out, fmt=fmt, header=header)
        header = False
        yield out.getvalue()
        if len(batch) < EXPORT_CHUNK:
            return


class ServerHeaders:
    """Adds the security headers and ``Server-Timing: app;dur=MS`` (time to the first byte of
    the answer, measured in the server) to every response."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers += SECURITY_HEADERS
                headers.append((b"server-timing", f"app;dur={elapsed:.2f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
