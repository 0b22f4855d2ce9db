"""What one article costs the crawl's interpreter, stage by stage, each timed alone.

    python bench/article_cost.py [--site DIR] [--pages N]

Over N article pages of a site that bench/mirror.py wrote (bench/run.py keeps one in
/tmp/ylwt22-bench/site-5000), prints the milliseconds per page of each part of the work
the crawl does in Python beside Scrapy's own: reading the page (crawler/pages/), and the
MinHash signature split into its parts (the text's shingles, hashing them with SHA-1,
the permutations); and, where trafilatura is installed (the bench extra), its
extraction of the same pages. bench/dedup_cost.py measures the database write.

All of it runs under one interpreter lock, with Scrapy's own work on each request: these
numbers bound what the crawl can reach against a bare spider or a bare extractor.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from datasketch import MinHash

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.mirror import HOST  # noqa: E402
from crawler.pages.article import parse_article_page  # noqa: E402
from pipelines.dedup import NUM_PERM, SCHEME, SEED, shingles, signature  # noqa: E402

DEFAULT_SITE = Path("/tmp/ylwt22-bench/site-5000")
HEADERS = {"Content-Type": "text/html"}
ROUNDS = 3  # the best of three passes: the least disturbed by other work


def per_page_ms(items: Sequence[Any], work: Callable[[Any], object]) -> float:
    """The best of ROUNDS passes over ``items``, in ms per item."""
    passes = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for item in items:
            work(item)
        passes.append(1000 * (time.perf_counter() - started) / len(items))
    return min(passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--site", type=Path, default=DEFAULT_SITE)
    parser.add_argument("--pages", type=int, default=500)
    args = parser.parse_args()
    files = sorted((args.site / HOST).glob("*/*/*/*.html"))
    if not files:
        parser.error(f"no article pages under {args.site / HOST}: run bench/mirror.py first")
    sample = random.Random(1).sample(files, min(args.pages, len(files)))
    pages = [(f"http://{f.relative_to(args.site).as_posix()}", f.read_bytes()) for f in sample]

    read = [parse_article_page(url, body, HEADERS) for url, body in pages]
    bodies = ["\n".join(page.body_lines) for page in read]
    encoded = [[s.encode("utf-8") for s in shingles(body)] for body in bodies]

    def hashed(items: list[bytes]) -> None:
        MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME).update_batch(items)

    rows = [
        (
            "read the page (crawler/pages)",
            per_page_ms(pages, lambda p: parse_article_page(*p, HEADERS)),
        ),
        ("signature, all of it", per_page_ms(bodies, signature)),
        ("  shingles of the text", per_page_ms(bodies, shingles)),
        ("  hashing and permutations", per_page_ms(encoded, hashed)),
    ]
    try:
        import trafilatura  # noqa: PLC0415  (the bench extra)
    except ImportError:
        print("trafilatura is not installed (pip install -e '.[bench]'): left out", file=sys.stderr)
    else:
        trafilatura.extract(pages[0][1])  # its first call loads what it needs
        rows.append(
            ("trafilatura.extract", per_page_ms(pages, lambda p: trafilatura.extract(p[1])))
        )

    print(f"{len(pages)} article pages of {args.site}; ms per page, best of {ROUNDS} passes")
    print(f"(shingles per page: median {statistics.median(len(e) for e in encoded):.0f})")
    for name, ms in rows:
        print(f"{name:<34} {ms:6.2f}")


if __name__ == "__main__":
    main()
