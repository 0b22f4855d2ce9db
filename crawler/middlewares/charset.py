"""Pages whose declared charset is not the one they are written in.

Extraction already reads such a page right (:func:`crawler.pages.decode.decode_html`);
this middleware makes it visible: each HTML page that declares one charset (in its
Content-Type header or its <meta>) but is written in another is logged once, at INFO,
and counted as ``decode/charset_mismatch``.
"""

from __future__ import annotations

import logging

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import HtmlResponse, Response
from scrapy.statscollectors import StatsCollector

from crawler.pages.decode import decode_html

logger = logging.getLogger(__name__)


class CharsetMismatchMiddleware:
    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CharsetMismatchMiddleware:
        assert crawler.stats is not None
        return cls(crawler.stats)

    def process_response(self, request: Request, response: Response) -> Response:
        # Pages the spider reads: decompressed (this sits below HttpCompression), not
        # redirects or errors.
        if response.status != 200 or not isinstance(response, HtmlResponse):
            return response
        decoded = decode_html(response.body, response.headers)
        if decoded.mismatch:
            self.stats.inc_value("decode/charset_mismatch")
            logger.info(
                "Charset mismatch: %s declares %s but is written in %s; decoded as written",
                response.url,
                decoded.declared,
                decoded.encoding,
            )
        return response
