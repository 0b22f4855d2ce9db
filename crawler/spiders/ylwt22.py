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

What a page claims is bounded before it is acted on. A list page's pager (共 N 页 M 条)
is believed only if it is plausible (:func:`crawler.pages.listing.pager_problem`,
CATEGORY_MAX_ARTICLES); a full crawl then reads the N pages with LIST_PAGES_AHEAD of
them queued at a time, each parsed page queueing the one that many after it, and list
pages wait behind the articles already queued, so the queue holds a few pages' worth
of requests per category however many pages there are. An implausible pager is logged,
counted (``list/implausible_pager``) and read by its 下一页 links, one page at a time,
while pages list articles and for at most CATEGORY_MAX_ARTICLES pages. Sitemaps are
followed SITEMAP_MAX_DEPTH indexes deep and SITEMAP_MAX_COUNT sitemaps per crawl.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import scrapy
from protego import Protego
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.archive import Archive
from crawler.extensions.readers import ArticleReaders, ReadFailed
from crawler.extensions.runs import RunRecorder
from crawler.items import ArticleItem
from crawler.modes import crawl_mode, list_depth
from crawler.pages.listing import (
    ListPage,
    category_urls,
    pager_problem,
    parse_list_page,
    read_sitemap,
)
from crawler.reading import Fetch, PageJob, PageRead, PartialArticle
from crawler.site import Site
from pipelines import signals as archive_signals
from storage.repository import KnownArticle

# Answers to a conditional request for an archived article that parse_article reads
# itself rather than treating as errors.
_REVISIT_STATUSES = [304, 404, 410]
# List pages wait behind the articles already queued (which have priority 0): the queue
# drains before the reading of a category goes further, so it stays small.
_LIST_PRIORITY = -1
# In a full crawl, a run of this many list pages that could not be read (failed, or
# listing no article) in a row of a category ends that run of its pages: past the last
# real page, every page is missing.
_MISSES_TO_STOP = 2


def fetched_at(response: Response) -> datetime:
    """When the response's bytes were fetched: a download handler that serves saved
    pages sets meta["fetched_at"]; otherwise it is now."""
    value = response.meta.get("fetched_at")
    return value if isinstance(value, datetime) else datetime.now(UTC)


def _plain_headers(response: Response) -> dict[str, str]:
    """The response's headers as plain text, for a reader in another process."""
    return {
        key.decode("latin-1"): b", ".join(values).decode("latin-1")
        for key, values in response.headers.items()
    }


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


