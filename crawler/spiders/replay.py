"""Replay: the ylwt22 spider's extraction and pipelines over saved pages, offline.

The pages come from the paths given (WARC files, `wget --mirror` trees, saved text
pages, HTML files) or, to re-extract, from the raw copies the stored articles name
in their provenance. A download handler answers every request from them; no web host
is contacted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import scrapy
from scrapy.utils.asyncio import run_in_thread

from crawler.replay.sources import Source, SourceIndex, index_paths
from crawler.spiders.ylwt22 import Ylwt22Spider

_HANDLER = "crawler.replay.handler.ReplayDownloadHandler"


class ReplaySpider(Ylwt22Spider):
    name = "replay"
    custom_settings = {
        "DOWNLOAD_HANDLERS": {"http": _HANDLER, "https": _HANDLER},
        # Nothing is asked of the site, so nothing needs to be polite to it, and the
        # saved pages are already a raw archive.
        "ROBOTSTXT_OBEY": False,
        "AUTOTHROTTLE_ENABLED": False,
        "DOWNLOAD_DELAY": 0,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
        "RETRY_ENABLED": False,
        "HTTPPROXY_ENABLED": False,
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

    async def start(self) -> AsyncIterator[scrapy.Request]:
        self.index = await self._build_index()
        stats = self.crawler.stats
        for reason, count in self.index.skipped.items():
            stats.set_value(f"replay/skipped/{reason}", count)
        first_pages = self.index.first_pages()
        for source in first_pages:
            stats.inc_value(f"replay/articles/{source.kind}")
        self.logger.info("Replaying %d saved articles", len(first_pages))
        for source in first_pages:
            # Copies of one article in several renderings are each replayed.
            yield self.article_request(source.url, meta={"replay_source": source}, dont_filter=True)

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
