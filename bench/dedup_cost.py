"""What storing an article costs as the archive grows, near-duplicate linking included.

    python bench/dedup_cost.py                          # both databases, 10,000 and 100,000
    python bench/dedup_cost.py --db sqlite --sizes 1000,5000 --measure 500
    python bench/dedup_cost.py --db sqlite --profile    # and where the time goes

The default run takes about 15 minutes on two cores, and 3 more the first time, to
compute the signatures. It measures the storage code of the checkout it runs from.

For each database (a SQLite file, and a PostgreSQL database created for the run and
dropped after it), the archive is filled with the synthetic site of bench/corpus.py up to
each size, then the next --measure articles are stored as the crawl stores them: batches
of DATABASE_BATCH_SIZE (100) records, one transaction each, through upsert_articles, which
indexes the signatures and links reprints to their originals. About 7% of the articles
are reprints of one published in the year before, so linking is part of what is timed.
The filler goes through upsert_articles in the same batches; on PostgreSQL its
statistics are refreshed every ANALYZE_EVERY articles, as autovacuum would keep them.

Printed: ms per stored article (wall time of the transaction, commit included: the median
of the batches and overall), the LSH candidates each stored article was compared with
(counted with a query after each batch, outside the timing), the reprints linked, the
time the filler took, the load average (other work on the machine slows the writes),
and the ratio between the largest and the smallest archive; the
machine; and the cost of the MinHash signature, which the pipeline computes before the
write and is not in the transaction. With --profile, for each size: the time of each
statement (until the next one begins, so fetching its rows and the Python work on them
are in it), the plans of the two costliest queries, and the storage functions by
cumulative time.

The corpus is generated afresh on each run (it is seeded); its signatures (about 2 ms an
article) are computed once and kept in --cache-dir, outside the repository. The SQLite
file is written there too and deleted at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import itertools
import os
import platform
import pstats
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import datasketch
import numpy as np
from sqlalchemy import Engine, create_engine, event, func, make_url, select
from sqlalchemy.orm import Session, aliased

# Run as a script from anywhere: the project root holds the bench and tests packages.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.corpus import SyntheticArticle, as_record, generate  # noqa: E402
from pipelines.dedup import signature  # noqa: E402
from storage.db import open_database, session_factory  # noqa: E402
from storage.models import Article, LshBucket  # noqa: E402
from storage.repository import upsert_articles  # noqa: E402

# As the crawl writes (crawler/settings.py, DATABASE_BATCH_SIZE).
BATCH_SIZE = 100
# The filler is stored in the crawl's batches too. Larger ones would be faster but make
# relink's (band, bucket) IN list longer than the databases take: PostgreSQL's default
# max_stack_depth (2 MB) refuses it between 300 and 400 articles, and at 250, before
# autovacuum had analysed the table, one lookup ran for over 18 minutes; SQLite allows
# 32,766 bound values, about 650 articles.
FILL_BATCH_SIZE = BATCH_SIZE
# PostgreSQL statistics are refreshed this often during the fill, as autovacuum keeps
# them on an archive that grew over months: without them the lookups are planned for a
# table of unknown size.
ANALYZE_EVERY = 10_000
SIGNATURE_SAMPLE = 1000
TARGET_RATIO = 1.3
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "ylwt22-bench"
DEFAULT_POSTGRES = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass
class Measurement:
    database: str
    size: int  # articles stored before the measured ones
    batch_ms: list[float] = field(default_factory=list)  # per article, one per batch
    total_s: float = 0.0
    articles: int = 0
    candidates: int = 0
    reprints: int = 0
    linked: int = 0  # reprints among the measured that the write linked to an original
    false_links: int = 0  # originals that it linked to something
    fill_s: float = 0.0  # database time of the filler stored before this size
    filled: int = 0
    # The machine's 1-minute load average after the measured batches: other work running
    # at the same time slows them down.
    load: float = 0.0
    profile: str = ""

    @property
    def median_ms(self) -> float:
        return statistics.median(self.batch_ms)

    @property
    def overall_ms(self) -> float:
        return 1000 * self.total_s / self.articles


# ---------------------------------------------------------------------------------------
# The corpus and its signatures.


def _signatures(articles: Sequence[SyntheticArticle], cache_dir: Path) -> list[bytes]:
    """The MinHash signature of every article, from the cache when it holds them."""
    # A cache belongs to one signature function and serves any prefix of its corpus: the
    # digests of the bodies say which articles it holds.
    version = hashlib.sha256(
        (ROOT / "pipelines" / "dedup.py").read_bytes() + datasketch.__version__.encode()
    ).hexdigest()[:12]
    digests = np.array(
        [hashlib.blake2b(a.body.encode(), digest_size=8).digest() for a in articles], dtype="S8"
    )
    for path in sorted(cache_dir.glob(f"signatures-{version}-*.npz")):
        with np.load(path) as cached:
            if len(cached["digests"]) >= len(articles) and np.array_equal(
                cached["digests"][: len(articles)], digests
            ):
                print(f"Signatures from {path}", file=sys.stderr)
                rows = cached["signatures"][: len(articles)]
                return [row.tobytes() for row in rows]
    started = time.perf_counter()
    print(f"Computing {len(articles):,} signatures...", file=sys.stderr)
    with Pool(os.cpu_count()) as pool:
        computed = pool.map(signature, [a.body for a in articles], chunksize=500)
    if any(s is None for s in computed):
        raise RuntimeError("an article too short to have a signature")
    path = cache_dir / f"signatures-{version}-{len(articles)}.npz"
    matrix = np.frombuffer(b"".join(s for s in computed if s), "<u4").reshape(len(articles), -1)
    np.savez(path, digests=digests, signatures=matrix)
    print(
        f"  in {time.perf_counter() - started:.0f} s on {os.cpu_count()} processes; kept in {path}",
        file=sys.stderr,
    )
    return [s for s in computed if s]


def _signature_cost(articles: Sequence[SyntheticArticle]) -> tuple[float, float]:
    """(median, mean) ms of one signature, in this process, over a spread of articles."""
    step = max(1, len(articles) // SIGNATURE_SAMPLE)
    times = []
    for article in articles[::step][:SIGNATURE_SAMPLE]:
        started = time.perf_counter()
        signature(article.body)
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times), statistics.fmean(times)


# ---------------------------------------------------------------------------------------
# Databases.


@contextmanager
def fresh_database(kind: str, cache_dir: Path, postgres_url: str) -> Iterator[str]:
    """The URL of an empty database of the kind, removed when done."""
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="dedup-cost-", dir=cache_dir))
        try:
            yield f"sqlite:///{folder / 'archive.sqlite3'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    name = f"ylwt22_dedup_cost_{os.getpid()}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


class StatementProfile:
    """Where a write's time goes, statement by statement: each statement is charged from
    its execution until the next one begins (or the commit), which takes in fetching
    its rows and the Python work on them; cProfile adds the functions of storage/."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.totals: dict[str, list[float]] = {}  # label -> [executions, seconds]
        self.examples: dict[str, tuple[str, Any]] = {}  # label -> (statement, parameters)
        self.profiler = cProfile.Profile()
        self._pending: tuple[str, float] | None = None
        self._active = False
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "commit", self._close)

    @contextmanager
    def active(self) -> Iterator[None]:
        self._active = True
        self.profiler.enable()
        try:
            yield
        finally:
            self.profiler.disable()
            self._close()
            self._active = False

    def detach(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "commit", self._close)

    def _before(self, *args: Any) -> None:
        _connection, _cursor, statement, parameters, _context, executemany = args
        self._close()
        if not self._active:
            return
        label = _label(statement)
        self._pending = (label, time.perf_counter())
        if label not in self.examples and not executemany and label.startswith("SELECT"):
            self.examples[label] = (statement, parameters)

    def _close(self, *_: Any) -> None:
        if self._pending is not None:
            label, started = self._pending
            total = self.totals.setdefault(label, [0, 0.0])
            total[0] += 1
            total[1] += time.perf_counter() - started
            self._pending = None

    def report(self, articles: int, batches: int, total_s: float, limit: int = 8) -> str:
        lines = [f"{'ms/article':>10} {'per batch':>9}  statement"]
        ranked = sorted(self.totals.items(), key=lambda item: -item[1][1])
        for label, (count, seconds) in ranked[:limit]:
            lines.append(f"{1000 * seconds / articles:>10.3f} {count / batches:>9.1f}  {label}")
        rest = total_s - sum(seconds for _, seconds in self.totals.values())
        lines.append(f"{1000 * rest / articles:>10.3f} {'':>9}  before the first statement, commit")
        for label in [label for label, _ in ranked if label in self.examples][:2]:
            lines += ["", f"plan of: {label}", *self._plan(*self.examples[label])]
        out = io.StringIO()
        stats = pstats.Stats(self.profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(r"/storage/", limit)
        listing = out.getvalue().splitlines()
        start = next((i for i, line in enumerate(listing) if "ncalls" in line), len(listing))
        lines += ["", "cProfile, storage/ by cumulative time:", *listing[start:]]
        return "\n".join(line.rstrip() for line in lines if line.strip())

    def _plan(self, statement: str, parameters: Any) -> list[str]:
        explain = "EXPLAIN QUERY PLAN " if self.engine.dialect.name == "sqlite" else "EXPLAIN "
        with self.engine.connect() as connection:
            plan = connection.exec_driver_sql(explain + statement, parameters)
            rows = [str(row[-1]) for row in plan]
        # A plan with one branch per value is long: its head and its JIT lines tell it.
        shown = [row for i, row in enumerate(rows) if i < 6 or "JIT" in row or "Options" in row]
        shown = [row if len(row) <= 150 else row[:149] + "…" for row in shown]
        return [*shown, f"({len(rows)} lines)"] if len(shown) < len(rows) else shown


def _label(statement: str) -> str:
    """A statement in one line, its lists of values and of columns shortened."""
    text = " ".join(statement.split())
    text = re.sub(r"%\(\w+\)s(::\w+)?", "?", text)
    text = re.sub(r"\(\?, \?\)(, \(\?, \?\))+", "(?, ?), …", text)
    text = re.sub(r"\?(, \?)+", "…", text)
    text = re.sub(r"^SELECT (.{60,}?) FROM", "SELECT … FROM", text)
    text = re.sub(r"^INSERT INTO (\w+) \(.*?\) VALUES \(…\)", r"INSERT INTO \1 VALUES (…)", text)
    text = re.sub(r"DO UPDATE SET .*", "DO UPDATE …", text)
    return text if len(text) <= 120 else text[:119] + "…"


def _server_version(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with engine.connect() as connection:
        version = connection.exec_driver_sql("SHOW server_version").scalar_one()
    return f"PostgreSQL {str(version).split()[0]}"


def _candidates(session: Session, ids: Sequence[int]) -> int:
    """Pairs of (stored article, other article) that share an LSH bucket: the
    candidates relink compared, the batch's own articles among them."""
    mine, other = aliased(LshBucket), aliased(LshBucket)
    pairs = (
        select(mine.article_id, other.article_id.label("other"))
        .join(other, (other.band == mine.band) & (other.bucket == mine.bucket))
        .where(mine.article_id.in_(ids), other.article_id != mine.article_id)
        .distinct()
        .subquery()
    )
    return session.execute(select(func.count()).select_from(pairs)).scalar_one()


def _fill(
    engine: Engine,
    articles: Sequence[SyntheticArticle],
    signatures: Sequence[bytes],
    *,
    start: int,
    end: int,
) -> float:
    """Store articles[start:end] as the crawl does; the seconds spent in transactions."""
    sessions = session_factory(engine)
    spent = 0.0
    for first in range(start, end, FILL_BATCH_SIZE):
        last = min(first + FILL_BATCH_SIZE, end)
        records = [as_record(articles[i], signatures[i]) for i in range(first, last)]
        started = time.perf_counter()
        with sessions.begin() as session:
            upsert_articles(session, records)
        spent += time.perf_counter() - started
        if last // ANALYZE_EVERY > first // ANALYZE_EVERY or last == end:
            if engine.dialect.name == "postgresql":
                with engine.begin() as connection:
                    connection.exec_driver_sql("ANALYZE")
            rate = 1000 * spent / (last - start)
            print(f"  {last:,} stored ({rate:.2f} ms per article)", file=sys.stderr)
    return spent


def run(
    kind: str,
    url: str,
    articles: Sequence[SyntheticArticle],
    signatures: Sequence[bytes],
    *,
    sizes: Sequence[int],
    measure: int,
    profile: bool,
    results: list[Measurement],
) -> str:
    """Fill a fresh database to each size and time the next ``measure`` articles; each
    size's Measurement joins ``results`` when done. Returns the database's version."""
    engine = open_database(url)
    sessions = session_factory(engine)
    version = _server_version(engine)
    stored = 0
    try:
        for size in sizes:
            print(f"{kind}: filling to {size:,}", file=sys.stderr)
            result = Measurement(kind, size, filled=size - stored)
            result.fill_s = _fill(engine, articles, signatures, start=stored, end=size)
            print(f"{kind}: measuring {measure:,} at {size:,}", file=sys.stderr)
            profiler = StatementProfile(engine) if profile else None
            for first in range(size, size + measure, BATCH_SIZE):
                batch = articles[first : first + BATCH_SIZE]
                records = [as_record(a, signatures[first + i]) for i, a in enumerate(batch)]
                started = time.perf_counter()
                watch = profiler.active() if profiler else nullcontext()
                with watch, sessions.begin() as session:
                    outcome = upsert_articles(session, records)
                elapsed = time.perf_counter() - started
                if len(outcome.new) != len(batch):
                    raise RuntimeError(f"expected {len(batch)} new articles, got {outcome}")
                result.batch_ms.append(1000 * elapsed / len(batch))
                result.total_s += elapsed
                result.articles += len(batch)
                # Counted after the transaction: none of it is in the timing.
                with sessions() as session:
                    rows = session.execute(
                        select(Article.id, Article.url, Article.duplicate_of).where(
                            Article.url.in_([a.url for a in batch])
                        )
                    ).all()
                    result.candidates += _candidates(session, [row.id for row in rows])
                linked = {row.url for row in rows if row.duplicate_of is not None}
                for article in batch:
                    if article.original is not None:
                        result.reprints += 1
                        result.linked += article.url in linked
                    else:
                        result.false_links += article.url in linked
            result.load = os.getloadavg()[0]
            if profiler:
                result.profile = profiler.report(
                    result.articles, len(result.batch_ms), result.total_s
                )
                profiler.detach()
            results.append(result)
            print(_row(result), file=sys.stderr)
            stored = size + measure
    finally:
        engine.dispose()
    return version


# ---------------------------------------------------------------------------------------
# The report.


def _machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores; Python {platform.python_version()}"


def _code_version() -> str:
    """The commit the storage code comes from, and whether it has uncommitted changes."""
    try:
        described = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return described.stdout.strip()


def _row(r: Measurement) -> str:
    fill = f"{r.fill_s:.0f} ({1000 * r.fill_s / r.filled:.2f})" if r.filled else "-"
    return (
        f"{r.database:<11}{r.size:>9,}{r.median_ms:>12.2f}{r.overall_ms:>12.2f}"
        f"{r.candidates / r.articles:>12.2f}{f'{r.linked}/{r.reprints}':>10}{fill:>18}"
        f"{r.load:>6.1f}"
    )


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0] if text else ''}"
    return line if len(line) <= 200 else line[:199] + "…"


