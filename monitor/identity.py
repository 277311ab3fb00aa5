"""Identity of a story: canonical URL and hashes. Pure.

In: URLs and texts. Out: the canonical URL (see `canonical_url`), a page's own canonical URL
checked against the page's address (`page_canonical_url`), its 16-hex-digit key used in corpus
file names, and a content hash of the normalised text (whitespace and case folded) used to spot
the same text twice.

What `canonical_url` normalises, and what it leaves alone:
- scheme and host lower-cased, a trailing dot of the host dropped, the default port (80 for
  http, 443 for https) dropped, the fragment dropped, an empty path written "/";
- query parameters that only track a click (the prefixes and names below) dropped, the others
  kept in their order;
- http and https are NOT merged: they are two addresses that a server may answer differently,
  and a feed that moved to https gives the new address anyway. The same story under both is
  still stored once, by its text (`content_hash`) or as a near-duplicate (`neardup`).
- "www." is kept for the same reason (another host).
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from tld import get_fld

# Query parameters set by analytics and marketing tools to trace a click: the same page
# without them. Names are compared lower-cased. Kept here rather than taken from courlan or
# w3lib, because stored canonical URLs must keep their form: on the 1,533 entry links of
# tests/fixtures/feeds, courlan's clean_url gives another form for 222 (it keeps fragments,
# sorts parameters, drops blank ones and any named ref/source/campaign), and w3lib's
# url_query_cleaner, which matches whole names only (no prefixes), for 23 (it keeps the
# query's own percent-encoding).
TRACKING_PREFIXES = (
    "utm_",  # Google Analytics campaigns
    "mc_",  # Mailchimp (mc_cid, mc_eid)
    "pk_", "piwik_", "mtm_", "matomo_",  # Matomo / Piwik campaigns
    "oly_",  # Omeda (oly_anon_id, oly_enc_id)
    "vero_",  # Vero emails (vero_id, vero_conv)
    "_hs",  # HubSpot emails (_hsenc, _hsmi, _hsmkt...)
    "hsa_",  # HubSpot ads
)
TRACKING_KEYS = frozenset({
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
    "ttclid", "igshid", "li_fat_id", "srsltid",  # ad and social click ids
    "_ga", "_gl",  # Google Analytics cross-domain linker
    "mkt_tok",  # Marketo
    "ocid",  # Microsoft / MSN
    "cmpid", "s_cid", "wt.mc_id", "wt_mc", "wt_mc_id", "ito",  # Adobe, Webtrends, BBC
    "soc_src", "soc_trk",  # social sharing widgets
    "xtor", "at_medium", "at_campaign",  # AT Internet / Piano
    "ref_src", "mbid",  # Twitter embeds, Medium
})
_SPACES = re.compile(r"\s+")


def _is_tracking(key: str) -> bool:
    key = key.lower()
    return key.startswith(TRACKING_PREFIXES) or key in TRACKING_KEYS


def canonical_url(url: str) -> str:
    """The URL under which a story is known, whatever tracking decorations it came with."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = urlencode([
        (key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not _is_tracking(key)
    ])
    return urlunsplit((scheme, host, parts.path or "/", query, ""))


def site_of(url: str) -> str:
    """The registrable domain of a URL's host (public-suffix aware: bbc.co.uk, x.press.ma);
    the host itself for addresses and single-label hosts."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return get_fld(f"http://{host}/", fail_silently=True) or host


def page_canonical_url(declared: str | None, page_url: str | None) -> str | None:
    """A page's own `<link rel="canonical">` (or og:url), canonicalised, when it can be
    trusted: made absolute against the page URL; http(s) only; on the page's own registrable
    site (a canonical to another site is a syndication partner's original or a mistake: the
    copy stays an item of its own, grouped with the original as a near-duplicate); not the
    site's home page (a known CMS bug sets every page's canonical to it). None otherwise."""
    if not declared or not declared.strip() or not page_url:
        return None
    try:
        absolute = urljoin(page_url, declared.strip())
        parts = urlsplit(absolute)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if site_of(absolute) != site_of(page_url):
        return None
    if parts.path in ("", "/") and not parts.query:
        return None
    return canonical_url(absolute)


def url_key(canonical: str) -> str:
    """First 16 hex digits of the SHA-256 of a canonical URL (the corpus file suffix)."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def content_hash(text: str) -> str:
    """SHA-256 of the text with whitespace collapsed and case folded."""
    folded = _SPACES.sub(" ", text).strip().casefold()
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()
