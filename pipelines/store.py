"""Writes articles to the database in batches, on a worker thread.

Nothing is lost: a failed write is retried with backoff; if it still fails, the batch is
saved to a JSON Lines file, the error is logged in one clear line and the crawl stops.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from itemadapter import ItemAdapter
from scrapy import signals as scrapy_signals
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from pipelines import signals
from storage.db import StorageError, open_database, session_factory
from storage.repository import (
    ArticleRecord,
    Sighting,
    UpsertResult,
    mark_gone,
    record_unchanged,
    upsert_articles,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
_OUTCOMES = ("new", "updated", "unchanged", "outranked")
# Examples of each changed field kept in the stats, to show what a change looked like.
_EXAMPLES_PER_FIELD = 3
_EXAMPLE_WIDTH = 60


def to_record(item: Any) -> ArticleRecord:
    return ArticleRecord.from_values(ItemAdapter(item).asdict())


@dataclass
class _Batch:
    """What the next write stores: articles, and articles seen unchanged or gone."""

    records: list[ArticleRecord] = field(default_factory=list)
    sightings: list[Sighting] = field(default_factory=list)
    gone: list[tuple[str, datetime]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.records or self.sightings or self.gone)


@dataclass(frozen=True, slots=True)
class _Written:
    result: UpsertResult
    unchanged: list[str]
    gone: list[str]


def _is_transient(exc: BaseException) -> bool:
    # Lost connections, timeouts and lock waits pass; constraint or data errors do not.
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


class DatabasePipeline:
    """Settings: ``DATABASE_URL``; ``DATABASE_BATCH_SIZE`` articles per write;
    ``DATABASE_FLUSH_INTERVAL`` seconds at most before a partial batch is written;
    ``DATABASE_WRITE_RETRIES`` and ``DATABASE_RETRY_BACKOFF`` for failed writes;
    ``DATABASE_SPILL_DIR`` for batches that could not be written."""

    def __init__(
        self,
        crawler: Crawler,
        *,
        url: str,
        batch_size: int,
        flush_interval: float,
        retries: int,
        retry_backoff: float,
        spill_dir: Path,
    ) -> None:
        assert crawler.stats is not None
        self.crawler = crawler
        self.stats: StatsCollector = crawler.stats
        self.url = url
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.spill_dir = spill_dir
        self._batch = _Batch()
        self._lock = asyncio.Lock()
        self._failed: str | None = None
        self._closing = False
        self._stopping: asyncio.Future[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        # One writer thread: the reactor never waits on the database, and SQLite sees a
        # single writer per process.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DatabasePipeline:
        settings = crawler.settings
        pipeline = cls(
            crawler,
            url=settings.get("DATABASE_URL"),
            batch_size=settings.getint("DATABASE_BATCH_SIZE", 100),
            flush_interval=settings.getfloat("DATABASE_FLUSH_INTERVAL", 5.0),
            retries=settings.getint("DATABASE_WRITE_RETRIES", 3),
            retry_backoff=settings.getfloat("DATABASE_RETRY_BACKOFF", 1.0),
            spill_dir=Path(settings.get("DATABASE_SPILL_DIR", "data/unsaved")),
        )
        crawler.signals.connect(pipeline.article_unchanged, signal=signals.article_unchanged)
        crawler.signals.connect(pipeline.article_gone, signal=signals.article_gone)
        crawler.signals.connect(pipeline.spider_closed, signal=scrapy_signals.spider_closed)
        return pipeline

    async def _in_thread(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    async def open_spider(self) -> None:
        try:
            self._engine = await self._in_thread(open_database, self.url)
        except StorageError as exc:
            # Items that still arrive before the engine stops are spilled, not lost.
            self._fail(str(exc))
            return
        self._sessions = session_factory(self._engine)
        if self.flush_interval > 0:
            self._ticker = asyncio.create_task(self._flush_periodically())

    async def process_item(self, item: Any) -> Any:
        self._batch.records.append(to_record(item))
        if len(self._batch.records) >= self.batch_size:
            await self.flush()
        return item

    async def close_spider(self) -> None:
        self._closing = True
        if self._ticker is not None:
            self._ticker.cancel()
        await self.flush()
        if self._engine is not None:
            if self._failed is None:
                self._report(self._engine)
            await self._in_thread(self._engine.dispose)
        self._executor.shutdown(wait=True)

    def spider_closed(self) -> None:
        # The last write comes as the crawl closes, after its finish reason was chosen: a
        # failure there must still fail the crawl. This handler runs after CoreStats' (the
        # extensions connect first) and corrects the reason it recorded.
        if self._failed is not None:
            self.stats.set_value("finish_reason", "database_error")

    def _report(self, engine: Engine) -> None:
        counts = {k: self.stats.get_value(f"database/articles_{k}", 0) for k in _OUTCOMES}
        logger.info(
            "Stored in %s: %s. Export with: scrapy export -o articles.csv",
            engine.url.render_as_string(hide_password=True),
            ", ".join(f"{count} {outcome}" for outcome, count in counts.items()),
        )

    @property
    def pending(self) -> bool:
        """Whether anything received is not written yet: waiting for the next batch, or
        being written now. A worker of a distributed crawl is idle only when it is not."""
        return not self._batch.empty or self._lock.locked()

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()

    def article_unchanged(
        self, url: str, seen_at: datetime, etag: str | None, last_modified: str | None
    ) -> None:
        self._batch.sightings.append(Sighting(url, seen_at, etag, last_modified))

    def article_gone(self, url: str, seen_at: datetime) -> None:
        self._batch.gone.append((url, seen_at))

    async def flush(self) -> None:
        async with self._lock:
            batch, self._batch = self._batch, _Batch()
            if batch.empty:
                return
            if self._failed is None:
                try:
                    written = await self._write_with_retries(batch)
                except Exception as exc:
                    self._fail(_one_line(exc))
                else:
                    self._count(written)
                    return
            if batch.records:
                await self._spill(batch.records)
            if batch.sightings or batch.gone:
                # Seen again by the next full crawl; nothing of an article is lost.
                logger.warning(
                    "Not recorded: %d unchanged and %d gone articles",
                    len(batch.sightings),
                    len(batch.gone),
                )

    def _write(self, batch: _Batch) -> _Written:
        assert self._sessions is not None
        with self._sessions.begin() as session:
            # Each article was seen when its page was fetched (long ago, for a replay).
            result = upsert_articles(session, batch.records)
            unchanged = record_unchanged(session, batch.sightings)
            gone: list[str] = []
            for url, at in batch.gone:
                gone += mark_gone(session, [url], at=at)
        return _Written(result, unchanged, gone)

    async def _write_with_retries(self, batch: _Batch) -> _Written:
        for attempt in range(self.retries + 1):
            try:
                return await self._in_thread(self._write, batch)
            except Exception as exc:
                if attempt == self.retries or not _is_transient(exc):
                    raise
                delay = self.retry_backoff * 2**attempt
                self.stats.inc_value("database/write_retries")
                logger.warning(
                    "Database write of %d articles failed (%s); retry %d/%d in %.1fs",
                    len(batch.records),
                    _one_line(exc),
                    attempt + 1,
                    self.retries,
                    delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _count(self, written: _Written) -> None:
        result = written.result
        for outcome in _OUTCOMES:
            self.stats.inc_value(f"database/articles_{outcome}", len(getattr(result, outcome)))
        self.stats.inc_value("database/articles_duplicate", len(result.duplicates))
        self.stats.inc_value("database/articles_unchanged", len(written.unchanged))
        self.stats.inc_value("database/articles_gone", len(written.gone))
        for url, diff in result.changes.items():
            for name, (old, new) in diff.items():
                key = f"database/changed/{name}"
                self.stats.inc_value(key)
                examples = self.stats.get_value(f"{key}/examples") or []
                if len(examples) < _EXAMPLES_PER_FIELD:
                    examples.append(f"{url}: {_short(old)} -> {_short(new)}")
                    self.stats.set_value(f"{key}/examples", examples)

    def _fail(self, error: str) -> None:
        """The database is out of reach for good: say so once and stop the crawl."""
        self._failed = error
        self.stats.set_value("database/error", error)
        logger.error("Database error: %s. Stopping the crawl.", error)
        if self._closing:
            return
        self._closing = True
        try:
            engine = self.crawler.engine
        except RuntimeError:
            return  # driven outside a running crawl: there is nothing to stop
        self._stopping = asyncio.ensure_future(engine.close_spider_async(reason="database_error"))

    async def _spill(self, batch: Sequence[ArticleRecord]) -> None:
        """Keep what could not be written where the user can find it."""
        path = await self._in_thread(_write_spill, self.spill_dir, batch)
        self.stats.inc_value("database/articles_unsaved", len(batch))
        logger.error("%d articles could not be stored; they are saved in %s", len(batch), path)


def _short(value: Any) -> str:
    text = repr(value.isoformat() if isinstance(value, datetime) else value)
    return text if len(text) <= _EXAMPLE_WIDTH else text[: _EXAMPLE_WIDTH - 1] + "…"


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, StorageError):
        return str(exc)
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _write_spill(directory: Path, batch: Sequence[ArticleRecord]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"unsaved-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.jsonl"
    with path.open("a", encoding="utf-8") as out:
        for record in batch:
            values = {name: getattr(record, name) for name in record.__dataclass_fields__}
            out.write(json.dumps(values, ensure_ascii=False, default=_json_default) + "\n")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):  # the MinHash signature
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot serialise {type(value).__name__}")
