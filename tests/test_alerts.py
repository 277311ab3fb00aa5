"""The alerts' pure part and their settings: filters, max_age, digest times, backoff, masking,
messages (Arabic titles, escaping, links), and monitor.yaml's `alerts:` checked with file, line
and key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.alerts import message, timing
from monitor.alerts.masking import masked, scrub
from monitor.alerts.select import Candidate, alerts_for
from monitor.alertsettings import AlertSettings
from monitor.errors import ConfigError
from monitor.settings import load_settings

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _alert(**values) -> AlertSettings:
    return AlertSettings(name=values.pop("name", "desk"), to=("json://example.org/",), **values)


def _candidate(**values) -> Candidate:
    facts = {"topics": ["cyber"], "lang": "fr", "feed_name": "Le Site",
             "feed_url": "https://lesite.ma/rss", "score": 3.0, "published": NOW}
    return Candidate(**{**facts, **values})


def test_filters_topics_lang_feeds_and_score() -> None:
    alerts = [_alert(name="all"), _alert(name="cyber", topics=["cyber", "data-protection"]),
              _alert(name="ai", topics="ai"), _alert(name="arabic", lang=["ar"]),
              _alert(name="site", feeds=["https://LESITE.ma/rss/"]),
              _alert(name="by-name", feeds=["Le Site"]), _alert(name="high", min_score=5)]
    assert alerts_for(alerts, _candidate()) == ("all", "cyber", "site", "by-name")
    assert alerts_for(alerts, _candidate(topics=["ai"], lang="ar", score=6, feed_name="X",
                                         feed_url="https://x.ma/")) == (
        "all", "ai", "arabic", "high")


def test_reclassified_items_only_within_max_age() -> None:
    alerts = [_alert(name="two-days"), _alert(name="week", max_age="7d")]
    old = _candidate(published=NOW - timedelta(days=3))
    assert alerts_for(alerts, old) == ("two-days", "week")  # stored by a poll: any date
    assert alerts_for(alerts, old, published_after=NOW) == ("week",)
    assert alerts_for(alerts, _candidate(published=NOW - timedelta(hours=1)),
                      published_after=NOW) == ("two-days", "week")
    assert alerts_for(alerts, _candidate(published=None), published_after=NOW) == ()


def test_digest_cutoff_in_its_time_zone_and_backoff() -> None:
    assert timing.cutoff(_alert(), NOW) == NOW
    digest = _alert(mode="digest", at="07:30")
    assert timing.cutoff(digest, NOW) == datetime(2026, 3, 10, 7, 30, tzinfo=UTC)
    assert timing.cutoff(digest, NOW.replace(hour=7)) == datetime(2026, 3, 9, 7, 30, tzinfo=UTC)
    tokyo = _alert(mode="digest", at="07:30 Asia/Tokyo")  # UTC+9: 22:30 UTC the day before
    assert timing.cutoff(tokyo, NOW) == datetime(2026, 3, 9, 22, 30, tzinfo=UTC)
    retrying = _alert(retry="1m")
    assert [timing.retry_wait(retrying, n) for n in (1, 2, 3, 7, 50)] == [
        60, 120, 240, 3600, 3600]


@pytest.mark.parametrize(("written", "shown"), [
    ("mailto://user:s3cret@smtp.example.org?to=desk@example.org&pass=x1",
     "mailto://user:****@smtp.example.org?to=desk@example.org&pass=****"),
    ("ntfy://ntfy.sh/private-topic", "ntfy://ntfy.sh/****"),
    ("tgram://123456:ABC-token/-100200/", "tgram://****/****/"),
    ("slack://T1AB/B2CD/xoxo3/#desk", "slack://****/****/****/#desk"),
    ("json://127.0.0.1:8080/hook?token=abc", "json://127.0.0.1:8080/****?token=****"),
    ("${ALERT_URL}", "${ALERT_URL}"),
    ("mailto://desk:${SMTP_PASSWORD}@smtp.example.org", "mailto://desk:${SMTP_PASSWORD}@smtp.example.org"),
])
def test_addresses_are_shown_masked(written: str, shown: str) -> None:
    assert masked(written) == shown


def test_errors_are_scrubbed_of_every_secret_part() -> None:
    url = "json://hooks.example.org/T0KEN:42?apikey=s3cr3t"
    text = ("failed http://hooks.example.org/T0KEN:42 with key s3cr3t "
            f"({url}) and T0KEN%3A42")
    cleaned = scrub(text, [url])
    assert "T0KEN" not in cleaned and "s3cr3t" not in cleaned
    assert "hooks.example.org" in cleaned


ITEM = {"id": 42, "title": "الأمن السيبراني: <b>هجوم</b> على المغرب", "lang": "ar",
        "url": "https://hespress.example/article?id=1&x=2", "feed": "Hespress",
        "published": datetime(2026, 3, 10, 9, 5, tzinfo=UTC), "score": 4.5,
        "topics": ["cyber"], "matches": [{"term": "هجوم", "group": "attack"},
                                         {"term": "سيبراني", "group": "cyber"},
                                         {"term": "هجوم", "group": "attack"}]}


def test_an_immediate_message_says_what_where_when_why_and_links() -> None:
    sent = message.immediate("desk", [ITEM], "https://monitor.example.org/")
    assert sent.title == "[desk] الأمن السيبراني: <b>هجوم</b> على المغرب"
    assert sent.text.splitlines() == [
        "الأمن السيبراني: <b>هجوم</b> على المغرب",
        "Hespress · 2026-03-10 09:05 UTC · topics: cyber · score 4.5",
        "matched: هجوم, سيبراني",
        "inspector: https://monitor.example.org/items/42",
        "article: https://hespress.example/article?id=1&x=2"]
    assert '<strong dir="auto" lang="ar">الأمن السيبراني: &lt;b&gt;هجوم&lt;/b&gt;' in sent.html
    assert 'href="https://hespress.example/article?id=1&amp;x=2"' in sent.html
    several = message.immediate("desk", [ITEM, {**ITEM, "id": 43, "url": "javascript:x"}], None)
    assert several.title == "[desk] 2 relevant items"
    assert "inspector:" not in several.text and "javascript" not in several.html


def test_a_digest_groups_by_topic() -> None:
    other = {**ITEM, "id": 7, "title": "IA et emploi", "lang": "fr", "topics": ["ai", "cyber"],
             "score": 2.0, "matches": []}
    at = datetime(2026, 3, 10, 7, 30, tzinfo=UTC)
    digest = message.digest("morning", [ITEM, other], None, at)
    assert digest.title == "[morning] digest of 2026-03-10 07:30 UTC: 2 relevant items"
    assert digest.text.index("== ai (1) ==") < digest.text.index("== cyber (2) ==")
    assert digest.html.count("<li>") == 3 and "<h2>ai (1)</h2>" in digest.html


def _config(tmp_path: Path, alerts: str) -> Path:
    for name in ("feeds.yaml", "rules.yaml"):
        (tmp_path / name).write_text("feeds: []\n" if name == "feeds.yaml" else "x: 1\n")
    path = tmp_path / "monitor.yaml"
    path.write_text("log_level: info\nalerts:\n" + alerts, encoding="utf-8")
    return path


def test_alert_settings_expand_variables_and_keep_the_written_form(tmp_path: Path) -> None:
    path = _config(tmp_path, """  - name: cyber-desk
    to: ["mailto://desk:${SMTP_PASSWORD}@smtp.example.org?to=desk@example.org", "${HOOK}"]
    topics: [cyber]
    mode: digest
    at: "07:30 Africa/Casablanca"
