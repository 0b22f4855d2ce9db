"""The body's rules one by one (crawler/pages/blocks.py, selectors.py), hostile input on
the article path (depth, size, numbers no page should have), pages of nothing but the
site's own lines, and what is counted of what was left out.

The markups of real pages are in the golden cases (tests/test_golden.py)."""

from __future__ import annotations

import asyncio
import pickle
import re
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import pytest
from lxml import html as lxml_html
from scrapy import Request
from scrapy.exceptions import DropItem
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.utils.test import get_crawler

from crawler.extensions.runs import removed_report
from crawler.items import ArticleItem
from crawler.pages import article as article_module
from crawler.pages.article import assemble_article, parse_article_page, parse_page
from crawler.pages.blocks import hidden_by_stylesheets, render_body, style_hides
from crawler.pages.selectors import FURNITURE_CLASS
from crawler.reading import PartialArticle
from crawler.site import DEFAULT_SITE
from crawler.spiders.ylwt22 import Ylwt22Spider
from pipelines.clean import clean_lines
from pipelines.store import to_record
from storage.repository import ArticleRecord
from tests.golden import response as golden_response
from tests.support.pages import (
    TEXT_PAGE,
    expected,
    extract,
    extract_text,
    mirror_file,
    through_pipelines,
)
from tests.support.project import project_settings

URL = "http://www.ylwt22.com/dangtuangongzuo/2023/1009/316197.html"
TITLE = "2023年幸福里社区党支部第三季度工作总结"
INTRO = f"<p>下面是小编为大家整理的{TITLE},供大家参考。</p>"
TITLE_COPY = f'<p style="text-align: center;"><strong>{TITLE}</strong></p>'
# The content block, up to its own end (an ad slot's </div> ends its line).
_CONTENT = re.compile(r'(<div class="content" id="article-content">\n).*?(\n</div>\n)', re.S)


def page_with_content(content: str, url: str = URL) -> bytes:
    """The snapshot's page at URL with ``content`` as its content block."""
    html = mirror_file(URL).read_text(encoding="utf-8")
    return _CONTENT.sub(lambda m: m[1] + content + m[2], html, count=1).encode("utf-8")


def body_of(content: str) -> list[str]:
    """The body's lines of the snapshot's page with ``content`` as its content block."""
    item = assemble_article([parse_article_page(URL, page_with_content(content))])
    return item.body.split("\n") if item.body else []


def fragment_lines(markup: str, **kwargs: object) -> list[str]:
    root = lxml_html.fragment_fromstring(markup, create_parent="div")
    rendered = render_body(root, **kwargs)  # type: ignore[arg-type]
    return [line for block in rendered.blocks for line in block.lines]


# --- text a reader never sees ---------------------------------------------------------

HIDING = (
    "display:none",
    "DISPLAY: NONE",
    "display : none !important",
    "color:red;display:none;",
    " visibility:hidden",
    "visibility: collapse",
    "font-size:0",
    "font-size: 0px",
    "FONT-SIZE:0PT",
    "font-size:0.0em",
    "font-size:1px",
    "font-size:.5pt",
    "opacity:0",
    "opacity: 0.0",
    "opacity:0%",
    "color:transparent",
    "color: rgba(255, 255, 255, 0)",
    "text-indent:-9999px",
    "position:absolute; left:-10000px",
    "position:absolute;top:-5000px",
    "text-indent:-999em",
    "height:0;overflow:hidden",
    "max-height: 0px; overflow: hidden",
    "width:0; overflow:clip",
    "position:absolute;clip:rect(0 0 0 0)",
    "clip: rect(0px, 0px, 0px, 0px)",
    "transform:scale(0)",
)
VISIBLE = (
    "",
    "display:block",
    "display:inline-block",
    "visibility:visible",
    "font-size:12px",
    "font-size:10.5pt",
    "font-size:2px",
    "font-size:1em",
    "font-size:100%",
    "opacity:1",
    "opacity:0.5",
    "color:#fff",
    "color: rgba(0, 0, 0, 0.5)",
    "text-indent:2em",
    "text-indent:-2em",
    "margin-left:-10px",
    "left:-100px",
    "height:0",
    "overflow:hidden",
    "height:20px;overflow:hidden",
    "mso-hide:all-but-word",
    "line-height:0",
    "font-family:宋体;mso-ascii-font-family:'Times New Roman'",
)


