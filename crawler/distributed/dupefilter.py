"""The shared seen-filter: scrapy-redis's, with Scrapy's own request fingerprints.

scrapy-redis 0.9.1 fingerprints requests itself (a SHA-1 of its own JSON of method,
canonical URL and body), so its fingerprints differ from those of Scrapy's
``REQUEST_FINGERPRINTER``, which the rest of the crawl (the todo hash, the
completeness pass) uses. This subclass asks the crawler's fingerprinter instead, so
that one request has one fingerprint everywhere, whatever fingerprinter is set.
"""

from __future__ import annotations

from redis import Redis
from scrapy import Request, Spider
from scrapy.utils.request import RequestFingerprinterProtocol
from scrapy_redis.connection import get_redis_from_settings
from scrapy_redis.dupefilter import RFPDupeFilter


class RedisDupeFilter(RFPDupeFilter):
    """Settings: ``SCHEDULER_DUPEFILTER_KEY`` (the Redis set), ``DUPEFILTER_DEBUG``."""

    def __init__(
        self,
        server: Redis,
        key: str,
        debug: bool = False,
        *,
        fingerprinter: RequestFingerprinterProtocol,
    ) -> None:
        super().__init__(server, key, debug)
        self.fingerprinter = fingerprinter

    @classmethod
    def from_spider(cls, spider: Spider) -> RedisDupeFilter:
        # How scrapy-redis's scheduler builds its filter, once the spider is known.
        crawler = spider.crawler
        settings = crawler.settings
        return cls(
            get_redis_from_settings(settings),
            key=settings["SCHEDULER_DUPEFILTER_KEY"],
            debug=settings.getbool("DUPEFILTER_DEBUG"),
            fingerprinter=crawler.request_fingerprinter,
        )

    def request_fingerprint(self, request: Request) -> str:
        return self.fingerprinter.fingerprint(request).hex()
