"""Completeness under load: crawls and a replay of the 5,000-article site, each into a
fresh SQLite archive, must store every article and say so in ``runs``.

    python bench/completeness.py                 # ten crawls at concurrency 16, one replay
    python bench/completeness.py --crawls 3 --articles 2000

Not a timing: each run is checked, not timed. A crawl passes when it exits 0, its
archive holds every article of the site, and its run is ``finished`` with every article
it handled accounted for; the replay of the site's files likewise. The crawls run as a
scheduled crawl under load would: AutoThrottle and delays off, 16 requests in flight,
through bench/server.py, the site's stand-in on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import DEFAULT_WORK, FAST, prepare_site, run_child, serving, settings  # noqa: E402


def check(database: Path, expected: int) -> tuple[bool, str]:
    """Whether the archive holds ``expected`` articles and its one run says so."""
    connection = sqlite3.connect(database)
    try:
        rows = connection.execute("SELECT count(*) FROM articles").fetchone()[0]
        status, handled, new, dropped = connection.execute(
            "SELECT status, articles_handled, articles_new, dropped FROM runs"
        ).fetchone()
    finally:
        connection.close()
    ok = rows == expected and status == "finished" and new == handled == expected
    return ok, f"{rows:,} rows; run {status}: {new:,} new of {handled:,} handled, dropped {dropped}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crawls", type=int, default=10)
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args()
    mirror, site = prepare_site(args.work_dir, args.articles)
    work = args.work_dir / "completeness"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    concurrency = str(args.concurrency)
    common = settings(
        *FAST,
        f"CONCURRENT_REQUESTS={concurrency}",
        f"CONCURRENT_REQUESTS_PER_DOMAIN={concurrency}",
        "LOG_LEVEL=WARNING",
    )
    results: list[tuple[str, bool, str]] = []
    with serving(mirror) as (proxy, _):
        env = {**os.environ, "http_proxy": proxy, "no_proxy": "", "NO_PROXY": ""}
        env.pop("https_proxy", None)
        for number in range(1, args.crawls + 1):
            folder = work / f"crawl-{number}"
            folder.mkdir()
            database = folder / "archive.sqlite3"
            child = run_child(
                [sys.executable, "-m", "scrapy", "crawl", "ylwt22", *common,
                 *settings(f"WARC_DIR={folder / 'warc'}",
                           f"DATABASE_SPILL_DIR={folder / 'unsaved'}")],
                cwd=ROOT,
                env={**env, "DATABASE_URL": f"sqlite:///{database}"},
                log=folder / "crawl.log",
            )  # fmt: skip
            ok, detail = check(database, site.articles)
            results.append((f"crawl {number} ({child.seconds:.0f} s)", ok, detail))
            print(f"{results[-1][0]}: {'ok' if ok else 'FAILED'}: {detail}", flush=True)
    folder = work / "replay"
    folder.mkdir()
    database = folder / "archive.sqlite3"
    child = run_child(
        [sys.executable, "-m", "scrapy", "replay", *settings(*FAST, "LOG_LEVEL=WARNING"),
         str(mirror)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{database}"},
        log=folder / "replay.log",
    )  # fmt: skip
    ok, detail = check(database, site.articles)
    results.append((f"replay ({child.seconds:.0f} s)", ok, detail))
    print(f"{results[-1][0]}: {'ok' if ok else 'FAILED'}: {detail}", flush=True)
    failed = [name for name, ok, _ in results if not ok]
    print(f"{len(results) - len(failed)} of {len(results)} runs stored all {site.articles:,}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
