"""`monitor reclassify`: re-apply the current rules to every stored item. Does I/O.

In: an engine, the current `RuleSet`, the `Corpus`. Out: a `ReclassifyReport` (items seen,
verdicts rewritten, what changed). Items are read in id order in batches (keyset paging) and
each batch is written in one transaction, so an interrupted run keeps the batches it finished
and a new run goes on where it stopped: items already classified by these rules (same
`rules_version`) are skipped unless ``force``. A batch is read, classified, its newly relevant
items written to the corpus, then its verdicts saved in one transaction.

The corpus folder holds what the current rules keep (see `withdrawal`). An item that becomes
relevant gets a corpus file (written before its batch commits; writing is idempotent per key,
so a batch that failed and is run again finds its file), or gets back the file it had, from
``withdrawn/``. An item that stops being relevant has its file moved to ``withdrawn/`` (the
seeds never move). Files are moved after their batch commits; a run first finishes the moves
an interrupted run left (`settle_corpus`). Items are keyed by their canonical URL, or
``item:<id>`` when they have none.

With ``dry_run`` nothing is written: no verdict, no corpus file, no corpus number, no move; the
report says what a run would do (a file to be written has no name yet).

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
from monitor.corpus import Corpus, is_withdrawn
from monitor.rules import RuleSet, stored_parts
from monitor.store.engine import Engine
from monitor.store.totals import corpus_file_counts
from monitor.store.verdicts import StoredVerdict, count_items, save_verdicts, verdicts_after
from monitor.worker.withdrawal import Settled, placed, settle_corpus

BATCH = 1000


@dataclass(frozen=True)
class Change:
    id: int
    title: str
    was: bool
    now: bool
    score: float
    topics: tuple[str, ...]
    corpus_file: str | None  # where its file is after the run (None: none, or not yet named)
    corpus: str | None  # "written", "withdrawn", "restored", or None: its file did not move


@dataclass
class ReclassifyReport:
    version: str
    dry_run: bool = False
    items: int = 0          # items looked at
    rewritten: int = 0      # verdicts written (new version recorded)
    skipped: int = 0        # already classified by this version
    corpus_files: int = 0   # corpus files written for newly relevant items
    withdrawn: int = 0      # corpus files moved to withdrawn/
    restored: int = 0       # corpus files moved back from withdrawn/
    settled: Settled = Settled()  # moves an interrupted run had left, finished first
    withdrawn_files: int = 0  # files in withdrawn/ after the run (now, for a dry run)
    announced: int = 0      # alert entries queued for newly relevant items
    changes: list[Change] = field(default_factory=list)  # relevance flipped

    @property
    def newly_relevant(self) -> int:
        return sum(1 for c in self.changes if c.now)

    @property
    def no_longer_relevant(self) -> int:
        return sum(1 for c in self.changes if not c.now)

    def summary(self) -> dict:
        return {"version": self.version, "dry_run": self.dry_run, "items": self.items,
                "rewritten": self.rewritten, "skipped": self.skipped,
                "newly_relevant": self.newly_relevant,
                "no_longer_relevant": self.no_longer_relevant,
                "corpus_files_written": self.corpus_files,
                "corpus_files_withdrawn": self.withdrawn,
                "corpus_files_restored": self.restored,
                "pending_moves_finished": self.settled.moved,
                "withdrawn_files": self.withdrawn_files, "alerts_queued": self.announced}


def reclassify(
    engine: Engine, rules: RuleSet, corpus: Corpus, *, force: bool = False, batch: int = BATCH,
    dry_run: bool = False, progress: Callable[[int, int], None] | None = None,
    alerts: Sequence[AlertSettings] = (),
) -> ReclassifyReport:
    """Re-apply `rules` to the stored items, queueing the newly relevant ones for `alerts`;
    `progress(done, total)` after each batch."""
    version = rules.version
    only_other = None if force else version
    report = ReclassifyReport(version=version, dry_run=dry_run)
    report.settled = settle_corpus(engine, corpus, dry_run=dry_run)
    total = count_items(engine, not_version=only_other)
    report.skipped = count_items(engine) - total
    report.items = report.skipped
    after = 0
    while True:
        stored = verdicts_after(engine, after, batch, not_version=only_other)
        if not stored:
            break
        # corpus files first (their numbers come from the database, in their own
        # transactions), then the batch's verdicts in one transaction, then the moves
        rows = [_apply(rules, corpus, item, report) for item in stored]
        now = datetime.now(UTC)
        announce = [(row["item_id"], names) for item, row in zip(stored, rows, strict=True)
                    if row["relevant"] and not item.relevant
                    and (names := alerts_for(alerts, _candidate(item, row), published_after=now))]
        report.announced += sum(len(names) for _, names in announce)
        if not dry_run:
            save_verdicts(engine, rows, now=now, announce=announce)
            for item, row in zip(stored, rows, strict=True):
                if item.corpus_file is not None and row["corpus_file"] != item.corpus_file:
                    corpus.place(row["corpus_file"])
        after = stored[-1].id
        report.items += len(stored)
        report.rewritten += len(rows)
        if progress is not None:
            progress(report.rewritten, total)
    report.withdrawn_files = corpus_file_counts(engine)[1]
    return report


def _apply(rules: RuleSet, corpus: Corpus, item: StoredVerdict, report: ReclassifyReport) -> dict:
    verdict = rules.classify(*stored_parts(item.title, item.text, item.text_source))
    corpus_file, action = _corpus_file(corpus, item, verdict.relevant, report.dry_run)
    if action == "written":
        report.corpus_files += 1
    elif action == "withdrawn":
        report.withdrawn += 1
    elif action == "restored":
        report.restored += 1
    if verdict.relevant != item.relevant:
        report.changes.append(Change(item.id, item.title, item.relevant, verdict.relevant,
                                     verdict.score, verdict.topics, corpus_file, action))
    return {"item_id": item.id, "relevant": verdict.relevant, "score": verdict.score,
            "topics": list(verdict.topics), "matches": verdict.matches_with_rules(),
            "rules_version": verdict.version, "corpus_file": corpus_file}


def _corpus_file(corpus: Corpus, item: StoredVerdict, relevant: bool,
                 dry_run: bool) -> tuple[str | None, str | None]:
    """(the item's corpus_file after this verdict, what happens to its file): a file written
    for a relevant item without one (not in a dry run: None), else its file's place as the
    verdict wants it, compared with its place under the stored verdict (where `settle_corpus`
    has put it)."""
    if item.corpus_file is None:
        if not relevant:
            return None, None
        if dry_run:
            return None, "written"
        key = item.canonical_url or f"item:{item.id}"
        return corpus.write(key, item.title, item.text), "written"
    before = placed(item.corpus_file, item.relevant, item.text_source)
    after = placed(item.corpus_file, relevant, item.text_source)
    if after == before:
        return after, None
    return after, "withdrawn" if is_withdrawn(after) else "restored"


def _candidate(item: StoredVerdict, row: dict) -> Candidate:
    return Candidate(row["topics"], item.lang, item.feed_name, item.feed_url, row["score"],
                     item.published)
