"""The completeness pass: what the crawl's requests came to, once no worker is busy.

Every request scheduled stays in the todo hash until it is done (see queue.py). A live
worker takes out what it finished, at the latest once it is idle; when the queue is
empty and no live worker is busy, what is still in todo is one of two:

- an article request of a worker that died after its article was stored: done if the
  article is archived now;
- a request a worker popped and never finished, because it died: it goes back on the
  queue, past the seen-filter, at most ``max_requeues`` times; after that it is given
  up with an ERROR naming its URL.

One worker at a time runs the pass, under the crawl's lock. It also marks the runs of
the dead workers interrupted.
"""

from __future__ import annotations

import logging

from redis import Redis
from redis.exceptions import LockError
from redis.lock import Lock
from scrapy import Request
from scrapy.statscollectors import StatsCollector

from crawler.archive import Archive
from crawler.distributed.heartbeats import Heartbeat, Heartbeats
from crawler.distributed.keys import CrawlKeys
from crawler.distributed.scheduler import RedisScheduler
from crawler.site import Site

logger = logging.getLogger(__name__)

# Entries read from todo at a time; the lock's lifetime, renewed after each page.
_PAGE = 500
LOCK_TIMEOUT = 60.0


class CompletenessPass:
    def __init__(
        self,
        server: Redis,
        keys: CrawlKeys,
        *,
        scheduler: RedisScheduler,
        archive: Archive,
        site: Site,
        stats: StatsCollector,
        max_requeues: int,
    ) -> None:
        self.server = server
        self.keys = keys
        self.scheduler = scheduler
        self.archive = archive
        self.site = site
        self.stats = stats
        self.max_requeues = max_requeues

    async def run(self, heartbeats: Heartbeats, worker: str) -> int | None:
        """Settle every todo entry. Returns how many requests were queued again, or
        None when the pass cannot run now: another worker holds the lock, or is busy."""
        lock: Lock = self.server.lock(self.keys.lock, timeout=LOCK_TIMEOUT)
        if not lock.acquire(blocking=False):
            return None
        try:
            alive, dead = heartbeats.others(worker)
            if any(beat.busy for beat in alive) or len(self.scheduler.queue):
                return None
            await self._bury(heartbeats, dead)
            return await self._settle(lock)
        finally:
            try:
                lock.release()
            except LockError:
                logger.warning(
                    "The completeness pass of %s outlasted its lock", self.keys.namespace
                )

    async def _bury(self, heartbeats: Heartbeats, dead: list[Heartbeat]) -> None:
        now = heartbeats.now()
        for beat in dead:
            logger.warning(
                "Worker %s is gone (no heartbeat for %.0fs): what it held is queued again",
                beat.worker,
                now - beat.seen,
            )
        heartbeats.remove(*(beat.worker for beat in dead))
        await self.archive.interrupt_runs(beat.run_id for beat in dead if beat.run_id is not None)

    async def _settle(self, lock: Lock) -> int:
        queue = self.scheduler.queue
        requeued = archived = given_up = 0
        settled: set[str] = set()
        cursor = 0
        while True:
            cursor, page = queue.scan_todo(cursor, _PAGE)
            entries: list[tuple[str, Request]] = []
            for fingerprint, data in page:
                if fingerprint in settled:  # HSCAN may return an entry twice
                    continue
                settled.add(fingerprint)
                try:
                    entries.append((fingerprint, queue.decode(data)))
                except Exception as exc:  # e.g. a callback the spider no longer has
                    logger.error("Dropping a todo entry that cannot be read: %r", exc)
                    self.scheduler.forget_fingerprints(fingerprint)
            articles = {fp: self.site.canonical_article_url(r.url) for fp, r in entries}
            known = await self.archive.known(url for url in articles.values() if url)
            for fingerprint, request in entries:
                url = articles[fingerprint]
                if url is not None and url in known:
                    self.scheduler.forget_fingerprints(fingerprint)
                    archived += 1
                elif self.server.hincrby(self.keys.attempts, fingerprint, 1) > self.max_requeues:
                    logger.error(
                        "Giving up on %s: queued again %d times, never done",
                        request.url,
                        self.max_requeues,
                    )
                    self.scheduler.forget_fingerprints(fingerprint)
                    given_up += 1
                else:
                    self.scheduler.requeue(request)
                    requeued += 1
            lock.reacquire()
            if cursor == 0:
                break
        self.stats.inc_value("distributed/passes")
        self.stats.inc_value("distributed/requeued", requeued)
        self.stats.inc_value("distributed/given_up", given_up)
        logger.info(
            "Completeness pass of %s: %d archived, %d queued again, %d given up",
            self.keys.namespace,
            archived,
            requeued,
            given_up,
        )
        return requeued
