"""The benchmarks: the crawl, replay, near-duplicate linking and export, each against a
reference measured in the same run, on a synthetic site in the live site's format.

    pip install -e '.[bench]'
    python bench/run.py                          # everything: about 9 minutes on two cores
    python bench/run.py --only 1,2,5 --articles 2000
    python bench/run.py --db postgresql          # measures 3 and 4 on PostgreSQL
    python bench/run.py --only 1 --profile       # where the crawl's time goes

Measures (ours against the reference, and the target for their ratio):

1. Crawl: pages per second of `scrapy crawl ylwt22` (every pipeline, SQLite, WARC files)
   against bench/bare_spider.py, a bare Scrapy spider that follows the same links and
   keeps nothing, both through the same HTTP proxy at the same concurrency, with
   AutoThrottle and delays off. Target: ≥ 0.8.
2. Replay: pages per second of `scrapy replay MIRROR` (database writes included) against
   trafilatura.extract alone over the same pages (a spread sample of them). Target: ≥ 2.
3. Near-duplicate cost per stored article (bench/dedup_cost.py), at the larger archive
   against the smaller one. Target: ≤ 1.3.
4. Export: rows per second of `scrapy export -o x.csv` and its peak memory at the larger
   archive against the smaller. Target: memory flat (a ratio ≤ FLAT_MEMORY).
5. Peak memory (RSS) of the crawl of measure 1. Reported.

The site (bench/mirror.py) is served by bench/server.py, a Twisted proxy in its own
process that holds the mirror in memory; the crawls reach it through `http_proxy` as
http://www.ylwt22.com/, so they store the site's own URLs. Its CPU time during each crawl
is printed: well under one core means it is not what limits the crawl. Peak memory is
each child process's own (VmHWM in /proc, read as it runs). Everything is written under
--work-dir, outside the repository; the site is kept there between runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import scrapy  # noqa: E402

from bench import dedup_cost  # noqa: E402
from bench.corpus import generate  # noqa: E402
from bench.mirror import HOST, WrittenSite, write_site  # noqa: E402
from crawler.pages.article import parse_article_page  # noqa: E402
from storage.db import open_database  # noqa: E402

DEFAULT_WORK = Path(tempfile.gettempdir()) / "ylwt22-bench"
FLAT_MEMORY = 1.25
POLL = 0.02  # seconds between readings of a child's peak memory
# The crawl's settings on both sides of measure 1, and for the replay.
FAST = ("AUTOTHROTTLE_ENABLED=False", "DOWNLOAD_DELAY=0", "RETRY_BACKOFF_BASE=0")
_STAT = re.compile(r"'([\w/]+)': (\d+(?:\.\d+)?)[,}]")


@dataclass
class Child:
    """A finished child process: wall time, its own peak RSS, and its log."""

    seconds: float
    peak_mb: float
    status: int
    log: str
    ended: float  # time.perf_counter() when it exited

    def stats(self) -> dict[str, float]:
        """The numbers of Scrapy's closing stats dump."""
        return {name: float(value) for name, value in _STAT.findall(self.log)}


@dataclass
class Row:
    measure: str
    ours: str
    reference: str
    ratio: float | None
    target: str
    met: bool | None


def run_child(
    args: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log: Path,
    watch: Callable[[str], None] | None = None,
) -> Child:
    """Run a command to its end, its output to ``log`` and each line to ``watch`` as it
    comes."""
    lines: list[str] = []
    started = time.perf_counter()
    process = subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if watch:
                watch(line)

    reader = threading.Thread(target=read)
    reader.start()
    # Not wait4's ru_maxrss: a child forked from this process counts this process's
    # memory as its own until it execs. The kernel's high-water mark of the program's
    # own memory (VmHWM) only grows, so the last reading is its peak, within POLL.
    peak_kib = 0
    while process.poll() is None:
        peak_kib = max(peak_kib, _high_water_mark(process.pid))
        time.sleep(POLL)
    ended = time.perf_counter()
    reader.join()
    text = "".join(lines)
    log.write_text(text)
    if process.returncode:
        tail = "\n".join(text.splitlines()[-15:])
        raise RuntimeError(f"{' '.join(args[:5])}… exited {process.returncode}:\n{tail}")
    return Child(ended - started, peak_kib / 1024, process.returncode, text, ended)