class Ylwt22Spider(scrapy.Spider):
    name = "ylwt22"
    site: Site
    allowed_domains: list[str]
    archive: Archive
    max_category_articles: int
    list_pages_ahead: int
    sitemap_max_depth: int
    sitemap_max_count: int

    def __init__(self, mode: str = "incremental", depth: int | str = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = crawl_mode(mode)
        self.depth = list_depth(depth)
        # Per category: the start of an unfinished earlier reading (None: none), and
        # the categories this run has read down to known articles.
        self._pending: dict[str, datetime | None] = {}
        self._read: set[str] = set()
        # The sitemaps this crawl has asked for (at most SITEMAP_MAX_COUNT).
        self._sitemaps: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Ylwt22Spider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.site = Site.from_root(crawler.settings.get("SITE_ROOT"))
        # The desktop and mobile hosts, nothing else (the offsite middleware reads this).
        spider.allowed_domains = list(spider.site.hosts)
        spider.archive = Archive(crawler)
        settings = crawler.settings
        spider.max_category_articles = settings.getint("CATEGORY_MAX_ARTICLES")
        spider.list_pages_ahead = max(1, settings.getint("LIST_PAGES_AHEAD"))
        spider.sitemap_max_depth = settings.getint("SITEMAP_MAX_DEPTH")
        spider.sitemap_max_count = settings.getint("SITEMAP_MAX_COUNT")
        return spider

    crawl_started_at: datetime | None = None
    """When this crawl started: set by the workers of a distributed crawl to the first
    worker's start, so that they count as one reading; else when this spider started."""

    @property
    def run_started_at(self) -> datetime:
        if self.crawl_started_at is None:
            self.crawl_started_at = datetime.now(UTC)
        return self.crawl_started_at

    async def start(self) -> AsyncIterator[scrapy.Request]:
        self.run_started_at  # noqa: B018  (the crawl's start is now, unless a worker set it)
        if (recorder := self.crawler.get_extension(RunRecorder)) is not None:
            recorder.when_finished(self.complete_readings)
        await self.archive.open()
        yield scrapy.Request(self.site.root, callback=self.parse_home)
        yield scrapy.Request(self.site.robots_url, callback=self.parse_robots)
        for sitemap in self._sitemap_requests([self.site.sitemap_url], depth=0):
            yield sitemap
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

    async def complete_readings(self) -> None:
        """Called by the run recorder once the run has finished: everything is stored,
        so the readings that reached known articles are complete. A run that ended
        otherwise leaves them pending."""
        if self.finishes_readings and self._read:
            await self.archive.finish_reading(sorted(self._read))

    def parse_home(self, response: Response) -> Iterator[scrapy.Request]:
        for url in category_urls(response.url, response.body, response.headers, site=self.site):
            yield scrapy.Request(url, callback=self.parse_list, cb_kwargs={"category": url})

    async def parse_list(
        self,
        response: Response,
        category: str | None = None,
        last: int | None = None,
        misses: int = 0,
    ) -> AsyncIterator[scrapy.Request]:
        """A category's list page. ``last`` is set on the pages a full crawl reads by
        their numbers: the last page to read, as page 1's pager claimed it; ``misses``
        counts the pages before this one, LIST_PAGES_AHEAD apart, that were missing."""
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
        for request in self._list_pages_after(
            response, page, category, known, last=last, misses=misses
        ):
            yield request

    def _list_pages_after(
        self,
        response: Response,
        page: ListPage,
        category: str,
        known: dict[str, KnownArticle],
        *,
        last: int | None,
        misses: int,
    ) -> list[scrapy.Request]:
        claimed = self._plausible_page_count(page)
        if self.mode == "full" and not self.depth:
            self._read.add(category)
            if last is not None:
                # Read by numbers: the page a window after this one. It is counted from
                # the URL asked for, so that a redirect does not move the reading.
                asked = (response.meta.get("redirect_urls") or [response.url])[0]
                misses = 0 if page.article_urls else misses + 1
                return self._numbered_page(asked, category, max(last, claimed or 0), misses)
            if claimed and page.page_number == 1 and page.typeid is not None:
                # 共 N 页 names every page: read them by number, a window at a time.
                ahead = range(2, min(claimed, 1 + self.list_pages_ahead) + 1)
                return [
                    self._list_request(url, category, last=claimed)
                    for n in ahead
                    if (url := page.page_url(n))
                ]
        if self.depth:
            go_on = page.page_number < self.depth
        elif self.mode == "full":
            go_on = True
        else:
            go_on = not self._only_known_articles(page, category, known)
        if go_on and (url := self._next_page(page, claimed)):
            return [self._list_request(url, category)]
        if not self.depth:
            self._read.add(category)  # down to known articles, or to the end
        return []

    def _plausible_page_count(self, page: ListPage) -> int | None:
        """共 N 页 if the pager is believed; an implausible one is logged and counted."""
        if problem := pager_problem(page, max_articles=self.max_category_articles):
            self.crawler.stats.inc_value("list/implausible_pager")
            self.logger.warning("Implausible pager on %s: %s; not believed", page.url, problem)
            return None
        return page.page_count

    def _next_page(self, page: ListPage, claimed: int | None) -> str | None:
        """The page after this one, one page at a time: from the believed 共 N 页, or
        the pager's own link while this page lists articles, up to as many pages as
        CATEGORY_MAX_ARTICLES articles would fill."""
        number = page.page_number
        if claimed and number < claimed and (url := page.page_url(number + 1)):
            return url
        if page.article_urls and number < self.max_category_articles:
            return page.next_url
        return None

    def _numbered_page(
        self, url: str, category: str, last: int, misses: int
    ) -> list[scrapy.Request]:
        """The page LIST_PAGES_AHEAD after the one at ``url``, in a full crawl's reading
        by numbers, unless that is past ``last`` or the pages before it were missing."""
        typeid = self.site.list_typeid(url)
        number = self.site.list_page_number(url) + self.list_pages_ahead
        if typeid is None or number > last or misses >= _MISSES_TO_STOP:
            return []
        target = self.site.list_page_url(url, typeid, number)
        return [self._list_request(target, category, last=last, misses=misses)]

    def _list_request(
        self, url: str, category: str, last: int | None = None, misses: int = 0
    ) -> scrapy.Request:
        kwargs: dict[str, Any] = {"category": category}
        if last is not None:
            kwargs |= {"last": last, "misses": misses}
        return scrapy.Request(
            url,
            callback=self.parse_list,
            errback=self.list_page_failed,
            cb_kwargs=kwargs,
            priority=_LIST_PRIORITY,
        )

    def list_page_failed(self, failure: Failure) -> Iterator[scrapy.Request]:
        """A list page could not be fetched. Read by numbers, the pages after it are
        still queued in their turn; read one at a time, the reading ends there."""
        request = failure.request  # type: ignore[attr-defined]
        self.logger.warning(
            "Could not fetch list page %s: %s", request.url, failure.getErrorMessage()
        )
        self.crawler.stats.inc_value("list/fetch_failed")
        kwargs = request.cb_kwargs
        if kwargs.get("last") is not None:
            yield from self._numbered_page(
                request.url, kwargs["category"], kwargs["last"], kwargs.get("misses", 0) + 1
            )

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
        sitemaps = [url for url in robots.sitemaps if self.site.is_site_url(url)]
        yield from self._sitemap_requests(sitemaps, depth=0)

    async def parse_sitemap(
        self, response: Response, depth: int = 0
    ) -> AsyncIterator[scrapy.Request]:
        limit = self.crawler.settings.getint("DOWNLOAD_MAXSIZE")
        max_size = response.meta.get("download_maxsize", limit)
        links = read_sitemap(response.body, max_size=max_size, site=self.site)
        if links.problem:
            self.crawler.stats.inc_value(f"sitemap/skipped/{links.problem.partition(':')[0]}")
            self.logger.warning("Skipped sitemap %s: %s", response.url, links.problem)
        for sitemap in self._sitemap_requests(links.sitemaps, depth=depth + 1, index=response.url):
            yield sitemap
        known = await self.archive.known(links.article_urls)
        for url in links.article_urls:
            if (request := self._article_request_for(url, known.get(url))) is not None:
                yield request

    def _sitemap_requests(
        self, urls: Iterable[str], *, depth: int, index: str | None = None
    ) -> Iterator[scrapy.Request]:
        """Requests for the sitemaps at ``urls``, ``depth`` indexes below the ones the
        site names (sitemap.xml and robots.txt's): none deeper than SITEMAP_MAX_DEPTH,
        and no more than SITEMAP_MAX_COUNT in the crawl. What is left out is logged
        and counted (sitemap/skipped/too_deep, sitemap/skipped/too_many)."""
        new = [url for url in dict.fromkeys(urls) if url not in self._sitemaps]
        if new and depth > self.sitemap_max_depth:
            self._skip_sitemaps(
                "too_deep",
                new,
                index,
                f"nested deeper than SITEMAP_MAX_DEPTH ({self.sitemap_max_depth})",
            )
            return
        room = max(0, self.sitemap_max_count - len(self._sitemaps))
        if len(new) > room:
            self._skip_sitemaps(
                "too_many", new[room:], index, f"past SITEMAP_MAX_COUNT ({self.sitemap_max_count})"
            )
        for url in new[:room]:
            self._sitemaps.add(url)
            yield scrapy.Request(url, callback=self.parse_sitemap, cb_kwargs={"depth": depth})

    def _skip_sitemaps(self, reason: str, urls: list[str], index: str | None, why: str) -> None:
        self.crawler.stats.inc_value(f"sitemap/skipped/{reason}", len(urls))
        source = f"listed in {index}" if index else "named by the site"
        shown = ", ".join(urls[:3]) + (", …" if len(urls) > 3 else "")
        self.logger.warning("Skipped %d sitemap(s) %s: %s: %s", len(urls), source, why, shown)

    def article_request(self, url: str, **kwargs: Any) -> scrapy.Request:
        return scrapy.Request(
            url,
            callback=self.parse_article,
            errback=self.article_page_failed,
            cb_kwargs={"partial": PartialArticle()},
            **kwargs,
        )

    async def parse_article(
        self, response: Response, partial: PartialArticle
    ) -> AsyncIterator[scrapy.Request | ArticleItem]:
        if response.status in _REVISIT_STATUSES:
            self._revisited(response)
            return
        job = PageJob(
            response.url,
            response.body,
            _plain_headers(response),
            Fetch(
                fetched_at(response),
                response.meta.get("provenance"),
                _header(response, "ETag"),
                _header(response, "Last-Modified"),
            ),
            partial,
        )
        read = await self.read_page(job)
        if read.next_url is not None:
            # A multi-page article is one item: fetch its pages in order, then assemble.
            yield scrapy.Request(
                read.next_url,
                callback=self.parse_article,
                errback=self.article_page_failed,
                cb_kwargs={"partial": read.partial},
            )
            return
        assert read.item is not None
        yield self._counted(read.item)

    async def read_page(self, job: PageJob) -> PageRead:
        """The page, read by the extraction pool. A page it could not read costs its
        article only: dropped with the reason, and counted."""
        try:
            return await self.readers().read(job)
        except ReadFailed as exc:
            self.logger.error("Could not read %s: %s", job.url, exc)
            url = self.site.canonical_article_url(job.url) or job.url
            return PageRead(item=ArticleItem(url=url, problems=[f"extraction_failed: {exc}"]))

    def readers(self) -> ArticleReaders:
        """The extraction pool, the crawl's extension."""
        readers = self.crawler.get_extension(ArticleReaders)
        if readers is None:
            raise RuntimeError("the spider reads articles through ArticleReaders (EXTENSIONS)")
        return readers

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
        partial: PartialArticle = request.cb_kwargs["partial"]
        if (item := self.page_failed(request.url, failure.getErrorMessage(), partial)) is not None:
            yield item

    def page_failed(self, url: str, reason: str, partial: PartialArticle) -> ArticleItem | None:
        """The page at ``url`` could not be had: said, counted, and the article's pages
        read so far are its item, which the pipelines drop (incomplete_article)."""
        self.logger.warning("Could not fetch %s: %s", url, reason)
        self.crawler.stats.inc_value("article/fetch_failed")
        if not partial.pages:
            return None
        return self._counted(partial.assemble(self.site, missing_pages=[url]))
