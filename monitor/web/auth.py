"""The optional access token, as ASGI middleware. Pure apart from the HTTP exchange.

In: each request. Out: the request passed on when it carries the token, else 401. A token is
accepted as ``Authorization: Bearer TOKEN`` (scripts, Prometheus), as the ``monitor_token``
cookie, or once as ``?token=TOKEN``: that answers with a redirect to the same address without it
and sets the cookie (HttpOnly, SameSite=Strict), so a browser keeps working and the token never
stays in addresses, history or referrers. ``/feed.atom?token=TOKEN`` is answered as it is:
feed readers keep no cookies and follow the address they were given. ``/healthz`` stays open
for health checks. `TokenRedaction` keeps the token out of the access log.
"""

from __future__ import annotations

import hmac
import logging
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, unquote_plus, urlencode

COOKIE = "monitor_token"
OPEN_PATHS = frozenset({"/healthz"})
TOKEN_IN_URL_PATHS = frozenset({"/feed.atom"})


class TokenRedaction(logging.Filter):
    """Blanks ``token=…`` in the arguments of uvicorn's access log lines (the requested path
    and query), so the token never reaches a log: a first visit with ``?token=`` and every
    poll of a feed reader carry it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(without_token(arg) if isinstance(arg, str) else arg
                                for arg in record.args)
        return True


def without_token(target: str) -> str:
    """A request target with the value of its ``token`` parameter blanked, the parameter found
    as `TokenGate` finds it (``parse_qsl``: split on ``&``, names percent-decoded)."""
    path, question, query = target.partition("?")
    if not question:
        return target
    pairs = ["token=[redacted]" if unquote_plus(pair.split("=", 1)[0]) == "token" else pair
             for pair in query.split("&")]
    return f"{path}?{'&'.join(pairs)}"


class TokenGate:
    def __init__(self, app, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _ok(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), self.token)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer ") and self._ok(bearer[7:].strip()):
            await self.app(scope, receive, send)
            return
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is no token
            cookie = SimpleCookie()
        if COOKIE in cookie and self._ok(cookie[COOKIE].value):
            await self.app(scope, receive, send)
            return
        params = parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                           keep_blank_values=True)
        given = [v for k, v in params if k == "token"]
        if given and self._ok(given[-1]) and scope["path"] in TOKEN_IN_URL_PATHS:
            await self.app(scope, receive, send)  # a feed reader: no cookies, no redirects
            return
        if given and self._ok(given[-1]):
            rest = urlencode([(k, v) for k, v in params if k != "token"])
            location = scope.get("root_path", "") + scope["path"] + (f"?{rest}" if rest else "")
            await _send(send, 303, b"", [
                (b"location", location.encode("latin-1")),
                (b"set-cookie", f"{COOKIE}={given[-1]}; HttpOnly; SameSite=Strict; "
                                "Path=/".encode("latin-1")),
            ])
            return
        await send_plain(send, 401, "a token is needed: send 'Authorization: Bearer TOKEN' or "
                         "open this page once with ?token=TOKEN\n",
                         [(b"www-authenticate", b'Bearer realm="monitor"')])


async def send_plain(send, status: int, text: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer `status` with `text` as plain text."""
    await _send(send, status, text.encode(),
                [*(headers or []), (b"content-type", b"text/plain; charset=utf-8")])


async def _send(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
