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
import statistics
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
TREE_EVERY = 10  # polls between readings of a process tree's memory (they cost more)
# The crawl's settings on both sides of measure 1, and for the replay.
FAST = ("AUTOTHROTTLE_ENABLED=False", "DOWNLOAD_DELAY=0", "RETRY_BACKOFF_BASE=0")
_STAT = re.compile(r"'([\w/]+)': (\d+(?:\.\d+)?)[,}]")


@dataclass
class Child:
    """A finished child process: wall time, its own peak RSS, the peak memory of it and
    every process it started (the extraction pool's), and its log."""

    seconds: float
    peak_mb: float
    status: int
    log: str
    ended: float  # time.perf_counter() when it exited
    tree_pss_mb: float = 0.0
    """The most memory the process and its descendants held at once, as proportional
    set size: a page shared by n processes (the pool's workers share what their fork
    server loaded) counts 1/n in each, so the sum is what they use together."""
    tree_rss_mb: float = 0.0
    """The same, as resident set size: shared pages counted in every process."""

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
    tree: bool = False,
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
    # own memory (VmHWM) only grows, so the last reading is its peak, within POLL. The
    # tree's memory is sampled: its sum over processes has no high-water mark.
    peak_kib = tree_pss = tree_rss = 0
    polls = 0
    while process.poll() is None:
        peak_kib = max(peak_kib, _high_water_mark(process.pid))
        if tree and polls % TREE_EVERY == 0:
            pss, rss = _tree_memory(process.pid)
            tree_pss, tree_rss = max(tree_pss, pss), max(tree_rss, rss)
        polls += 1
        time.sleep(POLL)
    ended = time.perf_counter()
    reader.join()
    text = "".join(lines)
    log.write_text(text)
    if process.returncode:
        tail = "\n".join(text.splitlines()[-15:])
        raise RuntimeError(f"{' '.join(args[:5])}… exited {process.returncode}:\n{tail}")
    return Child(
        ended - started, peak_kib / 1024, process.returncode, text, ended,
        tree_pss / 1024, tree_rss / 1024,
    )  # fmt: skip


def _high_water_mark(pid: int) -> int:
    """The peak resident memory of the process, in KiB (0 once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found[1]) if found else 0


def _tree_memory(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in KiB summed over the process and its descendants, as they are now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    pss = rss = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
        except OSError:
            continue
        for name, value in re.findall(r"^(Pss|Rss):\s+(\d+) kB", rollup, re.MULTILINE):
            if name == "Pss":
                pss += int(value)
            else:
                rss += int(value)
    return pss, rss


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
            child = run_child(
                command, cwd=cwd, env={**env, **extra}, log=runs / f"{name}.log", tree=True
            )
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
            f"{stats['elapsed_time_seconds']:.1f} s; peak memory of its processes "
            f"{child.tree_pss_mb:.0f} MB PSS, {child.tree_rss_mb:.0f} MB RSS "
            f"(the main process alone: {child.peak_mb:.0f} MB RSS)"
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
            f"5 crawl peak memory, all processes, MB PSS ({site.pages:,} pages)",
            f"{ours.tree_pss_mb:.0f}",
            f"{bare.tree_pss_mb:.0f} bare",
            ours.tree_pss_mb / bare.tree_pss_mb,
            "≤ 2",
            ours.tree_pss_mb <= 2 * bare.tree_pss_mb,
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


def trafilatura_rate(mirror: Path, sample: int) -> tuple[float, str]:
    """Pages per second of trafilatura.extract alone over a spread sample of the site's
    article pages, and a note saying what was measured."""
    import trafilatura  # noqa: PLC0415  (the bench extra)

    files = sorted((mirror / HOST).glob("*/*/*/*.html"))  # the article pages
    chosen = random.Random(2).sample(files, min(sample, len(files)))
    documents = [file.read_bytes().decode() for file in chosen]
    trafilatura.extract(documents[0])  # its first call loads what it needs
    started = time.perf_counter()
    for document in documents:
        trafilatura.extract(document)
    rate = len(documents) / (time.perf_counter() - started)
    return rate, (
        f"trafilatura {trafilatura.__version__}: {rate:.0f} pages/s over {len(documents):,} "
        f"of the {len(files):,} article pages"
    )


def replay_child(work: Path, name: str, args: Sequence[str], database: Path) -> Child:
    return run_child(
        [sys.executable, "-m", "scrapy", *args, *settings(*FAST, "LOG_LEVEL=INFO")],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{database}"},
        log=work / f"{name}.log",
        tree=True,
    )


def pages_per_second(child: Child) -> tuple[float, float]:
    """(pages read, pages per second) of a replay or re-extraction."""
    stats = child.stats()
    return stats["replay/pages"], stats["replay/pages"] / stats["elapsed_time_seconds"]


def measure_replay(
    work: Path, mirror: Path, args: argparse.Namespace, reference: float
) -> tuple[list[Row], list[str]]:
    """Measure 2: replay of the site's files, database writes included."""
    runs = work / "replay"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir()
    child = replay_child(runs, "replay", ["replay", str(mirror)], runs / "replay.sqlite3")
    pages, ours = pages_per_second(child)
    ratio = ours / reference
    notes = [
        f"replay: {pages:,.0f} pages in {child.stats()['elapsed_time_seconds']:.1f} s; peak "
        f"memory of its processes {child.tree_pss_mb:.0f} MB PSS"
    ]
    row = Row("2 replay, pages/s", f"{ours:.0f}", f"{reference:.0f} trafilatura", ratio,
              "≥ 2", ratio >= 2)  # fmt: skip
    return [row], notes


