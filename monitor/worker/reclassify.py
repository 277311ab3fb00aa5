"""`monitor reclassify`: re-apply the current rules to every stored item. Does I/O.

In: an engine, the current `RuleSet`, the `Corpus`. Out: a `ReclassifyReport` (items seen,
verdicts rewritten, what changed). Items are read in id order in batches (keyset paging) and
each batch is written in one transaction, so an interrupted run keeps the batches it finished
and a new run goes on where it stopped: items already classified by these rules (same
`rules_version`) are skipped unless ``force``. A batch is read, classified, its newly relevant
items written to the corpus, then its verdicts saved in one transaction.

The corpus is append-only. An item that becomes relevant gets a corpus file (written before
its batch commits; writing is idempotent per key, so a batch that failed and is run again finds
its file). An item that stops being relevant keeps its file, and its row keeps the file's name:
the file is never deleted or rewritten, and the name still says where that text is. Items are
keyed by their canonical URL, or ``item:<id>`` when they have none.

An item that becomes relevant is queued for the alerts whose filters it passes, if it was
published within the alert's ``max_age`` (a rules change does not flood anyone with old news),
in its batch's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from monitor.alerts.select import Candidate, alerts_for
from monitor.alertsettings import AlertSettings
from monitor.corpus import Corpus
from monitor.rules import RuleSet
from monitor.store.engine import Engine
from monitor.store.verdicts import StoredVerdict, count_items, save_verdicts, verdicts_after

BATCH = 1000


@dataclass(frozen=True)
class Change:
    id: int
    title: str
    was: bool
    now: bool
    score: float
    topics: tuple[str, ...]
    corpus_file: str | None


@dataclass
class ReclassifyReport:
    version: str
    items: int = 0          # items looked at
    rewritten: int = 0      # verdicts written (new version recorded)
    skipped: int = 0        # already classified by this version
    corpus_files: int = 0   # corpus files written for newly relevant items
    announced: int = 0      # alert entries queued for newly relevant items
    changes: list[Change] = field(default_factory=list)  # relevance flipped

    @property
    def newly_relevant(self) -> int:
        return sum(1 for c in self.changes if c.now)

    @property
    def no_longer_relevant(self) -> int:
        return sum(1 for c in self.changes if not c.now)

    def summary(self) -> dict:
        return {"version": self.version, "items": self.items, "rewritten": self.rewritten,
                "skipped": self.skipped, "newly_relevant": self.newly_relevant,
                "no_longer_relevant": self.no_longer_relevant,
                "corpus_files_written": self.corpus_files, "alerts_queued": self.announced}


def reclassify(
    engine: Engine, rules: RuleSet, corpus: Corpus, *, force: bool = False, batch: int = BATCH,
    progress: Callable[[int, int], None] | None = None, alerts: Sequence[AlertSettings] = (),
) -> ReclassifyReport:
    """Re-apply `rules` to the stored items, queueing the newly relevant ones for `alerts`;
    `progress(done, total)` after each batch."""
    version = rules.version
    only_other = None if force else version
    report = ReclassifyReport(version=version)
    total = count_items(engine, not_version=only_other)
    report.skipped = count_items(engine) - total
    report.items = report.skipped
    after = 0
    while True:
        stored = verdicts_after(engine, after, batch, not_version=only_other)
        if not stored:
            break
        # corpus files first (their numbers come from the database, in their own
        # transactions), then the batch's verdicts in one transaction
        rows = [_apply(rules, corpus, item, report) for item in stored]
        now = datetime.now(UTC)
        announce = [(row["item_id"], names) for item, row in zip(stored, rows, strict=True)
                    if row["relevant"] and not item.relevant
                    and (names := alerts_for(alerts, _candidate(item, row), published_after=now))]
        report.announced += sum(len(names) for _, names in announce)
        save_verdicts(engine, rows, now=now, announce=announce)
        after = stored[-1].id
        report.items += len(stored)
        report.rewritten += len(rows)
        if progress is not None:
            progress(report.rewritten, total)
    return report


def _apply(rules: RuleSet, corpus: Corpus, item: StoredVerdict, report: ReclassifyReport) -> dict:
    # as when stored: a corpus file's text already starts with its title line (see initdb)
    verdict = rules.classify("" if item.text_source == "corpus" else item.title, item.text)
    corpus_file = item.corpus_file
    if verdict.relevant and corpus_file is None:
        corpus_file = corpus.write(item.canonical_url or f"item:{item.id}", item.title, item.text)
        report.corpus_files += 1
    if verdict.relevant != item.relevant:
        report.changes.append(Change(item.id, item.title, item.relevant, verdict.relevant,
                                     verdict.score, verdict.topics, corpus_file))
    return {"item_id": item.id, "relevant": verdict.relevant, "score": verdict.score,
            "topics": list(verdict.topics), "matches": verdict.matches_with_rules(),
            "rules_version": verdict.version, "corpus_file": corpus_file}


def _candidate(item: StoredVerdict, row: dict) -> Candidate:
    return Candidate(row["topics"], item.lang, item.feed_name, item.feed_url, row["score"],
                     item.published)