@pytest.mark.parametrize("style", HIDING)
def test_a_style_that_hides_hides(style: str) -> None:
    assert style_hides(style)
    assert fragment_lines(f'<p>看得见的<span style="{style}">看不见</span>文字</p>') == [
        "看得见的文字"
    ]


@pytest.mark.parametrize("style", VISIBLE)
def test_a_style_that_shows_shows(style: str) -> None:
    assert not style_hides(style)
    assert fragment_lines(f'<p>看得见的<span style="{style}">也看得见的</span>文字</p>') == [
        "看得见的也看得见的文字"
    ]


def test_the_hidden_attribute_hides_and_the_tail_after_a_hidden_element_stays() -> None:
    lines = fragment_lines("<p>甲<span hidden>不见</span>乙</p><p hidden>不见</p><p>丙</p>")
    assert lines == ["甲乙", "丙"]


def test_a_class_a_style_element_hides_is_hidden_but_not_one_hidden_only_in_print() -> None:
    page = lxml_html.document_fromstring(
        "<html><head><style>.yc, span.wm2 {display:none} /* .c1 {display:none} */"
        "@media print { .dy { display:none } } @media screen { .sc { display:none } }"
        "#wm1{visibility:hidden} .content .x3 { font-size: 0 } .hv:hover{display:none}"
        ".pe::before{display:none} .shown{display:block}</style></head><body></body></html>"
    )
    hidden = hidden_by_stylesheets(page)
    assert hidden == {".yc", ".wm2", "#wm1", ".x3"}
    lines = fragment_lines(
        '<p>甲<span class="yc">不见</span><span class="dy">乙</span><span class="shown">丙</span>'
        '<i class="a x3">不见</i><b id="wm1">不见</b><u class="hv pe">丁</u></p>',
        hidden=hidden,
    )
    assert lines == ["甲乙丙丁"]


def test_a_stylesheet_that_never_closes_or_nests_oddly_is_read_without_error() -> None:
    for sheet in ("}}}{{{", ".a{display:none", "/* never closed .a{display:none}", "@media{"):
        page = lxml_html.document_fromstring(f"<html><head><style>{sheet}</style></head></html>")
        assert hidden_by_stylesheets(page) == frozenset()


# --- the site's furniture --------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        ("ad_content", "ad"), ("ad_top", "ad"), ("ad", "ad"), ("ads", "ad"), ("ad2", "ad"),
        ("adsbygoogle", "ad"), ("art-ad", "ad"), ("gg_box", "ad"), ("advertisement", "ad"),
        ("bdsharebuttonbox", "chrome"), ("share-box", "chrome"), ("jiathis_style", "chrome"),
        ("downfile", "chrome"), ("download", "chrome"), ("wordxz", "chrome"), ("print", "chrome"),
        ("dede_pages", "pager"), ("pagelist", "pager"), ("pagination", "pager"),
        ("header", None), ("read", None), ("adapt", None), ("shadow", None), ("load", None),
        ("address", None), ("MsoNormal", None), ("WordSection1", None), ("page-body", None),
        ("thead", None), ("egg", None), ("read-more", None),
    ],
)  # fmt: skip
def test_furniture_is_told_by_a_whole_class_token(token: str, kind: str | None) -> None:
    found = FURNITURE_CLASS.fullmatch(token)
    assert (found.lastgroup if found else None) == kind


SITE_HOSTS = DEFAULT_SITE.hosts


