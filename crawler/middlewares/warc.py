"""Archives every response the crawl fetches, with its request, in WARC files.

It sits at 950 in DOWNLOADER_MIDDLEWARES, nearest the download handler, so it sees each
response as received: before HttpCompressionMiddleware decodes the body, and before
the retry and redirect middlewares act, so failed attempts and redirects are archived
too. The files are written on one worker thread; the crawl never waits on the disk.

The raw copy is part of what the archive keeps: when a record cannot be written (a full
disk, a folder gone), the crawl stops with the finish reason ``warc_error``, logging
the error once, and no response goes on without its record.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Headers, Response
from scrapy.utils.asyncio import is_asyncio_available

from crawler.extensions.runs import RunRecorder
from crawler.warc import WarcLocation, WarcWriter

logger = logging.getLogger(__name__)

# What the middleware sets on each archived request, read back as response.meta[...].
FETCHED_AT = "fetched_at"
PROVENANCE = "provenance"


class WarcMiddleware:
    """Writes each response and its request to the WARC files in ``WARC_DIR`` and sets
    ``meta["fetched_at"]`` (the record's WARC-Date) and ``meta["provenance"]`` (where
    the record is). ``meta["dont_archive"]`` leaves a request out.

    Settings: ``WARC_ENABLED``, ``WARC_DIR``, ``WARC_PREFIX``, ``WARC_MAX_SIZE``.
    """

    FINISH_REASON = "warc_error"

    def __init__(self, crawler: Crawler, writer: WarcWriter) -> None:
        self.crawler = crawler
        self.writer = writer
        self._failed: str | None = None
        # One thread: records go to the file in the order they are handed over.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warc")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcMiddleware:
        settings = crawler.settings
        if not settings.getbool("WARC_ENABLED"):
            raise NotConfigured  # switched off on purpose: nothing to warn about
        if not is_asyncio_available():
            raise RuntimeError("WARC archiving needs the asyncio reactor (TWISTED_REACTOR)")
        writer = WarcWriter(
            settings.get("WARC_DIR"),
            prefix=settings.get("WARC_PREFIX"),
            max_size=settings.getint("WARC_MAX_SIZE"),
        )
        middleware = cls(crawler, writer)
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware

    def process_request(self, request: Request) -> None:
        # A retry or redirect copies meta: what it says of the previous response is not
        # true of the next one. A handler serving saved pages sets fetched_at afresh.
        request.meta.pop(FETCHED_AT, None)
        request.meta.pop(PROVENANCE, None)

    async def process_response(self, request: Request, response: Response) -> Response:
        if request.meta.get("dont_archive"):
            return response
        if self._failed is not None:
            raise IgnoreRequest(f"not archived: {self._failed}")
        # A handler that serves saved bytes knows when they were fetched; otherwise now.
        captured = request.meta.get(FETCHED_AT)
        stats = self.crawler.stats
        assert stats is not None
        try:
            loop = asyncio.get_running_loop()
            location, total_bytes, files = await loop.run_in_executor(
                self._executor,
                self._write,
                request,
                response,
                captured if isinstance(captured, datetime) else None,
            )
        except _AfterFailure:
            raise IgnoreRequest(f"not archived: {self._failed}") from None
        except Exception as exc:
            stats.inc_value("warc/errors")
            self._fail(response.url, exc)
            raise IgnoreRequest(f"not archived: {self._failed}") from exc
        stats.inc_value("warc/records")
        stats.set_value("warc/bytes", total_bytes)
        stats.set_value("warc/files", files)
        request.meta[FETCHED_AT] = location.date
        request.meta[PROVENANCE] = {
            "kind": "warc",
            "url": response.url,
            "file": location.file,
            "offset": location.offset,
            "length": location.length,
            "record_id": location.record_id,
        }
        return response

    def _fail(self, url: str, exc: Exception) -> None:
        """The first failed write (the worker thread recorded it): say so once, and stop
        the crawl."""
        stats = self.crawler.stats
        stats.set_value("warc/error", f"cannot write the WARC files: {self._failed}")
        message = "Could not write %s to the WARC files in %s: %s. Stopping the crawl."
        if isinstance(exc, OSError):
            logger.error(message, url, self.writer.directory, self._failed)
        else:  # not the disk: a fault of ours, with its traceback
            logger.exception(message, url, self.writer.directory, self._failed)
        if (recorder := self.crawler.get_extension(RunRecorder)) is not None:
            recorder.fail(self.FINISH_REASON, f"cannot write the WARC files: {self._failed}")

    async def spider_closed(self) -> None:
        stats = self.crawler.stats
        assert stats is not None
        loop = asyncio.get_running_loop()
        try:
            # Queued after every pending write, so those finish first.
            await loop.run_in_executor(self._executor, self.writer.close)
        except OSError as exc:
            stats.inc_value("warc/errors")
            logger.error("Could not close the WARC file: %s", exc)
            if self._failed is None:
                # The run is judged after this handler: the failure is its own.
                self._failed = _one_line(exc)
                stats.set_value("warc/error", f"cannot close the WARC file: {self._failed}")
                if (recorder := self.crawler.get_extension(RunRecorder)) is not None:
                    recorder.fail(self.FINISH_REASON, f"cannot close the WARC file: {self._failed}")
        self._executor.shutdown(wait=False)
        stats.set_value("warc/bytes", self.writer.bytes_written)
        stats.set_value("warc/files", self.writer.files_started)

    def _write(
        self, request: Request, response: Response, captured: datetime | None
    ) -> tuple[WarcLocation, int, int]:
        """On the worker thread: the record pair, and the writer's totals after it. After
        a failed write, those already queued are not attempted: the crawl is stopping."""
        if self._failed is not None:
            raise _AfterFailure
        try:
            location = self.writer.write(
                response.url,
                method=request.method,
                request_headers=_archived_request_headers(request.headers),
                request_body=request.body,
                status=response.status,
                response_headers=_pairs(response.headers),
                response_body=response.body,
                date=captured,
            )
        except Exception as exc:
            self._failed = _one_line(exc)
            raise
        return location, self.writer.bytes_written, self.writer.files_started


class _AfterFailure(Exception):
    """A write not attempted: an earlier one failed."""


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _pairs(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(name, value) for name, values in headers.items() for value in values]


def _archived_request_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    # Proxy credentials are for the proxy, not the site, and have no place in an archive.
    return [
        (name, value) for name, value in _pairs(headers) if name.lower() != b"proxy-authorization"
    ]
