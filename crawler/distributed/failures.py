"""Downloader middleware of a distributed crawl: a request whose download failed for
good leaves the todo hash.

As the outermost downloader middleware (the lowest number), its process_exception is
the last called: every middleware before it declined to retry the request or to
answer for it (retries exhausted, robots.txt disallows it, another host's URL, a
response too large). The spider's errback still sees the failure.
"""

from __future__ import annotations

from scrapy import Request
from scrapy.crawler import Crawler

from crawler.distributed.scheduler import RedisScheduler


class FailureAcknowledgement:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FailureAcknowledgement:
        return cls(crawler)

    def process_exception(self, request: Request, exception: Exception) -> None:
        RedisScheduler.of(self.crawler).forget(request)
