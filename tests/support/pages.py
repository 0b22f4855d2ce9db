"""Saved pages and hand-checked expectations, from the project's own seeds/."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawler.items import ArticleItem
from crawler.pages.article import assemble_article, parse_article_page
from crawler.pages.textpage import parse_text_page
from crawler.site import DEFAULT_SITE
from pipelines.clean import CleanTextPipeline
from pipelines.copyright import CopyrightPipeline
from pipelines.provenance import ProvenancePipeline
from pipelines.validate import ValidateArticlePipeline
from tests.support.crawl import MIRROR, SEEDS

# A saved text rendering of the article at TEXT_PAGE_URL.
TEXT_PAGE = SEEDS / "pages" / "000_d277e6ad1e30006b.txt"
TEXT_PAGE_URL = "http://www.ylwt22.com/dangtuangongzuo/2023/1224/320094.html"


@cache
def expected_records() -> tuple[dict[str, Any], ...]:
    return tuple(json.loads((SEEDS / "expected.json").read_text(encoding="utf-8")))


def expected(url: str) -> dict[str, Any]:
    return next(r for r in expected_records() if r["url"] == url)


def mirror_file(url: str) -> Path:
    return MIRROR / url.split("://", 1)[1]


def saved_response(url: str, body: bytes | None = None) -> HtmlResponse:
    """The page as the site serves it: the header names no charset."""
    return HtmlResponse(
        url=url,
        body=mirror_file(url).read_bytes() if body is None else body,
        headers={"Content-Type": "text/html"},
    )


def extract(url: str, body: bytes | None = None) -> ArticleItem:
    """The item for the article at ``url``, all of its pages fetched from the mirror."""
    first_response = saved_response(url, body)
    pages = [parse_article_page(url, first_response.body, first_response.headers)]
    for number in range(2, pages[0].page_count + 1):
        page_url = DEFAULT_SITE.article_page_url(url, number)
        response = saved_response(page_url)
        pages.append(parse_article_page(page_url, response.body, response.headers))
    return assemble_article(pages)


def extract_text(
    body: bytes | None = None,
    *,
    url: str | None = None,
    content_type: str = "text/plain",
) -> ArticleItem:
    """The item for a saved text page (TEXT_PAGE unless ``body`` is given)."""
    raw = TEXT_PAGE.read_bytes() if body is None else body
    return assemble_article([parse_text_page(url, raw, {"Content-Type": content_type})])


def through_pipelines(item: ArticleItem) -> ArticleItem:
    """The item as the pipelines before storage leave it."""
    crawler = get_crawler(settings_dict={})
    crawler.stats.open_spider()
    for pipeline in (
        CleanTextPipeline(),
        ValidateArticlePipeline.from_crawler(crawler),
        CopyrightPipeline.from_crawler(crawler),
        ProvenancePipeline(),
    ):
        item = pipeline.process_item(item)
    return item
