"""Extraction of the pages that lead to articles: the home page's category nav, the
category list pages with their DedeCMS pager, and sitemaps."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from parsel import Selector
from scrapy.utils.sitemap import Sitemap

from crawler.pages import selectors as css
from crawler.pages.decode import decode_html
from crawler.site import DEFAULT_SITE, Site

_PAGE_INFO = re.compile(r"共\s*(\d+)\s*页")


@dataclass(frozen=True, slots=True)
class ListPage:
    url: str
    article_urls: tuple[str, ...]
    """Canonical URLs of the articles listed, in page order (newest first)."""
    list_urls: tuple[str, ...]
    """Every other page of this category that the pager names or implies."""
    page_count: int | None
    """共 N 页 from the pager, when it says."""
    page_number: int = 1
    next_url: str | None = None
    """The page after this one, newest first; None on the last page."""


def _selector(url: str, body: bytes, headers: Mapping[Any, Any] | None) -> Selector:
    return Selector(text=decode_html(body, headers).text, base_url=url)


def _links(sel: Selector, query: str, url: str) -> Iterator[str]:
    for raw in sel.css(query).xpath("@href").getall():
        href = raw.strip()
        if href and not href.startswith(("#", "javascript:", "mailto:")):
            yield urljoin(url, href)


def category_urls(
    url: str, body: bytes, headers: Mapping[Any, Any] | None = None, *, site: Site = DEFAULT_SITE
) -> list[str]:
    """The category list pages the home page's navigation links to."""
    sel = _selector(url, body, headers)
    found = (site.canonical_list_url(link) for link in _links(sel, css.NAV_LINKS, url))
    return list(dict.fromkeys(u for u in found if u and u != site.root))


def parse_list_page(
    url: str, body: bytes, headers: Mapping[Any, Any] | None = None, *, site: Site = DEFAULT_SITE
) -> ListPage:
    sel = _selector(url, body, headers)
    articles = (site.canonical_article_url(link) for link in _links(sel, css.LIST_ITEM_LINKS, url))
    pager_links = [
        canonical
        for link in _links(sel, css.LIST_PAGER_LINKS, url)
        if (canonical := site.canonical_list_url(link))
    ]
    info = _PAGE_INFO.search(" ".join(sel.css(css.LIST_PAGE_INFO).xpath("string()").getall()))
    page_count = int(info[1]) if info else None
    implied: list[str] = []
    typeid = next((t for link in pager_links if (t := site.list_typeid(link)) is not None), None)
    if page_count and typeid is not None:
        # The pager shows a window of page numbers; 共 N 页 names them all, so every
        # page can be requested at once instead of walking "next" one page at a time.
        implied = [site.list_page_url(url, typeid, n) for n in range(2, page_count + 1)]
    own = site.canonical_list_url(url)
    others = dict.fromkeys(u for u in (*implied, *pager_links) if u != own)
    number = site.list_page_number(url)
    # The next page is the one numbered one more, named by 共 N 页 or by the pager.
    following = [u for u in others if site.list_page_number(u) == number + 1]
    return ListPage(
        url=url,
        article_urls=tuple(dict.fromkeys(u for u in articles if u)),
        list_urls=tuple(others),
        page_count=page_count,
        page_number=number,
        next_url=following[0] if following else None,
    )


@dataclass(frozen=True, slots=True)
class SitemapLinks:
    sitemaps: tuple[str, ...]
    """Child sitemaps of a sitemap index."""
    article_urls: tuple[str, ...]


def parse_sitemap(body: bytes, *, site: Site = DEFAULT_SITE) -> SitemapLinks:
    """Article URLs (canonical) and child sitemaps. Scrapy's parser never resolves
    entities, so a hostile sitemap cannot read files or expand billion-laughs."""
    sitemap = Sitemap(body)
    locs = [entry["loc"] for entry in sitemap if entry.get("loc")]
    if sitemap.type == "sitemapindex":
        return SitemapLinks(tuple(u for u in locs if site.is_site_url(u)), ())
    articles = (site.canonical_article_url(loc) for loc in locs)
    return SitemapLinks((), tuple(dict.fromkeys(u for u in articles if u)))
