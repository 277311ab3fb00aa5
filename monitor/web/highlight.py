"""Cut a text into plain and matched segments for highlighting. Pure.

In: a text and the stored matches (``term``, ``group``, ``field``, ``start``, ``end``,
``rules``) or bare ``[start, end]`` spans. Out: a list of segments ``{"text", "match"}`` that
cover the text exactly once, in order; ``match`` is None for plain text, else what matched
there (``terms``, ``groups``, ``rules``). No markup is made here: the template escapes every
segment and wraps the matched ones in ``<mark>``, so stored text can never become markup.
"""

from __future__ import annotations

from collections.abc import Iterable


def segments(text: str, matches: Iterable[dict], *, field: str | None = None) -> list[dict]:
    """Segments of `text`; `matches` of another `field` than the one given are ignored.

    Overlapping matches are merged into one marked segment that lists every term, group and
    rule involved; offsets outside the text are dropped.
    """
    chosen = sorted(
        (m for m in matches
         if (field is None or m.get("field") == field)
         and 0 <= int(m["start"]) < int(m["end"]) <= len(text)),
        key=lambda m: (int(m["start"]), -int(m["end"])),
    )
    merged: list[list] = []  # [start, end, [matches]]
    for match in chosen:
        start, end = int(match["start"]), int(match["end"])
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][2].append(match)
        else:
            merged.append([start, end, [match]])
    out: list[dict] = []
    position = 0
    for start, end, group in merged:
        if start > position:
            out.append({"text": text[position:start], "match": None})
        out.append({"text": text[start:end], "match": {
            "terms": list(dict.fromkeys(m.get("term", text[start:end]) for m in group)),
            "groups": list(dict.fromkeys(m["group"] for m in group if m.get("group"))),
            "rules": list(dict.fromkeys(r for m in group for r in m.get("rules") or ())),
        }})
        position = end
    if position < len(text) or not out:
        out.append({"text": text[position:], "match": None})
    return out


def span_segments(text: str, spans: Iterable[list[int]]) -> list[dict]:
    """Segments of `text` for bare ``[start, end]`` spans (search hits)."""
    return segments(text, ({"start": s, "end": e, "term": text[s:e]} for s, e in spans))