def measure_reextract(work: Path, reference: float) -> tuple[list[Row], list[str]]:
    """Measure 2b: `scrapy reextract` over the archive the crawl of measure 1 left, its
    raw pages read back from the crawl's WARC files."""
    archive = work / "crawl" / "crawl.sqlite3"
    if not archive.exists():
        raise RuntimeError("measure 2b re-extracts the archive of measure 1: run both")
    copy = work / "reextract.sqlite3"
    shutil.copy2(archive, copy)
    child = replay_child(work, "reextract", ["reextract"], copy)
    pages, ours = pages_per_second(child)
    copy.unlink()
    ratio = ours / reference
    row = Row("2b reextract, pages/s", f"{ours:.0f}", f"{reference:.0f} trafilatura", ratio,
              "≥ 2", ratio >= 2)  # fmt: skip
    return [row], [f"reextract: {pages:,.0f} pages from the crawl's WARC files"]


def measure_replay_scale(work: Path, args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    """Measure 7: replay of a site ten times larger, against the site of measure 1: the
    time per page and the peak memory must stay flat."""
    small, large = args.articles, args.articles * 10
    children = []
    for count in (small, large):
        mirror, _ = prepare_site(work, count)
        runs = work / f"replay-{count}"
        shutil.rmtree(runs, ignore_errors=True)
        runs.mkdir()
        children.append(
            replay_child(runs, "replay", ["replay", str(mirror)], runs / "replay.sqlite3")
        )
        (runs / "replay.sqlite3").unlink()
    per_page = [child.stats()["elapsed_time_seconds"] / pages_per_second(child)[0] * 1000
                for child in children]  # fmt: skip
    time_ratio = per_page[1] / per_page[0]
    memory_ratio = children[1].tree_pss_mb / children[0].tree_pss_mb
    rows = [
        Row(f"7 replay, ms/page at {large:,} vs {small:,} articles", f"{per_page[1]:.2f}",
            f"{per_page[0]:.2f}", time_ratio, "≤ 1.2", time_ratio <= 1.2),
        Row(f"7 replay peak memory, MB PSS at {large:,} vs {small:,}",
            f"{children[1].tree_pss_mb:.0f}", f"{children[0].tree_pss_mb:.0f}", memory_ratio,
            "≤ 1.2", memory_ratio <= 1.2),
    ]  # fmt: skip
    return rows, []


def measure_start(work: Path, rounds: int = 7) -> tuple[list[Row], list[str]]:
    """Measure 6: `scrapy version` in the project, the start-up every command pays,
    against the same Scrapy outside it; medians of ``rounds`` runs each, alternated."""
    outside = work / "outside"
    outside.mkdir(exist_ok=True)
    seconds: dict[str, list[float]] = {"project": [], "scrapy": []}
    memory: dict[str, list[float]] = {"project": [], "scrapy": []}
    for _ in range(rounds):
        for name, cwd in (("project", ROOT), ("scrapy", outside)):
            child = run_child(
                [sys.executable, "-m", "scrapy", "version"], cwd=cwd, env=dict(os.environ),
                log=work / f"version-{name}.log",
            )  # fmt: skip
            seconds[name].append(child.seconds)
            memory[name].append(child.peak_mb)
    wall = {name: statistics.median(values) for name, values in seconds.items()}
    peak = {name: statistics.median(values) for name, values in memory.items()}
    wall_ratio, memory_ratio = wall["project"] / wall["scrapy"], peak["project"] / peak["scrapy"]
    rows = [
        Row("6 start-up (scrapy version), s", f"{wall['project']:.2f}",
            f"{wall['scrapy']:.2f} Scrapy alone", wall_ratio, "≤ 1.3", wall_ratio <= 1.3),
        Row("6 start-up peak RSS, MB", f"{peak['project']:.0f}",
            f"{peak['scrapy']:.0f} Scrapy alone", memory_ratio, "≤ 1.3", memory_ratio <= 1.3),
    ]  # fmt: skip
    return rows, []


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


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="1,2,2b,3,4,5,6,7",
                        help="the measures to run (2b: re-extraction)")  # fmt: skip
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
    args.only = {"22" if x == "2b" else x for x in args.only.split(",")}
    args.archive_sizes = sorted(int(x) for x in args.archive_sizes.split(","))
    if len(args.archive_sizes) != 2:
        parser.error("--archive-sizes takes two sizes")
    args.work_dir = args.work_dir.resolve()
    if args.work_dir.is_relative_to(ROOT):
        parser.error("--work-dir must be outside the repository")
    return args