def _table(results: Sequence[Measurement], sizes: Sequence[int]) -> list[str]:
    lines = [
        f"{'database':<11}{'archive':>9}{'ms/article':>12}{'ms/article':>12}"
        f"{'candidates':>12}{'reprints':>10}{'fill':>18}{'load':>6}",
        f"{'':<11}{'':>9}{'median':>12}{'overall':>12}{'/article':>12}{'linked':>10}"
        f"{'s (ms/article)':>18}{'':>6}",
    ]
    lines += [_row(r) for r in results]
    label = f"{sizes[-1] // 1000}k/{sizes[0] // 1000}k" if sizes[0] >= 1000 else "largest/smallest"
    for database in dict.fromkeys(r.database for r in results):
        rows = [r for r in results if r.database == database]
        first, last = rows[0], rows[-1]
        verdict = "within" if last.median_ms / first.median_ms <= TARGET_RATIO else "ABOVE"
        lines.append(
            f"ratio {label} {database}: median {last.median_ms / first.median_ms:.2f}, "
            f"overall {last.overall_ms / first.overall_ms:.2f} "
            f"({verdict} the target of {TARGET_RATIO})"
        )
    false_links = sum(r.false_links for r in results)
    if false_links:
        lines.append(f"originals linked to another article: {false_links}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--sizes", default="10000,100000", help="archive sizes, ascending")
    parser.add_argument("--measure", type=int, default=2000, help="articles timed at each size")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES,
        help="a server and user that may create databases",
    )
    parser.add_argument(
        "--profile", action="store_true", help="print where the measured writes spend their time"
    )
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if args.measure % BATCH_SIZE or args.measure <= 0:
        parser.error(f"--measure must be a multiple of {BATCH_SIZE}")
    if any(b < a + args.measure for a, b in itertools.pairwise(sizes)):
        parser.error("each size must exceed the one before by at least --measure")
    cache_dir = args.cache_dir.resolve()
    if cache_dir.is_relative_to(ROOT):
        parser.error("--cache-dir must be outside the repository")
    cache_dir.mkdir(parents=True, exist_ok=True)
    databases = ("sqlite", "postgresql") if args.db == "both" else (args.db,)

    started = time.perf_counter()
    total = sizes[-1] + args.measure
    articles = list(generate(total))
    generated = time.perf_counter() - started
    signatures = _signatures(articles, cache_dir)
    sig_median, sig_mean = _signature_cost(articles)

    results: list[Measurement] = []
    versions = []
    failures = []
    for kind in databases:
        try:
            with fresh_database(kind, cache_dir, args.postgres_url) as url:
                versions.append(
                    run(
                        kind,
                        url,
                        articles,
                        signatures,
                        sizes=sizes,
                        measure=args.measure,
                        profile=args.profile,
                        results=results,
                    )
                )
        except Exception as exc:  # the other database's results still stand
            failures.append(f"{kind} failed: {_one_line(exc)}")
            print(failures[-1], file=sys.stderr)

    lengths = sorted(len(a.body) for a in articles)
    reprints = sum(a.original is not None for a in articles)
    report = [
        f"Machine: {_machine()}; {', '.join(versions)}; code {_code_version()}",
        f"Corpus: {total:,} synthetic articles ({100 * reprints / total:.1f}% reprints), "
        f"{lengths[0]:,}-{lengths[-1]:,} characters (median {lengths[total // 2]:,}); "
        f"generated in {generated:.0f} s",
        f"Signature (in the pipeline, before the transaction): {sig_median:.2f} ms per article "
        f"(median; mean {sig_mean:.2f}) over {min(total, SIGNATURE_SAMPLE):,} articles",
        f"Stored in batches of {BATCH_SIZE}, one transaction each, {args.measure:,} articles "
        f"at each size; the filler likewise, with ANALYZE every {ANALYZE_EVERY:,} on PostgreSQL"
        + ("; profiled, so slower than without" if args.profile else ""),
        "",
        *_table(results, sizes),
        *failures,
    ]
    for r in results:
        if r.profile:
            report += ["", f"Where the time goes, {r.database} at {r.size:,}:", r.profile]
    report.append(f"\nTotal run time: {time.perf_counter() - started:.0f} s")
    print("\n".join(report))


if __name__ == "__main__":
    main()
