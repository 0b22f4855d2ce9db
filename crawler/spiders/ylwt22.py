"""The ylwt22 spider: walks the category lists and the sitemap to every article.

It only follows links and hands responses to :mod:`crawler.pages`; what a page means is
decided there, and whether an item is stored is decided by the pipelines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import scrapy
from protego import Protego
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.items import ArticleItem
from crawler.pages.article import ArticlePage, assemble_article, parse_page
from crawler.pages.listing import category_urls, parse_list_page, parse_sitemap
from crawler.site import Site


def fetched_at(response: Response) -> datetime:
    """When the response's bytes were fetched: a download handler that serves saved
    pages sets meta["fetched_at"]; otherwise it is now."""
    value = response.meta.get("fetched_at")
    return value if isinstance(value, datetime) else datetime.now(UTC)


class Ylwt22Spider(scrapy.Spider):
    name = "ylwt22"
    site: Site
    allowed_domains: list[str]

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Ylwt22Spider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.site = Site.from_root(crawler.settings.get("SITE_ROOT"))
        # The desktop and mobile hosts, nothing else (the offsite middleware reads this).
        spider.allowed_domains = list(spider.site.hosts)
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(self.site.root, callback=self.parse_home)
        yield scrapy.Request(self.site.robots_url, callback=self.parse_robots)
        yield scrapy.Request(self.site.sitemap_url, callback=self.parse_sitemap)

    def parse_home(self, response: Response) -> Iterator[scrapy.Request]:
        for url in category_urls(response.url, response.body, response.headers, site=self.site):
            yield scrapy.Request(url, callback=self.parse_list)

    def parse_list(self, response: Response) -> Iterator[scrapy.Request]:
        page = parse_list_page(response.url, response.body, response.headers, site=self.site)
        for url in page.article_urls:
            yield self.article_request(url)
        for url in page.list_urls:
            yield scrapy.Request(url, callback=self.parse_list)

    def parse_robots(self, response: Response) -> Iterator[scrapy.Request]:
        robots = Protego.parse(response.text)
        for url in robots.sitemaps:
            if self.site.is_site_url(url):
                yield scrapy.Request(url, callback=self.parse_sitemap)

    def parse_sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        links = parse_sitemap(response.body, site=self.site)
        for url in links.sitemaps:
            yield scrapy.Request(url, callback=self.parse_sitemap)
        for url in links.article_urls:
            yield self.article_request(url)

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
        page = parse_page(response.url, response.body, response.headers, site=self.site)
        partial = partial.add(page, fetched_at(response), response.meta.get("provenance"))
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
        yield partial.assemble(self.site)

    def article_page_failed(self, failure: Failure) -> Iterator[ArticleItem]:
        """A page could not be fetched. For a later page of a multi-page article, hand
        what there is to the pipelines, which drop it with the reason: half an article is
        never stored."""
        request = failure.request  # type: ignore[attr-defined]
        self.logger.warning("Could not fetch %s: %s", request.url, failure.getErrorMessage())
        self.crawler.stats.inc_value("article/fetch_failed")
        partial: PartialArticle = request.cb_kwargs["partial"]
        if partial.pages:
            yield partial.assemble(self.site, missing_pages=[request.url])


@dataclass(frozen=True, slots=True)
class PartialArticle:
    """The pages of one article fetched so far, with where and when each was fetched."""

    pages: tuple[ArticlePage, ...] = ()
    fetched_at: datetime | None = None
    """When its first page was fetched: the article's fetch time."""
    provenance: tuple[dict[str, Any], ...] = ()

    def add(
        self, page: ArticlePage, fetched: datetime, provenance: dict[str, Any] | None
    ) -> PartialArticle:
        return PartialArticle(
            pages=(*self.pages, page),
            fetched_at=self.fetched_at or fetched,
            provenance=(*self.provenance, provenance) if provenance else self.provenance,
        )

    def assemble(self, site: Site, missing_pages: list[str] | None = None) -> ArticleItem:
        item = assemble_article(
            self.pages, fetched_at=self.fetched_at, missing_pages=missing_pages or (), site=site
        )
        item.provenance = list(self.provenance)
        return item
