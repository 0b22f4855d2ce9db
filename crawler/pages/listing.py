"""Extraction of the pages that lead to articles: the home page's category nav, the
category list pages with their DedeCMS pager, and sitemaps."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from parsel import Selector
from scrapy.utils.sitemap import Sitemap

from crawler.pages import selectors as css
from crawler.pages.decode import decode_html
from crawler.site import DEFAULT_SITE, Site

_PAGE_INFO = re.compile(r"共\s*(\d+)\s*页")
_HTTP = frozenset({"http", "https"})


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
    problem: str = ""
    """Why none of the sitemap's URLs is taken, as "reason: detail" (reasons:
    ``entities``, ``malformed``); empty for a sitemap that was read."""


def parse_sitemap(body: bytes, *, site: Site = DEFAULT_SITE) -> SitemapLinks:
    """Article URLs (canonical) and child sitemaps (the site's own, http or https).

    Scrapy's parser never resolves entities, so a hostile sitemap cannot read files or
    expand billion-laughs. A sitemap needs no entities, though: one that declares any is
    hostile or broken, and a <loc> that uses one is read only up to the reference, or
    parsing stops there. So none of its URLs is taken."""
    if entities := _declared_entities(body):
        shown = ", ".join(entities[:5]) + (", …" if len(entities) > 5 else "")
        return SitemapLinks((), (), f"entities: its DOCTYPE declares {shown}; none was read")
    try:
        sitemap = Sitemap(body)
        locs = [entry["loc"] for entry in sitemap if entry.get("loc")]
    except (etree.XMLSyntaxError, StopIteration):  # Scrapy's parser, on a body with no XML
        return SitemapLinks((), (), "malformed: not XML")
    if sitemap.type not in {"urlset", "sitemapindex"}:
        return SitemapLinks((), (), f"malformed: <{sitemap.type}> is not a sitemap")
    if sitemap.type == "sitemapindex":
        # A file: URL on the site's host would otherwise pass as one of its sitemaps.
        children = (u for u in locs if urlsplit(u).scheme in _HTTP and site.is_site_url(u))
        return SitemapLinks(tuple(children), ())
    articles = (site.canonical_article_url(loc) for loc in locs)
    return SitemapLinks((), tuple(dict.fromkeys(u for u in articles if u)))


def _declared_entities(body: bytes) -> tuple[str, ...]:
    if b"<!ENTITY" not in body:  # the common case, without a second parse
        return ()
    # The same guards as Scrapy's parser: nothing resolved, loaded or fetched.
    parser = etree.XMLParser(recover=True, resolve_entities=False, load_dtd=False, no_network=True)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return ()  # not XML: left to Scrapy's parser to say
    dtd = None if root is None else root.getroottree().docinfo.internalDTD
    return () if dtd is None else tuple(entity.name for entity in dtd.iterentities())
