"""Where reprints and look-alikes fall under the MinHash fingerprints, to choose the
threshold at which the detector links two articles.

    python bench/dedup_quality.py

Builds the labelled set of tests/support/dedup_set.py and prints, per kind of pair, the
estimated Jaccard similarities (min / median / max) and the share of pairs linked at each
threshold: the recall for reprints, the false-positive rate for look-alikes; then the
precision and recall over the whole set.
"""

from __future__ import annotations

import statistics
import sys
import time
from math import ceil, comb
from pathlib import Path

# Run as a script from anywhere: the project root holds the tests package.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.dedup import NUM_PERM, SHINGLE_SIZE, estimate, shingles, signature  # noqa: E402
from tests.support.dedup_set import (  # noqa: E402
    NEGATIVE_KINDS,
    POSITIVE_KINDS,
    Pair,
    build,
    shared_fraction,
)

THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7)


def _linked_chance(jaccard: float, threshold: float) -> float:
    """The chance that the estimate reaches the threshold: each of the NUM_PERM slots
    agrees with probability equal to the true Jaccard similarity."""
    needed = ceil(threshold * NUM_PERM - 1e-9)
    return sum(
        comb(NUM_PERM, k) * jaccard**k * (1 - jaccard) ** (NUM_PERM - k)
        for k in range(needed, NUM_PERM + 1)
    )


def _jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def _count(expected: float) -> str:
    return f"{expected:8.3f}" if expected >= 0.001 or expected == 0 else f"{expected:8.0e}"


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _row(kind: str, scored: list[tuple[Pair, float, float]]) -> str:
    estimates = [score for _, score, _ in scored]
    shared = [fraction for _, _, fraction in scored]
    rates = "".join(
        f"{_percent(sum(score >= t for score in estimates), len(estimates)):>8}" for t in THRESHOLDS
    )
    return (
        f"  {kind:21}{len(scored):6}"
        f"{min(estimates):8.3f}{statistics.median(estimates):8.3f}{max(estimates):8.3f}"
        f"{min(shared):7.2f}–{max(shared):.2f}{rates}"
    )


def main() -> None:
    started = time.perf_counter()
    docs, pairs = build()
    bodies = {doc.url: doc.body for doc in docs}
    signatures = {url: signature(body) for url, body in bodies.items()}
    scored = [
        (
            pair,
            estimate(signatures[pair.a], signatures[pair.b]),
            shared_fraction(bodies[pair.a], bodies[pair.b]),
        )
        for pair in pairs
    ]
    elapsed = time.perf_counter() - started

    positives = [s for s in scored if s[0].duplicate]
    negatives = [s for s in scored if not s[0].duplicate]
    print(
        f"Labelled set: {len(docs)} documents, {len(pairs)} pairs "
        f"({len(positives)} reprints, {len(negatives)} look-alikes); "
        f"MinHash of {SHINGLE_SIZE}-character shingles, {NUM_PERM} permutations; "
        f"built and scored in {elapsed:.1f} s."
    )
    print("Estimated Jaccard similarity per kind; shared = |A∩B| / max(|A|, |B|) of shingles;")
    print("the last columns are the share of pairs linked at each threshold.\n")
    header = "".join(f"{t:>8.2f}" for t in THRESHOLDS)
    print(f"  {'kind':21}{'pairs':>6}{'min':>8}{'median':>8}{'max':>8}{'shared':>12}{header}")
    print("reprints: recall")
    for kind in POSITIVE_KINDS:
        print(_row(kind, [s for s in positives if s[0].kind == kind]))
    print("look-alikes: false positives")
    for kind in NEGATIVE_KINDS:
        print(_row(kind, [s for s in negatives if s[0].kind == kind]))

    print("\nover the whole set")
    precision, recall = [], []
    for t in THRESHOLDS:
        found = sum(score >= t for _, score, _ in positives)
        false_links = sum(score >= t for _, score, _ in negatives)
        precision.append(_percent(found, found + false_links))
        recall.append(_percent(found, len(positives)))
    print(f"  {'precision':61}" + "".join(f"{p:>8}" for p in precision))
    print(f"  {'recall':61}" + "".join(f"{r:>8}" for r in recall))

    # One run of the estimator is one draw: how the chance of a miss or a false link moves
    # with the threshold, from each pair's exact Jaccard similarity.
    print("\nexpected from each pair's exact Jaccard similarity (the estimate is binomial)")
    jaccards = {(pair.a, pair.b): _jaccard(bodies[pair.a], bodies[pair.b]) for pair in pairs}
    missed = [
        sum(1 - _linked_chance(jaccards[p.a, p.b], t) for p, _, _ in positives) for t in THRESHOLDS
    ]
    linked = [
        sum(_linked_chance(jaccards[p.a, p.b], t) for p, _, _ in negatives) for t in THRESHOLDS
    ]
    print(
        f"  {'reprints missed, of ' + str(len(positives)):61}" + "".join(_count(m) for m in missed)
    )
    print(
        f"  {'look-alikes linked, of ' + str(len(negatives)):61}"
        + "".join(_count(x) for x in linked)
    )
    edge_positive, edge_negative = 0.8 / 1.2, 0.5 / 1.5
    print(
        f"  {'a reprint at the 80% limit (J 0.667) missed':61}"
        + "".join(f"{1 - _linked_chance(edge_positive, t):8.1e}" for t in THRESHOLDS)
    )
    print(
        f"  {'a look-alike at the 50% limit (J 0.333) linked':61}"
        + "".join(f"{_linked_chance(edge_negative, t):8.1e}" for t in THRESHOLDS)
    )

    lowest = min(positives, key=lambda s: s[1])
    highest = max(negatives, key=lambda s: s[1])
    print(
        f"\nlowest reprint {lowest[1]:.3f} ({lowest[0].kind}, shared {lowest[2]:.2f}); "
        f"highest look-alike {highest[1]:.3f} ({highest[0].kind}, shared {highest[2]:.2f})"
    )


if __name__ == "__main__":
    main()