def measures(args: argparse.Namespace) -> Iterator[tuple[list[Row], list[str]]]:
    """Each part that was asked for, in an order where each finds what it needs: the
    re-extraction reads the crawl's archive, and the references are measured first."""
    work, only = args.work_dir, {int(x) for x in args.only}
    if only & {1, 2, 22, 5}:
        mirror, site = prepare_site(work, args.articles)
        if only & {1, 5}:
            yield measure_crawl(work, mirror, site, args)
        if only & {2, 22}:
            reference, note = trafilatura_rate(mirror, args.extract_sample)
            yield [], [note]
            if 2 in only:
                yield measure_replay(work, mirror, args, reference)
            if 22 in only:
                yield measure_reextract(work, reference)
    if 6 in only:
        yield measure_start(work)
    if 7 in only:
        yield measure_replay_scale(work, args)
    if only & {3, 4}:
        yield measure_archive(work, args)


def _number(row: Row) -> int:
    """The measure's number; 2b counts as 22."""
    first = row.measure.split()[0]
    return 22 if first == "2b" else int(first)


def main() -> None:
    args = arguments()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows: list[Row] = []
    notes: list[str] = []
    loads = [os.getloadavg()[0]]
    for found, said in measures(args):
        rows += [row for row in found if str(_number(row)) in args.only]
        notes += said
        loads.append(os.getloadavg()[0])
    rows.sort(key=lambda row: (_number(row) if _number(row) != 22 else 2.5, row.measure))
    print("\n".join([
        *table(rows),
        "",
        *machine(),
        "Load average (1 min) before and after each part: "
        + ", ".join(f"{load:.2f}" for load in loads),
        f"Total run time: {time.perf_counter() - started:.0f} s",
        "",
        *notes,
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
