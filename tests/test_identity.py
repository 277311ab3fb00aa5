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


def test_every_listed_tracking_parameter_is_dropped_and_others_kept() -> None:
    from monitor.identity import TRACKING_KEYS

    base = "https://www.medias24.com/2025/07/28/ocp.html"
    for key in sorted(TRACKING_KEYS) + ["utm_medium", "mc_eid", "pk_campaign", "oly_enc_id",
                                        "vero_conv", "_hsenc", "_hsmkt", "mtm_source",
                                        "hsa_cam", "WT.mc_id", "MKT_TOK"]:
        assert canonical_url(f"{base}?id=7&{key}=x&page=2") == f"{base}?id=7&page=2", key
    # parameters that name the content stay, in their order
    assert canonical_url(f"{base}?p=12&lang=ar&ref=home") == f"{base}?p=12&lang=ar&ref=home"


def test_host_and_scheme_are_normalised_but_http_is_not_https() -> None:
    assert canonical_url("HTTP://Le360.MA.:80/a?utm_campaign=x#c") == "http://le360.ma/a"
    assert canonical_url("https://le360.ma:443") == "https://le360.ma/"
    assert canonical_url("https://le360.ma:8443/a") == "https://le360.ma:8443/a"
    # two addresses a server may answer differently: not merged (the text hash catches them)
    assert canonical_url("http://le360.ma/a") != canonical_url("https://le360.ma/a")
    assert canonical_url("https://www.le360.ma/a") != canonical_url("https://le360.ma/a")


def test_page_canonical_url_is_trusted_only_on_its_own_site() -> None:
    from monitor.identity import page_canonical_url, site_of

    page = "https://www.lematin.ma/economie/ocp/286710?utm_source=rss"
    assert page_canonical_url("/economie/ocp/286710", page) == (
        "https://www.lematin.ma/economie/ocp/286710")
    assert page_canonical_url("https://lematin.ma/economie/ocp/286710?fbclid=1", page) == (
        "https://lematin.ma/economie/ocp/286710")  # another host of the same site
    assert page_canonical_url("https://www.lematin.ma/", page) is None  # the home page
    assert page_canonical_url("https://www.lematin.ma", page) is None
    assert page_canonical_url("https://medias24.com/2025/ocp/", page) is None  # another site
    assert page_canonical_url("javascript:void(0)", page) is None
    assert page_canonical_url("mailto:redaction@lematin.ma", page) is None
    assert page_canonical_url("https://www.lematin.ma:99999/a", page) is None
    assert page_canonical_url("", page) is None and page_canonical_url("/a", None) is None
    assert site_of("https://news.bbc.co.uk/x") == "bbc.co.uk"
    assert site_of("http://127.0.0.21:8080/a") == "127.0.0.21"
    assert page_canonical_url("/story/1", "http://127.0.0.21:8080/s?id=1") == (
        "http://127.0.0.21:8080/story/1")
