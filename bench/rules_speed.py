"""Benchmark: classification speed of the shipped rules on real news text, against a naive baseline.

In: config/rules.yaml (or --rules), the labelled texts of tests/fixtures/rules/ and the corpus files
storage/corpus/*.txt, repeated to a few MB. Out: MB/s (UTF-8 bytes of input per CPU second of
this process: one core, normalisation included) of `RuleSet.classify` one text at a time (the
figure), of its steps, and of a naive baseline measured in the same run:
one compiled regex per term (case-insensitive, word-bounded) over each text, hits counted per
group. Prints the ratio. Not a test: figures vary with the machine and its load.

    python bench/rules_speed.py [--mb 4] [--baseline-mb 0.1] [--rounds 3] [--rules FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.rules import load_ruleset, split_document  # noqa: E402
from monitor.rules.normalize import fold_text  # noqa: E402


def real_texts() -> list[str]:
    texts = []
    for name in ("news.jsonl", "written.jsonl"):  # the labelled texts: a title, then the body
        with (ROOT / "tests" / "fixtures" / "rules" / name).open(encoding="utf-8") as handle:
            lines = [json.loads(line) for line in handle if line.strip()]
        texts += [f"{d['title']}\n\n{d['text']}" if d["title"] else d["text"] for d in lines]
    corpus = sorted((ROOT / "storage" / "corpus").glob("*.txt"))
    texts += [p.read_text(encoding="utf-8") for p in corpus]
    return texts


def repeat_to(texts: list[str], megabytes: float) -> list[str]:
    """The texts in order, again and again, until `megabytes` of UTF-8 are reached."""
    out, size, index = [], 0, 0
    while size < megabytes * 1e6:
        text = texts[index % len(texts)]
        out.append(text)
        size += len(text.encode("utf-8"))
        index += 1
    return out


def mb(texts: list[str]) -> float:
    return sum(len(t.encode("utf-8")) for t in texts) / 1e6


def timed(function, items, rounds: int) -> float:
    """Best of `rounds` CPU seconds of this process for `function` over every item (CPU time:
    other processes on the machine do not count against us; one thread, so one core)."""
    best = []
    for _ in range(rounds):
        start = time.process_time()
        for item in items:
            function(item)
        best.append(time.process_time() - start)
    return min(best)


def naive_baseline(rules):
    """One regex per term: what a first version would do."""
    compiled = []
    for term in rules.spec.terms:
        body = re.escape(term.text.rstrip("*")).replace(r"\ ", r"[\s\-'’]+")
        tail = r"\w*" if term.prefix else ""
        flags = 0 if term.case_sensitive else re.IGNORECASE
        compiled.append((term.group, re.compile(rf"(?<!\w){body}{tail}(?!\w)", flags)))

    def classify(doc: tuple[str, str]) -> Counter:
        counts: Counter = Counter()
        for text in doc:
            for group, pattern in compiled:
                found = len(pattern.findall(text))
                if found:
                    counts[group] += found
        return counts

    return classify


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=4.0, help="MB of text for our classifier")
    parser.add_argument("--baseline-mb", type=float, default=0.1, help="MB for the baseline")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rules", type=Path, default=ROOT / "config" / "rules.yaml",
                        help="the rules file to measure (default: the shipped one)")
    args = parser.parse_args()

    rules = load_ruleset(args.rules)
    base = real_texts()
    texts = repeat_to(base, args.mb)
    docs = [split_document(t) for t in texts]
    size = mb(texts)
    print(f"rules {rules.version}: {len(rules.spec.terms)} terms, {len(rules.spec.rules)} rules, "
          f"{rules.matcher.key_count} automaton keys")
    print(f"text: {len(base)} real texts (fixtures + corpus), repeated to {len(texts)} texts, "
          f"{size:.2f} MB, mean {size * 1e6 / len(texts) / 1000:.1f} kB")

    fold = timed(lambda d: fold_text(f"{d[0]} \x04 {d[1]}"), docs, args.rounds)
    find = timed(lambda d: rules.matcher.find(fold_text(f"{d[0]} \x04 {d[1]}").data), docs,
                 args.rounds)
    ours = timed(lambda d: rules.classify(*d), docs, args.rounds)
    explained = timed(lambda d: rules.classify(*d).matches_with_rules(), docs, args.rounds)
    print(f"  fold only                 {size / fold:8.1f} MB/s")
    print(f"  fold + automaton          {size / find:8.1f} MB/s")
    print(f"  classify (verdict)        {size / ours:8.1f} MB/s   <- the figure "
          f"({ours / len(docs) * 1e6:.0f} µs a text)")
    print(f"  classify + explanation    {size / explained:8.1f} MB/s   (every match with its "
          "offsets and rules, as stored)")
    for label, low, high in (("texts under 1 kB (leads)", 0, 1000),
                             ("texts of 1-3 kB", 1000, 3000), ("texts over 3 kB", 3000, 10**9)):
        part = [d for d, t in zip(docs, texts, strict=True)
                if low <= len(t.encode("utf-8")) < high]
        seconds = timed(lambda d: rules.classify(*d), part, args.rounds)
        print(f"  classify, {label:24s} {mb([a + b for a, b in part]) / seconds:6.1f} MB/s")

    sample = repeat_to(base, args.baseline_mb)
    sample_docs = [split_document(t) for t in sample]
    naive = timed(naive_baseline(rules), sample_docs, 1)
    ratio = (size / ours) / (mb(sample) / naive)
    print(f"  naive per-term regex      {mb(sample) / naive:8.2f} MB/s  (on {mb(sample):.2f} MB)")
    print(f"classify / naive: {ratio:.0f}x")
    sizes = [len(t.encode('utf-8')) for t in base]
    print(f"(text sizes: median {statistics.median(sizes) / 1000:.1f} kB, "
          f"max {max(sizes) / 1000:.1f} kB)")


if __name__ == "__main__":
    main()
