"""Replay: the ylwt22 spider's extraction and pipelines over saved pages, offline.

The pages come from the paths given (WARC files, `wget --mirror` trees, saved text
pages, HTML files) or, to re-extract, from the raw copies the stored articles name
in their provenance. No Scrapy request is made for them, and no web host is contacted:
the spider reads each saved page itself (off the reactor's thread, within the crawl's
size limits), hands it to the extraction pool as a crawl's response would be, and
yields the finished items from ``start()`` to the same item pipelines.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from scrapy.utils.asyncio import run_in_thread

from crawler.extensions.progress import Progress
from crawler.items import ArticleItem
from crawler.limits import SizeLimitExceeded
from crawler.reading import Fetch, PageJob, PartialArticle
from crawler.replay.sources import Source, SourceIndex, index_paths, read_source
from crawler.spiders.ylwt22 import Ylwt22Spider

# Articles read at once, per slot of the extraction pool's queue: enough to keep every
# worker busy while pages are read from disk, few enough that memory stays flat.
_ARTICLES_PER_SLOT = 2


class ReplaySpider(Ylwt22Spider):
    name = "replay"
    custom_settings = {
        # Nothing is fetched: nothing needs to be polite, and the saved pages are already
        # a raw archive.
        "ROBOTSTXT_OBEY": False,
        "WARC_ENABLED": False,
    }
    index: SourceIndex

    def __init__(
        self, paths: Sequence[str] = (), from_database: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.paths = [paths] if isinstance(paths, str) else list(paths)
        self.from_database = from_database
        self.mode = "reextract" if from_database else "replay"

    async def start(self) -> AsyncIterator[ArticleItem]:  # type: ignore[override]
        self.index = await self._build_index()
        stats = self.crawler.stats
        for reason, count in self.index.skipped.items():
            stats.set_value(f"replay/skipped/{reason}", count)
        first_pages = self.index.first_pages()
        for source in first_pages:
            stats.inc_value(f"replay/articles/{source.kind}")
        self.logger.info("Replaying %d saved articles", len(first_pages))
        if (progress := self.crawler.get_extension(Progress)) is not None:
            progress.total = len(first_pages)
        # Copies of one article in several renderings are each replayed.
        async for item in self._replayed(iter(first_pages)):
            yield item

    async def _replayed(self, sources: Iterator[Source]) -> AsyncIterator[ArticleItem]:
        """The articles of ``sources``, a window of them read at once, each yielded as
        it is finished; none read ahead of what the item pipelines can take."""
        window = self.settings.getint("EXTRACT_QUEUE") * _ARTICLES_PER_SLOT
        reading: set[asyncio.Task[ArticleItem | None]] = set()
        while True:
            while len(reading) < window and (source := next(sources, None)) is not None:
                reading.add(asyncio.ensure_future(self._article(source)))
            if not reading:
                return
            done, reading = await asyncio.wait(reading, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if (item := task.result()) is not None:
                    yield item
            await self._room_in_pipelines(window)

    async def _room_in_pipelines(self, limit: int) -> None:
        # Items yielded by start() go to the pipelines without waiting for them; a store
        # waiting on a write must hold the reading back, or items pile up in memory.
        scraper = self.crawler.engine.scraper
        while scraper.slot is not None and scraper.slot.itemproc_size > limit:
            await asyncio.sleep(0.01)

    async def _article(self, source: Source) -> ArticleItem | None:
        """The article whose first page ``source`` holds, read page by page as a crawl
        fetches it; None when its first page cannot be read."""
        partial = PartialArticle()
        max_size = self.settings.getint("DOWNLOAD_MAXSIZE")
        while True:
            try:
                page = await run_in_thread(read_source, source, max_size)
            except SizeLimitExceeded as exc:
                self.crawler.stats.inc_value(f"download/{exc.reason}")
                return self.page_failed(source.url, str(exc), partial)
            except Exception as exc:
                reason = f"{source.path}: {type(exc).__name__}: {exc}"
                return self.page_failed(source.url, reason, partial)
            self.crawler.stats.inc_value("replay/pages")
            if page.status != 200:  # as a crawl's HttpErrorMiddleware would have it
                return self.page_failed(source.url, f"HTTP status {page.status}", partial)
            job = PageJob(
                source.url,
                page.body,
                {k.decode("latin-1"): v.decode("latin-1") for k, v in page.headers},
                Fetch(source.fetched_at, source.provenance()),
                partial,
            )
            read = await self.read_page(job)
            if read.next_url is None:
                return self._counted(read.item) if read.item is not None else None
            partial = read.partial
            following = self.index.lookup(read.next_url)
            if following is None:
                return self.page_failed(read.next_url, "no saved copy of the page", partial)
            source = following

    async def _build_index(self) -> SourceIndex:
        if not self.from_database:
            # Indexing reads every input file: off the reactor's thread.
            max_size = self.settings.getint("DOWNLOAD_MAXSIZE")
            return await run_in_thread(index_paths, self.paths, self.site, max_size)
        index = SourceIndex(self.site)
        for url, fetched, provenance in await self.archive.provenance():
            if not provenance:
                index.skip("no_raw_copy", url, "stored before raw pages were kept")
            for entry in provenance:
                index.add(Source.from_provenance(entry, fetched))
        return index
