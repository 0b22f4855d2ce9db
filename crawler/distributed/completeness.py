"""The completeness pass: settling the crawl's todo hash, once no worker is busy.

A live worker acknowledges what it finished, at the latest once it is idle
(acknowledgements.py); when the queue is empty and no live worker is busy, what is still
in todo was held by a worker that died. One worker at a time, under the crawl's lock,
buries the dead workers (their runs are marked interrupted) and has the
Acknowledgements settle todo: an article the archive holds is done, anything else is
queued again or, past DISTRIBUTED_MAX_REQUEUES, given up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from redis import Redis
from redis.exceptions import LockError
from redis.lock import Lock
from scrapy import Request
from scrapy.statscollectors import StatsCollector

from crawler.archive import Archive
from crawler.distributed.acknowledgements import Acknowledgements
from crawler.distributed.heartbeats import Heartbeat, Heartbeats
from crawler.distributed.keys import CrawlKeys
from crawler.distributed.queue import TrackedQueue
from crawler.site import Site

logger = logging.getLogger(__name__)

# The lock's lifetime, renewed after each page of todo.
LOCK_TIMEOUT = 60.0


class CompletenessPass:
    def __init__(
        self,
        server: Redis,
        keys: CrawlKeys,
        *,
        acknowledgements: Acknowledgements,
        queue: TrackedQueue,
        archive: Archive,
        site: Site,
        stats: StatsCollector,
    ) -> None:
        self.server = server
        self.keys = keys
        self.acknowledgements = acknowledgements
        self.queue = queue
        self.archive = archive
        self.site = site
        self.stats = stats

    async def run(self, heartbeats: Heartbeats, worker: str) -> int | None:
        """Settle every todo entry. Returns how many requests were queued again, or
        None when the pass cannot run now: another worker holds the lock, or is busy."""
        lock: Lock = self.server.lock(self.keys.lock, timeout=LOCK_TIMEOUT)
        if not lock.acquire(blocking=False):
            return None
        try:
            alive, dead = heartbeats.others(worker)
            if any(beat.busy for beat in alive) or len(self.queue):
                return None
            await self._bury(heartbeats, dead)
            settled = await self.acknowledgements.settle(
                self.queue, self._archived, renew=lock.reacquire
            )
        finally:
            try:
                lock.release()
            except LockError:
                logger.warning(
                    "The completeness pass of %s outlasted its lock", self.keys.namespace
                )
        self.stats.inc_value("distributed/passes")
        self.stats.inc_value("distributed/requeued", settled.requeued)
        self.stats.inc_value("distributed/given_up", settled.given_up)
        logger.info(
            "Completeness pass of %s: %d archived, %d queued again, %d given up",
            self.keys.namespace,
            settled.archived,
            settled.requeued,
            settled.given_up,
        )
        return settled.requeued

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

    async def _archived(self, requests: Sequence[Request]) -> set[Request]:
        """Those of ``requests`` whose article the archive holds."""
        articles = {request: self.site.canonical_article_url(request.url) for request in requests}
        known = await self.archive.known(url for url in articles.values() if url)
        return {request for request, url in articles.items() if url is not None and url in known}
