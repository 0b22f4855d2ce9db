"""Every crawl is a run recorded in the database, and this extension owns how it ends.

At the start the run takes the archive's run lock (a second crawl on the same database
stops at once with ``run_in_progress``), records itself, holds its life (see
storage.runs.RunLife) and marks runs whose process died as interrupted. At the end it
accounts for every article the run handled, judges the run (its status and exit code,
decided here and nowhere else), records what it did, judges the extraction's health
against the previous runs, and reports all of it.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider
from scrapy.statscollectors import StatsCollector
from sqlalchemy.orm import Session

from crawler.errors import EXIT_FAILED, EXIT_OK, EXIT_RUN_IN_PROGRESS
from pipelines import signals as archive_signals
from pipelines.database import ArchiveDatabase
from pipelines.store import DatabasePipeline, StoreOutcomes
from storage.db import StorageError, describe_error
from storage.runs import (
    RunCounts,
    RunLife,
    RunLock,
    finish_run,
    interrupt_dead_runs,
    recent_runs,
    start_run,
)

logger = logging.getLogger(__name__)

# Reasons for which a run has done what was asked of it.
SUCCESS_REASONS = frozenset(
    {"finished", "closespider_timeout", "closespider_itemcount", "closespider_pagecount"}
)
# The modes that crawl the site, and so take turns on an archive.
LOCKED_MODES = ("incremental", "full")
HEALTH = {
    "empty_body": "empty body",
    "no_date": "no date",
    "no_source": "no 来源",
}
# A share of articles with a broken field "jumps" when it is this much above the
# median of the last runs' (and at least twice it): the site's template has changed.
_JUMP = 0.2
# Fewer articles than this in a run say nothing about the extraction's health.
_MIN_ARTICLES = 10
# An item that failed in a pipeline with an error rather than a reason.
PIPELINE_ERROR = "pipeline_error"


def health(stats: dict[str, Any]) -> dict[str, float]:
    """Shares of the run's articles with an empty body, no date, and no 来源. An
    article whose body or date could not be found was dropped; one without a 来源 was
    stored and counted."""
    stored = stats.get("item_scraped_count", 0)
    empty_body = stats.get("drop/missing_body", 0)
    no_date = stats.get("drop/missing_published_at", 0)
    seen = stored + sum(v for k, v in stats.items() if k.startswith("drop/missing_"))
    if seen == 0:
        return {}
    return {
        "empty_body": empty_body / seen,
        "no_date": no_date / seen,
        "no_source": stats.get("copyright/no_source", 0) / max(stored, 1),
        "articles": seen,
    }


def health_warnings(current: dict[str, float], previous: list[dict[str, float]]) -> list[str]:
    """A warning for each share that jumped against the median of earlier runs. With
    no earlier run to compare with, nothing has jumped."""
    if current.get("articles", 0) < _MIN_ARTICLES:
        return []
    earlier = [h for h in previous if h.get("articles", 0) >= _MIN_ARTICLES]
    if not earlier:
        return []
    warnings = []
    for key, label in HEALTH.items():
        baseline = statistics.median(h.get(key, 0.0) for h in earlier)
        share = current.get(key, 0.0)
        if share >= baseline + _JUMP and share >= 2 * baseline:
            warnings.append(
                f"{share:.0%} of this run's articles have {label}, against {baseline:.0%} in "
                "recent runs: the site's template may have changed "
                "(see crawler/pages/selectors.py)"
            )
    return warnings


@dataclass
class Tally:
    """What the run's spider handed on: items, and what became of them before the
    storage pipeline; and the archived articles it saw again without a page."""

    scraped: int = 0
    """Items that passed every pipeline, the storage pipeline included."""
    dropped: Counter[str] = field(default_factory=Counter)
    seen_unchanged: int = 0
    seen_gone: int = 0

    @property
    def handled(self) -> int:
        return self.scraped + sum(self.dropped.values()) + self.seen_unchanged + self.seen_gone


def account(tally: Tally, store: StoreOutcomes) -> tuple[RunCounts, list[str]]:
    """Every article the run handled under one outcome, and what does not add up (empty
    when everything does): the counts of the spider's side against the store's."""
    dropped = tally.dropped + store.dropped
    unsaved = store.spilled + store.lost + store.sightings_unsaved
    counts = RunCounts(
        articles_new=store.new,
        articles_updated=store.updated,
        articles_unchanged=store.unchanged + store.seen_unchanged,
        articles_duplicate=store.reprints,
        articles_gone=store.seen_gone,
        articles_outranked=store.outranked,
        articles_unsaved=unsaved,
        articles_spilled=store.spilled,
        articles_handled=tally.handled,
        dropped=dict(sorted(dropped.items())),
    )
    short = []
    if store.received != tally.scraped:
        short.append(
            f"{tally.scraped} articles passed the pipelines, the store received {store.received}"
        )
    if store.pending:
        short.append(
            f"{store.pending} articles received by the store were neither written, "
            "dropped nor spilled"
        )
    sightings = tally.seen_unchanged + tally.seen_gone
    if store.sightings_received != sightings or store.sightings_pending:
        short.append(
            f"{sightings} articles were seen unchanged or gone, "
            f"{store.sightings_received - store.sightings_pending} of them recorded"
        )
    return counts, short


def outcome_total(counts: RunCounts) -> int:
    return (
        counts.articles_new
        + counts.articles_updated
        + counts.articles_unchanged
        + counts.articles_outranked
        + counts.articles_gone
        + sum((counts.dropped or {}).values())
        + counts.articles_unsaved
    )


def report(
    run_id: int, mode: str, status: str, counts: RunCounts, seconds: float | None = None
) -> list[str]:
    """The run's report: the articles it handled and what became of each, what it
    asked of the site, and the extraction's health."""
    dropped = counts.dropped or {}
    drops = ", ".join(f"{reason} {n}" for reason, n in sorted(dropped.items()))
    accounted = outcome_total(counts)
    whole = (
        "every one accounted for"
        if accounted == counts.articles_handled
        else f"{accounted:,} accounted for"
    )
    reprints = counts.articles_duplicate
    of_them = f" ({reprints} of them {'a reprint' if reprints == 1 else 'reprints'})"
    took = f", {seconds:,.1f} s" if seconds is not None else ""
    lines = [
        f"Run {run_id} ({mode}) {status}: {counts.articles_handled:,} articles, {whole}:",
        f"  {counts.articles_new:,} new{of_them if reprints else ''}, "
        f"{counts.articles_updated:,} updated, {counts.articles_unchanged:,} unchanged, "
        f"{counts.articles_outranked:,} kept as another copy, {counts.articles_gone:,} gone, "
        f"{sum(dropped.values()):,} dropped" + (f" ({drops})" if drops else "")
        + f", {counts.articles_unsaved:,} not saved.",
        f"  {counts.requests:,} requests, {counts.bytes:,} bytes, {counts.errors:,} errors{took}.",
    ]  # fmt: skip
    shares = counts.health or {}
    if shares:
        lines.append(
            "Extraction health: "
            + ", ".join(f"{label} {shares.get(key, 0.0):.1%}" for key, label in HEALTH.items())
            + f" of {int(shares['articles'])} articles."
        )
    return lines


