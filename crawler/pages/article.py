"""Extraction of article pages: plain code over (url, body bytes, headers).

The spider, offline replay and the tests all call :func:`parse_article_page`; a
multi-page article is put together with :func:`assemble_article`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from parsel import Selector

from crawler.items import ArticleItem
from crawler.pages import selectors as css
from crawler.pages.blocks import Block, clean_line, render_blocks
from crawler.pages.decode import decode_html
from crawler.site import DEFAULT_SITE, Site
from storage.models import BEIJING

# Bump when a change to extraction can change what is stored for the same bytes.
EXTRACTOR_VERSION = "2026.11.1"


# "发布时间:2023-12-24 18:32:02 | 作者:… | 来源:…": labelled parts split at "|".
_INFO_LABELS = {"发布时间": "published", "时间": "published", "日期": "published",
                "来源": "source", "作者": "author"}  # fmt: skip
_DATETIME = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_PAGE_COUNT = re.compile(r"共\s*(\d+)\s*页")
_ICP = re.compile(r"[\u4e00-\u9fff]{1,2}ICP[备证]\s*\d+\s*号(?:-\d+)?")
_COPYRIGHT_LINE = re.compile(r"copyright|©", re.IGNORECASE)
_LABEL = re.compile(r"^\s*([^:：]{1,8})[:：]\s*(.*)$", re.DOTALL)
_STATEMENT_LABEL = "版权声明"
_DIGITS = re.compile(r"\d+")
# How far into page 1 the copy of the document's title may sit: only the editor's
# one-line introduction comes before it.
_TITLE_LINE_WINDOW = 3


@dataclass(frozen=True, slots=True)
class ArticlePage:
    """What one page of an article holds. Empty strings and None mean "not on the page"."""

    url: str
    canonical_url: str | None
    page_number: int
    page_count: int
    is_article: bool
    template: str = "desktop"
    """The rendering the page was read from: "desktop", "mobile" or "text"."""
    title: str = ""
    category: str = ""
    published_at: datetime | None = None
    source: str = ""
    author: str = ""
    tags: tuple[str, ...] = ()
    body_lines: tuple[str, ...] = ()
    copyright_notice: str = ""
    site_name: str = ""
    site_copyright: str = ""
    icp: str = ""
    declared_url: str = ""
    encoding: str = ""
    problems: tuple[str, ...] = field(default=())
    """Reasons this page must not be stored as it is (see the validation pipeline)."""


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
    sel = Selector(text=decoded.text, base_url=url)
    page_number = ref.page if ref else 1
    if not sel.css(css.DESKTOP.container) or ref is None:
        return ArticlePage(
            url=url,
            canonical_url=ref.canonical_url if ref else None,
            page_number=page_number,
            page_count=1,
            is_article=False,
            encoding=decoded.encoding,
            problems=(*problems, "not_article: no article template on the page"),
        )

    title = _text(sel.css(css.DESKTOP.title))
    info = _parse_info(_text(sel.css(css.DESKTOP.info)))
    footer = _footer_lines(sel)
    return ArticlePage(
        url=url,
        canonical_url=ref.canonical_url,
        page_number=page_number,
        page_count=_page_count(sel),
        is_article=True,
        title=title,
        category=_category(sel),
        published_at=_parse_datetime(info.get("published", "")),
        source=info.get("source", ""),
        author=info.get("author", ""),
        tags=_unique(clean_line(t) for t in sel.css(css.DESKTOP.tags).xpath("string()").getall()),
        body_lines=_body_lines(sel, title, first_page=page_number == 1),
        copyright_notice=_copyright_notice(sel),
        site_name=_text(sel.css(css.DESKTOP.footer_site_link)[:1]),
        site_copyright=next((line for line in footer if _COPYRIGHT_LINE.search(line)), ""),
        icp=_icp(footer),
        declared_url=(sel.css(css.DESKTOP.declared_url).attrib.get("href") or "").strip(),
        encoding=decoded.encoding,
        problems=tuple(problems),
    )


def assemble_article(
    pages: Sequence[ArticlePage],
    *,
    fetched_at: datetime | None = None,
    missing_pages: Sequence[str] = (),
) -> ArticleItem:
    """One item from the pages of one article, in page order. Page-level fields come
    from the first page; the body is every page's body in order."""
    first = pages[0]
    problems = [p for page in pages for p in page.problems]
    if missing_pages:
        problems.append(f"incomplete_article: could not fetch {', '.join(missing_pages)}")
    if first.page_number != 1:
        problems.append(f"incomplete_article: assembled from page {first.page_number}")
    return ArticleItem(
        url=first.canonical_url or first.url,
        title=first.title,
        category=first.category,
        published_at=first.published_at,
        source=first.source,
        author=first.author,
        tags=list(first.tags),
        body="\n".join(line for page in pages for line in page.body_lines),
        copyright_notice=first.copyright_notice,
        site_name=first.site_name,
        site_copyright=first.site_copyright,
        icp=first.icp,
        fetched_at=fetched_at,
        extractor_version=EXTRACTOR_VERSION,
        page_urls=[page.url for page in pages],
        template=first.template,
        problems=problems,
    )


