"""The scheduler of a distributed crawl: scrapy-redis's, adapted to Scrapy 2.19, and
told when a request's work is done.

Adapted from scrapy_redis.scheduler.Scheduler (0.9.1), which predates Scrapy 2.19:

- ``open`` announced a resumed crawl with ``Spider.log``, and ``enqueue_request`` and
  ``next_request`` counted stats with a ``spider=`` argument; Scrapy 2.19 deprecates
  both. They are rewritten with the logger and without the argument.
- The queue (TrackedQueue) records every request it is given in the todo hash, and
  this scheduler takes entries out of it: ``forget`` once a request is done,
  ``forget_after`` once the requests it led to have been scheduled too.
- A redirect is scheduled as a new request, under its new URL's fingerprint: the
  request it replaces is forgotten then, for its response never comes.
- Scrapy's engine asks an idle scheduler for requests again only every 5 seconds (its
  heartbeat), while other workers may queue requests at any time: ``take`` pops one
  for the worker to hand to its engine (ExecutionEngine.crawl), which schedules it
  here, in this process, and asks for more at once.
- Whatever this worker popped is done once it is idle (nothing in flight, every
  article written): ``forget_popped`` takes what no middleware acknowledged out of
  todo then (a download refused in a downloader middleware's process_response, say).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from typing import Any
from weakref import WeakKeyDictionary, WeakSet

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.utils.misc import load_object
from scrapy_redis.scheduler import Scheduler

from crawler.distributed.keys import CrawlKeys
from crawler.distributed.queue import TrackedQueue

logger = logging.getLogger(__name__)


class RedisScheduler(Scheduler):
    """Settings, as scrapy-redis reads them: ``REDIS_URL``, ``SCHEDULER_QUEUE_KEY``,
    ``SCHEDULER_QUEUE_CLASS`` (a TrackedQueue), ``SCHEDULER_DUPEFILTER_KEY``,
    ``DUPEFILTER_CLASS``, ``SCHEDULER_PERSIST``, ``SCHEDULER_SERIALIZER``; the todo and
    attempts keys follow ``CRAWL_ID``."""

    queue: TrackedQueue
    spider: Spider
    keys: CrawlKeys

    def __init__(self, server: Any, **kwargs: Any) -> None:
        super().__init__(server, **kwargs)
        # Requests this scheduler has been offered, and for each request still to be
        # offered, the fingerprints of the requests waiting for it to leave todo.
        self._offered: WeakSet[Request] = WeakSet()
        self._parents: WeakKeyDictionary[Request, list[str]] = WeakKeyDictionary()
        self._waiting: dict[str, int] = {}
        # Fingerprints of the requests popped here and still in todo.
        self._popped: set[str] = set()
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
        scheduler.keys = CrawlKeys.from_settings(crawler.settings)
        return scheduler

    def open(self, spider: Spider) -> None:
        self.spider = spider
        self.queue = load_object(self.queue_cls)(
            server=self.server,
            spider=spider,
            key=self.queue_key % {"spider": spider.name},
            serializer=self.serializer,
        )
        if not self.df:
            self.df = load_object(self.dupefilter_cls).from_spider(spider)
        if self.flush_on_start:
            self.flush()
        if queued := len(self.queue):
            logger.info("Resuming crawl %s (%d requests queued)", self.keys.namespace, queued)

    def __len__(self) -> int:
        return len(self._handed) + len(self.queue)

    def enqueue_request(self, request: Request) -> bool:
        if request in self._taken:  # popped already: it stays with this worker
            self._taken.discard(request)
            self._handed.append(request)
            return True
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            self._settle(request)
            return False
        self.queue.push(request)
        # A retry is queued under the fingerprint of the request it repeats: that entry
        # is the queue's again, not this worker's.
        self._popped.discard(self.queue.fingerprint(request))
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        self._settle(request)
        return True

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
        request: Request | None = self.queue.pop(self.idle_before_close)
        if request is not None:
            self._popped.add(self.queue.fingerprint(request))
            if self.stats:
                self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def requeue(self, request: Request) -> None:
        """Queue a request again, past the seen-filter: it was seen, never done."""
        self.queue.push(request)

    def forget(self, request: Request) -> None:
        """The request is done: it leaves todo."""
        self.forget_fingerprints(self.queue.fingerprint(request))

    def forget_fingerprints(self, *fingerprints: str) -> None:
        with self.server.pipeline() as pipe:
            pipe.hdel(self.keys.todo, *fingerprints)
            pipe.hdel(self.keys.attempts, *fingerprints)
            pipe.execute()
        self._popped.difference_update(fingerprints)

    def forget_popped(self) -> None:
        """This worker is idle: every request it popped is done."""
        if self._popped:
            self.forget_fingerprints(*self._popped)
        self._waiting.clear()
        self._parents.clear()

    def forget_after(self, request: Request, followers: Iterable[Request]) -> None:
        """The request is done once ``followers``, the requests it gave, have been
        offered to this scheduler: until then, they exist only in this process."""
        fingerprint = self.queue.fingerprint(request)
        waiting = [r for r in followers if r not in self._offered]
        if not waiting:
            self.forget_fingerprints(fingerprint)
            return
        self._waiting[fingerprint] = self._waiting.get(fingerprint, 0) + len(waiting)
        for follower in waiting:
            self._parents.setdefault(follower, []).append(fingerprint)

    def _settle(self, request: Request) -> None:
        """After ``request`` was offered: release what waited for it, and forget the
        request a redirect replaces."""
        self._offered.add(request)
        for fingerprint in self._parents.pop(request, ()):
            self._waiting[fingerprint] -= 1
            if not self._waiting[fingerprint]:
                del self._waiting[fingerprint]
                self.forget_fingerprints(fingerprint)
        if redirected_from := request.meta.get("redirect_urls"):
            self.forget(request.replace(url=redirected_from[-1]))
