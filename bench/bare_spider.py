"""The reference crawl for bench/run.py: a bare Scrapy spider that follows the same links as
the ylwt22 spider (home page navigation → every list page of each category → articles,
with the pages of a multi-page article) and does nothing with what it fetches.

    cd /tmp && scrapy runspider /path/to/bench/bare_spider.py -s ...

Run outside the project folder, so that Scrapy's defaults apply rather than the project's
middlewares, pipelines and extensions: that difference is what is measured.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import scrapy
from scrapy.http import Response

_LIST = re.compile(r"list_(\d+)_\d+\.html$")
_ARTICLE_PAGE = re.compile(r"(?:^|/)\d+_\d+\.html$")


class BareSpider(scrapy.Spider):
    name = "bare"
    start_urls = ["http://www.ylwt22.com/"]  # noqa: RUF012 (Scrapy's own attribute)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[scrapy.Request]:
        for href in response.css(".nav a::attr(href)").getall():
            if href.strip("/"):
                yield response.follow(href, self.parse_list)

    def parse_list(self, response: Response) -> Iterator[scrapy.Request]:
        for href in response.css(".list a::attr(href)").getall():
            yield response.follow(href, self.parse_article)
        if response.url.endswith("/"):
            # 共 N 页 names every page: ask for them all at once, as the ylwt22 spider does.
            pages = int(response.css(".pageinfo strong::text").get() or 1)
            typeid = next(
                (
                    m[1]
                    for h in response.css(".pages a::attr(href)").getall()
                    if (m := _LIST.search(h))
                ),
                None,
            )
            for page in range(2, pages + 1) if typeid else ():
                yield response.follow(f"list_{typeid}_{page}.html", self.parse_list)

    def parse_article(self, response: Response) -> Iterator[scrapy.Request]:
        for href in response.css(".dede_pages a::attr(href)").getall():
            if _ARTICLE_PAGE.search(href):
                yield response.follow(href, self.parse_article)
