"""Withdrawn corpus files: the corpus folder holds what the stored verdicts keep. Does I/O.

In: an engine and the `Corpus`. Out: `Settled` (files moved each way, files missing).

Where a file belongs (`belongs_in_withdrawn`): an item's corpus file stays in the corpus folder
while the item is relevant, and whatever the rules say when the item came from the folder
itself (``text_source`` ``corpus``: the shipped seeds and any file people put there, which
`monitor init` imports); else it goes to ``withdrawn/``. The item's ``corpus_file`` says where
it is (``NAME`` or ``withdrawn/NAME``).

Crash safety: rows are written first, then files are moved (one rename each). A run killed
between the two leaves rows ahead of their files; `settle_corpus`, run by `reclassify` and at
start-up (`monitor init`, `monitor run`), finds each file where its row does not say and moves
it, and rewrites the row of an item whose relevance says otherwise (a file kept before
withdrawal existed). Running it again does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.corpus import Corpus, file_name, is_withdrawn, stored_name
from monitor.store.engine import Engine
from monitor.store.verdicts import CorpusHolder, corpus_holders, save_corpus_files


@dataclass(frozen=True)
class Settled:
    withdrawn: int = 0  # files moved to withdrawn/
    restored: int = 0   # files moved back to the corpus folder
    missing: int = 0    # files a row names that are in neither place

    @property
    def moved(self) -> int:
        return self.withdrawn + self.restored


def belongs_in_withdrawn(relevant: bool, text_source: str) -> bool:
    """True when an item's corpus file belongs in withdrawn/ (see the module docstring)."""
    return not relevant and text_source != "corpus"


def placed(corpus_file: str, relevant: bool, text_source: str) -> str:
    """The ``corpus_file`` an item with this file, relevance and source should hold."""
    return stored_name(file_name(corpus_file),
                       withdrawn=belongs_in_withdrawn(relevant, text_source))


def settle_corpus(engine: Engine, corpus: Corpus, *, dry_run: bool = False) -> Settled:
    """Bring rows, then files, in line with the stored verdicts; with `dry_run`, only count
    what would move."""
    holders = corpus_holders(engine)
    wanted = {h.id: placed(h.corpus_file, h.relevant, h.text_source) for h in holders}
    rows = {h.id: wanted[h.id] for h in holders if wanted[h.id] != h.corpus_file}
    if not dry_run:
        save_corpus_files(engine, rows)
    kept, withdrawn = corpus.locations()
    moves, missing = _moves(holders, wanted, kept, withdrawn)
    if not dry_run:
        for target in moves:
            corpus.place(target)
    to_withdrawn = sum(1 for target in moves if is_withdrawn(target))
    return Settled(to_withdrawn, len(moves) - to_withdrawn, missing)


def _moves(holders: list[CorpusHolder], wanted: dict[int, str], kept: set[str],
           withdrawn: set[str]) -> tuple[list[str], int]:
    """(the corpus_file places whose file is in the other place, files in neither place)."""
    moves, missing = [], 0
    for holder in holders:
        target = wanted[holder.id]
        name = file_name(target)
        here, there = (withdrawn, kept) if is_withdrawn(target) else (kept, withdrawn)
        if name in here:
            continue
        if name in there:
            moves.append(target)
        else:
            missing += 1
    return moves, missing
