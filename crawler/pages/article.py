"""Extraction of article pages: plain code over (url, body bytes, headers).

The spider calls :func:`parse_page`, which reads an HTML page with
:func:`parse_article_page` and a saved text page with
:func:`crawler.pages.textpage.parse_text_page`; a multi-page article is put together
with :func:`assemble_article`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from lxml import etree
from lxml.html import HTMLParser
from parsel import Selector

from crawler.items import ArticleItem
from crawler.pages import selectors as css
from crawler.pages.blocks import clean_line, hidden_by_stylesheets, render_blocks, render_body
from crawler.pages.decode import decode_html, header_value
from crawler.pages.fields import (
    ArticlePage,
    find_document,
    icp,
    notice_lines,
    parse_datetime,
    parse_info,
    site_copyright,
    unique,
)
from crawler.pages.textpage import parse_text_page
from crawler.site import DEFAULT_SITE, Site

__all__ = [
    "EXTRACTOR_VERSION",
    "ArticlePage",
    "assemble_article",
    "parse_article_page",
    "parse_page",
]

# Bump when a change to extraction can change what is stored for the same bytes.
EXTRACTOR_VERSION = "2026.12.1"

_PAGE_COUNT = re.compile(r"共\s*(\d{1,6})\s*页")
_PAGE_NUMBER = re.compile(r"\s*(\d{1,6})\s*")
# The end of the document. The HTML parser closes whatever a page cut short leaves open,
# so only the raw text tells a whole page from one whose transfer was cut.
_DOCUMENT_END = re.compile(r"</(?:body|html)\s*>", re.IGNORECASE)
# The desktop template first: where a page had both, it is the fuller record.
_TEMPLATES = (css.DESKTOP, css.MOBILE)
# What reading a hostile page may raise: lxml's and libxml2's errors, and values and
# depths no page should have (UnicodeDecodeError is a ValueError).
_UNREADABLE = (etree.LxmlError, ValueError, RecursionError)


def parse_page(
    url: str,
    body: bytes,
    headers: Mapping[Any, Any] | None = None,
    *,
    site: Site = DEFAULT_SITE,
) -> ArticlePage:
    """One page of an article, whichever rendering the response is: a text/plain
    response is a saved text page, anything else is read as HTML."""
    media_type = (header_value(headers, "Content-Type") or "").split(";")[0].strip().lower()
    try:
        if media_type == "text/plain":
            return parse_text_page(url, body, headers, site=site)
        return parse_article_page(url, body, headers, site=site)
    except _UNREADABLE as error:
        # A page that breaks the parser is a page that cannot be read, never a crash:
        # the pipelines drop it with the reason, and it is counted.
        return _unreadable(url, f"{type(error).__name__}: {error}", site=site)


def _unreadable(url: str, reason: str, *, site: Site, encoding: str = "") -> ArticlePage:
    try:
        ref = site.article_ref(url)
    except ValueError:
        ref = None
    return ArticlePage(
        url=url,
        canonical_url=ref.canonical_url if ref else None,
        page_number=ref.page if ref else 1,
        page_count=1,
        is_article=False,
        encoding=encoding,
        problems=(f"unreadable_page: {reason[:200]}",),
    )


def _parse_html(text: str, url: str) -> tuple[Selector, str | None]:
    """The page's tree, as parsel builds it (huge_tree: no limit on the size of a text),
    and why the parser stopped before the end, if it did: libxml2 stops at its resource
    limits (2,048 levels of nesting with huge_tree), leaving a tree cut short."""
    parser = HTMLParser(recover=True, encoding="utf-8", huge_tree=True)
    data = text.strip().replace("\x00", "").encode("utf-8") or b"<html/>"
    root = etree.fromstring(data, parser=parser, base_url=url)
    if root is None:
        root = etree.fromstring(b"<html/>", parser=parser, base_url=url)
    last = parser.error_log.last_error
    stopped = last.message if last and last.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT else None
    return Selector(root=root, type="html", base_url=url), stopped


def parse_article_page(
    url: str,
    body: bytes,
    headers: Mapping[Any, Any] | None = None,
    *,
    site: Site = DEFAULT_SITE,
) -> ArticlePage:
    ref = site.article_ref(url)
    decoded = decode_html(body, headers)
    problems: list[str] = []
    if decoded.lossy:
        problems.append(f"undecodable: no charset decodes the page (declared {decoded.declared})")
    sel, stopped = _parse_html(decoded.text, url)
    if stopped:
        reason = f"the HTML parser stopped: {stopped}"
        return _unreadable(url, reason, site=site, encoding=decoded.encoding)
    page_number = ref.page if ref else 1
    template = next((t for t in _TEMPLATES if sel.css(t.container)), None)
    if template is None or ref is None:
        return ArticlePage(
            url=url,
            canonical_url=ref.canonical_url if ref else None,
            page_number=page_number,
            page_count=1,
            is_article=False,
            encoding=decoded.encoding,
            problems=(*problems, "not_article: no article template on the page"),
        )

    if truncated := _truncation(sel, template, decoded.text):
        # First: a page cut inside a character also fails to decode, as a consequence.
        problems.insert(0, truncated)
    title = _text(sel.css(template.title))
    info = parse_info(sel.css(template.info).xpath("string()").getall())
    footer = _lines(sel, template.footer)
    document = _body(sel, template, title, url=url, site=site, first_page=page_number == 1)
    return ArticlePage(
        url=url,
        canonical_url=ref.canonical_url,
        page_number=page_number,
        page_count=_page_count(sel, template),
        is_article=True,
        template=template.name,
        title=title,
        category=_category(sel, template),
        # The mobile template gives the date without a time of day: it is stored as that
        # day's midnight, Beijing time, which is all the page holds.
        published_at=parse_datetime(info.get("published", "")),
        source=info.get("source", ""),
        author=info.get("author", ""),
        tags=_tags(sel, template),
        body_lines=document.lines,
        title_line=document.title_line,
        removed=document.removed,
        copyright_notice=notice_lines(_lines(sel, template.copyright_statement)),
        site_name=_text(sel.css(template.site_name)[:1]),
        site_copyright=site_copyright(footer),
        icp=icp(footer),
        declared_url=(sel.css(template.declared_url).attrib.get("href") or "").strip(),
        encoding=decoded.encoding,
        problems=tuple(problems),
    )


def assemble_article(
    pages: Sequence[ArticlePage],
    *,
    fetched_at: datetime | None = None,
    missing_pages: Sequence[str] = (),
    site: Site = DEFAULT_SITE,
) -> ArticleItem:
    """One item from the pages of one article, in page order. Page-level fields come
    from the first page; the body is every page's body in order."""
    first = pages[0]
    ref = site.article_ref(first.canonical_url or first.url)
    problems = [p for page in pages for p in page.problems]
    lines = [line for page in pages for line in page.body_lines]
    if first.title_line and lines == [first.title_line]:
        lines = []  # the copy of the title alone: the site's line, no document
    removed: dict[str, int] = {}
    for page in pages:
        for kind, count in page.removed.items():
            removed[kind] = removed.get(kind, 0) + count
    if missing_pages:
        problems.append(f"incomplete_article: could not fetch {', '.join(missing_pages)}")
    if first.page_number != 1:
        problems.append(f"incomplete_article: assembled from page {first.page_number}")
    return ArticleItem(
        url=first.canonical_url or first.url,
        aid=ref.article_id if ref else None,
        title=first.title,
        category=first.category,
        published_at=first.published_at,
        source=first.source,
        author=first.author,
        tags=list(first.tags),
        body="\n".join(lines),
        copyright_notice=first.copyright_notice,
        site_name=first.site_name,
        site_copyright=first.site_copyright,
        icp=first.icp,
        fetched_at=fetched_at,
        extractor_version=EXTRACTOR_VERSION,
        page_urls=[page.url for page in pages],
        template=first.template,
        problems=problems,
        removed=removed,
    )


