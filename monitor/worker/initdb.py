"""`monitor init`: create or upgrade the schema and import the corpus folder's files as items.

In: `Settings`, an engine and the current rules. Out: an `InitReport` (files imported, already
present). Idempotent, and safe when several workers start at once: a corpus file already stored
as an item is not imported again, every file's number is registered with the database (so new
numbers continue after it; the withdrawn files' too, which are not imported), a file a poll
wrote whose item is not stored yet is left to that poll, and the files themselves are only
read, never changed, except that the moves to and from ``withdrawn/`` an interrupted
`reclassify` left are finished first (`settle_corpus`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.corpus import Corpus, parse_name
from monitor.identity import content_hash
from monitor.rules import RuleSet, split_document
from monitor.settings import Settings, load_feeds
from monitor.store.corpusnumbers import CorpusNumbers
from monitor.store.engine import Engine, create_schema
from monitor.store.feeds import sync_feeds
from monitor.store.items import NewItem, insert_item, known_corpus_files
from monitor.worker.withdrawal import Settled, settle_corpus


@dataclass(frozen=True)
class InitReport:
    database: str
    imported: int
    already_present: int
    feeds: int
    settled: Settled  # corpus files moved to or from withdrawn/, as the stored verdicts say


def initialise(settings: Settings, engine: Engine, rules: RuleSet) -> InitReport:
    create_schema(engine)
    specs = load_feeds(settings.feeds_file)
    sync_feeds(engine, specs, datetime.now(UTC))
    numbers = CorpusNumbers(engine)
    corpus = Corpus(settings.corpus_dir, numbers)
    settled = settle_corpus(engine, corpus)
    known = known_corpus_files(engine)
    imported = present = 0
    registered = numbers.registered()
    corpus.remove_stale_temporaries()
    for path in corpus.withdrawn_files():
        number, key = parse_name(path.name)
        if number not in registered:
            numbers.register(number, key)
    for path in corpus.files():
        number, key = parse_name(path.name)
        if number not in registered:
            numbers.register(number, key)  # so new numbers continue after this file's
        if path.name in known:
            present += 1
            continue
        if registered.get(number) == (key, "poll"):
            continue  # written by a poll that died before storing its item: it will store it
        text = path.read_text(encoding="utf-8", errors="replace")
        title, _body = split_document(text)
        if not title:
            title = next((line.strip() for line in text.splitlines() if line.strip()), "")[:200]
        verdict = rules.classify("", text)  # seed files have no reliable title line
        stored = insert_item(engine, NewItem(
            feed_id=None, guid=None, url=None, canonical_url=None, title=title, summary="",
            published=None, fetched_at=datetime.fromtimestamp(path.stat().st_mtime, UTC),
            lang=None, text=text, text_source="corpus", text_error=None,
            text_error_message=None, content_hash=content_hash(text),
            relevant=verdict.relevant, score=verdict.score, topics=list(verdict.topics),
            matches=verdict.matches_with_rules(), rules_version=verdict.version,
            corpus_file=path.name,
        ))
        imported += stored is not None
    return InitReport(database=engine.url.render_as_string(hide_password=True),
                      imported=imported, already_present=present, feeds=len(specs),
                      settled=settled)
