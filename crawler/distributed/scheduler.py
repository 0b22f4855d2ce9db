"""The scheduler of a distributed crawl: scrapy-redis's, adapted to Scrapy 2.19, which
tells the crawl's Acknowledgements (acknowledgements.py) what it queues, filters out and
pops.

What it changes in scrapy_redis.scheduler.Scheduler (0.9.1), which predates Scrapy 2.19:

- The base counts its stats with a ``spider=`` argument, deprecated in Scrapy 2.19: it
  is given the crawl's stats through _Stats, which drops it, and its own
  ``enqueue_request`` and ``next_request`` do the rest.
- The base's ``open`` builds the queue and the seen-filter, then announces a resumed
  crawl with ``Spider.log``, deprecated in Scrapy 2.19. Here they are built with the
  scheduler (the queue, a TrackedQueue, is given the Acknowledgements; the seen-filter,
  RedisDupeFilter, asks Scrapy's REQUEST_FINGERPRINTER), and ``open`` announces a
  resumed crawl with the logger.
- Scrapy's engine asks an idle scheduler for requests again only every 5 seconds (its
  heartbeat), while other workers may queue requests at any time: ``take`` pops one
  for the worker to hand to its engine (ExecutionEngine.crawl), which schedules it
  here, in this process, and asks for more at once.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any
from weakref import WeakSet

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector
from scrapy.utils.misc import load_object
from scrapy_redis.scheduler import Scheduler

from crawler.distributed.acknowledgements import Acknowledgements
from crawler.distributed.queue import TrackedQueue

logger = logging.getLogger(__name__)


class RedisScheduler(Scheduler):
    """Settings, as scrapy-redis reads them: ``REDIS_URL``, ``SCHEDULER_QUEUE_KEY``,
    ``SCHEDULER_DUPEFILTER_KEY``, ``DUPEFILTER_CLASS``, ``SCHEDULER_PERSIST``,
    ``SCHEDULER_FLUSH_ON_START``, ``SCHEDULER_IDLE_BEFORE_CLOSE``,
    ``SCHEDULER_SERIALIZER``; the queue is always a TrackedQueue."""

    queue: TrackedQueue
    spider: Spider
    acknowledgements: Acknowledgements

    def __init__(self, server: Any, **kwargs: Any) -> None:
        super().__init__(server, **kwargs)
        # Requests taken for the engine, and those it has been handed back.
        self._taken: WeakSet[Request] = WeakSet()
        self._handed: deque[Request] = deque()

    @staticmethod
    def of(crawler: Crawler) -> RedisScheduler:
        """The running crawl's scheduler: a worker's is always this one."""
        scheduler = crawler.engine.scheduler
        assert isinstance(scheduler, RedisScheduler)
        return scheduler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RedisScheduler:
        scheduler: RedisScheduler = super().from_crawler(crawler)
        assert crawler.stats is not None
        assert crawler.spider is not None  # the engine builds its scheduler after it
        scheduler.stats = _Stats(crawler.stats)
        scheduler.acknowledgements = Acknowledgements.from_crawler(crawler, scheduler.server)
        spider = crawler.spider
        scheduler.queue = TrackedQueue(
            scheduler.server,
            spider,
            scheduler.queue_key % {"spider": spider.name},
            scheduler.serializer,
            acknowledgements=scheduler.acknowledgements,
        )
        if not scheduler.df:
            scheduler.df = load_object(scheduler.dupefilter_cls).from_spider(spider)
        return scheduler

    def open(self, spider: Spider) -> None:
        self.spider = spider
        if self.flush_on_start:
            self.flush()
        if queued := len(self.queue):
            keys = self.acknowledgements.keys
            logger.info("Resuming crawl %s (%d requests queued)", keys.namespace, queued)

    def __len__(self) -> int:
        return len(self._handed) + len(self.queue)

    def enqueue_request(self, request: Request) -> bool:
        if request in self._taken:  # popped already: it stays with this worker
            self._taken.discard(request)
            self._handed.append(request)
            return True
        queued: bool = super().enqueue_request(request)
        self.acknowledgements.offered(request, queued=queued)
        return queued

    def next_request(self) -> Request | None:
        if self._handed:
            return self._handed.popleft()
        return self._pop()

    def take(self) -> Request | None:
        """A request from the shared queue, for this worker's engine to be handed."""
        request = self._pop()
        if request is not None:
            self._taken.add(request)
        return request

    def _pop(self) -> Request | None:
        request: Request | None = super().next_request()
        if request is not None:
            self.acknowledgements.popped(request)
        return request


class _Stats:
    """The crawl's stats, as scrapy-redis's scheduler counts them: with a ``spider=``
    argument, which Scrapy 2.19 deprecates and this drops."""

    def __init__(self, stats: StatsCollector) -> None:
        self._stats = stats

    def inc_value(
        self, key: str, count: int = 1, start: int = 0, spider: Spider | None = None
    ) -> None:
        self._stats.inc_value(key, count, start)
