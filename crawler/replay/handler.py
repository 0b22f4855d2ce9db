"""A download handler that answers from saved pages instead of the web."""

from __future__ import annotations

import logging

from scrapy import Request
from scrapy.core.downloader.handlers.base import BaseDownloadHandler
from scrapy.crawler import Crawler
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes
from scrapy.utils.asyncio import run_in_thread

from crawler.limits import SizeLimitExceeded
from crawler.replay.sources import Source, SourceIndex, read_source

logger = logging.getLogger(__name__)


class SourceUnreadable(Exception):
    """A saved page indexed earlier can no longer be read."""


class ReplayDownloadHandler(BaseDownloadHandler):
    """Serves each request from the replay spider's index of saved pages: the source
    the request names in ``meta["replay_source"]``, else the best copy of its URL. A URL
    with no saved copy answers 404. No socket is ever opened.

    A saved page is held to the crawl's limits (``DOWNLOAD_MAXSIZE``, or the request's
    ``download_maxsize`` meta key): one too large, stored or once decompressed, fails
    with :mod:`crawler.limits`' error, which SizeLimitsMiddleware counts as a crawl's."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._max_size = crawler.settings.getint("DOWNLOAD_MAXSIZE")

    async def download_request(self, request: Request) -> Response:
        index: SourceIndex = self.crawler.spider.index  # type: ignore[union-attr]
        source: Source | None = request.meta.get("replay_source") or index.lookup(request.url)
        if source is None:
            return self._response(request, 404, Headers({"Content-Type": "text/html"}), b"")
        max_size = request.meta.get("download_maxsize", self._max_size)
        try:
            page = await run_in_thread(read_source, source, max_size)
        except SizeLimitExceeded:
            raise
        except Exception as exc:
            raise SourceUnreadable(f"{source.path}: {type(exc).__name__}: {exc}") from exc
        # What the crawl that saved the page knew: when it was fetched, and from where.
        request.meta["fetched_at"] = source.fetched_at
        request.meta["provenance"] = source.provenance()
        return self._response(request, page.status, Headers(page.headers), page.body)

    @staticmethod
    def _response(request: Request, status: int, headers: Headers, body: bytes) -> Response:
        cls = responsetypes.from_args(headers=headers, url=request.url, body=body)
        return cls(url=request.url, status=status, headers=headers, body=body,
                   request=request, flags=["replay"])  # fmt: skip