@pytest.mark.parametrize(
    "link",
    [
        '<a href="/plus/download.php?open=0&amp;aid=1">下载</a>',
        '<a href="../../../plus/download.php?aid=1">下载</a>',
        '<a href="http://www.ylwt22.com/plus/view.php?aid=1&amp;print=1">打印</a>',
        '<a href="https://m.ylwt22.com/plus/stow.php?aid=1">收藏</a>',
        '<a href="javascript:window.print()">打印</a>',
        '<a href="JavaScript:void(0)" onclick="share()">分享</a>',
        '<a href="#" onclick="AddFavorite()">收藏</a>',
        '<a href="http://service.weibo.com/share/share.php?url=http%3A%2F%2Fwww.ylwt22.com%2Fa%2F2023%2F1009%2F1.html">微博</a>',
    ],
)
def test_a_site_action_goes_with_the_line_it_sits_on(link: str) -> None:
    lines = fragment_lines(
        f"<p>正文第一段。<br />提示：{link}（本行不是正文）<br />正文第二段。</p>",
        page_url="http://www.ylwt22.com/a/2023/1009/1.html",
        site_hosts=SITE_HOSTS,
    )
    assert lines == ["正文第一段。", "正文第二段。"]


@pytest.mark.parametrize(
    "link",
    [
        '<a href="/tags/%E5%85%9A%E5%BB%BA.html" target="_blank"><u>党建</u></a>',
        "<a href='/plus/search.php?keyword=%E5%85%9A%E5%BB%BA'><u>党建</u></a>",
        '<a href="http://www.ylwt22.com/dangtuangongzuo/2023/1224/320094.html">党建</a>',
        '<a href="http://www.gov.cn/zhengce/">党建</a>',
        '<a href="#_ftn1" name="_ftnref1">党建</a>',
        '<a name="_GoBack">党建</a>',
        '<a href="http://[::1/plus/download.php">党建</a>',
        "<a>党建</a>",
    ],
)
def test_a_link_in_a_sentence_keeps_its_text(link: str) -> None:
    lines = fragment_lines(
        f"<p>坚持{link}引领。</p>",
        page_url="http://www.ylwt22.com/a/2023/1009/1.html",
        site_hosts=SITE_HOSTS,
    )
    assert lines == ["坚持党建引领。"]


def test_an_action_in_a_table_row_takes_the_row() -> None:
    lines = fragment_lines(
        "<table><tr><td>甲</td><td>乙</td></tr>"
        '<tr><td>下载：</td><td><a href="/plus/download.php?aid=1">Word</a></td></tr></table>',
        site_hosts=SITE_HOSTS,
    )
    assert lines == ["甲\t乙"]


# --- every markup, the same text --------------------------------------------------------


def test_a_line_break_in_the_source_between_chinese_characters_is_no_space() -> None:
    assert fragment_lines("<p>坚持以习近平\r\n新时代 Times\nNew Roman “引领”\n是</p>") == [
        "坚持以习近平新时代 Times New Roman “引领” 是"
    ]


def test_spaces_and_nbsp_inside_a_line_are_one_gap_but_ideographic_spaces_stay() -> None:
    assert fragment_lines("<p>1.&nbsp;&nbsp;&nbsp; 加强 &nbsp;学习　　姓名：张三</p>") == [
        "1. 加强 学习　　姓名：张三"
    ]


def test_list_markers_follow_the_lists_type_start_and_value() -> None:
    lines = fragment_lines(
        '<ol type="I" start="3"><li>三</li><li>四</li></ol>'
        '<ol type="A"><li value="26">Z</li><li>AA</li></ol>'
        '<ol reversed start="abc"><li>一</li></ol>'
        '<ol><li style="list-style-type:none">无号</li><li>二</li></ol>'
        "<ul><li>圆点</li></ul><ol><li></li><li><br /></li><li>有</li></ol>"
    )
    assert lines == [
        "III. 三",
        "IV. 四",
        "Z. Z",
        "AA. AA",
        "1. 一",
        "无号",
        "2. 二",
        "圆点",
        "3. 有",
    ]


