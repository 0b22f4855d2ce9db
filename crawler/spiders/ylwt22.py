"""The ylwt22 spider: walks the category lists and the sitemap to every article.

It only follows links and hands responses to :mod:`crawler.pages`; what a page means is
decided there, and whether an item is stored is decided by the pipelines.

Two modes (``-a mode=…``):

- ``incremental`` (the default) fetches what is new. It reads each category's list
  newest first and stops at the first page that holds only archived articles;
  articles already archived are not fetched again. If the last reading of a category
  did not complete (the run was killed, or stopped before storing what it found),
  only articles archived before that run count, so the next run reads on past what
  the interrupted one reached.
- ``full`` fetches every list page and every article again, asking the site for each
  archived article only if it changed (If-None-Match, If-Modified-Since). An article
  that answers 304 is recorded as seen, one that answers 404 or 410 as gone.

``-a depth=N`` reads exactly N list pages per category, in either mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import scrapy
from protego import Protego
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.archive import Archive
from crawler.extensions.runs import SUCCESS_REASONS
from crawler.items import ArticleItem
from crawler.pages.article import ArticlePage, assemble_article, parse_page
from crawler.pages.listing import ListPage, category_urls, parse_list_page, parse_sitemap
from crawler.site import Site
from pipelines import signals as archive_signals
from storage.repository import KnownArticle

MODES = ("incremental", "full")
# Answers to a conditional request for an archived article that parse_article reads
# itself rather than treating as errors.
_REVISIT_STATUSES = [304, 404, 410]


def fetched_at(response: Response) -> datetime:
    """When the response's bytes were fetched: a download handler that serves saved
    pages sets meta["fetched_at"]; otherwise it is now."""
    value = response.meta.get("fetched_at")
    return value if isinstance(value, datetime) else datetime.now(UTC)


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


class Ylwt22Spider(scrapy.Spider):
    name = "ylwt22"
    site: Site
    allowed_domains: list[str]
    archive: Archive

    def __init__(self, mode: str = "incremental", depth: int | str = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not str(depth).isdigit():
            raise ValueError(f"depth must be a number of list pages, got {depth!r}")
        self.mode = mode
        self.depth = int(depth)
        # Per category: the start of an unfinished earlier reading (None: none), and
        # the categories this run has read down to known articles.
        self._pending: dict[str, datetime | None] = {}
        self._read: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Ylwt22Spider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.site = Site.from_root(crawler.settings.get("SITE_ROOT"))
        # The desktop and mobile hosts, nothing else (the offsite middleware reads this).
        spider.allowed_domains = list(spider.site.hosts)
        spider.archive = Archive(crawler.settings["DATABASE_URL"])
        crawler.signals.connect(spider.spider_closed, signal=signals.spider_closed)
        return spider

    @property
    def run_started_at(self) -> datetime:
        """When this crawl started: the first worker's start, when several workers share
        one crawl (stats "crawl/started_at"), else this process's."""
        stats = self.crawler.stats
        started = stats.get_value("crawl/started_at") or stats.get_value("start_time")
        return started if isinstance(started, datetime) else datetime.now(UTC)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        await self.archive.open()
        yield scrapy.Request(self.site.root, callback=self.parse_home)
        yield scrapy.Request(self.site.robots_url, callback=self.parse_robots)
        yield scrapy.Request(self.site.sitemap_url, callback=self.parse_sitemap)
        if self.mode == "full":
            # Every archived article, listed or not any more: a page the site deleted
            # is found gone only by asking for it.
            async for url, known in self.archive.every_article():
                if (request := self._article_request_for(url, known)) is not None:
                    yield request

    # Whether closing completes the readings this spider finished. The workers of a
    # distributed crawl leave that to the last one out (crawler/distributed/worker.py).
    finishes_readings = True

    @property
    def categories_read(self) -> frozenset[str]:
        """The categories read down to known articles, or to their end, so far."""
        return frozenset(self._read)

    async def spider_closed(self, reason: str) -> None:
        # The pipelines have stored everything by now: the readings that reached known
        # articles are complete. A run that ended otherwise leaves them pending, and so
        # does one whose last write failed as it closed (its articles were spilled).
        stored = not self.crawler.stats.get_value("database/error")
        if self.finishes_readings and reason in SUCCESS_REASONS and stored and self._read:
            await self.archive.finish_reading(sorted(self._read))
        await self.archive.close()

    def parse_home(self, response: Response) -> Iterator[scrapy.Request]:
        for url in category_urls(response.url, response.body, response.headers, site=self.site):
            yield scrapy.Request(url, callback=self.parse_list, cb_kwargs={"category": url})

    async def parse_list(
        self, response: Response, category: str | None = None
    ) -> AsyncIterator[scrapy.Request]:
        page = parse_list_page(response.url, response.body, response.headers, site=self.site)
        category = category or self.site.category_url(response.url)
        if category not in self._pending:
            self._pending[category] = await self.archive.begin_reading(
                category, self.run_started_at
            )
        known = await self.archive.known(page.article_urls)
        for url in page.article_urls:
            if (request := self._article_request_for(url, known.get(url))) is not None:
                yield request
        for request in await self._list_pages_after(page, category, known):
            yield request

    async def _list_pages_after(
        self, page: ListPage, category: str, known: dict[str, KnownArticle]
    ) -> list[scrapy.Request]:
        def read(url: str) -> scrapy.Request:
            return scrapy.Request(url, callback=self.parse_list, cb_kwargs={"category": category})

        if self.mode == "full" and not self.depth:
            self._read.add(category)
            return [read(url) for url in page.list_urls]  # all at once: every page is needed
        if self.depth:
            go_on = page.page_number < self.depth
        else:
            go_on = not self._only_known_articles(page, category, known)
        if go_on and page.next_url:
            return [read(page.next_url)]
        if not self.depth:
            self._read.add(category)  # down to known articles, or to the end
        return []

    def _only_known_articles(
        self, page: ListPage, category: str, known: dict[str, KnownArticle]
    ) -> bool:
        """Every article on the page is archived: the pages below hold nothing new.
        After an unfinished reading, only articles archived before it count: past
        those it stored, there may be pages it never reached."""
        pending = self._pending.get(category)
        return all(
            url in known and (pending is None or known[url].first_seen_at < pending)
            for url in page.article_urls
        )

    def _article_request_for(self, url: str, known: KnownArticle | None) -> scrapy.Request | None:
        if known is None:
            return self.article_request(url)
        if self.mode == "incremental":
            return None  # archived: not fetched again
        # Full mode: fetch it again, but let the site say it has not changed.
        headers = {}
        if known.etag:
            headers["If-None-Match"] = known.etag
        if known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
        return self.article_request(
            url, headers=headers, meta={"handle_httpstatus_list": _REVISIT_STATUSES}
        )

    def parse_robots(self, response: Response) -> Iterator[scrapy.Request]:
        robots = Protego.parse(response.text)
        for url in robots.sitemaps:
            if self.site.is_site_url(url):
                yield scrapy.Request(url, callback=self.parse_sitemap)

    async def parse_sitemap(self, response: Response) -> AsyncIterator[scrapy.Request]:
        links = parse_sitemap(response.body, site=self.site)
        if links.problem:
            self.crawler.stats.inc_value(f"sitemap/skipped/{links.problem.partition(':')[0]}")
            self.logger.warning("Skipped sitemap %s: %s", response.url, links.problem)
        for url in links.sitemaps:
            yield scrapy.Request(url, callback=self.parse_sitemap)
        known = await self.archive.known(links.article_urls)
        for url in links.article_urls:
            if (request := self._article_request_for(url, known.get(url))) is not None:
                yield request

    def article_request(self, url: str, **kwargs: Any) -> scrapy.Request:
        return scrapy.Request(
            url,
            callback=self.parse_article,
            errback=self.article_page_failed,
            cb_kwargs={"partial": PartialArticle()},
            **kwargs,
        )

    def parse_article(
        self, response: Response, partial: PartialArticle
    ) -> Iterator[scrapy.Request | ArticleItem]:
        if response.status in _REVISIT_STATUSES:
            self._revisited(response)
            return
        page = parse_page(response.url, response.body, response.headers, site=self.site)
        partial = partial.add(page, response)
        first = partial.pages[0]
        if page.is_article and first.canonical_url and len(partial.pages) < first.page_count:
            # A multi-page article is one item: fetch its pages in order, then assemble.
            yield scrapy.Request(
                self.site.article_page_url(first.canonical_url, len(partial.pages) + 1),
                callback=self.parse_article,
                errback=self.article_page_failed,
                cb_kwargs={"partial": partial},
            )
            return
        yield self._counted(partial.assemble(self.site))

    def _counted(self, item: ArticleItem) -> ArticleItem:
        """What extraction left out of the article's body goes into the stats, so that a
        site that starts hiding text in its pages shows in the run's report."""
        for kind, count in item.removed.items():
            self.crawler.stats.inc_value(f"extract/removed/{kind}", count)
        return item

    def _revisited(self, response: Response) -> None:
        """An archived article fetched again answered without a page: unchanged, or gone."""
        url = self.site.canonical_article_url(response.url) or response.url
        if response.status == 304:
            self.crawler.signals.send_catch_log(
                archive_signals.article_unchanged,
                url=url,
                seen_at=fetched_at(response),
                etag=_header(response, "ETag"),
                last_modified=_header(response, "Last-Modified"),
            )
        else:
            self.logger.info("Gone (%d): %s", response.status, url)
            self.crawler.signals.send_catch_log(
                archive_signals.article_gone, url=url, seen_at=fetched_at(response)
            )

    def article_page_failed(self, failure: Failure) -> Iterator[ArticleItem]:
        """A page could not be fetched. For a later page of a multi-page article, hand
        what there is to the pipelines, which drop it with the reason: half an article is
        never stored."""
        request = failure.request  # type: ignore[attr-defined]
        self.logger.warning("Could not fetch %s: %s", request.url, failure.getErrorMessage())
        self.crawler.stats.inc_value("article/fetch_failed")
        partial: PartialArticle = request.cb_kwargs["partial"]
        if partial.pages:
            yield self._counted(partial.assemble(self.site, missing_pages=[request.url]))


