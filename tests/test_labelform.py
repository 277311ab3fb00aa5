"""Labelling from the inspector over HTTP (uvicorn on loopback, a database filled through the
real schema and rules): read-only without a token; with one, a label posted from the item's
page is stored and shown, and a forged or foreign post is refused (form token, Origin,
Referer, size). The clicks in a real browser are in test_browser.py."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from monitor.store.engine import make_engine, read_engine
from monitor.store.labels import latest_label
from monitor.web import create_app
from monitor.web.labelform import FORM_BYTES, form_token
from tests.webdata import make_site, running

TOKEN = "s3cret-token-0123456789"


@dataclass
class Inspector:
    base: str
    client: httpx.Client  # signed in (the token's cookie), as a browser would be
    ids: dict[str, int]
    database_url: str

    def post(self, item_id: int, fields: dict, **headers: str) -> httpx.Response:
        return self.client.post(f"/items/{item_id}/label", data=fields,
                                headers={"origin": self.base, **headers})

    def label(self, item_id: int):
        engine = make_engine(self.database_url)
        try:
            return latest_label(engine, item_id)
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple]:
    folder = tmp_path_factory.mktemp("labels")
    settings, data = make_site(folder, f"sqlite:///{folder / 'monitor.db'}")
    yield settings, data


@pytest.fixture
def inspector(site) -> Iterator[Inspector]:
    settings, data = site
    engine = read_engine(settings.database_url)
    with running(create_app(settings, engine=engine, token=TOKEN)) as base, \
            httpx.Client(base_url=base, timeout=30) as client:
        assert client.get(f"/items?token={TOKEN}").status_code == 303  # sets the cookie
        yield Inspector(base, client, data.ids, settings.database_url)
    engine.dispose()


def _csrf(page: str) -> str:
    return re.search(r'<input type="hidden" name="csrf" value="([0-9a-f]{64})">', page).group(1)


def test_without_a_token_the_inspector_stays_read_only(site) -> None:
    settings, data = site
    engine = read_engine(settings.database_url)
    item = data.ids["hostile"]
    with running(create_app(settings, engine=engine)) as base:
        page = httpx.get(f"{base}/items/{item}")
        assert page.status_code == 200 and "Not labelled yet." in page.text
        assert "<form class=\"label-form\"" not in page.text and "<button" not in page.text
        posted = httpx.post(f"{base}/items/{item}/label", data={
            "relevant": "1", "csrf": form_token(TOKEN, item)}, headers={"origin": base})
        assert posted.status_code == 403 and "read-only" in posted.text
        assert httpx.get(f"{base}/items/{item}/label").status_code == 405
    engine.dispose()
    assert latest_label(read_engine(settings.database_url), item) is None


def test_a_posted_label_is_stored_and_shown(inspector: Inspector) -> None:
    item = inspector.ids["arabic"]
    page = inspector.client.get(f"/items/{item}").text
    assert f'action="/items/{item}/label"' in page
    assert '<button type="submit" name="relevant" value="1">Relevant</button>' in page
    csrf = _csrf(page)
    assert csrf == form_token(TOKEN, item) and csrf not in inspector.client.get(
        f"/items/{item}.json").text  # the form's field, not data
    answer = inspector.post(item, {"csrf": csrf, "relevant": "1", "topic": ["cyber", "ai"],
                                   "note": "الأمن السيبراني <b>ok</b>"})
    assert answer.status_code == 303 and answer.headers["location"] == f"/items/{item}#label"
    stored = inspector.label(item)
    assert (stored.relevant, stored.topics, stored.origin) == (True, ("ai", "cyber"), "web")
    shown = inspector.client.get(f"/items/{item}").text
    assert "Labelled <strong class=\"verdict relevant\">relevant</strong>" in shown
    assert "الأمن السيبراني &lt;b&gt;ok&lt;/b&gt;" in shown
    assert 'name="topic" value="ai" checked' in shown
    twin = inspector.client.get(f"/items/{item}.json").json()
    assert twin["label"]["topics"] == ["ai", "cyber"] and twin["label"]["origin"] == "web"

    # "Not relevant" leaves the topic boxes out
    again = inspector.post(item, {"csrf": csrf, "relevant": "0", "topic": "ai"})
    assert again.status_code == 303
    assert (inspector.label(item).relevant, inspector.label(item).topics) == (False, ())


@pytest.mark.parametrize(("change", "status", "says"), [
    ({"csrf": None}, 403, "the form's token is missing"),
    ({"csrf": "other-item"}, 403, "is not this item's"),
    ({"csrf": "0" * 64}, 403, "is not this item's"),
    ({"origin": "https://evil.example"}, 403, "posted from 'https://evil.example'"),
    ({"origin": "null"}, 403, "posted from 'null'"),
    ({"origin": None, "referer": "https://evil.example/page"}, 403, "another site's page"),
    ({"relevant": "maybe"}, 400, "relevant=1 or relevant=0"),
    ({"topic": "sport"}, 400, "unknown topic 'sport'"),
    ({"note": "x" * FORM_BYTES}, 413, "the form is over"),
])
def test_forged_or_foreign_posts_are_refused(inspector: Inspector, change: dict, status: int,
                                             says: str) -> None:
    item, other = inspector.ids["seed"], inspector.ids["copy"]
    fields = {"csrf": form_token(TOKEN, item), "relevant": "1", "topic": "ai", "note": ""}
    headers = {"origin": inspector.base}
    for key, value in change.items():
        if key in ("origin", "referer"):
            headers[key] = value
        elif value == "other-item":
            fields[key] = form_token(TOKEN, other)
        else:
            fields[key] = value
    answer = inspector.client.post(f"/items/{item}/label",
                                   data={k: v for k, v in fields.items() if v is not None},
                                   headers={k: v for k, v in headers.items() if v is not None})
    assert answer.status_code == status and says in html.unescape(answer.text)
    assert inspector.label(item) is None


def test_posts_need_the_token_and_an_item(inspector: Inspector) -> None:
    item = inspector.ids["filler-1"]
    fields = {"csrf": form_token(TOKEN, item), "relevant": "1"}
    anonymous = httpx.post(f"{inspector.base}/items/{item}/label", data=fields,
                           headers={"origin": inspector.base})
    assert anonymous.status_code == 401
    missing = 999_999
    gone = inspector.post(missing, {"csrf": form_token(TOKEN, missing), "relevant": "0"})
    assert gone.status_code == 404 and f"no item with id {missing}" in gone.text
    # a script holding the token, sending neither Origin nor Referer, may label
    scripted = httpx.post(f"{inspector.base}/items/{item}/label", data=fields,
                          headers={"authorization": f"Bearer {TOKEN}"})
    assert scripted.status_code == 303 and inspector.label(item).relevant is True
    host = urlsplit(inspector.base).netloc
    assert inspector.post(item, {**fields, "relevant": "0"},
                          origin=f"http://{host.upper()}").status_code == 303


def test_form_tokens_differ_by_item_and_by_token() -> None:
    assert form_token(TOKEN, 1) != form_token(TOKEN, 2)
    assert form_token(TOKEN, 1) != form_token(TOKEN + "x", 1)
    assert re.fullmatch(r"[0-9a-f]{64}", form_token(TOKEN, 1))
