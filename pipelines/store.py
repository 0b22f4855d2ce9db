"""Writes articles to the database in batches, on a worker thread.

Nothing is lost and nothing is unexplained: every item the pipeline receives ends in
exactly one outcome, counted in ``DatabasePipeline.outcomes``: written (new, updated,
unchanged, or kept as another copy), dropped with a reason (a value the database
refuses costs that article only), spilled to a JSON Lines file under
``DATABASE_SPILL_DIR`` (flushed to disk before it counts), or not saved at all when the
spill cannot be written either. A failed write is retried with backoff; if it still
fails, the error is logged in one clear line and the crawl stops. A write, once begun,
is never abandoned: the periodic flush is stopped, not cancelled, and a cancelled
caller leaves its batch to be written all the same.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from itemadapter import ItemAdapter
from scrapy import signals as scrapy_signals
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, StatementError

from pipelines import signals
from pipelines.database import ArchiveDatabase
from storage.db import StorageError, describe_error, session_factory
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
UNSTORABLE = "unstorable"


def to_record(item: Any) -> ArticleRecord:
    return ArticleRecord.from_values(ItemAdapter(item).asdict())


@dataclass
class StoreOutcomes:
    """What became of everything the pipeline received. Each item is counted once:
    ``received == written + dropped + spilled + lost + pending``, and so is each
    sighting (a 304 or a 404 the spider reported)."""

    received: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    outranked: int = 0
    """Kept as another copy of an archived article (see UpsertResult.outranked)."""
    dropped: Counter[str] = field(default_factory=Counter)
    spilled: int = 0
    """Not saved in the archive, but kept on disk under DATABASE_SPILL_DIR."""
    lost: int = 0
    """Not saved anywhere: neither the database nor the spill folder took them."""
    reprints: int = 0
    """Of the new and updated articles, those that are reprints of another."""
    sightings_received: int = 0
    seen_unchanged: int = 0
    """Articles the site answered 304 for, recorded as seen."""
    seen_gone: int = 0
    """Articles the site answered 404 or 410 for, recorded as gone."""
    sightings_unsaved: int = 0

    @property
    def written(self) -> int:
        return self.new + self.updated + self.unchanged + self.outranked

    @property
    def pending(self) -> int:
        """Items received and not yet accounted for: zero once the pipeline closed."""
        return self.received - self.written - sum(self.dropped.values()) - self.spilled - self.lost

    @property
    def sightings_pending(self) -> int:
        return (
            self.sightings_received - self.seen_unchanged - self.seen_gone - self.sightings_unsaved
        )


@dataclass
class _Batch:
    """What one write stores: articles, and articles seen unchanged or gone."""

    records: list[ArticleRecord] = field(default_factory=list)
    sightings: list[Sighting] = field(default_factory=list)
    gone: list[tuple[str, datetime]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.records or self.sightings or self.gone)

    @property
    def size(self) -> int:
        return len(self.records) + len(self.sightings) + len(self.gone)

    def halves(self) -> list[_Batch]:
        """Two batches that hold this one's entries between them."""
        entries: list[ArticleRecord | Sighting | tuple[str, datetime]] = [
            *self.records,
            *self.sightings,
            *self.gone,
        ]
        middle = len(entries) // 2
        return [_Batch.of(entries[:middle]), _Batch.of(entries[middle:])]

    @staticmethod
    def of(entries: Sequence[ArticleRecord | Sighting | tuple[str, datetime]]) -> _Batch:
        batch = _Batch()
        for entry in entries:
            if isinstance(entry, ArticleRecord):
                batch.records.append(entry)
            elif isinstance(entry, Sighting):
                batch.sightings.append(entry)
            else:
                batch.gone.append(entry)
        return batch

    @staticmethod
    def join(batches: Sequence[_Batch]) -> _Batch:
        return _Batch(
            [r for b in batches for r in b.records],
            [s for b in batches for s in b.sightings],
            [g for b in batches for g in b.gone],
        )