@dataclass(frozen=True, slots=True)
class PartialArticle:
    """The pages of one article fetched so far, with where and when each was fetched."""

    pages: tuple[ArticlePage, ...] = ()
    fetched_at: datetime | None = None
    """When its first page was fetched: the article's fetch time."""
    provenance: tuple[dict[str, Any], ...] = ()
    etag: str | None = None
    last_modified: str | None = None
    """The first page's validators, for a conditional request next time."""

    def add(self, page: ArticlePage, response: Response) -> PartialArticle:
        provenance = response.meta.get("provenance")
        if self.pages:
            return PartialArticle(
                pages=(*self.pages, page),
                fetched_at=self.fetched_at,
                provenance=(*self.provenance, provenance) if provenance else self.provenance,
                etag=self.etag,
                last_modified=self.last_modified,
            )
        return PartialArticle(
            pages=(page,),
            fetched_at=fetched_at(response),
            provenance=(provenance,) if provenance else (),
            etag=_header(response, "ETag"),
            last_modified=_header(response, "Last-Modified"),
        )

    def assemble(self, site: Site, missing_pages: list[str] | None = None) -> ArticleItem:
        item = assemble_article(
            self.pages, fetched_at=self.fetched_at, missing_pages=missing_pages or (), site=site
        )
        item.provenance = list(self.provenance)
        item.etag = self.etag
        item.last_modified = self.last_modified
        return item
