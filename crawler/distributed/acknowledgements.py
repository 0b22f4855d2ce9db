"""The acknowledgement protocol of a distributed crawl: a request stays in the crawl's
todo hash from the moment it is queued until its work is done, so that what a worker
that dies had taken is queued again.

scrapy-redis forgets a request once a worker pops it. Here, for each request:

- **queued**: its entry in ``<ns>:todo`` (fingerprint -> the request, serialized as the
  queue serializes it) is written in the same MULTI/EXEC as the queue's push
  (TrackedQueue.push);
- **popped** by a worker: the entry stays, and that worker holds the request;
- **done**, it leaves todo:

  - its page was parsed and gave no item (home, list pages, sitemap, robots.txt, a page
    of an article that asks for the next page, an article that answered 304 or 404),
    or its callback raised: once every request the callback gave has been offered to
    this worker's scheduler. The engine schedules a callback's output a little after the
    callback is done with it: a worker dying in between must not lose them;
  - its download failed for good, or the item it gave was dropped by a pipeline;
  - it gave an article: articles are written in batches, so it leaves once the worker
    is idle (everything it was given is written by then), unless the archive failed
    and the articles were spilled to files instead;
  - it was redirected: the redirect is scheduled as a new request, under its new URL's
    fingerprint, and the response to the request it replaces never comes;

- **settled**, once the queue is empty and no live worker is busy (the completeness
  pass): what is still in todo was held by a worker that died. An article the archive
  holds is done; anything else goes back on the queue, past the seen-filter, at most
  ``DISTRIBUTED_MAX_REQUEUES`` times (counted in ``<ns>:attempts``), and is then given
  up with an ERROR naming its URL.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast
from weakref import WeakKeyDictionary, WeakSet

from redis import Redis
from redis.client import Pipeline
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.utils.request import RequestFingerprinterProtocol

from crawler.distributed.keys import CrawlKeys

if TYPE_CHECKING:
    from crawler.distributed.queue import TrackedQueue

logger = logging.getLogger(__name__)

# Entries read from todo at a time when settling it.
_PAGE = 500

Archived = Callable[[Sequence[Request]], Awaitable[Collection[Request]]]
"""Of the given requests, those whose article the archive holds."""


@dataclass(frozen=True, slots=True)
class Settlement:
    """What settling todo came to: requests done since the archive holds their article,
    queued again, and given up."""

    archived: int = 0
    requeued: int = 0
    given_up: int = 0


class Acknowledgements:
    """The todo entries of one crawl, and what this worker holds of them.

    Setting: ``DISTRIBUTED_MAX_REQUEUES``; the todo and attempts keys follow
    ``CRAWL_ID``."""

    def __init__(
        self,
        server: Redis,
        keys: CrawlKeys,
        fingerprinter: RequestFingerprinterProtocol,
        *,
        max_requeues: int,
    ) -> None:
        self.server = server
        self.keys = keys
        self.fingerprinter = fingerprinter
        self.max_requeues = max_requeues
        # Fingerprints of the requests popped here and still in todo.
        self._popped: set[str] = set()
        # Requests the scheduler here has been offered, and for each request still to be
        # offered, the fingerprints of the parsed requests waiting for it.
        self._offered: WeakSet[Request] = WeakSet()
        self._parents: WeakKeyDictionary[Request, list[str]] = WeakKeyDictionary()
        self._waiting: dict[str, int] = {}
        self._before_release: list[Callable[[], object]] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler, server: Redis) -> Acknowledgements:
        settings = crawler.settings
        return cls(
            server,
            CrawlKeys.from_settings(settings),
            crawler.request_fingerprinter,
            max_requeues=settings.getint("DISTRIBUTED_MAX_REQUEUES"),
        )

    def fingerprint(self, request: Request) -> str:
        """The request's todo field: Scrapy's fingerprint, as the seen-filter has it."""
        return self.fingerprinter.fingerprint(request).hex()

    # --- the queue and the scheduler --------------------------------------------------

    def queued(self, pipe: Pipeline, request: Request, data: bytes) -> None:
        """``request`` is being pushed as ``data`` in ``pipe``'s transaction: its todo
        entry is written in that transaction too."""
        pipe.hset(self.keys.todo, self.fingerprint(request), data)

    def offered(self, request: Request, *, queued: bool) -> None:
        """The scheduler here was offered ``request``, and ``queued`` it or filtered it
        out as seen. What waited for it to be offered is released."""
        if queued:
            # A retry is queued under the fingerprint of the request it repeats: that
            # entry is the queue's again, not this worker's.
            self._popped.discard(self.fingerprint(request))
        self._offered.add(request)
        for fingerprint in self._parents.pop(request, ()):
            self._waiting[fingerprint] -= 1
            if not self._waiting[fingerprint]:
                del self._waiting[fingerprint]
                self._remove(fingerprint)
        if redirected_from := request.meta.get("redirect_urls"):
            self.done(request.replace(url=redirected_from[-1]))

    def popped(self, request: Request) -> None:
        """This worker took ``request`` from the queue: it holds it until it is done."""
        self._popped.add(self.fingerprint(request))

    # --- the work -----------------------------------------------------------------------

    def before_release(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` before a parsed request leaves todo: what the worker must
        keep of the page's reading (say, a category read to its end) is kept by then."""
        self._before_release.append(callback)

    def parsed(self, request: Request, followers: Sequence[Request], *, gave_item: bool) -> None:
        """The callback of ``request`` is done, and gave ``followers`` (the requests it
        gave). A request that gave an item is done when the item is written (see
        ``idle``) or dropped; any other, once its followers have been offered."""
        if not gave_item:
            self._release_after(request, followers)

    def parse_failed(self, request: Request, followers: Sequence[Request]) -> None:
        """The callback of ``request`` raised after giving ``followers``: they are all
        there will be, and the request is done once they have been offered."""
        self._release_after(request, followers)

    def done(self, request: Request) -> None:
        """The work of ``request`` is done: its download failed for good, its item was
        dropped, or a redirect replaced it."""
        self._remove(self.fingerprint(request))

    def idle(self, *, articles_written: bool) -> None:
        """Nothing is queued, in flight or being parsed in this worker. If every article
        it was given is written, each request it popped is done; if the archive failed
        (the articles were spilled to files), they stay in todo."""
        if not articles_written:
            return
        if self._popped:
            self._remove(*self._popped)
        self._waiting.clear()
        self._parents.clear()

    def _release_after(self, request: Request, followers: Iterable[Request]) -> None:
        for callback in self._before_release:
            callback()
        fingerprint = self.fingerprint(request)
        waiting = [r for r in followers if r not in self._offered]
        if not waiting:
            self._remove(fingerprint)
            return
        self._waiting[fingerprint] = self._waiting.get(fingerprint, 0) + len(waiting)
        for follower in waiting:
            self._parents.setdefault(follower, []).append(fingerprint)

    # --- what dead workers held ---------------------------------------------------------

    async def settle(
        self,
        queue: TrackedQueue,
        archived: Archived,
        *,
        renew: Callable[[], object] = lambda: None,
    ) -> Settlement:
        """Settle every todo entry, once the queue is empty and no live worker is busy:
        whatever is left was held by a worker that died. ``archived`` tells which of the
        requests the archive holds the article of; ``renew`` is called after each page of
        entries (the caller's lock is renewed there)."""
        done = requeued = given_up = 0
        settled: set[str] = set()
        cursor = 0
        while True:
            cursor, page = self.server.hscan(self.keys.todo, cursor, count=_PAGE)
            entries: list[tuple[str, Request]] = []
            for field, data in cast("dict[bytes, bytes]", page).items():  # left undecoded
                fingerprint = field.decode()
                if fingerprint in settled:  # HSCAN may return an entry twice
                    continue
                settled.add(fingerprint)
                try:
                    entries.append((fingerprint, queue.decode(data)))
                except Exception as exc:  # e.g. a callback the spider no longer has
                    logger.error("Dropping a todo entry that cannot be read: %r", exc)
                    self._remove(fingerprint)
            held = await archived([request for _, request in entries])
            for fingerprint, request in entries:
                if request in held:
                    self._remove(fingerprint)
                    done += 1
                elif self.server.hincrby(self.keys.attempts, fingerprint, 1) > self.max_requeues:
                    logger.error(
                        "Giving up on %s: queued again %d times, never done",
                        request.url,
                        self.max_requeues,
                    )
                    self._remove(fingerprint)
                    given_up += 1
                else:
                    queue.push(request)  # past the seen-filter: it was seen, never done
                    requeued += 1
            renew()
            if cursor == 0:
                return Settlement(archived=done, requeued=requeued, given_up=given_up)

    def _remove(self, *fingerprints: str) -> None:
        with self.server.pipeline() as pipe:
            pipe.hdel(self.keys.todo, *fingerprints)
            pipe.hdel(self.keys.attempts, *fingerprints)
            pipe.execute()
        self._popped.difference_update(fingerprints)