def _text(selection: Any) -> str:
    return clean_line(" ".join(selection.xpath("string()").getall()))


def _unique(values: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _parse_info(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in text.split("|"):
        match = _LABEL.match(part)
        if match and (key := _INFO_LABELS.get(clean_line(match[1]))):
            found.setdefault(key, clean_line(match[2]))
    return found


def _parse_datetime(text: str) -> datetime | None:
    match = _DATETIME.search(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=BEIJING)
    except ValueError:
        return None  # e.g. 2023-02-30: a broken date is no date


def _category(sel: Selector) -> str:
    # 首页 > 党团工作 > : the last link that is not the home page is the category.
    names = [
        _text(link)
        for link in sel.css(css.DESKTOP.breadcrumb_links)
        if (link.attrib.get("href") or "").strip() not in {"/", "", "./"}
    ]
    return names[-1] if names else ""


def _page_count(sel: Selector) -> int:
    pager = sel.css(css.DESKTOP.pager)
    if not pager:
        return 1
    if match := _PAGE_COUNT.search(_text(pager)):
        return int(match[1])
    numbers = [int(t) for t in pager.css("a::text").getall() if t.strip().isdigit()]
    return max(numbers, default=1)


def _body_lines(sel: Selector, title: str, *, first_page: bool) -> tuple[str, ...]:
    content = sel.css(css.DESKTOP.content)
    if not content:
        return ()
    root = content[0].root
    noise = {node.root for node in content[0].css(css.CONTENT_NOISE)}
    blocks = render_blocks(root, noise)
    if first_page:
        blocks = _drop_editor_intro(blocks, title)
    return tuple(line for block in blocks for line in block.lines)


def _drop_editor_intro(blocks: list[Block], title: str) -> list[Block]:
    """On page 1 the body opens with the editor's line (下面是小编为大家整理的…), then a
    centred bold copy of the document's title. Everything before that title copy is the
    site's, not the document's. Only the structure decides: no words are matched."""
    for index, block in enumerate(blocks[:_TITLE_LINE_WINDOW]):
        if _is_title_copy(block, title):
            return blocks[index:]
    return blocks


def _is_title_copy(block: Block, title: str) -> bool:
    if len(block.lines) != 1 or block.indented:
        return False
    if block.centred:
        return True
    # Bold but not centred: it must be the page's title, give or take the year, which
    # the site moves on when it re-dates a document.
    return block.emphasised and _DIGITS.sub("#", block.lines[0]) == _DIGITS.sub("#", title)


def _copyright_notice(sel: Selector) -> str:
    statement = sel.css(css.DESKTOP.copyright_statement)
    if not statement:
        return ""
    lines = [line for block in render_blocks(statement[0].root) for line in block.lines]
    # The first line is the "版权声明:" label, possibly with the first clause after it.
    if lines and (match := _LABEL.match(lines[0])) and clean_line(match[1]) == _STATEMENT_LABEL:
        lines = [match[2], *lines[1:]] if match[2].strip() else lines[1:]
    return "\n".join(lines)


def _footer_lines(sel: Selector) -> list[str]:
    footer = sel.css(css.DESKTOP.footer)
    if not footer:
        return []
    return [line for block in render_blocks(footer[0].root) for line in block.lines]


def _icp(footer: list[str]) -> str:
    match = _ICP.search("\n".join(footer))
    return clean_line(match[0]) if match else ""
