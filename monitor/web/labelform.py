"""The inspector's label form: its anti-forgery token, the checks of a posted label, and the
label it says. Pure apart from reading the posted body.

In: the access token, an item id, the posted body (``application/x-www-form-urlencoded``:
``csrf``, ``relevant`` 1|0, ``topic``…, ``note``) and the request's ``Origin`` / ``Referer``.
Out: the form token of an item (`form_token`), a checked `Label` (`posted_label`), or
`FormRefused` with the HTTP status and what is wrong.

Labels are recorded only when the inspector runs with a token, and only by whoever holds it.
The token's cookie is SameSite=Strict, so another site's page cannot post with it; and each
form carries `form_token`, an HMAC of the access token and the item id (it cannot be made
without the token, nor moved to another item), compared in constant time; and the
``Origin`` (else the ``Referer``), when the browser sends one, must be the inspector's own.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

from monitor.store.labels import Label, make_label

FORM_BYTES = 16_384  # a note of NOTE_CHARS characters, percent-encoded, fits


class FormRefused(Exception):
    """A posted label that is not recorded: `status` is the HTTP answer, the message why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def form_token(token: str, item_id: int) -> str:
    """The hidden field of an item's label form: HMAC-SHA256 of the item id, keyed by the
    access token."""
    return hmac.new(token.encode(), f"label item {item_id}".encode(), hashlib.sha256).hexdigest()


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower case ("" when it has none)."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def check_origin(headers: Mapping[str, str], own: Iterable[str]) -> None:
    """FormRefused (403) when the ``Origin`` header, or else the ``Referer``, names a page that
    is not one of the inspector's `own` origins; nothing when neither is sent (a script)."""
    allowed = {origin.lower() for origin in own}
    origin = headers.get("origin")
    if origin is not None:
        if origin.strip().lower() not in allowed:
            raise FormRefused(403, f"the label was posted from {origin!r}, not from the "
                                   "inspector's own page: open the item here and label it")
        return
    referer = headers.get("referer")
    if referer is not None and origin_of(referer) not in allowed:
        raise FormRefused(403, "the label was posted from another site's page, not from the "
                               "inspector's own: open the item here and label it")


async def bounded_body(chunks: AsyncIterator[bytes], limit: int = FORM_BYTES) -> bytes:
    """The posted body; FormRefused (413) past `limit` bytes, before reading the rest."""
    body = b""
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise FormRefused(413, f"the form is over {limit} bytes; shorten the note")
    return body


def posted_label(token: str, item_id: int, body: bytes) -> Label:
    """The label a posted form says, once its form token is this item's; FormRefused (403 for
    the token, 400 for the rest) otherwise. The topic boxes go with "Relevant": a form saying
    not relevant leaves them out."""
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormRefused(400, f"the form cannot be read ({exc})") from None
    given = (fields.get("csrf") or [""])[-1].encode()
    if not hmac.compare_digest(given, form_token(token, item_id).encode()):
        raise FormRefused(403, "the form's token is missing or is not this item's: reload the "
                               "item's page and label it again")
    relevant = (fields.get("relevant") or [""])[-1]
    if relevant not in ("1", "0"):
        raise FormRefused(400, "the form says relevant=1 or relevant=0")
    try:
        return make_label(item_id, relevant=relevant == "1",
                          topics=fields.get("topic", []) if relevant == "1" else [],
                          note=(fields.get("note") or [""])[-1], origin="web")
    except ValueError as exc:
        raise FormRefused(400, str(exc)) from None
