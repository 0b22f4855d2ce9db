"""The middlewares that tell the crawl's Acknowledgements (acknowledgements.py) what
became of a request in this worker: what its callback gave, whether its item was
dropped, whether its download failed for good.

Both must be the outermost of their chain (the lowest number):

- OutputAcknowledgement, a spider middleware, so that what it sees of a callback's
  output is what reaches the engine;
- FailureAcknowledgement, a downloader middleware, so that its process_exception is the
  last called: every middleware before it declined to retry the request or to answer
  for it (retries exhausted, robots.txt disallows it, another host's URL, a response too
  large). The spider's errback still sees the failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.distributed.acknowledgements import Acknowledgements
from crawler.distributed.scheduler import RedisScheduler


class OutputAcknowledgement:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OutputAcknowledgement:
        middleware = cls(crawler)
        crawler.signals.connect(middleware.item_dropped, signal=signals.item_dropped)
        return middleware

    @property
    def acknowledgements(self) -> Acknowledgements:
        return RedisScheduler.of(self.crawler).acknowledgements

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
            if response.request is not None:
                self.acknowledgements.parse_failed(response.request, requests)
            raise
        if response.request is not None:
            self.acknowledgements.parsed(response.request, requests, gave_item=gave_item)

    def item_dropped(self, item: Any, response: Response | Failure | None) -> None:
        # The response, or for an item from an errback the failure, names the request.
        request = getattr(response, "request", None)
        if isinstance(request, Request):
            self.acknowledgements.done(request)


class FailureAcknowledgement:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FailureAcknowledgement:
        return cls(crawler)

    def process_exception(self, request: Request, exception: Exception) -> None:
        RedisScheduler.of(self.crawler).acknowledgements.done(request)