def _high_water_mark(pid: int) -> int:
    """The peak resident memory of the process, in KiB (0 once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found[1]) if found else 0


def settings(*pairs: str) -> list[str]:
    return [arg for pair in pairs for arg in ("-s", pair)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serving(mirror: Path) -> Iterator[tuple[str, int]]:
    """The proxy URL of bench/server.py serving ``mirror``, and its pid."""
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "server.py"), str(mirror)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"the server did not start: {line!r}")
        yield line.split()[-1], server.pid
    finally:
        server.terminate()
        server.wait()


# ---------------------------------------------------------------------------------------
# The site.


def prepare_site(work: Path, count: int) -> tuple[Path, WrittenSite]:
    mirror = work / f"site-{count}"
    marker = mirror / "written.txt"
    if marker.exists():
        fields = [int(x) for x in marker.read_text().split()]
        print(f"Site of {count:,} articles from {mirror}", file=sys.stderr)
        return mirror, WrittenSite(*fields)
    shutil.rmtree(mirror, ignore_errors=True)
    print(f"Writing a site of {count:,} articles to {mirror}", file=sys.stderr)
    written = write_site(mirror, generate(count))
    check_sample(mirror)
    marker.write_text(
        f"{written.articles} {written.article_pages} {written.list_pages} {written.bytes}"
    )
    return mirror, written


def check_sample(mirror: Path, size: int = 200) -> None:
    """The extractor must read the generated pages as articles, with nothing missing."""
    pages = sorted((mirror / HOST).glob("*/*/*/*.html"))
    for file in random.Random(1).sample(pages, min(size, len(pages))):
        url = f"http://{file.relative_to(mirror).as_posix()}"
        page = parse_article_page(url, file.read_bytes(), {"Content-Type": "text/html"})
        if not page.is_article or page.problems or not page.body_lines:
            raise RuntimeError(f"{url} does not extract: {page.problems}")


# ---------------------------------------------------------------------------------------
# The measures.


def measure_crawl(
    work: Path, mirror: Path, site: WrittenSite, args: argparse.Namespace
) -> tuple[list[Row], list[str]]:
    """Measures 1 and 5."""
    concurrency = str(args.concurrency)
    common = settings(
        *FAST,
        f"CONCURRENT_REQUESTS={concurrency}",
        f"CONCURRENT_REQUESTS_PER_DOMAIN={concurrency}",
        "LOG_LEVEL=INFO",
    )
    runs = work / "crawl"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir()
    notes = []
    with serving(mirror) as (proxy, server_pid):
        env = {**os.environ, "http_proxy": proxy, "no_proxy": "", "NO_PROXY": ""}
        env.pop("https_proxy", None)

        def timed(name: str, command: list[str], cwd: Path, extra: dict[str, str]) -> Child:
            before = cpu_seconds(server_pid)
            child = run_child(command, cwd=cwd, env={**env, **extra}, log=runs / f"{name}.log")
            served = cpu_seconds(server_pid) - before
            notes.append(
                f"server CPU during the {name} crawl: {served:.1f} s of {child.seconds:.1f} s "
                f"({100 * served / child.seconds:.0f}% of one core)"
            )
            return child

        # Run outside the project, so the bare spider has Scrapy's defaults.
        bare = timed(
            "bare",
            [
                sys.executable,
                "-m",
                "scrapy",
                "runspider",
                str(ROOT / "bench" / "bare_spider.py"),
                *common,
            ],
            runs,
            {},
        )
        profile = ["-m", "cProfile", "-o", str(runs / "crawl.prof")] if args.profile else []
        ours = timed(
            "ylwt22",
            [sys.executable, *profile, "-m", "scrapy", "crawl", "ylwt22", *common,
             *settings(f"WARC_DIR={runs / 'warc'}", f"DATABASE_SPILL_DIR={runs / 'unsaved'}")],
            ROOT,
            {"DATABASE_URL": f"sqlite:///{runs / 'crawl.sqlite3'}"},
        )  # fmt: skip
    stored = sqlite3.connect(runs / "crawl.sqlite3").execute("SELECT count(*) FROM articles")
    count = stored.fetchone()[0]
    if count != site.articles:
        raise RuntimeError(f"the crawl stored {count} of {site.articles} articles")
    rates = []
    for child in (ours, bare):
        stats = child.stats()
        rates.append(stats["downloader/response_count"] / stats["elapsed_time_seconds"])
        notes.append(
            f"{'ylwt22' if child is ours else 'bare'}: "
            f"{stats['downloader/response_count']:,.0f} responses in "
            f"{stats['elapsed_time_seconds']:.1f} s, peak RSS {child.peak_mb:.0f} MB"
        )
    if args.profile:
        notes += profile_summary(runs / "crawl.prof")
    ratio = rates[0] / rates[1]
    return [
        Row(
            f"1 crawl, pages/s ({site.pages:,} pages, concurrency {concurrency})",
            f"{rates[0]:.0f}",
            f"{rates[1]:.0f} bare",
            ratio,
            "≥ 0.8",
            ratio >= 0.8,
        ),
        Row(
            f"5 crawl peak RSS, MB ({site.pages:,} pages)",
            f"{ours.peak_mb:.0f}",
            f"{bare.peak_mb:.0f} bare",
            None,
            "reported",
            None,
        ),
    ], notes


def profile_summary(path: Path, limit: int = 25) -> list[str]:
    import io  # noqa: PLC0415
    import pstats  # noqa: PLC0415

    out = io.StringIO()
    pstats.Stats(str(path), stream=out).sort_stats("tottime").print_stats(limit)
    return [
        "",
        f"cProfile of the ylwt22 crawl ({path}), by own time:",
        *out.getvalue().splitlines(),
    ]


def measure_replay(
    work: Path, mirror: Path, args: argparse.Namespace
) -> tuple[list[Row], list[str]]:
    """Measure 2."""
    import trafilatura  # noqa: PLC0415  (the bench extra)

    runs = work / "replay"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir()
    child = run_child(
        [sys.executable, "-m", "scrapy", "replay", *settings(*FAST, "LOG_LEVEL=INFO"),
         str(mirror)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{runs / 'replay.sqlite3'}"},
        log=runs / "replay.log",
    )  # fmt: skip
    stats = child.stats()
    pages = stats["downloader/response_count"]
    ours = pages / stats["elapsed_time_seconds"]

    files = sorted((mirror / HOST).glob("*/*/*/*.html"))  # the article pages replayed
    sample = random.Random(2).sample(files, min(args.extract_sample, len(files)))
    documents = [file.read_bytes().decode() for file in sample]
    trafilatura.extract(documents[0])  # its first call loads what it needs
    started = time.perf_counter()
    for document in documents:
        trafilatura.extract(document)
    reference = len(documents) / (time.perf_counter() - started)
    ratio = ours / reference
    notes = [
        f"replay: {pages:,.0f} pages in {stats['elapsed_time_seconds']:.1f} s, "
        f"peak RSS {child.peak_mb:.0f} MB; trafilatura {trafilatura.__version__} "
        f"over {len(documents):,} of the {len(files):,} pages"
    ]
    row = Row("2 replay, pages/s", f"{ours:.0f}", f"{reference:.0f} trafilatura", ratio,
              "≥ 2", ratio >= 2)  # fmt: skip
    return [row], notes


def export(work: Path, url: str, name: str) -> tuple[int, float, Child]:
    """`scrapy export -o x.csv`: the rows, their rate and the process. The rate is
    timed from the export's first progress line, when the command has started and the
    first rows are out, so that the command's start-up does not weigh on the small
    archive more than on the large one."""
    target = work / f"{name}.csv"
    first_progress: list[float] = []

    def watch(line: str) -> None:
        if not first_progress and line.startswith("exporting: "):
            first_progress.append(time.perf_counter())

    child = run_child(
        [sys.executable, "-m", "scrapy", "export", "-o", str(target)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        log=work / f"{name}.log",
        watch=watch,
    )
    target.unlink()
    found = re.search(r"exported (\d+) articles", child.log)
    progress = re.search(r"exporting: (\d+)/", child.log)
    if not (found and progress and first_progress):
        raise RuntimeError(f"no export count in {work / f'{name}.log'}")
    rows, timed_rows = int(found[1]), int(found[1]) - int(progress[1])
    if not timed_rows:  # all in the first progress step: only the whole run can be timed
        return rows, rows / child.seconds, child
    return rows, timed_rows / (child.ended - first_progress[0]), child


def measure_archive(work: Path, args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    """Measures 3 and 4: bench/dedup_cost.py fills an archive to each size; the export is
    timed at the smaller size on its own archive, and at the larger on dedup_cost's."""
    small, large = args.archive_sizes
    articles = list(generate(large + args.measure))
    signatures = dedup_cost._signatures(articles, work)
    results: list[dedup_cost.Measurement] = []
    exports: list[tuple[int, float, Child]] = []
    postgres = args.postgres_url
    with dedup_cost.fresh_database(args.db, work, postgres) as url:
        engine = open_database(url)
        try:
            dedup_cost._fill(engine, articles, signatures, start=0, end=small)
        finally:
            engine.dispose()
        exports.append(export(work, url, "export-small"))
    with dedup_cost.fresh_database(args.db, work, postgres) as url:
        dedup_cost.run(
            args.db, url, articles, signatures, sizes=[small, large], measure=args.measure,
            profile=False, results=results,
        )  # fmt: skip
        exports.append(export(work, url, "export-large"))
    first, last = results[0], results[-1]
    cost = last.median_ms / first.median_ms
    (n_small, rate_small, child_small), (n_large, rate_large, child_large) = exports
    memory = child_large.peak_mb / child_small.peak_mb
    rows = [
        Row(
            f"3 dedup, ms/article at {large:,} vs {small:,} ({args.db})",
            f"{last.median_ms:.2f}",
            f"{first.median_ms:.2f}",
            cost,
            f"≤ {dedup_cost.TARGET_RATIO}",
            cost <= dedup_cost.TARGET_RATIO,
        ),
        Row(
            f"4 export, rows/s at {n_large:,} vs {n_small:,}",
            f"{rate_large:,.0f}",
            f"{rate_small:,.0f}",
            rate_large / rate_small,
            "reported",
            None,
        ),
        Row(
            "4 export peak RSS, MB",
            f"{child_large.peak_mb:.0f}",
            f"{child_small.peak_mb:.0f}",
            memory,
            f"flat (≤ {FLAT_MEMORY})",
            memory <= FLAT_MEMORY,
        ),
    ]
    notes = [
        "dedup: "
        + "; ".join(
            f"{r.size:,}: {r.median_ms:.2f} ms median, {r.overall_ms:.2f} overall, "
            f"{r.candidates / r.articles:.2f} candidates/article, {r.linked}/{r.reprints} "
            f"reprints linked"
            for r in results
        )
    ]
    return rows, notes


