"""Near-duplicate texts (syndicated copies of one dispatch): MinHash signatures and LSH bands.
Pure: no I/O; the store keeps the bands and signatures (monitor/store/items.py).

In: a text. Out: a `Signature` (a tuple of ``NUM_PERM`` 32-bit ints, small and picklable, so
the extraction worker processes compute it), its LSH band keys (signed 64-bit ints, what the
database indexes to find candidates), the Jaccard similarity two signatures estimate, and the
text's hash to merge exact copies on (`merge_hash`: none for a text too short to tell apart).

How a text is read: case folded, cut into words (``\\w+``, any script), then overlapping
``SHINGLE_WORDS``-word shingles. Each word is hashed once (CRC-32, stable across processes,
unlike ``hash()``), a shingle's hash combines its words' hashes, and each of the ``NUM_PERM``
MinHash functions is a multiply-shift hash of that 64-bit value with fixed-seed constants.
Texts under ``MIN_WORDS`` words get no signature: a two-line summary shares too much with
every other summary of its outlet to say anything.

Chosen by measurement on near-duplicates built from 60 real texts (fr, ar, en; see
tests/test_neardup.py, which prints the figures): 4-word shingles, 120 functions in 40 bands of
3 rows, a copy when the estimated Jaccard is at least ``THRESHOLD`` (0.3). The built copies
(edited headline, agency credit, "Lire aussi" links, cookie notice, paragraphs cut, last
paragraph moved, words changed) and a real communiqué reprinted with edits have an exact
Jaccard of 0.38-1.0; different stories, even one story written up by two outlets or pages
sharing an outlet's template, stay under 0.18. A pair shares a band with probability
1 - (1 - J^3)^40: 0.93 at J = 0.4, 0.995 at 0.5, 0.18 at 0.17 (then refused by the check).
Grouping on the built set: precision 1.0, recall 1.0 (120 texts, 68 copy pairs). SimHash
(64 bits over the same shingles) was measured too and dropped: copies lay up to 21 bits apart
and different stories from 17, so no distance separates them.
Cost: about 0.35 ms for a 600-word text on one core; datasketch's MinHash (SHA-1 per shingle,
Mersenne-prime permutations) took 1.3 ms for the same text, so its few lines are written here.
"""

from __future__ import annotations

import os
import re
import zlib

# numpy serves here for its arrays, never for linear algebra: without this, its OpenBLAS starts
# a thread per extra core on import, which spins for a while (about 0.05 s of CPU in the worker
# and as much in the fork server, taken from a burst's start). The environment may say otherwise.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402  (it reads the setting when it loads)

SHINGLE_WORDS = 4
NUM_PERM = 120
BANDS = 40
ROWS = NUM_PERM // BANDS
THRESHOLD = 0.3
MIN_WORDS = 40
# Texts shorter than this are never merged by their hash: a feed's two-line summaries, a
# headline-only entry and the empty text are shared by different stories. 40 words is about
# two sentences; every full article of the evaluation sets is longer.
MIN_MERGE_WORDS = 40

Signature = tuple[int, ...]

_WORD = re.compile(r"\w+")
_SEED = 20250301  # fixed: signatures stored by one process must compare with another's
_rng = np.random.default_rng(_SEED)
_SHINGLE_MULTIPLIERS = _rng.integers(1, 2**63, SHINGLE_WORDS, dtype=np.uint64) | np.uint64(1)
_PERM_MULTIPLIERS = _rng.integers(1, 2**63, NUM_PERM, dtype=np.uint64) | np.uint64(1)
_PERM_OFFSETS = _rng.integers(0, 2**63, NUM_PERM, dtype=np.uint64)
_SHIFT = np.uint64(32)


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def signature(text: str) -> Signature | None:
    """The MinHash signature of a text; None when it has fewer than ``MIN_WORDS`` words."""
    return _signature(words(text))


def signature_and_merge_hash(text: str, content_hash: str
                             ) -> tuple[Signature | None, str | None]:
    """`signature` and `merge_hash` of one text, its words read once."""
    tokens = words(text)
    return _signature(tokens), _merge_hash(len(tokens), content_hash)


def _signature(tokens: list[str]) -> Signature | None:
    if len(tokens) < MIN_WORDS:
        return None
    hashed = np.fromiter((zlib.crc32(t.encode("utf-8")) for t in tokens), dtype=np.uint64,
                         count=len(tokens))
    count = len(tokens) - SHINGLE_WORDS + 1
    shingles = hashed[:count] * _SHINGLE_MULTIPLIERS[0]
    for offset in range(1, SHINGLE_WORDS):
        shingles = shingles + hashed[offset:offset + count] * _SHINGLE_MULTIPLIERS[offset]
    shingles = np.unique(shingles >> _SHIFT)
    # multiply-shift: the top 32 bits of a*x + b (mod 2^64) for each of the NUM_PERM (a, b)
    values = (shingles[:, None] * _PERM_MULTIPLIERS[None, :] + _PERM_OFFSETS) >> _SHIFT
    return tuple(values.min(axis=0).tolist())


def merge_hash(text: str, content_hash: str) -> str | None:
    """The content hash (`identity.content_hash` of `text`) to merge stories on, or None for a
    text too short to tell stories apart (fewer than ``MIN_MERGE_WORDS`` words)."""
    return _merge_hash(len(words(text)), content_hash)


def _merge_hash(word_count: int, content_hash: str) -> str | None:
    return content_hash if word_count >= MIN_MERGE_WORDS else None


def band_keys(sig: Signature) -> list[int]:
    """One signed 64-bit key per band (the band's number is hashed in: bands never collide)."""
    keys = []
    for band in range(BANDS):
        rows = sig[band * ROWS:(band + 1) * ROWS]
        digest = zlib.crc32(repr((band, rows)).encode("ascii"))
        digest = (digest << 32) | zlib.crc32(repr((rows, band)).encode("ascii"))
        keys.append(digest - (1 << 64) if digest >= 1 << 63 else digest)
    return keys


def similarity(a: Signature, b: Signature) -> float:
    """The Jaccard similarity of the two texts' shingle sets, as their signatures estimate it."""
    return sum(x == y for x, y in zip(a, b, strict=True)) / NUM_PERM


def to_bytes(sig: Signature) -> bytes:
    """The signature as stored: NUM_PERM big-endian unsigned 32-bit ints."""
    return np.asarray(sig, dtype=">u4").tobytes()


def from_bytes(data: bytes) -> Signature:
    return tuple(np.frombuffer(data, dtype=">u4").tolist())
