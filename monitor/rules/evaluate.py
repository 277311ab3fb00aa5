"""Measure rules on labelled items: precision, recall, F1, confusions, each error explained.

In: a `RuleSet` and `Labelled` items (`labelled.py` reads them). Out: an `Evaluation`: the
figures overall, per language (``lang``), on the items labelled ``confidence: clear`` (when
any item says its confidence), the topics the rules gave to the true positives against the
labelled ones, and the errors. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from monitor.rules import RuleSet, Verdict
from monitor.rules.labelled import Labelled


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
class Figures:
    """A confusion table and what it gives: precision, recall and F1 (1.0 when undefined)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def count(self, kind: str) -> None:
        setattr(self, kind.lower(), getattr(self, kind.lower()) + 1)

    @property
    def items(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

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

    def figures(self) -> dict:
        return {"items": self.items,
                "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4),
                "confusion": {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}}


@dataclass
class Evaluation(Figures):
    errors: list[Outcome] = field(default_factory=list)  # false positives and negatives
    by_lang: dict[str, Figures] = field(default_factory=dict)  # items without lang: "-"
    clear: Figures | None = None  # None: no item says its confidence
    topics_same: int = 0  # true positives labelled with topics whose rules' topics are those
    topics_labelled: int = 0  # true positives labelled with topics

    def add(self, outcome: Outcome) -> None:
        item, kind = outcome.item, outcome.kind
        self.count(kind)
        self.by_lang.setdefault(item.lang or "-", Figures()).count(kind)
        if item.confidence is not None:
            self.clear = self.clear or Figures()
            if item.confidence == "clear":
                self.clear.count(kind)
        if kind == "TP" and item.topics:
            self.topics_labelled += 1
            self.topics_same += set(item.topics) == set(outcome.verdict.topics)
        if kind in ("FP", "FN"):
            self.errors.append(outcome)

    @property
    def frozen_errors(self) -> list[Outcome]:
        """The errors on items of the frozen split (none of them opened yet): looking at one
        moves it to the tuning split."""
        return [outcome for outcome in self.errors if outcome.item.split == "frozen"]

    def summary(self) -> dict:
        """The figures as plain data: overall, ``by_lang``, ``clear`` (None without
        confidences) and ``topics`` on true positives (None without labelled topics)."""
        return {**self.figures(),
                "by_lang": {lang: f.figures() for lang, f in sorted(self.by_lang.items())},
                "clear": self.clear.figures() if self.clear is not None else None,
                "topics": ({"same": self.topics_same, "of": self.topics_labelled}
                           if self.topics_labelled else None)}


def evaluate(rules: RuleSet, items: Iterable[Labelled]) -> Evaluation:
    """Classify every item's title and body and count."""
    result = Evaluation()
    for item in items:
        result.add(Outcome(item, rules.classify(item.title, item.body)))
    return result
