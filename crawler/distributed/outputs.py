"""Spider middleware of a distributed crawl: a request leaves the todo hash once what
its callback gave has been taken in.

- A request whose callback gave no item (home, list pages, sitemap, robots.txt, a page
  of an article that asks for the next page, an article that answered 304 or 404)
  leaves once every request it gave has been scheduled, or once it raised.
- A request whose callback gave an article is done only when the article is stored,
  and articles are written in batches: it stays, and leaves when the article is
  dropped by a pipeline, once the worker is idle (all it was given is written by
  then: RedisScheduler.forget_popped), or, if the worker died first, when the
  completeness pass finds the article archived.

A request waits for the requests it gave because the engine schedules a callback's
output a little after the callback is done with it: a worker dying in between must
not lose them.

It must be the outermost spider middleware (the lowest number), so that what it sees
is what reaches the engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.distributed.scheduler import RedisScheduler
from crawler.distributed.worker import Worker


class OutputAcknowledgement:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OutputAcknowledgement:
        middleware = cls(crawler)
        crawler.signals.connect(middleware.item_dropped, signal=signals.item_dropped)
        return middleware

    @property
    def scheduler(self) -> RedisScheduler:
        return RedisScheduler.of(self.crawler)

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        requests: list[Request] = []
        gave_item = False
        try:
            async for element in result:
                if isinstance(element, Request):
                    requests.append(element)
                else:
                    gave_item = True
                yield element
        except Exception:
            # The callback failed: what it gave is all there will be.
            self._done(response, requests)
            raise
        if not gave_item:
            self._done(response, requests)

    def _done(self, response: Response, requests: list[Request]) -> None:
        # A list page may have finished its category's reading: say so before it goes.
        if (worker := self.crawler.get_extension(Worker)) is not None:
            worker.record_categories()
        self.scheduler.forget_after(response.request, requests)  # type: ignore[arg-type]

    def item_dropped(self, item: Any, response: Response | Failure | None) -> None:
        # The response, or for an item from an errback the failure, names the request.
        request = getattr(response, "request", None)
        if isinstance(request, Request):
            self.scheduler.forget(request)
