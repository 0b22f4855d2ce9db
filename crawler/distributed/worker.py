"""One worker of a distributed crawl: its heartbeat, the crawl's shared start, the
completeness pass, and when to stop.

Every heartbeat the worker tells the others whether it is busy: requests in flight or
waiting in its downloader, responses being parsed, requests in the shared queue, or
articles not yet written by the storage pipeline (it writes a partial batch at once
rather than wait for the pipeline's timer). When it is idle, the queue is empty and no
live worker is busy, and every other worker has confirmed so with a heartbeat since,
it runs the completeness pass (completeness.py). Once a pass has queued nothing again
and the crawl has stayed quiet for ``DISTRIBUTED_IDLE_TIMEOUT`` seconds, the worker
closes its spider as finished.

The last worker out ends the crawl: it completes the readings of every category any
worker read down to known articles (the spider's own completion is switched off, see
Ylwt22Spider.finishes_readings), marks the crawl ended, and gives its keys an expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from datetime import UTC, datetime

from redis import Redis
from redis.exceptions import RedisError
from redis.lock import Lock
from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, DontCloseSpider, NotConfigured
from scrapy.statscollectors import StatsCollector

from crawler.archive import Archive
from crawler.distributed.completeness import LOCK_TIMEOUT, CompletenessPass
from crawler.distributed.heartbeats import Heartbeats
from crawler.distributed.keys import CrawlKeys, connect, text
from crawler.distributed.scheduler import RedisScheduler
from crawler.extensions.runs import RunRecorder
from crawler.site import Site
from crawler.spiders.ylwt22 import Ylwt22Spider
from pipelines.store import DatabasePipeline

logger = logging.getLogger(__name__)

# A worker whose heartbeat is this many intervals old is dead.
DEAD_AFTER_BEATS = 5


class Worker:
    """Settings: ``DISTRIBUTED_IDLE_TIMEOUT`` (seconds of quiet before a worker stops),
    ``DISTRIBUTED_HEARTBEAT`` (seconds between heartbeats), ``DISTRIBUTED_KEYS_TTL``
    (seconds a finished crawl's keys are kept); ``REDIS_URL``, ``CRAWL_ID``,
    ``DATABASE_URL``, ``SITE_ROOT``."""

    def __init__(
        self,
        crawler: Crawler,
        server: Redis,
        keys: CrawlKeys,
        *,
        idle_timeout: float,
        heartbeat: float,
        keys_ttl: int,
    ) -> None:
        assert crawler.stats is not None
        self.crawler = crawler
        self.stats: StatsCollector = crawler.stats
        self.server = server
        self.keys = keys
        self.idle_timeout = idle_timeout
        self.heartbeat = heartbeat
        self.keys_ttl = keys_ttl
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.heartbeats = Heartbeats(server, keys.workers, dead_after=DEAD_AFTER_BEATS * heartbeat)
        self.archive = Archive(crawler)
        self.site = Site.from_root(crawler.settings.get("SITE_ROOT"))
        self._spider: Ylwt22Spider | None = None
        self._store: DatabasePipeline | None = None
        self._recorder: RunRecorder | None = None
        self._watching: asyncio.Task[None] | None = None
        self._closing: asyncio.Future[None] | None = None
        self._stop = asyncio.Event()
        self._joined = False
        # The crawl is complete as far as this worker can tell.
        self._complete = False
        self._quiet_since: float | None = None
        self._passed = False
        self._recorded: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Worker:
        settings = crawler.settings
        if not settings.get("REDIS_URL"):
            raise NotConfigured("REDIS_URL is not set")
        worker = cls(
            crawler,
            connect(settings),
            CrawlKeys.from_settings(settings),
            idle_timeout=settings.getfloat("DISTRIBUTED_IDLE_TIMEOUT"),
            heartbeat=settings.getfloat("DISTRIBUTED_HEARTBEAT"),
            keys_ttl=settings.getint("DISTRIBUTED_KEYS_TTL"),
        )
        worker.stats.set_value("crawl/worker", worker.id)
        crawler.signals.connect(worker.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(worker.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(worker.spider_closed, signal=signals.spider_closed)
        return worker

    @property
    def scheduler(self) -> RedisScheduler:
        return RedisScheduler.of(self.crawler)

    def spider_opened(self, spider: Spider) -> None:
        # What this sets, the spider reads once it starts, after every spider_opened
        # handler is done; the run recorder finds this worker itself (its crawl_id).
        ended = self.server.get(self.keys.ended)
        if ended is not None:
            logger.warning(
                "Crawl %s ended at %s; nothing is left to do. Start the next crawl with "
                "another CRAWL_ID (its keys expire %d s after it ended).",
                self.keys.namespace,
                text(ended),
                self.keys_ttl,
            )
            self._stop.set()
            raise CloseSpider("finished")
        self._recorder = self.crawler.get_extension(RunRecorder)
        if isinstance(spider, Ylwt22Spider):
            self._spider = spider
            spider.finishes_readings = False  # the last worker out completes them all
        # The first worker's start is the crawl's: all workers count as one reading.
        self.server.set(self.keys.started_at, datetime.now(UTC).isoformat(), nx=True)
        started = datetime.fromisoformat(text(self.server.get(self.keys.started_at) or ""))
        if self._spider is not None:
            self._spider.crawl_started_at = started
        self._store = self.crawler.get_item_pipeline(DatabasePipeline)
        # A list page may finish its category's reading: the category is recorded before
        # the page leaves todo (a worker dying in between leaves the page to be read
        # again), never after (it would leave the category unrecorded).
        self.scheduler.acknowledgements.before_release(self.record_categories)
        self._beat(busy=True)
        self._joined = True
        logger.info(
            "Worker %s of crawl %s, started at %s",
            self.id,
            self.keys.namespace,
            started.isoformat(),
        )
        self._watching = asyncio.ensure_future(self._watch())

    def spider_idle(self) -> None:
        if not self._stop.is_set():
            raise DontCloseSpider  # other workers may still queue requests

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        self._stop.set()
        try:
            if self._watching is not None:
                await self._watching
            if self._joined:
                self.record_categories()
                await self._leave()
        except RedisError as exc:
            logger.error("Could not leave crawl %s: %s", self.keys.namespace, exc)

    async def _watch(self) -> None:
        try:
            await self.archive.open()
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=self.heartbeat)
                if not self._stop.is_set():
                    await self._tick()
        except Exception as exc:
            logger.error("Worker %s stops: %s", self.id, exc, exc_info=True)
            self._close("worker_error")

    async def _tick(self) -> None:
        self._take_work()
        idle = await self._idle_here()
        self._beat(busy=not idle)
        self.record_categories()
        alive, _ = self.heartbeats.others(self.id)
        if not idle or any(beat.busy for beat in alive):
            # Work is going on, here or elsewhere: it may queue more.
            self._quiet_since = None
            self._passed = False
            return
        now = self.heartbeats.now()
        if self._quiet_since is None:
            self._quiet_since = now
            return
        if any(beat.seen <= self._quiet_since for beat in alive):
            # A worker that took a request just before the queue was seen empty says so
            # in its next heartbeat: until each has sent one since, its idle may be stale.
            return
        if not self._passed:
            pass_ = CompletenessPass(
                self.server,
                self.keys,
                acknowledgements=self.scheduler.acknowledgements,
                queue=self.scheduler.queue,
                archive=self.archive,
                site=self.site,
                stats=self.stats,
            )
            requeued = await pass_.run(self.heartbeats, self.id)
            if requeued is None:  # not now: another worker holds the lock, or got busy
                return
            if requeued:
                self._quiet_since = None
                return
            self._passed = True
        if now - self._quiet_since >= self.idle_timeout:
            logger.info(
                "Crawl %s has been quiet for %gs: this worker is done",
                self.keys.namespace,
                self.idle_timeout,
            )
            self._complete = True
            self._close("finished")

    async def _idle_here(self) -> bool:
        """Nothing queued, nothing in flight or being parsed here, everything written:
        then whatever this worker popped is done (Acknowledgements.idle)."""
        engine = self.crawler.engine
        if not engine.spider_is_idle():
            return False
        if self._store is not None and self._store.pending:
            await self._store.flush()  # idle but for a partial batch: write it now
            if self._store.pending or not engine.spider_is_idle():
                return False
        written = self._store is None or self._store.failed is None  # else spilled
        self.scheduler.acknowledgements.idle(articles_written=written)
        return True

    def _beat(self, *, busy: bool) -> None:
        self.heartbeats.beat(
            self.id,
            busy=busy,
            requests=len(self.crawler.engine.downloader.active),
            run_id=self._recorder.run_id if self._recorder is not None else None,
        )

    def _take_work(self) -> None:
        """Scrapy's engine asks an idle scheduler for requests only every 5 seconds: a
        worker with room hands its engine a queued request at once, and the engine
        asks for more as it finishes it."""
        engine = self.crawler.engine
        if not engine.needs_backout() and (request := self.scheduler.take()) is not None:
            engine.crawl(request)

    def record_categories(self) -> None:
        """Add the categories the spider read to the end to the crawl's set. Called
        before a parsed page leaves todo too (see spider_opened)."""
        if self._spider is None:
            return
        if new := self._spider.categories_read - self._recorded:
            self.server.sadd(self.keys.read, *new)
            self._recorded |= new

    def _close(self, reason: str) -> None:
        self._stop.set()
        self._closing = asyncio.ensure_future(self.crawler.engine.close_spider_async(reason=reason))

    async def _leave(self) -> None:
        """Leave the crawl; the last worker out of a complete crawl ends it."""
        lock: Lock = self.server.lock(self.keys.lock, timeout=LOCK_TIMEOUT)
        while not lock.acquire(blocking=False):  # a pass may hold it: wait, not block
            await asyncio.sleep(0.1)
        try:
            self.heartbeats.remove(self.id)
            alive, dead = self.heartbeats.others(self.id)
            if not self._complete or alive:
                return
            self.heartbeats.remove(*(beat.worker for beat in dead))
            categories = sorted(text(c) for c in self.server.smembers(self.keys.read))
            if categories:
                await self.archive.finish_reading(categories)
            self.server.set(self.keys.ended, datetime.now(UTC).isoformat())
            with self.server.pipeline() as pipe:
                for key in self.keys.all():
                    pipe.expire(key, self.keys_ttl)
                pipe.execute()
            logger.info(
                "Crawl %s ended by its last worker: %d categories read to the end; "
                "its keys expire in %d s",
                self.keys.namespace,
                len(categories),
                self.keys_ttl,
            )
        finally:
            with contextlib.suppress(RedisError):
                lock.release()
