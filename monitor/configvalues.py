"""Values of the configuration files as people write them: durations, sizes, language codes.

In: a value read from YAML (a number or a string with a unit). Out: seconds, bytes, the code;
raises ValueError with a message saying what would be valid (pydantic makes it a `ConfigError`
naming the file, the line and the key). Pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from monitor.yamlfile import quoted

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_UNIT_BYTES = {None: 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9,
               "kib": 2**10, "mib": 2**20, "gib": 2**30}
# Bounds far past any sensible setting: they turn a typo (or `.inf`) into a message instead of
# an overflow in date arithmetic, a timer or a comparison far from the file.
MAX_DURATION = 365 * 86400.0
MAX_SIZE = 2**40
_LANGUAGE = re.compile(r"^[a-z]{2}$")


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"45s"``, ``"15m"``, ``"2h"`` or ``"1d"``: positive and at most
    `MAX_DURATION` (``.nan`` and ``.inf`` are not durations)."""
    seconds = _quantity(value, _DURATION, _UNIT_SECONDS, "duration",
                        "900, '45s', '15m', '2h', '1d'")
    if seconds <= 0:
        raise ValueError("a duration must be positive, e.g. '15m'")
    if seconds > MAX_DURATION:
        raise ValueError(f"{quoted(value)} is too long: a duration is at most 365d")
    return seconds


def describe_duration(seconds: float) -> str:
    """A duration as people read it: ``45 s``, ``90 min``, ``5 h``, ``1.5 d``."""
    for unit, size, below in (("s", 1, 120), ("min", 60, 7200), ("h", 3600, 172800)):
        if seconds < below:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds / 86400:.3g} d"


def parse_size(value: Any) -> int:
    """Bytes from ``1048576``, ``"512 KB"`` or ``"10 MiB"``: positive and at most `MAX_SIZE`."""
    size = _quantity(value, _SIZE, _UNIT_BYTES, "size", "1048576, '512 KB', '10 MiB'")
    if size > MAX_SIZE:
        raise ValueError(f"{quoted(value)} is too large: a size is at most 1024 GiB")
    if int(size) <= 0:
        raise ValueError("a size must be positive, e.g. '5 MiB'")
    return int(size)


def _quantity(value: Any, pattern: re.Pattern, units: Mapping[str | None, int], what: str,
              examples: str) -> float:
    """`value`, a number or a string of digits and a unit of `units`, in base units (possibly
    infinite: a bound is the caller's); anything else, ``.nan`` and ``.inf`` are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a {what} such as {examples}")
    refused = ValueError(f"{quoted(value)} is not a {what}; use e.g. {examples}")
    if isinstance(value, str):
        match = pattern.match(value)
        if not match:
            raise refused
        unit = match.group(2).lower() if match.group(2) else None
        return float(match.group(1)) * units[unit]  # a few hundred digits make inf
    if isinstance(value, float) and not math.isfinite(value):
        raise refused
    try:
        return float(value)
    except OverflowError:  # an integer of a few hundred digits
        return math.inf


def language_code(value: str | None) -> str | None:
    """A two-letter language code such as ``fr``, ``ar`` or ``en`` (None stays None)."""
    if value is not None and not _LANGUAGE.match(value):
        raise ValueError(f"{quoted(value)} is not a language code; use two letters such as "
                         "fr, ar or en")
    return value