def removed_report(stats: dict[str, Any]) -> str | None:
    """What extraction left out of the run's bodies, by kind (extract/removed/<kind>):
    a site that starts hiding text in its pages shows here as a new or larger count."""
    removed = {
        key.removeprefix("extract/removed/"): count
        for key, count in stats.items()
        if key.startswith("extract/removed/")
    }
    if not removed:
        return None
    counts = ", ".join(f"{kind} {count:,}" for kind, count in sorted(removed.items()))
    return f"Left out of bodies: {counts}."


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: its status in ``runs``, the process's exit code, and the one
    line that says why it failed."""

    status: str
    exit_code: int
    error: str | None = None


class RunRecorder:
    """Settings: ``RUN_LOCK`` (True: crawls of the site take the archive's run lock,
    so that scheduled crawls never overlap on one database). The database is the
    storage pipeline's."""

    def __init__(self, crawler: Crawler, use_lock: bool) -> None:
        assert crawler.stats is not None
        self.crawler = crawler
        self.stats: StatsCollector = crawler.stats
        self.use_lock = use_lock
        self.run_id: int | None = None
        self.tally = Tally()
        self.counts = RunCounts()
        """Every article the run handled, by outcome: set when the run is judged."""
        self.outcome: RunOutcome | None = None
        """Set once the spider has closed, or when the run could not start."""
        self.report: list[str] = []
        self._database: ArchiveDatabase | None = None
        self._lock: RunLock | None = None
        self._life: RunLife | None = None
        self._failure: tuple[str, str] | None = None
        self._closing: asyncio.Future[None] | None = None
        self._on_finished: list[Callable[[], Awaitable[None]]] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunRecorder:
        recorder = cls(crawler, crawler.settings.getbool("RUN_LOCK"))
        connect = crawler.signals.connect
        connect(recorder.spider_opened, signal=signals.spider_opened)
        connect(recorder.item_scraped, signal=signals.item_scraped)
        connect(recorder.item_dropped, signal=signals.item_dropped)
        connect(recorder.item_error, signal=signals.item_error)
        connect(recorder.article_unchanged, signal=archive_signals.article_unchanged)
        connect(recorder.article_gone, signal=archive_signals.article_gone)
        return recorder

    # --- what the spider handed on ------------------------------------------------------

    def item_scraped(self) -> None:
        self.tally.scraped += 1

    def item_dropped(self, exception: BaseException) -> None:
        self.tally.dropped[getattr(exception, "reason", "other")] += 1

    def item_error(self) -> None:
        self.tally.dropped[PIPELINE_ERROR] += 1

    def article_unchanged(self) -> None:
        self.tally.seen_unchanged += 1

    def article_gone(self) -> None:
        self.tally.seen_gone += 1

    # --- the run's start and end ----------------------------------------------------------

    def fail(self, reason: str, message: str) -> None:
        """A component that cannot go on (the WARC files cannot be written, the readers
        cannot start): the run fails with ``message``, and the crawl is closed with
        ``reason``. The first failure is the one reported."""
        if self._failure is None:
            self._failure = (reason, message)
        engine = self.crawler.engine
        if engine.running and engine.spider is not None and self._closing is None:
            self._closing = asyncio.ensure_future(engine.close_spider_async(reason=reason))

    def verdict(self) -> RunOutcome | None:
        """How the run ended, for the command to report: as it was judged when the
        spider closed; for a run stopped before it could close (a component's failure
        past SHUTDOWN_TIMEOUT), judged now. None: the run never started."""
        if self.outcome is None and self._failure is not None:
            return self.judge(self._failure[0])
        return self.outcome

    def when_finished(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` once the run is judged finished, before it is recorded."""
        self._on_finished.append(callback)

    async def spider_opened(self, spider: Spider) -> None:
        # Connected now, after every component connected as the crawl was built: the
        # run is judged once their own closing work (the last writes, the last WARC
        # record) is done.
        self.crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        mode = getattr(spider, "mode", spider.name)
        store = self.crawler.get_item_pipeline(DatabasePipeline)
        if store is None:
            return
        self._database = database = store.database
        try:
            engine = await database.open()
        except StorageError:
            return  # the storage pipeline reports it and stops the crawl
        if self.use_lock and mode in LOCKED_MODES:
            self._lock = RunLock(engine)
            if not await database.call(self._lock.acquire):
                self._lock = None
                message = f"another run is in progress on {database.where}"
                self.outcome = RunOutcome("skipped", EXIT_RUN_IN_PROGRESS, message)
                logger.error("Not starting: %s", message)
                raise CloseSpider("run_in_progress")
        try:
            self.run_id = await database.write(self._start, mode, self._crawl_id())
        except StorageError as exc:
            logger.error("Could not record the run: %s", exc)
            raise CloseSpider("database_error") from None

    def _crawl_id(self) -> str | None:
        """The distributed crawl this run is a worker of, if it is one."""
        # Imported here: the worker's module imports this one.
        from crawler.distributed.worker import Worker  # noqa: PLC0415

        worker = self.crawler.get_extension(Worker)
        return worker.keys.crawl_id if worker is not None else None

    def _start(self, session: Session, mode: str, crawl_id: str | None) -> int:
        assert self._database is not None
        engine = self._database.engine
        run_id = start_run(session, mode=mode, started_at=datetime.now(UTC), crawl_id=crawl_id)
        # Held before the run's row is visible to anyone: no other run can take it for
        # a dead one.
        self._life = RunLife(engine, run_id)
        self._life.hold()
        for dead in interrupt_dead_runs(session, engine, besides=run_id):
            logger.warning("Run %d was interrupted: its process is gone", dead)
        return run_id

    def judge(self, reason: str) -> RunOutcome:
        """How the run ended, decided once: finished only if the spider finished its
        work, the archive took everything, and every article is accounted for."""
        if self.outcome is not None:
            return self.outcome
        store = self.crawler.get_item_pipeline(DatabasePipeline)
        outcomes = store.outcomes if store is not None else StoreOutcomes()
        self.counts, short = account(self.tally, outcomes)
        error = None
        if store is not None and store.failed is not None:
            error = f"the crawl ended with 'database_error': {store.failed}"
        elif self._failure is not None:
            error = "the crawl ended with {!r}: {}".format(*self._failure)
        elif outcomes.lost or outcomes.spilled:
            error = "the archive could not take every article"
        elif reason not in SUCCESS_REASONS:
            error = f"the crawl ended with {reason!r}"
        elif short:
            error = "its counts do not add up: " + "; ".join(short)
        if error is not None and store is not None and (outcomes.spilled or outcomes.lost):
            error += (
                f"; {outcomes.spilled + outcomes.lost} articles not saved: "
                f"{outcomes.spilled} kept in {store.spill_dir}, {outcomes.lost} lost"
            )
        if error is None:
            self.outcome = RunOutcome("finished", EXIT_OK)
        else:
            self.outcome = RunOutcome("failed", EXIT_FAILED, error)
        return self.outcome

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        database = self._database
        try:
            outcome = self.judge(reason)
            if outcome.status == "finished":
                for callback in self._on_finished:
                    await callback()
            if self.run_id is not None and database is not None:
                await self._finish(database, getattr(spider, "mode", spider.name), reason, outcome)
        finally:
            if database is not None:
                if self._life is not None:
                    await database.call(self._life.release)
                if self._lock is not None:
                    await database.call(self._lock.release)

    async def _finish(
        self, database: ArchiveDatabase, mode: str, reason: str, outcome: RunOutcome
    ) -> None:
        stats = self.stats.get_stats()
        counts = replace(
            self.counts,
            errors=stats.get("log_count/ERROR", 0),
            requests=stats.get("downloader/request_count", 0),
            bytes=stats.get("downloader/response_bytes", 0),
            health=health(stats),
        )
        elapsed = stats.get("elapsed_time_seconds")
        lines = report(self.run_id or 0, mode, outcome.status, counts, elapsed)
        for line in lines:
            logger.info(line)
        self.report = lines
        try:
            previous = await database.read(self._previous_health)
            for warning in health_warnings(dict(counts.health or {}), previous):
                logger.warning(warning)
                lines.append(f"Warning: {warning}")
            if removed := removed_report(stats):
                logger.info(removed)
                lines.append(removed)
            await database.write(self._record, outcome.status, reason, counts)
        except StorageError as exc:
            # The run stays marked running: the next run finds it interrupted.
            logger.error("Could not record run %s: %s", self.run_id, describe_error(exc))

    def _previous_health(self, session: Session) -> list[dict[str, float]]:
        assert self.run_id is not None
        return [dict(run.health) for run in recent_runs(session, before=self.run_id)]

    def _record(self, session: Session, status: str, reason: str, counts: RunCounts) -> None:
        assert self.run_id is not None
        finish_run(
            session,
            self.run_id,
            status=status,
            finished_at=datetime.now(UTC),
            finish_reason=reason,
            counts=counts,
        )
