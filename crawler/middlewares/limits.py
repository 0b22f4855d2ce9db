"""Size limits on what the crawl accepts, counted in the stats.

Scrapy enforces ``DOWNLOAD_MAXSIZE`` and ``DOWNLOAD_WARNSIZE`` itself and logs each case
at WARNING; this middleware adds a count per case, so that a run's stats show how often
the site sent something too large:

- ``download/too_large``: the body was larger than ``DOWNLOAD_MAXSIZE``; refused.
- ``download/decompression_bomb``: the body expanded past ``DOWNLOAD_MAXSIZE`` while it
  was decompressed (a small gzip body of many megabytes of zeros); refused.
- ``download/large``: the body (decompressed) was larger than ``DOWNLOAD_WARNSIZE``
  but within ``DOWNLOAD_MAXSIZE``; kept.

A refused article reaches the spider's errback, which reports it and stores nothing.
"""

from __future__ import annotations

from scrapy import Request
from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest
from scrapy.http import Response


class SizeLimitsMiddleware(HttpCompressionMiddleware):
    """Scrapy's HttpCompressionMiddleware (which it replaces, at the same place in
    DOWNLOADER_MIDDLEWARES) with the counts above. It decompresses with the same
    ``DOWNLOAD_MAXSIZE`` bound, stopping as soon as the output passes it."""

    def process_response(  # type: ignore[override]
        self, request: Request, response: Response
    ) -> Request | Response:
        try:
            result = super().process_response(request, response)
        except IgnoreRequest:
            # The parent refuses a response only when decompressing passes the limit.
            self._count("download/decompression_bomb")
            raise
        warn_size = request.meta.get("download_warnsize", self._warn_size)
        if warn_size and isinstance(result, Response) and len(result.body) > warn_size:
            self._count("download/large")
        return result

    def process_exception(self, request: Request, exception: Exception) -> None:
        # The download handlers cancel a download for one reason here: a body larger
        # than DOWNLOAD_MAXSIZE, announced by Content-Length or counted as received.
        if isinstance(exception, DownloadCancelledError):
            self._count("download/too_large")

    def _count(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(key)