def _truncation(sel: Selector, template: css.ArticleSelectors, text: str) -> str | None:
    """Why the page is not whole, or None. The footer is the template's last part: a page
    without it was cut before it, losing the end of the body, the 版权声明 or both, and
    stored it would be a wrong row. A page may lack its 版权声明 (counted as
    copyright/no_notice) but not its footer and the end of the document."""
    if not sel.css(template.footer):
        return "truncated_page: the page ends before its footer"
    if not _DOCUMENT_END.search(text):
        return "truncated_page: the page ends before its </body> or </html>"
    return None


def _text(selection: Any) -> str:
    return clean_line(" ".join(selection.xpath("string()").getall()))


def _lines(sel: Selector, selector: str) -> list[str]:
    """The lines a reader sees in the first element ``selector`` matches."""
    found = sel.css(selector)
    if not found:
        return []
    return [line for block in render_blocks(found[0].root) for line in block.lines]


def _category(sel: Selector, template: css.ArticleSelectors) -> str:
    # 首页 > 党团工作 > : the last link that is not the home page is the category.
    names = [
        _text(link)
        for link in sel.css(template.category_links)
        if (link.attrib.get("href") or "").strip() not in {"/", "", "./"}
    ]
    return names[-1] if names else ""


def _tags(sel: Selector, template: css.ArticleSelectors) -> tuple[str, ...]:
    if template.tags is None:
        return ()
    return unique(clean_line(t) for t in sel.css(template.tags).xpath("string()").getall())


def _page_count(sel: Selector, template: css.ArticleSelectors) -> int:
    pager = sel.css(template.pager)
    if not pager:
        return 1
    if match := _PAGE_COUNT.search(_text(pager)):
        return int(match[1])
    numbers = [int(m[1]) for t in pager.css("a::text").getall() if (m := _PAGE_NUMBER.fullmatch(t))]
    return max(numbers, default=1)


class _Body(NamedTuple):
    lines: tuple[str, ...]
    title_line: str
    removed: dict[str, int]


def _body(
    sel: Selector,
    template: css.ArticleSelectors,
    title: str,
    *,
    url: str,
    site: Site,
    first_page: bool,
) -> _Body:
    content = sel.css(template.content)
    if not content:
        return _Body((), "", {})
    rendered = render_body(
        content[0].root,
        page_url=url,
        site_hosts=site.hosts,
        hidden=hidden_by_stylesheets(sel.root),
    )
    blocks, title_line = rendered.blocks, ""
    if first_page:
        blocks, title_line = find_document(blocks, title)
    return _Body(
        tuple(line for block in blocks for line in block.lines), title_line, rendered.removed
    )
