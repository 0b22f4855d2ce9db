"""The extraction pool: article pages read into items in worker processes, so that the
crawl's own interpreter does Scrapy's work and the writes, not the reading.

Settings: ``EXTRACT_WORKERS`` processes (0: read in the crawl's own process, as tests
and debugging may want), ``EXTRACT_QUEUE`` pages at most waiting for a reader (past it,
the spider's callbacks wait, their responses stay in Scrapy's scraper, and Scrapy stops
downloading until there is room: memory stays bounded), ``EXTRACT_TIMEOUT`` seconds a
page may take, and ``EXTRACT_PIPELINES`` (see crawler/reading.py).

A worker that crashes or hangs costs the page it was reading, never the crawl: pebble
runs each page in one known worker, kills it past the timeout and starts another; the
page is dropped with the reason (``extraction_failed``), and the crawl goes on.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.utils.misc import load_object

from crawler.reading import PageJob, PageRead, Reader, ReaderConfig, read_in_worker, start_worker

if TYPE_CHECKING:
    import pebble

logger = logging.getLogger(__name__)

# Seconds to wait for the workers to end once they are told to.
_STOP_WAIT = 10.0


class ReadFailed(Exception):
    """A page the pool could not read: its worker crashed, hung, or raised."""


class ArticleReaders:
    def __init__(self, config: ReaderConfig, *, workers: int, queue: int, timeout: float) -> None:
        self.config = config
        self.workers = workers
        self.timeout = timeout
        self._room = asyncio.Semaphore(max(1, queue))
        self._reader: Reader | None = None
        self._pool: pebble.ProcessPool | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArticleReaders:
        settings = crawler.settings
        pipelines = tuple(settings.getlist("EXTRACT_PIPELINES"))
        for path in pipelines:
            load_object(path)  # a wrong name fails here, once, not in every worker
        readers = cls(
            ReaderConfig(site_root=settings["SITE_ROOT"], pipelines=pipelines),
            workers=settings.getint("EXTRACT_WORKERS"),
            queue=settings.getint("EXTRACT_QUEUE"),
            timeout=settings.getfloat("EXTRACT_TIMEOUT"),
        )
        crawler.signals.connect(readers.start, signal=signals.spider_opened)
        crawler.signals.connect(readers.stop, signal=signals.engine_stopped)
        return readers

    def start(self) -> None:
        """Start the workers as the spider opens: they are ready by the first page."""
        if self.workers <= 0:
            self._reader = Reader(self.config)
            return
        import pebble  # noqa: PLC0415  (only a crawl with workers needs it)

        # A fork server: each worker starts from a process that has already imported
        # the readers' modules, and none copies the crawl's reactor or threads.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["crawler.reading"])
        self._pool = pebble.ProcessPool(
            max_workers=self.workers,
            initializer=start_worker,
            initargs=(self.config,),
            context=context,
        )

    async def read(self, job: PageJob) -> PageRead:
        if self._pool is None and self._reader is None:
            self.start()
        async with self._room:
            if self._reader is not None:
                return self._reader.read(job)
            assert self._pool is not None
            future = self._pool.schedule(read_in_worker, args=(job,), timeout=self.timeout)
            try:
                return await asyncio.wrap_future(future)
            except FutureTimeout:
                raise ReadFailed(f"reading took more than {self.timeout:g} s") from None
            except Exception as exc:
                # A worker that died (pebble.ProcessExpired), or an error in the reading.
                raise ReadFailed(f"{type(exc).__name__}: {exc}") from exc

    async def stop(self) -> None:
        """Stop the workers. The engine has stopped: no page is being read any more."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            await asyncio.to_thread(pool.join, _STOP_WAIT)
