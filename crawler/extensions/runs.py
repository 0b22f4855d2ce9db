"""Every crawl is a run recorded in the database, one at a time per archive.

At the start the run takes the archive's run lock (a second crawl on the same database
stops at once with ``run_in_progress``), marks runs whose process died as interrupted,
and records itself. At the end it records what it did, judges the extraction's health
against the previous runs, and reports both.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider
from scrapy.statscollectors import StatsCollector
from sqlalchemy import Engine

from storage.db import StorageError, open_database, session_factory
from storage.runs import (
    RunCounts,
    RunLock,
    finish_run,
    interrupt_stale_runs,
    recent_runs,
    start_run,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

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
_BASELINE_RUNS = 5
# Fewer articles than this in a run say nothing about the extraction's health.
_MIN_ARTICLES = 10


def run_counts(stats: dict[str, Any]) -> RunCounts:
    return RunCounts(
        articles_new=stats.get("database/articles_new", 0),
        articles_updated=stats.get("database/articles_updated", 0),
        articles_unchanged=stats.get("database/articles_unchanged", 0),
        articles_duplicate=stats.get("database/articles_duplicate", 0),
        articles_gone=stats.get("database/articles_gone", 0),
        dropped={k.removeprefix("drop/"): v for k, v in stats.items() if k.startswith("drop/")},
        errors=stats.get("log_count/ERROR", 0),
        requests=stats.get("downloader/request_count", 0),
        bytes=stats.get("downloader/response_bytes", 0),
        health=health(stats),
    )


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
    """A warning for each share that jumped against the median of earlier runs."""
    if current.get("articles", 0) < _MIN_ARTICLES:
        return []
    earlier = [h for h in previous if h.get("articles", 0) >= _MIN_ARTICLES]
    warnings = []
    for key, label in HEALTH.items():
        baseline = statistics.median(h.get(key, 0.0) for h in earlier) if earlier else 0.0
        share = current.get(key, 0.0)
        if share >= baseline + _JUMP and share >= 2 * baseline:
            warnings.append(
                f"{share:.0%} of this run's articles have {label}, against {baseline:.0%} in "
                "recent runs: the site's template may have changed "
                "(see crawler/pages/selectors.py)"
            )
    return warnings


def report(run_id: int, mode: str, counts: RunCounts, stats: dict[str, Any]) -> list[str]:
    dropped = counts.dropped or {}
    drops = ", ".join(f"{reason} {n}" for reason, n in sorted(dropped.items()))
    lines = [
        f"Run {run_id} ({mode}) {stats.get('finish_reason', 'ended')}: "
        f"{counts.articles_new} new, {counts.articles_updated} updated, "
        f"{counts.articles_unchanged} unchanged, {counts.articles_duplicate} duplicate, "
        f"{counts.articles_gone} gone; {sum(dropped.values())} dropped"
        + (f" ({drops})" if drops else "")
        + f"; {counts.errors} errors, {counts.requests} requests, {counts.bytes:,} bytes.",
    ]
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


class RunRecorder:
    """Settings: ``DATABASE_URL``; ``RUN_LOCK`` (default True for crawls) takes the
    archive's run lock, so that scheduled crawls never overlap on one database."""

    def __init__(self, crawler: Crawler, database_url: str, use_lock: bool) -> None:
        assert crawler.stats is not None
        self.crawler = crawler
        self.stats: StatsCollector = crawler.stats
        self.database_url = database_url
        self.use_lock = use_lock
        self.run_id: int | None = None
        self._engine: Engine | None = None
        self._lock: RunLock | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runs")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunRecorder:
        recorder = cls(
            crawler, crawler.settings["DATABASE_URL"], crawler.settings.getbool("RUN_LOCK", True)
        )
        crawler.signals.connect(recorder.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(recorder.spider_closed, signal=signals.spider_closed)
        return recorder

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    async def spider_opened(self, spider: Spider) -> None:
        mode = getattr(spider, "mode", spider.name)
        try:
            self._engine = await self._run(open_database, self.database_url)
        except StorageError:
            return  # the storage pipeline reports it and stops the crawl
        if self.use_lock and mode in LOCKED_MODES:
            self._lock = RunLock(self._engine)
            if not await self._run(self._lock.acquire):
                self._lock = None
                message = f"another run is in progress on {RunLock(self._engine).where}"
                self.stats.set_value("run/error", message)
                logger.error("Not starting: %s", message)
                raise CloseSpider("run_in_progress")
        # A worker of a distributed crawl records which crawl (crawler/distributed sets
        # the stat before the spider opens); None for a crawl on its own.
        crawl_id = self.stats.get_value("crawl/id")
        self.run_id = await self._run(self._start, mode, crawl_id)
        self.stats.set_value("run/id", self.run_id)

    def _start(self, mode: str, crawl_id: str | None) -> int:
        assert self._engine is not None
        with session_factory(self._engine).begin() as session:
            if self._lock is not None:
                for stale in interrupt_stale_runs(session, modes=LOCKED_MODES):
                    logger.warning("Run %d was interrupted: its process is gone", stale)
            return start_run(session, mode=mode, started_at=datetime.now(UTC), crawl_id=crawl_id)

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        try:
            if self.run_id is not None:
                await self._finish(getattr(spider, "mode", spider.name), reason)
        finally:
            if self._lock is not None:
                await self._run(self._lock.release)
            if self._engine is not None:
                await self._run(self._engine.dispose)
            self._executor.shutdown(wait=False)

    async def _finish(self, mode: str, reason: str) -> None:
        stats = {**self.stats.get_stats(), "finish_reason": reason}
        counts = run_counts(stats)
        previous = await self._run(self._previous_health)
        lines = report(self.run_id or 0, mode, counts, stats)
        for line in lines:
            logger.info(line)
        for warning in health_warnings(dict(counts.health or {}), previous):
            logger.warning(warning)
            lines.append(f"Warning: {warning}")
        if removed := removed_report(stats):
            logger.info(removed)
            lines.append(removed)
        self.stats.set_value("run/report", lines)
        status = "finished" if reason in SUCCESS_REASONS else "failed"
        await self._run(self._record, status, reason, counts)

    def _previous_health(self) -> list[dict[str, float]]:
        assert self._engine is not None
        assert self.run_id is not None
        with session_factory(self._engine, readonly=True)() as session:
            return [dict(run.health) for run in recent_runs(session, before=self.run_id)]

    def _record(self, status: str, reason: str, counts: RunCounts) -> None:
        assert self._engine is not None
        assert self.run_id is not None
        with session_factory(self._engine).begin() as session:
            finish_run(
                session,
                self.run_id,
                status=status,
                finished_at=datetime.now(UTC),
                finish_reason=reason,
                counts=counts,
            )
