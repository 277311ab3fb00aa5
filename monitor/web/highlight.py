"""Cut a text into plain and matched segments for highlighting, and give the matched groups
their colours. Pure.

In: a text and the stored matches (``term``, ``group``, ``field``, ``start``, ``end``,
``rules``) or bare ``[start, end]`` spans. Out: a list of segments ``{"text", "match"}`` that
cover the text exactly once, in order; ``match`` is None for plain text, else what matched
there (``terms``, ``groups``, ``rules``). No markup is made here: the template escapes every
segment and wraps the matched ones in ``<mark>``, so stored text can never become markup.

`group_legend` numbers the groups matched in an item and gives each a colour class (``g0`` ..
``g7``, or ``penalty`` for a group only penalties look at, per `penalty_groups`), so the page
colours each match by its group and says which group a colour and a number stand for.
"""

from __future__ import annotations

from collections.abc import Iterable

from monitor.rules.ruleset import RuleSpec

GROUP_COLOURS = 8  # the classes g0 .. g7 of style.css


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


def penalty_groups(spec: RuleSpec) -> frozenset[str]:
    """The groups whose matches make a penalty: a rule of negative weight needs them (it cannot
    fire without one of their matches) and no rule of positive weight does."""

    def needed(rule) -> set[str]:
        return ({*rule.all, *rule.any, *rule.near}
                | (rule.when.required() if rule.when is not None else set()))

    penalising = {g for rule in spec.rules if rule.weight < 0 for g in needed(rule)}
    rewarding = {g for rule in spec.rules if rule.weight > 0 for g in needed(rule)}
    return frozenset(penalising - rewarding)


def group_legend(matches: Iterable[dict], penalties: frozenset[str] = frozenset()) -> list[dict]:
    """The groups of `matches`, in the order they first match (title, then text): each with its
    ``key`` (1, 2, … as shown beside a match), its colour ``class``, whether it is a
    ``penalty`` group, its match ``count`` and its ``terms`` (most frequent first)."""
    ordered = sorted(matches, key=lambda m: (m.get("field") != "title", int(m["start"])))
    legend: dict[str, dict] = {}
    for match in ordered:
        group = match.get("group")
        if not group:
            continue
        if group not in legend:
            penalty = group in penalties
            colours = sum(not entry["penalty"] for entry in legend.values())
            legend[group] = {"group": group, "key": len(legend) + 1, "penalty": penalty,
                             "class": "penalty" if penalty else f"g{colours % GROUP_COLOURS}",
                             "count": 0, "terms": {}}
        entry = legend[group]
        entry["count"] += 1
        entry["terms"][match["term"]] = entry["terms"].get(match["term"], 0) + 1
    for entry in legend.values():
        entry["terms"] = [{"term": term, "count": n} for term, n in
                          sorted(entry["terms"].items(), key=lambda t: (-t[1], t[0]))]
    return list(legend.values())


def with_colours(cut: list[dict], legend: list[dict]) -> list[dict]:
    """`cut` (segments) with each match's colour ``class`` (its first group's) and the
    ``numbers`` of its groups ("1" or "1,3"), per `legend`."""
    by_group = {entry["group"]: entry for entry in legend}
    for segment in cut:
        match = segment["match"]
        entries = [by_group[g] for g in (match or {}).get("groups", ()) if g in by_group]
        if entries:
            match["class"] = entries[0]["class"]
            match["numbers"] = ",".join(str(entry["key"]) for entry in entries)
    return cut