# ---------------------------------------------------------------------------------------
# The report.


def machine() -> list[str]:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    ram = next(
        int(line.split()[1]) / 1024**2
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return [
        f"Machine: {model}, {os.cpu_count()} cores, {ram:.1f} GiB RAM",
        f"Python {platform.python_version()}, Scrapy {scrapy.__version__}, "
        f"SQLite {sqlite3.sqlite_version}; code {dedup_cost._code_version()}",
    ]


def table(rows: Sequence[Row]) -> list[str]:
    header = ("measure", "ours", "reference", "ratio", "target", "met?")
    cells = [
        (
            r.measure,
            r.ours,
            r.reference,
            "" if r.ratio is None else f"{r.ratio:.2f}",
            r.target,
            "" if r.met is None else ("yes" if r.met else "NO"),
        )
        for r in rows
    ]
    lines = [f"| {' | '.join(header)} |", f"|{'|'.join(' --- ' for _ in header)}|"]
    lines += [f"| {' | '.join(c)} |" for c in cells]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="1,2,3,4,5", help="the measures to run")
    parser.add_argument("--articles", type=int, default=5000, help="articles on the site")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--extract-sample", type=int, default=1000,
                        help="pages trafilatura extracts for measure 2")  # fmt: skip
    parser.add_argument("--archive-sizes", default="10000,100000", help="measures 3 and 4")
    parser.add_argument("--measure", type=int, default=2000, help="articles timed, measure 3")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=dedup_cost.DEFAULT_POSTGRES)
    parser.add_argument("--profile", action="store_true", help="cProfile the ylwt22 crawl")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args()
    only = {int(x) for x in args.only.split(",")}
    args.archive_sizes = sorted(int(x) for x in args.archive_sizes.split(","))
    if len(args.archive_sizes) != 2:
        parser.error("--archive-sizes takes two sizes")
    work = args.work_dir.resolve()
    if work.is_relative_to(ROOT):
        parser.error("--work-dir must be outside the repository")
    work.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    rows: list[Row] = []
    notes: list[str] = []
    loads = []
    if only & {1, 2, 5}:
        mirror, site = prepare_site(work, args.articles)
        if only & {1, 5}:
            loads.append(os.getloadavg()[0])
            found, said = measure_crawl(work, mirror, site, args)
            rows += [r for r in found if int(r.measure[0]) in only]
            notes += said
        if 2 in only:
            loads.append(os.getloadavg()[0])
            found, said = measure_replay(work, mirror, args)
            rows += found
            notes += said
    if only & {3, 4}:
        loads.append(os.getloadavg()[0])
        found, said = measure_archive(work, args)
        rows += [r for r in found if int(r.measure[0]) in only]
        notes += said
    rows.sort(key=lambda r: r.measure)
    print("\n".join([
        *table(rows),
        "",
        *machine(),
        "Load average (1 min) at the start of each part: "
        + ", ".join(f"{load:.2f}" for load in loads),
        f"Total run time: {time.perf_counter() - started:.0f} s",
        "",
        *notes,
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
