"""Size limits on what the crawl accepts, counted in the stats.

The download handlers refuse a body over ``DOWNLOAD_MAXSIZE`` as it arrives; this
middleware decompresses what is left, with the same limit, and counts each case, so
that a run's stats show how often the site sent something too large:

- ``download/too_large``: the body was larger than ``DOWNLOAD_MAXSIZE``; refused.
- ``download/decompression_bomb``: the body expanded past ``DOWNLOAD_MAXSIZE`` while it
  was decompressed (a small gzip body of many megabytes of zeros); refused.
- ``download/large``: the body (decompressed) was larger than ``DOWNLOAD_WARNSIZE``
  but within ``DOWNLOAD_MAXSIZE``; kept.

The limits themselves are :mod:`crawler.limits`, which replay applies to saved pages
too (and counts the same way); a download handler that refuses a body for its size
with one of its errors is counted here.

A refused article reaches the spider's errback, which reports it and stores nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.responsetypes import responsetypes

from crawler.limits import ACCEPTED_ENCODINGS, SizeLimitExceeded, decode_body

logger = logging.getLogger(__name__)


class SizeLimitsMiddleware:
    """Replaces Scrapy's HttpCompressionMiddleware, at the same place in
    DOWNLOADER_MIDDLEWARES: it asks for compressed responses (unless
    ``COMPRESSION_ENABLED`` is off) and decompresses them within ``DOWNLOAD_MAXSIZE``,
    stopping as soon as the output passes it; and it counts the cases above.

    Settings: ``DOWNLOAD_MAXSIZE``, ``DOWNLOAD_WARNSIZE`` (or the request's
    ``download_maxsize`` and ``download_warnsize`` meta keys), ``COMPRESSION_ENABLED``.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self._max_size = settings.getint("DOWNLOAD_MAXSIZE")
        self._warn_size = settings.getint("DOWNLOAD_WARNSIZE")
        self._decompress = settings.getbool("COMPRESSION_ENABLED")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SizeLimitsMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        if self._decompress:
            request.headers.setdefault("Accept-Encoding", b", ".join(ACCEPTED_ENCODINGS))

    def process_response(self, request: Request, response: Response) -> Response:
        warn_size = request.meta.get("download_warnsize", self._warn_size)
        if self._decompress and request.method != "HEAD":
            response = self._decoded(request, response, warn_size)
        if warn_size and len(response.body) > warn_size:
            self._count("download/large")
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        # Scrapy's download handlers cancel a download for one reason here: a body
        # larger than DOWNLOAD_MAXSIZE, announced by Content-Length or counted as
        # received. A handler serving saved pages raises crawler.limits' errors.
        if isinstance(exception, DownloadCancelledError):
            self._count("download/too_large")
        elif isinstance(exception, SizeLimitExceeded):
            logger.warning("Ignored %s: %s", request, exception)
            self._count(f"download/{exception.reason}")

    def _decoded(self, request: Request, response: Response, warn_size: int) -> Response:
        encodings = response.headers.getlist("Content-Encoding")
        if not encodings:
            return response
        max_size = request.meta.get("download_maxsize", self._max_size)
        try:
            body, left = decode_body(response.body, encodings, max_size)
        except SizeLimitExceeded as exc:  # a bomb; or a body over a smaller download_maxsize
            message = f"Ignored response {response} because {exc}."
            logger.warning(message)
            self._count(f"download/{exc.reason}")
            raise IgnoreRequest(message) from exc
        if len(response.body) < warn_size <= len(body):
            logger.warning(
                "%s body size after decompression (%d B) is larger than the download "
                "warning size (%d B).",
                response,
                len(body),
                warn_size,
            )
        if left:
            logger.warning(
                "Cannot decode the response for %s from unsupported encoding(s) '%s'.",
                response.url,
                b",".join(left).decode("latin-1"),
            )
        self._count("httpcompression/response_count")
        self._count("httpcompression/response_bytes", len(body))
        headers = response.headers.copy()
        if left:
            headers["Content-Encoding"] = left
        else:
            del headers["Content-Encoding"]
        cls = responsetypes.from_args(headers=headers, url=response.url, body=body)
        kwargs: dict[str, Any] = {"body": body, "headers": headers}
        if issubclass(cls, TextResponse):
            kwargs["encoding"] = None  # guessed again from the decoded body
        return response.replace(cls=cls, **kwargs)

    def _count(self, key: str, count: int = 1) -> None:
        self.crawler.stats.inc_value(key, count)
