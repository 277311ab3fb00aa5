"""The web inspector: items, one item, feeds (each HTML with a .json twin), Atom, health, metrics.

In: the one `Settings` (database URL, rules file) and an optional access token. Out: an ASGI
application (`create_app`), served by `monitor serve` with uvicorn. It reads the database only
through the store (`monitor.store`: listings, search, totals, feed health, labels), and writes
one thing: an analyst's label, posted from an item's page when it runs with a token. Modules:
`filters` (query parameters), `pages` (one context per page), `highlight` and `charts` (what
the templates draw), `atom`, `metrics`, `auth` (token), `labelform` (the label form's checks),
`app` (routes and rendering); templates and the style sheet ship inside the package.
"""

from __future__ import annotations

from monitor.web.app import create_app

__all__ = ["create_app"]
