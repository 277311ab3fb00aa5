"""Measure rules on a labelled set: precision, recall, F1, confusions, each error explained.

In: a `RuleSet` and labelled lines ``{"text" or "path", "relevant": bool, "lang": ...}`` (JSON
Lines; a ``path`` is read relative to the labelled file). Out: an `Evaluation`; raises `LabelError`
(a `RulesError`, exit 2) naming the file and line of a bad line. Pure apart from reading files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from monitor.errors import RulesError
from monitor.rules import RuleSet, Verdict, split_document


class LabelError(RulesError):
    reason = "labels"


@dataclass(frozen=True)
class Labelled:
    line: int
    id: str
    text: str
    relevant: bool
    lang: str | None = None

    @property
    def title(self) -> str:
        return split_document(self.text)[0]

    @property
    def body(self) -> str:
        return split_document(self.text)[1]


@dataclass(frozen=True)
class Outcome:
    item: Labelled
    verdict: Verdict

    @property
    def kind(self) -> str:
        if self.verdict.relevant:
            return "TP" if self.item.relevant else "FP"
        return "FN" if self.item.relevant else "TN"


@dataclass
class Evaluation:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    errors: list[Outcome] = field(default_factory=list)  # false positives and negatives

    def add(self, outcome: Outcome) -> None:
        kind = outcome.kind
        setattr(self, kind.lower(), getattr(self, kind.lower()) + 1)
        if kind in ("FP", "FN"):
            self.errors.append(outcome)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def summary(self) -> dict:
        return {"items": self.tp + self.fp + self.fn + self.tn,
                "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4),
                "confusion": {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}}


def read_labelled(path: Path) -> Iterator[Labelled]:
    """The labelled items of a JSON Lines file, in order."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LabelError(f"cannot read the labelled file ({exc.strerror})", path=str(path)) from exc
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise LabelError(f"not JSON: {exc.msg}", path=str(path), line=number) from exc
        if not isinstance(data, dict) or not isinstance(data.get("relevant"), bool):
            raise LabelError('each line needs "relevant": true or false', path=str(path),
                             line=number, key="relevant")
        if isinstance(data.get("text"), str):
            text = data["text"]
        elif isinstance(data.get("path"), str):
            target = (path.parent / data["path"]).resolve()
            try:
                text = target.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise LabelError(f"cannot read {data['path']} ({exc.strerror})", path=str(path),
                                 line=number, key="path") from exc
        else:
            raise LabelError('each line needs "text" or "path"', path=str(path), line=number,
                             key="text")
        yield Labelled(line=number, id=str(data.get("id") or data.get("path") or f"line {number}"),
                       text=text, relevant=data["relevant"],
                       lang=data["lang"] if isinstance(data.get("lang"), str) else None)


def evaluate(rules: RuleSet, items: Iterable[Labelled]) -> Evaluation:
    """Classify every item (first line a title when a blank line follows) and count."""
    result = Evaluation()
    for item in items:
        result.add(Outcome(item, rules.classify(*split_document(item.text))))
    return result
