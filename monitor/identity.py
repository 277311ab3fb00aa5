"""Identity of a story: canonical URL and hashes. Pure.

In: URLs and texts. Out: the canonical URL (scheme and host lower-cased, default port, fragment
and tracking parameters dropped), its 16-hex-digit key used in corpus file names, and a content
hash of the normalised text (whitespace and case folded) used to spot the same text twice.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "piwik_")
_TRACKING_KEYS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "_ga", "ref_src", "xtor",
     "at_medium"}
)
_SPACES = re.compile(r"\s+")


def canonical_url(url: str) -> str:
    """The URL under which a story is known, whatever tracking decorations it came with."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = urlencode(
        [
            (key, value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
            if not key.lower().startswith(_TRACKING_PREFIXES)
            and key.lower() not in _TRACKING_KEYS
        ]
    )
    return urlunsplit((scheme, host, parts.path or "/", query, ""))


def url_key(canonical: str) -> str:
    """First 16 hex digits of the SHA-256 of a canonical URL (the corpus file suffix)."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def content_hash(text: str) -> str:
    """SHA-256 of the text with whitespace collapsed and case folded."""
    folded = _SPACES.sub(" ", text).strip().casefold()
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()