@dataclass(frozen=True, slots=True)
class _Written:
    result: UpsertResult = field(default_factory=UpsertResult)
    unchanged: int = 0
    gone: int = 0
    refused: _Batch | None = None
    """What the database refused as a value it cannot hold, and why."""
    error: str = ""


def _is_transient(exc: BaseException) -> bool:
    # Lost connections, timeouts and lock waits pass; constraint or data errors do not.
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def _is_data_error(exc: BaseException) -> bool:
    """A value some entry holds that the database refuses (a number or a date out of
    its range, a constraint): it costs the entries that hold it, not their batch."""
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        # Raised while binding a value, before the database saw it.
        return isinstance(exc.orig, OverflowError | ValueError)
    return isinstance(exc, DataError | IntegrityError | OverflowError | ValueError)


class DatabasePipeline:
    """Settings: ``DATABASE_URL``; ``DATABASE_BATCH_SIZE`` articles per write;
    ``DATABASE_FLUSH_INTERVAL`` seconds at most before a partial batch is written;
    ``DATABASE_WRITE_RETRIES`` and ``DATABASE_RETRY_BACKOFF`` for failed writes;
    ``DATABASE_SPILL_DIR`` for batches that could not be written.

    It owns the process's archive database (``database``), which the other components
    use too; it is closed when the engine stops, after the last of them."""

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
        self.database = ArchiveDatabase(url)
        self.outcomes = StoreOutcomes()
        self.spill_files: list[Path] = []
        self._batch = _Batch()
        self._writing: set[asyncio.Task[None]] = set()
        self._write_lock = asyncio.Lock()
        self._closed = asyncio.Event()
        self._stopping: asyncio.Future[None] | None = None
        self._ticker: asyncio.Task[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DatabasePipeline:
        settings = crawler.settings
        pipeline = cls(
            crawler,
            url=settings["DATABASE_URL"],
            batch_size=settings.getint("DATABASE_BATCH_SIZE"),
            flush_interval=settings.getfloat("DATABASE_FLUSH_INTERVAL"),
            retries=settings.getint("DATABASE_WRITE_RETRIES"),
            retry_backoff=settings.getfloat("DATABASE_RETRY_BACKOFF"),
            spill_dir=Path(settings["DATABASE_SPILL_DIR"]),
        )
        crawler.signals.connect(pipeline.article_unchanged, signal=signals.article_unchanged)
        crawler.signals.connect(pipeline.article_gone, signal=signals.article_gone)
        crawler.signals.connect(pipeline.spider_closed, signal=scrapy_signals.spider_closed)
        crawler.signals.connect(pipeline.database.close, signal=scrapy_signals.engine_stopped)
        return pipeline

    @property
    def failed(self) -> str | None:
        """Why the database could not take the crawl's articles, once it could not."""
        return self.database.failed

    async def open_spider(self) -> None:
        try:
            await self.database.open()
        except StorageError as exc:
            # Items that still arrive before the engine stops are spilled, not lost.
            self._fail(str(exc))
            return
        if self.flush_interval > 0:
            self._ticker = asyncio.create_task(self._flush_periodically())

    async def process_item(self, item: Any) -> Any:
        record = to_record(item)
        self.outcomes.received += 1
        self._batch.records.append(record)
        if len(self._batch.records) >= self.batch_size:
            await self.flush()
        return item

    async def close_spider(self) -> None:
        # The ticker is asked to stop and waited for, never cancelled: a flush it has
        # begun runs to its end.
        self._closed.set()
        if self._ticker is not None:
            await self._ticker
        await self.flush()
        while self._writing:
            await asyncio.gather(*self._writing)
        if self.failed is None:
            self._report()
        if self.outcomes.pending or self.outcomes.sightings_pending:
            # Cannot happen while every path above counts what it handles; say so loudly
            # if it ever does, and the run's reconciliation fails it.
            logger.error(
                "%d articles and %d sightings were received but not accounted for",
                self.outcomes.pending,
                self.outcomes.sightings_pending,
            )

    def spider_closed(self) -> None:
        # The last write comes as the crawl closes, after its finish reason was chosen: a
        # failure there must still show in the stats people read.
        if self.failed is not None:
            self.stats.set_value("finish_reason", "database_error")

    def _report(self) -> None:
        counts = {k: getattr(self.outcomes, k) for k in _OUTCOMES}
        logger.info(
            "Stored in %s: %s. Export with: scrapy export -o articles.csv",
            self.database.where,
            ", ".join(f"{count} {outcome}" for outcome, count in counts.items()),
        )

    @property
    def pending(self) -> bool:
        """Whether anything received is not written yet: waiting for the next batch, or
        being written now. A worker of a distributed crawl is idle only when it is not."""
        return not self._batch.empty or bool(self._writing)

    @property
    def all_stored(self) -> bool:
        """Whether every article received so far is in the archive or dropped for a
        reason: none spilled, lost or still waiting."""
        o = self.outcomes
        return self.failed is None and not (o.spilled or o.lost or o.pending)

    async def _flush_periodically(self) -> None:
        while not self._closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), timeout=self.flush_interval)
            await self.flush()

    def article_unchanged(
        self, url: str, seen_at: datetime, etag: str | None, last_modified: str | None
    ) -> None:
        self.outcomes.sightings_received += 1
        self._batch.sightings.append(Sighting(url, seen_at, etag, last_modified))

    def article_gone(self, url: str, seen_at: datetime) -> None:
        self.outcomes.sightings_received += 1
        self._batch.gone.append((url, seen_at))

    async def flush(self) -> None:
        """Write what has been received so far. The write is a task of its own: if the
        caller is cancelled, the batch is still written, spilled or counted."""
        batch, self._batch = self._batch, _Batch()
        if batch.empty:
            return
        task = asyncio.ensure_future(self._store(batch))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)
        await asyncio.shield(task)

    async def _store(self, batch: _Batch) -> None:
        # Writes take turns, in the order their batches were taken.
        async with self._write_lock:
            rest = batch
            if self.failed is None:
                rest, error = await self._write_all(batch)
                if error is not None:
                    self._fail(error)
            if not rest.empty:
                await self._keep_unsaved(rest)

    async def _write_all(self, batch: _Batch) -> tuple[_Batch, str | None]:
        """Write the batch, setting aside what the database refuses as a value it cannot
        hold: the batch is halved until the entries that hold one are alone. Returns
        what could not be written, and why, when the database itself failed."""
        parts = [batch]
        while parts:
            part = parts.pop(0)
            try:
                written = await self._write_with_retries(part)
            except Exception as exc:
                if not _is_data_error(exc):
                    return _Batch.join([part, *parts]), describe_error(exc)
                if part.size > 1:
                    parts[:0] = part.halves()
                    continue
                written = _Written(refused=part, error=describe_error(exc))
            self._count(written)
        return _Batch(), None

    def _write(self, batch: _Batch) -> _Written:
        with session_factory(self.database.engine).begin() as session:
            result = upsert_articles(session, batch.records)
            # Every sighting counts, recorded or not: one of an article that is not
            # archived, or already gone, changes nothing but was handled all the same.
            record_unchanged(session, batch.sightings)
            for url, at in batch.gone:
                mark_gone(session, [url], at=at)
        return _Written(result, unchanged=len(batch.sightings), gone=len(batch.gone))

    async def _write_with_retries(self, batch: _Batch) -> _Written:
        for attempt in range(self.retries + 1):
            try:
                return await self.database.call(self._write, batch)
            except Exception as exc:
                if attempt == self.retries or not _is_transient(exc):
                    raise
                delay = self.retry_backoff * 2**attempt
                self.stats.inc_value("database/write_retries")
                logger.warning(
                    "Database write of %d articles failed (%s); retry %d/%d in %.1fs",
                    len(batch.records),
                    describe_error(exc),
                    attempt + 1,
                    self.retries,
                    delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _count(self, written: _Written) -> None:
        result, outcomes = written.result, self.outcomes
        for outcome in _OUTCOMES:
            count = len(getattr(result, outcome))
            setattr(outcomes, outcome, getattr(outcomes, outcome) + count)
            self.stats.inc_value(f"database/articles_{outcome}", count)
        outcomes.reprints += len(result.duplicates)
        self.stats.inc_value("database/articles_duplicate", len(result.duplicates))
        outcomes.seen_unchanged += written.unchanged
        outcomes.seen_gone += written.gone
        self.stats.inc_value("database/articles_unchanged", written.unchanged)
        self.stats.inc_value("database/articles_gone", written.gone)
        if written.refused is not None:
            self._refused(written.refused, written.error)
        for url, diff in result.changes.items():
            for name, (old, new) in diff.items():
                key = f"database/changed/{name}"
                self.stats.inc_value(key)
                examples = self.stats.get_value(f"{key}/examples") or []
                if len(examples) < _EXAMPLES_PER_FIELD:
                    examples.append(f"{url}: {_short(old)} -> {_short(new)}")
                    self.stats.set_value(f"{key}/examples", examples)

    def _refused(self, entry: _Batch, error: str) -> None:
        for record in entry.records:
            self.outcomes.dropped[UNSTORABLE] += 1
            self.stats.inc_value(f"drop/{UNSTORABLE}")
            logger.warning("%s: the database refused it (%s) <%s>", UNSTORABLE, error, record.url)
        if entry.sightings or entry.gone:
            self.outcomes.sightings_unsaved += len(entry.sightings) + len(entry.gone)
            logger.warning("A sighting was not recorded: the database refused it (%s)", error)

    def _fail(self, error: str) -> None:
        """The database is out of reach for good: say so once and stop the crawl."""
        self.database.fail(error)
        self.stats.set_value("database/error", error)
        self._stop_crawl()

    def _stop_crawl(self) -> None:
        if self._closed.is_set() or self._stopping is not None:
            return
        try:
            engine = self.crawler.engine
        except RuntimeError:
            return  # driven outside a running crawl: there is nothing to stop
        if engine is not None and engine.spider is not None:
            self._stopping = asyncio.ensure_future(
                engine.close_spider_async(reason="database_error")
            )

    async def _keep_unsaved(self, batch: _Batch) -> None:
        """Keep what could not be written where the user can find it: counted as
        spilled only once it is on disk."""
        if batch.sightings or batch.gone:
            # Seen again by the next full crawl; nothing of an article is lost.
            self.outcomes.sightings_unsaved += len(batch.sightings) + len(batch.gone)
            logger.warning(
                "Not recorded: %d unchanged and %d gone articles",
                len(batch.sightings),
                len(batch.gone),
            )
        if not batch.records:
            return
        count = len(batch.records)
        try:
            path = await asyncio.to_thread(_write_spill, self.spill_dir, batch.records)
        except OSError as exc:
            self.outcomes.lost += count
            self.stats.inc_value("database/articles_lost", count)
            logger.error(
                "%d articles could not be stored, nor saved in %s (%s): they are not saved",
                count,
                self.spill_dir,
                exc.strerror or exc,
            )
            self._stop_crawl()
            return
        self.outcomes.spilled += count
        self.spill_files.append(path)
        self.stats.inc_value("database/articles_unsaved", count)
        logger.error("%d articles could not be stored; they are saved in %s", count, path)


def _short(value: Any) -> str:
    text = repr(value.isoformat() if isinstance(value, datetime) else value)
    return text if len(text) <= _EXAMPLE_WIDTH else text[: _EXAMPLE_WIDTH - 1] + "…"


def _write_spill(directory: Path, batch: Sequence[ArticleRecord]) -> Path:
    """Write the records to a new file in ``directory``, on disk (flushed and synced)
    when this returns. A file that could not be written whole is removed."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"unsaved-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.jsonl"
    try:
        with path.open("x", encoding="utf-8") as out:
            for record in batch:
                values = {name: getattr(record, name) for name in record.__dataclass_fields__}
                out.write(json.dumps(values, ensure_ascii=False, default=_json_default) + "\n")
            out.flush()
            os.fsync(out.fileno())
        _sync_folder(directory)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _sync_folder(directory: Path) -> None:
    # The new file's name is on disk only once its folder is.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):  # the MinHash signature
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot serialise {type(value).__name__}")