def test_a_preformatted_block_keeps_its_lines() -> None:
    assert fragment_lines("<pre>第一行\n  第二行\n\n第三行</pre>") == ["第一行", "第二行", "第三行"]


def test_a_nested_table_inside_a_cell_stays_in_that_cell() -> None:
    lines = fragment_lines(
        "<table><tr><td>甲</td><td><table><tr><td>乙1</td><td>乙2</td></tr></table></td></tr>"
        "</table>"
    )
    assert lines == ["甲\t乙1 乙2"]


# --- pages of nothing but the site's own lines ------------------------------------------


def drop_reason(item: ArticleItem) -> str:
    with pytest.raises(DropItem) as dropped:
        through_pipelines(item)
    return str(dropped.value).split(":", 1)[0]


@pytest.mark.parametrize(
    "content",
    [
        INTRO,
        INTRO + "\n" + TITLE_COPY,
        TITLE_COPY,
        INTRO + "\n" + TITLE_COPY + '\n<p style="display:none">隐藏</p><p>&nbsp;</p>',
        INTRO + '\n<p><a href="/plus/download.php?aid=1">下载Word</a></p>',
    ],
)
def test_a_page_of_only_the_sites_lines_has_an_empty_body(content: str) -> None:
    item = assemble_article([parse_article_page(URL, page_with_content(content))])
    assert item.body == ""
    assert drop_reason(item) == "missing_body"


def test_one_real_paragraph_is_a_document() -> None:
    assert body_of(INTRO + TITLE_COPY + "<p>&nbsp;&nbsp;正文只有一段。</p>") == [
        TITLE,
        "正文只有一段。",
    ]
    # An indented paragraph is the document's, even one that names the title.
    assert body_of(f"<p>&nbsp;&nbsp;本文是{TITLE}的正文。</p>") == [f"本文是{TITLE}的正文。"]


def test_a_first_page_of_only_the_sites_lines_is_not_a_missing_body_when_later_pages_hold_it() -> (
    None
):
    url = "http://www.ylwt22.com/dangtuangongzuo/2022/1220/305064.html"
    html = mirror_file(url).read_text(encoding="utf-8")
    title_copy = re.search(r'<p style="text-align: center;"><strong>.*?</strong></p>', html)
    assert title_copy is not None
    first_only = _CONTENT.sub(lambda m: m[1] + title_copy[0] + m[2], html, count=1)
    second = mirror_file(url.replace(".html", "_2.html")).read_bytes()
    item = assemble_article(
        [
            parse_article_page(url, first_only.encode("utf-8")),
            parse_article_page(url.replace(".html", "_2.html"), second),
        ]
    )
    lines = item.body.split("\n")
    assert lines[0] == expected(url)["body"].split("\n")[0]
    assert lines[1].startswith("（五）注重典型引领")


def test_a_text_page_of_only_the_sites_lines_has_an_empty_body() -> None:
    text = TEXT_PAGE.read_text(encoding="utf-8")
    title_copy = "\n2023年镇团委上半年意识形态工作情况汇报\n"
    start = text.index(title_copy) + len(title_copy)
    tail = text.index("推荐访问")
    title_only = text[:start] + "\n" + text[tail:]
    assert extract_text(title_only.encode("utf-8")).body == ""
    intro_only = text[: text.index(title_copy)] + "\n\n" + text[tail:]
    assert "小编" in intro_only
    assert extract_text(intro_only.encode("utf-8")).body == ""


# --- hostile input ---------------------------------------------------------------------


def nested(depth: int, inner: str = "<p>&nbsp;&nbsp;深处的段落。</p>", tag: str = "div") -> str:
    return f"<{tag}>" * depth + inner + f"</{tag}>" * depth