""")
    settings = load_settings(path, environ={"SMTP_PASSWORD": "pa55", "HOOK": "json://h.example/x"})
    (alert,) = settings.alerts
    assert [t.url for t in alert.targets] == [
        "mailto://desk:pa55@smtp.example.org?to=desk@example.org", "json://h.example/x"]
    assert [t.line for t in alert.targets] == [4, 4]
    assert "pa55" not in repr(alert.targets) and "pa55" not in repr(alert)
    assert alert.digest_time()[:2] == (7, 30)
    assert load_settings(_config(tmp_path, ""), environ={}).alerts == ()


@pytest.mark.parametrize(("alerts", "line", "key", "words"), [
    ("  - name: a\n    to: ['json://h.example/${NOPE}']\n", 4, "to",
     "environment variable NOPE is not set"),
    ("  - name: a\n    to: ['not a url']\n", 4, "to", "not a notification URL"),
    ("  - name: a\n    to: []\n", 4, "to", "must not be empty"),
    ("  - name: a\n    to: ['json://h/']\n  - name: a\n    to: ['json://h/']\n", 5, "name",
     "defined twice"),
    ("  - name: a\n    to: ['json://h/']\n    at: '25:00'\n", 5, "at", "not a time of day"),
    ("  - name: a\n    to: ['json://h/']\n    at: '07:00 Mars/Olympus'\n", 5, "at",
     "not a time zone"),
    ("  - name: a\n    to: ['json://h/']\n    mode: weekly\n", 5, "mode", "not valid"),
    ("  - name: a b\n    to: ['json://h/']\n", 3, "name", "not an alert name"),
    ("  - name: a\n    to: ['json://h/']\n    lang: [french]\n", 5, "lang", "language code"),
    ("  - name: a\n    to: ['json://h/']\n    retries: 3\n", 5, "retries", "unknown key"),
])
def test_bad_alerts_name_the_line_and_key(tmp_path: Path, alerts: str, line: int, key: str,
                                          words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_config(tmp_path, alerts), environ={})
    assert (caught.value.line, caught.value.key) == (line, key)
    assert words in str(caught.value)
