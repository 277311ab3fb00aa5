"""Canonical URLs and hashes."""

from __future__ import annotations

from monitor.identity import canonical_url, content_hash, url_key


def test_canonical_url_drops_tracking_and_normalises() -> None:
    assert (
        canonical_url("HTTPS://WWW.Hespress.com:443/tech/ia.html?utm_source=rss&id=3&fbclid=x#top")
        == "https://www.hespress.com/tech/ia.html?id=3"
    )
    assert canonical_url("http://a.ma") == "http://a.ma/"
    assert canonical_url("http://a.ma:8080/x") == "http://a.ma:8080/x"


def test_keys() -> None:
    import hashlib

    assert url_key("https://a.ma/") == hashlib.sha256(b"https://a.ma/").hexdigest()[:16]
    assert content_hash("Le  Maroc\n") == content_hash("le maroc")
