"""Only http and https URLs are fetched.

Scrapy also has download handlers for file:, data:, ftp: and s3: URLs. The site's own
files can name such a URL (a sitemap index's <loc>, a robots.txt ``Sitemap:`` line, a
link), and ``file://www.ylwt22.com/etc/passwd`` even passes as one of the site's hosts:
fetched, it would read a local file into the crawl and its WARC archive. Such a request is
refused before any handler sees it, logged at WARNING and counted as ``download/not_http``.
"""

from __future__ import annotations

import logging

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.statscollectors import StatsCollector
from scrapy.utils.httpobj import urlparse_cached

logger = logging.getLogger(__name__)

SCHEMES = frozenset({"http", "https"})


class HttpOnlyMiddleware:
    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HttpOnlyMiddleware:
        assert crawler.stats is not None
        return cls(crawler.stats)

    def process_request(self, request: Request) -> None:
        scheme = urlparse_cached(request).scheme
        if scheme in SCHEMES:
            return
        self.stats.inc_value("download/not_http")
        logger.warning("Refused %s: only http and https URLs are fetched", request.url)
        raise IgnoreRequest(f"not an http(s) URL: {request.url}")
