"""Extraction of saved text pages: an article page of the site rendered as plain text.

The text has no markup, so what the HTML template says with elements the text says with
its layout and its labels. Paragraphs are separated by blank lines, and a <br>-joined
point is a line of its own inside a paragraph. The parts around the body are the ones
the page prints a label for (当前位置, 发布时间 | 来源, 推荐访问, 本文标题, 链接地址,
版权声明); those labels are this rendering's structure, as class names are in HTML.
Only a part's label, or its place next to a labelled part, says what it is; the body's
paragraphs are never judged by their words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from crawler.pages.blocks import Block, clean_line
from crawler.pages.decode import decode_html
from crawler.pages.fields import (
    STATEMENT_LABEL,
    ArticlePage,
    find_document,
    icp,
    notice_lines,
    parse_datetime,
    parse_info,
    site_copyright,
    split_label,
    unique,
)
from crawler.site import DEFAULT_SITE, Site

_BREADCRUMB = "当前位置"
_TAGS = "推荐访问"
_LINK = "链接地址"
# The labelled parts between the body and the footer.
_TAIL_LABELS = frozenset({_TAGS, "本文标题", _LINK, STATEMENT_LABEL})
_BLANK_LINES = re.compile(r"\n[^\S\n]*\n")


def parse_text_page(
    url: str | None,
    body: bytes,
    headers: Mapping[Any, Any] | None = None,
    *,
    site: Site = DEFAULT_SITE,
) -> ArticlePage:
    """The article a text page holds. Its URL is the one the text gives (链接地址);
    ``url`` is used only when the text gives none."""
    decoded = decode_html(body, headers)
    problems: list[str] = []
    if decoded.lossy:
        problems.append(f"undecodable: no charset decodes the page (declared {decoded.declared})")
    sections = _sections(_paragraphs(decoded.text))
    labelled = _labelled_values(sections.tail)
    declared_url = labelled.get(_LINK, "")
    page_url = declared_url or url or ""
    ref = site.article_ref(page_url) if page_url else None
    if ref is None:
        reason = "no url" if not page_url else f"{page_url} is not an article URL"
        return ArticlePage(
            url=page_url,
            canonical_url=None,
            page_number=1,
            page_count=1,
            is_article=False,
            template="text",
            encoding=decoded.encoding,
            problems=(*problems, f"not_article: {reason}"),
        )

    info = parse_info(sections.head[-1].lines) if sections.head else {}
    title = _title(sections.head)
    document, title_line = sections.body, ""
    if ref.page == 1:
        document, title_line = find_document(document, title, styled=False)
    footer = [line for part in sections.footer for line in part.lines]
    return ArticlePage(
        url=page_url,
        canonical_url=ref.canonical_url,
        page_number=ref.page,
        # A text rendering shows no pager: each saved page is read on its own.
        page_count=1,
        is_article=True,
        template="text",
        title=title,
        category=_category(sections.head),
        published_at=parse_datetime(info.get("published", "")),
        source=info.get("source", ""),
        author=info.get("author", ""),
        tags=unique(labelled.get(_TAGS, "").split()),
        body_lines=tuple(line for part in document for line in part.lines),
        title_line=title_line,
        copyright_notice=notice_lines(_part_lines(sections.tail, STATEMENT_LABEL)),
        # The footer's first line is its row of links, the home page's (the site's name)
        # first: "十号范文网 | …".
        site_name=clean_line(footer[0].split("|")[0]) if footer else "",
        site_copyright=site_copyright(footer),
        icp=icp(footer),
        declared_url=declared_url,
        encoding=decoded.encoding,
        problems=tuple(problems),
    )


def _paragraphs(text: str) -> list[Block]:
    """The text's paragraphs, as the HTML renderer's blocks: one line per point."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = []
    for paragraph in _BLANK_LINES.split(text):
        lines = tuple(filter(None, map(clean_line, paragraph.split("\n"))))
        if lines:
            raw = paragraph.lstrip("\n")
            blocks.append(
                Block(lines=lines, indented=raw[:1].isspace(), centred=False, emphasised=False)
            )
    return blocks


def _label(part: Block) -> str:
    labelled = split_label(part.lines[0])
    return labelled[0] if labelled else ""


class _Sections(NamedTuple):
    head: list[Block]
    """Breadcrumb, title and info line."""
    body: list[Block]
    tail: list[Block]
    """The labelled parts after the body: tags, title and link, 版权声明."""
    footer: list[Block]


def _sections(parts: list[Block]) -> _Sections:
    """The head ends with the info line (发布时间:…). The tail is the run of labelled
    parts after the body, found from the end so that a body paragraph may say anything;
    the footer is what follows it. Without an info line or a tail nothing tells the body
    from the rest, so the body is left empty (and the page is dropped for it)."""
    info_at = next((i for i, p in enumerate(parts) if "published" in parse_info(p.lines)), None)
    if info_at is None:
        return _Sections([], [], [], [])
    head = parts[: info_at + 1]
    labelled = [i for i in range(info_at + 1, len(parts)) if _label(parts[i]) in _TAIL_LABELS]
    if not labelled:
        return _Sections(head, [], [], [])
    tail_end = labelled[-1] + 1
    tail_start = labelled[-1]
    while tail_start - 1 > info_at and _label(parts[tail_start - 1]) in _TAIL_LABELS:
        tail_start -= 1
    return _Sections(
        head=head,
        body=parts[info_at + 1 : tail_start],
        tail=parts[tail_start:tail_end],
        footer=parts[tail_end:],
    )


def _title(head: Sequence[Block]) -> str:
    # The title is the line just above the info line, below the breadcrumb.
    if len(head) < 2 or _label(head[-2]) == _BREADCRUMB:
        return ""
    return head[-2].text


def _category(head: Sequence[Block]) -> str:
    # "当前位置: 首页 > 党团工作 >": the crumbs after the first (the home page); the last
    # of them is the category.
    trail = next((split_label(p.lines[0]) for p in head if _label(p) == _BREADCRUMB), None)
    if trail is None:
        return ""
    names = [name for name in map(clean_line, trail[1].split(">")[1:]) if name]
    return names[-1] if names else ""


def _labelled_values(parts: Sequence[Block]) -> dict[str, str]:
    """label → value for every labelled line of ``parts``, the first of each label."""
    found: dict[str, str] = {}
    for part in parts:
        for line in part.lines:
            if labelled := split_label(line):
                found.setdefault(*labelled)
    return found


def _part_lines(parts: Sequence[Block], label: str) -> list[str]:
    return next((list(p.lines) for p in parts if _label(p) == label), [])