def test_an_article_a_thousand_divs_deep_is_read() -> None:
    content = INTRO + TITLE_COPY + nested(1000)
    assert len(content.encode()) > 6000
    assert body_of(content) == [TITLE, "深处的段落。"]


@pytest.mark.parametrize("tag", ["span", "b", "font", "li", "table"])
def test_deep_nesting_of_any_element_is_read(tag: str) -> None:
    lines = body_of(INTRO + TITLE_COPY + nested(1500, "深处的段落。", tag))
    assert lines[0] == TITLE
    assert lines[1].endswith("深处的段落。")


def test_a_page_nested_past_the_parsers_limit_is_dropped_with_a_reason() -> None:
    # libxml2 stops at 2,048 levels, even with huge_tree: what is past it is not read.
    for depth in (3000, 100_000):
        page = parse_article_page(URL, page_with_content(nested(depth)))
        assert page.problems[0].startswith("unreadable_page: the HTML parser stopped")
        assert drop_reason(assemble_article([page])) == "unreadable_page"


def test_a_whole_page_nested_a_thousand_levels_is_read() -> None:
    html = mirror_file(URL).read_text(encoding="utf-8")
    deep = html.replace("<body>", "<body>" + "<div>" * 1000, 1).replace(
        "</body>", "</div>" * 1000 + "</body>", 1
    )
    item = through_pipelines(assemble_article([parse_article_page(URL, deep.encode())]))
    assert item.body == expected(URL)["body"]
    assert item.copyright_notice == expected(URL)["copyright_notice"]


def test_a_text_over_ten_megabytes_is_read_whole() -> None:
    # libxml2 cuts a text node at 10 MB unless huge_tree is on.
    text = "字" * 4_000_000
    assert body_of(INTRO + TITLE_COPY + f"<p>&nbsp;&nbsp;{text}</p>") == [TITLE, text]


def test_many_elements_in_one_line_or_many_lines_cost_linear_time() -> None:
    # A line built by appending to a string, or a check that reads its whole block at
    # every paragraph, would make these quadratic: minutes instead of about a second.
    spans = "".join("<span>字</span>" for _ in range(100_000))
    assert body_of(f"<p>&nbsp;&nbsp;{spans}</p>") == ["字" * 100_000]
    mixed = "".join(f"第{n}行<br /><b>粗</b><p>段{n}</p>" for n in range(20_000))
    assert len(body_of(mixed)) == 60_000


@pytest.mark.parametrize(
    "pager",
    [
        f"<li><a>共{'9' * 5000}页: </a></li>",
        "<li><a href='#'>²</a></li><li><a href='#'>١٢</a></li>",
        f"<li><a href='#'>{'9' * 5000}</a></li>",
    ],
)
def test_numbers_no_page_has_are_not_read_as_a_page_count(pager: str) -> None:
    html = (
        mirror_file(URL)
        .read_text(encoding="utf-8")
        .replace(
            '<div class="tags">',
            f'<div class="dede_pages"><ul class="pagelist">{pager}</ul></div><div class="tags">',
            1,
        )
    )
    page = parse_article_page(URL, html.encode())
    assert page.page_count in {1, 12}
    assert page.problems == ()


def test_an_article_url_with_thousands_of_digits_is_no_article() -> None:
    url = f"http://www.ylwt22.com/dangtuangongzuo/2023/1009/{'9' * 5000}.html"
    assert DEFAULT_SITE.article_ref(url) is None
    page = parse_page(url, mirror_file(URL).read_bytes(), {"Content-Type": "text/html"})
    assert page.problems[0].startswith("not_article")


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00" * 1000, b"<" * 100_000, b"<html" + b"<!--" * 10_000, b"\xef\xbb\xbf"],
)
def test_pages_that_are_not_html_come_out_as_problems(body: bytes) -> None:
    page = parse_page(URL, body, {"Content-Type": "text/html"})
    assert page.problems
    assert not page.is_article


