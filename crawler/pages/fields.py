"""What one page of an article holds, and the readings of it that every rendering of
the page shares: the desktop and mobile HTML templates (article.py) and the saved text
pages (textpage.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from crawler.pages.blocks import Block, clean_line
from storage.models import BEIJING


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
    title_line: str = ""
    """The copy of the document's title that opens the body on page 1 ("" if none)."""
    removed: dict[str, int] = field(default_factory=dict)
    """What was left out of the body, by kind: text a reader never sees and the site's
    furniture (see crawler/pages/blocks.py). Counted in the crawl stats."""
    copyright_notice: str = ""
    site_name: str = ""
    site_copyright: str = ""
    icp: str = ""
    declared_url: str = ""
    encoding: str = ""
    problems: tuple[str, ...] = field(default=())
    """Reasons this page must not be stored as it is (see the validation pipeline)."""


# "发布时间:2023-12-24 18:32:02 | 作者:… | 来源:…": labelled parts.
_INFO_LABELS = {"发布时间": "published", "时间": "published", "日期": "published",
                "来源": "source", "作者": "author"}  # fmt: skip
_DATETIME = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_ICP = re.compile(r"[\u4e00-\u9fff]{1,2}ICP[备证]\s*\d+\s*号(?:-\d+)?")
_COPYRIGHT_LINE = re.compile(r"copyright|©", re.IGNORECASE)
_LABEL = re.compile(r"^\s*([^:：]{1,8})[:：]\s*(.*)$", re.DOTALL)
_URL = re.compile(r"https?://\S+")
_DIGITS = re.compile(r"\d+")
STATEMENT_LABEL = "版权声明"
# How far into page 1 the copy of the document's title may sit: only the editor's
# one-line introduction comes before it.
_TITLE_LINE_WINDOW = 3


def split_label(line: str) -> tuple[str, str] | None:
    """("来源", "网友投稿") for "来源:网友投稿"; None for a line with no short label."""
    match = _LABEL.match(line)
    return (clean_line(match[1]), clean_line(match[2])) if match else None


def parse_info(texts: Iterable[str]) -> dict[str, str]:
    """The labelled parts of an info bar. Each text may hold several parts split at "|"
    (the desktop bar and its text rendering) or just one (a mobile <span>)."""
    found: dict[str, str] = {}
    for part in (part for text in texts for part in text.split("|")):
        labelled = split_label(part)
        if labelled and (key := _INFO_LABELS.get(labelled[0])):
            found.setdefault(key, labelled[1])
    return found


def parse_datetime(text: str) -> datetime | None:
    """Beijing time. A date without a time of day is that day's midnight."""
    match = _DATETIME.search(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=BEIJING)
    except ValueError:
        return None  # e.g. 2023-02-30: a broken date is no date


def unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def notice_lines(lines: Sequence[str]) -> str:
    """The 版权声明 lines of a copyright box, without the "版权声明:" label (which may
    carry the first clause after it) and without a labelled link to the article (the
    mobile template puts its 本文链接 line in the same box): a link is not the notice."""
    kept: list[str] = []
    for line in lines:
        labelled = split_label(line)
        if labelled and labelled[0] == STATEMENT_LABEL:
            if labelled[1]:
                kept.append(labelled[1])
        elif not (labelled and _URL.fullmatch(labelled[1])):
            kept.append(line)
    return "\n".join(kept)


def site_copyright(footer: Sequence[str]) -> str:
    return next((line for line in footer if _COPYRIGHT_LINE.search(line)), "")


def icp(footer: Sequence[str]) -> str:
    match = _ICP.search("\n".join(footer))
    return clean_line(match[0]) if match else ""


class Document(NamedTuple):
    blocks: list[Block]
    """The document's blocks: from the copy of its title, if the page has one."""
    title_line: str
    """That copy of the title ("" when none was found)."""


def find_document(blocks: list[Block], title: str, *, styled: bool = True) -> Document:
    """On page 1 the body opens with the editor's line (下面是小编为大家整理的…), then a
    copy of the document's title. Everything before that title copy is the site's, not
    the document's. Only the structure decides: no words are matched.

    A page that holds nothing but the site's lines holds no document: the editor's line
    alone (one unindented line that names the page's title) gives no blocks. A body
    that is only the copy of the title is left to :func:`crawler.pages.article.
    assemble_article`, which sees whether a later page holds the paragraphs.

    ``styled`` says whether the rendering shows bold and centring (HTML does, a text
    rendering does not)."""
    for index, block in enumerate(blocks[:_TITLE_LINE_WINDOW]):
        if _is_title_copy(block, title, styled=styled):
            return Document(blocks[index:], block.lines[0])
    if len(blocks) == 1 and _is_editor_line(blocks[0], title):
        return Document([], "")
    return Document(blocks, "")


def _is_editor_line(block: Block, title: str) -> bool:
    """The editor's line is made from the page's title; a document's paragraph is
    indented (the site's are, with &nbsp;)."""
    if len(block.lines) != 1 or block.indented or not title:
        return False
    return _DIGITS.sub("#", title) in _DIGITS.sub("#", block.lines[0])


def _is_title_copy(block: Block, title: str, *, styled: bool) -> bool:
    if len(block.lines) != 1 or block.indented:
        return False
    if block.centred:
        return True
    # Bold but not centred (the mobile template), or unstyled text: it must be the
    # page's title, give or take the year, which the site moves on when it re-dates a
    # document.
    same_title = _DIGITS.sub("#", block.lines[0]) == _DIGITS.sub("#", title)
    return same_title and (block.emphasised or not styled)
