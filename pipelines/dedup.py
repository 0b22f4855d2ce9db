"""Fingerprints for finding reprints: a MinHash signature of each article's text.

Storage keeps the signatures in a locality-sensitive index and links each reprint to
its original (storage.dedup); this pipeline only computes them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from datasketch import MinHash
from itemadapter import ItemAdapter

from storage.dedup import THRESHOLD, estimate

__all__ = ["THRESHOLD", "DedupPipeline", "estimate", "normalise_for_dedup", "shingles", "signature"]

# Character shingles: Chinese has no spaces to split words at, and five characters
# are about two words, long enough that stock phrases rarely match by chance.
SHINGLE_SIZE = 5
NUM_PERM = 128
# Fixed: signatures from different runs and processes must be comparable.
SEED = 22
SCHEME = "affine32"

_DIGITS = re.compile(r"\d+")
# Everything but letters and digits: white space, punctuation and symbols carry no text.
_NOT_TEXT = re.compile(r"[\W_]+")


def normalise_for_dedup(text: str) -> str:
    """The text that reprints share: Unicode forms folded (NFKC), every number made
    alike (the site moves the years on when it reprints), and nothing but letters and
    digits kept."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return _NOT_TEXT.sub("", _DIGITS.sub("0", folded))


def shingles(text: str) -> set[str]:
    normalised = normalise_for_dedup(text)
    if len(normalised) <= SHINGLE_SIZE:
        return {normalised} if normalised else set()
    return {normalised[i : i + SHINGLE_SIZE] for i in range(len(normalised) - SHINGLE_SIZE + 1)}


# Below this many shingles (about 50 characters) a text is too short for its estimate
# to mean much: such articles are matched only when their whole body is the same.
MIN_SHINGLES = 50


def signature(text: str) -> bytes | None:
    """The MinHash of the text's shingles, as NUM_PERM little-endian uint32 values;
    None for a text too short to compare by similarity."""
    found = shingles(text)
    if len(found) < MIN_SHINGLES:
        return None
    minhash = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME)
    minhash.update_batch([shingle.encode("utf-8") for shingle in found])
    values: bytes = minhash.hashvalues.astype("<u4").tobytes()
    return values


class DedupPipeline:
    """Sets ``signature`` from the body. It runs where pages are read (the extraction
    pool: EXTRACT_PIPELINES), never on the reactor's thread."""

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        adapter["signature"] = signature(adapter.get("body") or "")
        return item