def test_a_page_that_breaks_the_parser_is_a_problem_not_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(article_module, "parse_article_page", explode)
    page = parse_page(URL, b"<html></html>", {"Content-Type": "text/html"})
    assert page.problems == ("unreadable_page: RecursionError: maximum recursion depth exceeded",)
    assert page.canonical_url == URL
    assert drop_reason(assemble_article([page])) == "unreadable_page"


# --- what is counted ----------------------------------------------------------------------


@pytest.fixture
def spider() -> Ylwt22Spider:
    settings = project_settings(DATABASE_URL="sqlite://", EXTRACT_WORKERS=0, ADDONS={})
    crawler = get_crawler(Ylwt22Spider, settings_dict=settings)
    crawler.stats.open_spider()
    return Ylwt22Spider.from_crawler(crawler)


def parsed(spider: Ylwt22Spider, response: Response) -> list[Any]:
    """What the spider's callback yields for an article's only page."""

    async def collect() -> list[Any]:
        return [out async for out in spider.parse_article(response, PartialArticle())]

    return asyncio.run(collect())


def test_the_spider_counts_what_each_article_left_out(spider: Ylwt22Spider) -> None:
    url, body, headers = golden_response("hidden_text")
    response = HtmlResponse(url=url, body=body, headers=headers, request=Request(url))
    (item,) = parsed(spider, response)
    assert isinstance(item, ArticleItem)
    assert item.removed == {"hidden": 27, "style": 1, "ad": 1}
    assert len(parsed(spider, response)) == 1
    stats = spider.crawler.stats.get_stats()
    assert stats["extract/removed/hidden"] == 54
    assert stats["extract/removed/style"] == 2
    assert removed_report(stats) == "Left out of bodies: ad 2, hidden 54, style 2."


def test_a_page_too_deep_to_read_reaches_the_pipelines_without_a_traceback(
    spider: Ylwt22Spider,
) -> None:
    response = HtmlResponse(url=URL, body=page_with_content(nested(100_000)), request=Request(URL))
    (item,) = parsed(spider, response)
    assert isinstance(item, ArticleItem)
    assert item.problems[0].startswith("unreadable_page")


def test_a_text_response_is_counted_the_same_way(spider: Ylwt22Spider) -> None:
    response = TextResponse(
        url=URL,
        body=TEXT_PAGE.read_bytes(),
        headers={"Content-Type": "text/plain"},
        request=Request(URL),
    )
    (item,) = parsed(spider, response)
    assert isinstance(item, ArticleItem)
    assert item.removed == {}
    assert removed_report(spider.crawler.stats.get_stats()) is None


def test_what_was_left_out_is_never_stored() -> None:
    item = through_pipelines(extract(URL))
    assert item.removed == {"ad": 1}  # the site's ad slot in the body
    item.fetched_at = datetime(2024, 1, 20, tzinfo=UTC)
    to_record(item)  # the record takes the fields it has, and no other
    assert "removed" not in {f.name for f in fields(ArticleRecord)}


def test_a_table_rows_empty_cells_keep_their_places_through_cleaning() -> None:
    assert clean_lines("\t甲 \t\xa0\t乙\t\n \t\u3000\t\n丙") == "\t甲\t\t乙\t\n丙"


def test_class_names_and_styles_of_any_length_are_read_in_linear_time() -> None:
    tokens = " ".join(["a-" * 50_000, "x-ad" + "1" * 50_000, "gg" * 50_000])
    style = "color:red;" * 50_000 + "font-size:" + "0" * 50_000
    lines = fragment_lines(f'<p class="{tokens}">甲</p><p style="{style}">乙</p>')
    assert lines == []


def test_a_page_and_its_item_are_plain_picklable_data() -> None:
    page = parse_article_page(URL, page_with_content(INTRO + TITLE_COPY + "<p>段落</p>"))
    assert pickle.loads(pickle.dumps(page)) == page
    item = assemble_article([page])
    assert pickle.loads(pickle.dumps(item)) == item
