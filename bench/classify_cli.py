"""Benchmark: `monitor classify --json` over ~20 MB of short real news files, against a plain loop.

In: the real news texts of tests/fixtures/rules/news.jsonl (title + text), cycled into ~8,500
files of ~2.4 kB in a temporary folder, and config/rules.yaml. Out: MB/s (UTF-8 bytes of input
per wall second) of the whole command (`python -m monitor classify --json PATH...`, in a
subprocess: start-up, rules, reading the files, printing the JSON Lines), and of a plain loop
measured in the same run, in this process: read each file, fold it with one str.translate
table after casefold, find ~300 of the rules' terms with pyahocorasick and count hits per group.
Prints the ratio (of wall times, and of CPU times, which the load of a shared machine
disturbs less), checks that the command printed one object per file, and gives the in-process
figures of `RuleSet.classify` on short and long texts. Not a test: figures vary with the load.

    python bench/classify_cli.py [--mb 20] [--rounds 2] [--terms 300]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import ahocorasick

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.rules import load_ruleset, split_document  # noqa: E402
from monitor.rules.normalize import fold  # noqa: E402

NEWS = ROOT / "tests" / "fixtures" / "rules" / "news.jsonl"
RULES = ROOT / "config" / "rules.yaml"
CONFIG = ROOT / "config" / "monitor.yaml"
LONG_TEXT = 3000  # bytes: texts above it are "long", under 1,000 "short" (as bench/rules_speed)


def news_texts() -> list[str]:
    """The real news texts as a classify file has them: the title, a blank line, the text."""
    with NEWS.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [f"{r['title']}\n\n{r['text']}" if r["title"] else r["text"] for r in rows]


def write_files(folder: Path, texts: list[str], megabytes: float) -> list[str]:
    """The texts cycled into files until `megabytes` of UTF-8 are written; their names."""
    names, size, index = [], 0, 0
    while size < megabytes * 1e6:
        data = texts[index % len(texts)].encode("utf-8")
        name = f"{index:05d}.txt"
        (folder / name).write_bytes(data)
        names.append(name)
        size += len(data)
        index += 1
    return names


def fold_table() -> dict[int, str]:
    """A simple fold: every non-alphanumeric character of the texts' range a space, Latin
    accents stripped (after casefold)."""
    table = {}
    for code in range(0x2FFF):
        char = chr(code)
        if not char.isalnum():
            table[code] = " "
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", char)
                           if not unicodedata.combining(c))
            if base != char:
                table[code] = base
    return table


def plain_loop(paths: list[Path], terms: list[tuple[str, str]], table: dict[int, str]) -> int:
    """Read, fold, find `terms` (folded text, group) word-bounded, count hits per group; the
    number of texts with a hit (so that the work is used)."""
    automaton = ahocorasick.Automaton()
    for folded, group in terms:
        key = f" {folded} "
        automaton.add_word(key, automaton.get(key, ()) + (group,))
    automaton.make_automaton()
    with_hits = 0
    for path in paths:
        text = " " + path.read_bytes().decode("utf-8", "replace").casefold().translate(table) + " "
        counts: dict[str, int] = {}
        for _, groups in automaton.iter(text):
            for group in groups:
                counts[group] = counts.get(group, 0) + 1
        with_hits += bool(counts)
    return with_hits


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_monitor(folder: Path, names: list[str]) -> tuple[float, float, list[dict]]:
    """Wall and CPU seconds of `python -m monitor classify --json` over the files, and the
    objects it printed. Run as an installed command runs: its bytecode cached (in the
    temporary folder, whatever PYTHONDONTWRITEBYTECODE says: a first run writes it)."""
    command = [sys.executable, "-m", "monitor", "classify", "--config", str(CONFIG), "--json",
               *names]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONPYCACHEPREFIX": str(folder / "pyc")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cpu, start = children_cpu(), time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, check=True)
    seconds, cpu = time.perf_counter() - start, children_cpu() - cpu
    return seconds, cpu, [json.loads(line) for line in done.stdout.splitlines()]


def in_process(texts: list[str]) -> float:
    """MB/s of `RuleSet.classify` (CPU time of this process), the rules already compiled."""
    rules = load_ruleset(RULES)
    parts = [split_document(t) for t in texts]
    start = time.process_time()
    for title, body in parts:
        rules.classify(title, body)
    seconds = time.process_time() - start
    return sum(len(t.encode("utf-8")) for t in texts) / 1e6 / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--terms", type=int, default=300)
    args = parser.parse_args()

    texts = news_texts()
    spec = load_ruleset(RULES).spec
    step = max(1, len(spec.terms) // args.terms)
    terms = [(fold(t.text.rstrip("*")), t.group) for t in spec.terms[::step]][:args.terms]
    table = fold_table()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = write_files(folder, texts, args.mb)
        paths = [folder / name for name in names]
        size = sum(p.stat().st_size for p in paths) / 1e6
        print(f"{len(names)} files, {size:.1f} MB ({size * 1e3 / len(names):.2f} kB a file), "
              f"loop: {len(terms)} terms of {len(spec.terms)}")
        run_monitor(folder, names[:1])  # warm-up: bytecode and compiled rules cached
        ratios, cpu_ratios = [], []
        for round_ in range(1, args.rounds + 1):
            start, cpu = time.perf_counter(), time.process_time()
            with_hits = plain_loop(paths, terms, table)
            loop, loop_cpu = time.perf_counter() - start, time.process_time() - cpu
            seconds, monitor_cpu, rows = run_monitor(folder, names)
            if [r["path"] for r in rows] != names or not all(
                    {"path", "relevant", "score", "topics", "matches"} <= r.keys() for r in rows):
                raise SystemExit(f"monitor classify printed {len(rows)} objects for "
                                 f"{len(names)} files, or not in order / not whole")
            relevant = sum(r["relevant"] for r in rows)
            ratios.append(loop / seconds)
            cpu_ratios.append(loop_cpu / monitor_cpu)
            print(f"round {round_}: monitor classify --json {size / seconds:.1f} MB/s "
                  f"({seconds:.2f} s, CPU {monitor_cpu:.2f} s, {relevant} relevant) | plain loop "
                  f"{size / loop:.1f} MB/s ({loop:.2f} s, CPU {loop_cpu:.2f} s, {with_hits} "
                  f"with hits) | ratio {loop / seconds:.2f} (CPU {loop_cpu / monitor_cpu:.2f})")
    print(f"ratio (monitor / loop speed), wall: {min(ratios):.2f}-{max(ratios):.2f}; "
          f"CPU time: {min(cpu_ratios):.2f}-{max(cpu_ratios):.2f}")
    short = [t for t in texts if len(t.encode("utf-8")) < 1000]
    long = [t for t in texts if len(t.encode("utf-8")) > LONG_TEXT]
    print(f"in process, RuleSet.classify (CPU): all news {in_process(texts):.1f} MB/s, "
          f"under 1 kB {in_process(short * 10):.1f} MB/s ({len(short)} texts), "
          f"over 3 kB {in_process(long):.1f} MB/s ({len(long)} texts)")


if __name__ == "__main__":
    main()
