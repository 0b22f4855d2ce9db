"""Extraction of the pages that lead to articles: the home page's category nav, the
category list pages with their DedeCMS pager, and sitemaps (plain or gzipped).

Nothing here trusts what a page claims about its size: a list page's pager gives page
numbers and a URL builder, never a list of every page it claims, and its claim is
checked (:func:`pager_problem`) before the spider acts on it."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from parsel import Selector
from scrapy.utils._compression import _DecompressionMaxSizeExceeded
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap

from crawler.pages import selectors as css
from crawler.pages.decode import decode_html
from crawler.site import DEFAULT_SITE, Site

# 共 <strong>N</strong>页<strong>M</strong>条, read as text: "共 N页M条".
_PAGE_INFO = re.compile(r"共\s*(\d+)\s*页\s*(?:(\d+)\s*条)?")
# A count with more digits than this is more than any bound, and int() of a long enough
# string of digits raises.
_MAX_DIGITS = 12
_HTTP = frozenset({"http", "https"})
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class ListPage:
    url: str
    article_urls: tuple[str, ...]
    """Canonical URLs of the articles listed, in page order (newest first)."""
    page_count: int | None
    """共 N 页 from the pager, when it says: a claim, checked by :func:`pager_problem`."""
    page_number: int = 1
    next_url: str | None = None
    """The pager's own link to the page after this one (下一页, or the page numbered
    one more); None when it shows none."""
    article_count: int | None = None
    """M 条 from the pager, when it says: the articles the category claims."""
    typeid: int | None = None
    """The category's DedeCMS typeid, from the pager's list_<typeid>_<N>.html links."""

    def page_url(self, number: int) -> str | None:
        """The URL of page ``number`` of this category, as DedeCMS names it; None when
        the pager names no list_<typeid>_<N>.html page to build it on. Pages are built
        one at a time, as they are needed: a pager may claim any number of them."""
        if self.typeid is None:
            return None
        if number == 1:  # the category's own URL, as DedeCMS links it
            return urljoin(self.url, "./")
        return Site.list_page_url(self.url, self.typeid, number)


def _selector(url: str, body: bytes, headers: Mapping[Any, Any] | None) -> Selector:
    return Selector(text=decode_html(body, headers).text, base_url=url)


def _links(sel: Selector, query: str, url: str) -> Iterator[str]:
    for raw in sel.css(query).xpath("@href").getall():
        href = raw.strip()
        if href and not href.startswith(("#", "javascript:", "mailto:")):
            yield urljoin(url, href)


def _count(digits: str | None) -> int | None:
    if digits is None:
        return None
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


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
    pager = [
        (link, canonical)
        for link in _links(sel, css.LIST_PAGER_LINKS, url)
        if (canonical := site.canonical_list_url(link))
    ]
    pager_links = [canonical for _, canonical in pager]
    # Page 1's links fold onto the category's URL: the typeid is read before that.
    typeids = (site.list_typeid(link) for link in (url, *(link for link, _ in pager)))
    info = _PAGE_INFO.search(" ".join(sel.css(css.LIST_PAGE_INFO).xpath("string()").getall()))
    number = site.list_page_number(url)
    # The pager shows a window of page numbers; the page after this one is among them
    # unless this is the last. 共 N 页 names the pages outside the window, through
    # page_url, once the spider has checked the claim.
    following = (u for u in pager_links if site.list_page_number(u) == number + 1)
    return ListPage(
        url=url,
        article_urls=tuple(dict.fromkeys(u for u in articles if u)),
        page_count=_count(info[1]) if info else None,
        page_number=number,
        next_url=next(following, None),
        article_count=_count(info[2]) if info else None,
        typeid=next((t for t in typeids if t is not None), None),
    )


def pager_problem(page: ListPage, *, max_articles: int) -> str:
    """Why the pager's claim (共 N 页 M 条) cannot be believed, or "" when it can (or
    claims nothing).

    DedeCMS computes N = ceil(M / page size), and a page lists at most a page size of
    articles (the last one fewer), so for an honest pager N <= M, and N <= ceil(M / k)
    for the k articles any of its pages lists. The checks allow twice that, and the
    other way too on a page that is not the last, so a list that shows a few more or
    fewer items than its page size is not taken for a lie. M may not exceed
    ``max_articles`` (CATEGORY_MAX_ARTICLES): what one category of the site can hold."""
    pages, articles, listed = page.page_count, page.article_count, len(page.article_urls)
    problem = ""
    if pages is None:
        pass
    elif articles is None:  # 共 N 页 alone: every page holds at least one article
        if pages > max_articles:
            problem = (
                f"it claims {pages} pages, more than CATEGORY_MAX_ARTICLES ({max_articles}) "
                "articles would fill"
            )
    elif articles > max_articles:
        problem = f"it claims {articles} articles, more than CATEGORY_MAX_ARTICLES ({max_articles})"
    elif pages > max(articles, 1):
        problem = f"it claims {pages} pages for {articles} articles"
    elif listed == 0:
        if articles > 0:
            problem = f"it claims {articles} articles on {pages} pages but lists none"
    else:
        needed = -(-articles // listed)  # the pages M articles fill at this page's k a page
        if pages > 2 * needed or (page.page_number < pages and 2 * pages < needed):
            problem = (
                f"it claims {pages} pages for {articles} articles, but lists {listed} a page "
                f"({needed} pages)"
            )
    return problem


@dataclass(frozen=True, slots=True)
class SitemapLinks:
    sitemaps: tuple[str, ...]
    """Child sitemaps of a sitemap index."""
    article_urls: tuple[str, ...]
    problem: str = ""
    """Why none of the sitemap's URLs is taken, as "reason: detail" (reasons:
    ``entities``, ``malformed``, ``too_large``); empty for a sitemap that was read."""


def read_sitemap(body: bytes, *, max_size: int, site: Site = DEFAULT_SITE) -> SitemapLinks:
    """:func:`parse_sitemap` of a sitemap as it arrives: XML, or a gzipped file
    (``sitemap.xml.gz``, told by its magic bytes, whatever its URL or Content-Type).
    A gzipped one is decompressed up to ``max_size`` bytes (DOWNLOAD_MAXSIZE; 0 for no
    limit) and refused past it, so a small bomb cannot fill memory. A sitemap sent with
    Content-Encoding arrives here decompressed already, under the same limit."""
    if body[:2] != _GZIP_MAGIC:
        return parse_sitemap(body, site=site)
    try:
        xml = gunzip(body, max_size=max_size)
    except _DecompressionMaxSizeExceeded as exc:  # as Scrapy's SitemapSpider catches it
        return SitemapLinks(
            (),
            (),
            f"too_large: its {len(body)} B of gzip expand past DOWNLOAD_MAXSIZE ({max_size} B; "
            f"{exc.decompressed_size} B so far)",
        )
    except (OSError, EOFError, struct.error, zlib.error) as exc:  # GzipFile, on bad input
        return SitemapLinks((), (), f"malformed: not gzip ({exc})")
    return parse_sitemap(xml, site=site)


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
