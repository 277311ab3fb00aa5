"""How `rules eval` shows an evaluation: the figures (overall, per language, on clear items,
topics of true positives), the confusion table, and one error explained.

In: an `Evaluation` or one of its `Outcome`s. Out: lines of text. Pure.
"""

from __future__ import annotations

from monitor.cli.output import shorten, verdict_lines
from monitor.rules.evaluate import Evaluation, Figures, Outcome


def figures_text(figures: Figures) -> str:
    return (f"precision {figures.precision:.3f}  recall {figures.recall:.3f}  "
            f"F1 {figures.f1:.3f}")


def figure_lines(result: Evaluation) -> list[str]:
    """The figures overall, the confusion table, then per language, on the items labelled
    clear (when confidences are given) and the topics of the true positives."""
    lines = [figures_text(result),
             "                  labelled relevant   labelled not",
             f"  kept (relevant)   {result.tp:>10}        {result.fp:>10}",
             f"  dropped           {result.fn:>10}        {result.tn:>10}"]
    if len(result.by_lang) > 1:
        lines.append("by language:")
        lines += [f"  {lang:<4} {figures.items:>5} items  {figures_text(figures)}  "
                  f"(fp {figures.fp}, fn {figures.fn})"
                  for lang, figures in sorted(result.by_lang.items())]
    if result.clear is not None:
        lines.append(f"clear items: {result.clear.items}  {figures_text(result.clear)}  "
                     f"(fp {result.clear.fp}, fn {result.clear.fn})")
    if result.topics_labelled:
        lines.append(f"topics of the true positives: {result.topics_same} of "
                     f"{result.topics_labelled} as labelled")
    return lines


def error_lines(outcome: Outcome) -> list[str]:
    """One false positive or negative: where it is, its headline, the score rule by rule and
    the terms matched."""
    item, verdict = outcome.item, outcome.verdict
    label = "false positive" if outcome.kind == "FP" else "false negative"
    terms = ", ".join(f"{m['term']}×{m['count']}" for m in verdict.term_counts()[:12])
    return [f"{label}: {item.id} ({item.where}) {shorten(item.headline, 90)}",
            *verdict_lines(verdict), f"  terms: {terms or '-'}"]
