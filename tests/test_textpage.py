"""Saved text pages: the text rendering of an article page gives the same article as
the HTML page, field by field, and none of the page's furniture reaches the body."""

from __future__ import annotations

from datetime import timedelta

import pytest
from scrapy.exceptions import DropItem

from crawler.items import ArticleItem
from crawler.pages.article import parse_page
from tests.support.pages import (
    TEXT_PAGE,
    TEXT_PAGE_URL,
    expected,
    extract,
    extract_text,
    mirror_file,
    through_pipelines,
)

# Every stored field that the bytes decide (fetched_at is the fetch's, template the
# rendering's own name).
SAME_FIELDS = ("url", "title", "category", "published_at", "source", "author", "tags",
               "body", "copyright_notice", "rights_holder", "site_name", "site_copyright",
               "icp", "content_hash", "extractor_version", "page_urls", "problems")  # fmt: skip

# What the text rendering prints around the document. None of it is the document's.
FURNITURE = ("小编", "推荐访问", "本文标题", "链接地址", "版权声明", "Copyright", "ICP",
             "当前位置", "发布时间", "十号范文网", "备案号", "\u3000", "\xa0")  # fmt: skip


def text_page() -> str:
    return TEXT_PAGE.read_text(encoding="utf-8")


def text_item() -> ArticleItem:
    return through_pipelines(extract_text())


def test_the_text_page_gives_the_article_it_holds() -> None:
    item = text_item()
    assert item.template == "text"
    assert item.title == "2024年镇团委上半年意识形态工作情况汇报"
    assert item.category == "党团工作"
    assert item.published_at is not None
    assert item.published_at.isoformat() == "2023-12-24T18:32:02+08:00"
    assert item.published_at.utcoffset() == timedelta(hours=8)
    assert item.source == "网友投稿"
    assert item.author == ""
    assert item.url == TEXT_PAGE_URL
    assert item.tags == ["镇团委上半年意识形态工作情况汇报", "意识形态", "团委", "上半年"]
    lines = item.body.split("\n")
    assert lines[0] == "2023年镇团委上半年意识形态工作情况汇报"
    assert lines[-1].endswith("服务大局。")
    assert item.copyright_notice.split("\n") == [
        "1.十号范文网的资料来自互联网以及用户的投稿,用于非商业性学习目的免费阅览。",
        "2.《2024年镇团委上半年意识形态工作情况汇报》一文的著作权归原作者所有,"
        "仅供学习参考,转载或引用时请保留版权信息。",
        "3.如果本网所转载内容不慎侵犯了您的权益,请联系我们,我们将会及时删除。",
    ]
    assert item.rights_holder == "原作者"
    assert item.site_name == "十号范文网"
    assert item.icp == "粤ICP备18086540号"
    assert item.problems == []


@pytest.mark.parametrize("field", SAME_FIELDS)
def test_every_field_equals_the_html_pages(field: str) -> None:
    html = through_pipelines(extract(TEXT_PAGE_URL))
    assert getattr(text_item(), field) == getattr(html, field)


def test_the_body_is_the_hand_checked_one() -> None:
    assert text_item().body == expected(TEXT_PAGE_URL)["body"]


def test_no_furniture_in_the_body() -> None:
    item = text_item()
    for text in FURNITURE:
        assert text not in item.body, text
    for line in item.copyright_notice.split("\n"):
        assert line not in item.body
    assert TEXT_PAGE_URL not in item.body
    assert all(line == line.strip() for line in item.body.split("\n"))


def test_the_page_is_read_as_text_when_the_response_says_text_plain() -> None:
    raw = TEXT_PAGE.read_bytes()
    for content_type in ("text/plain", "Text/Plain; charset=UTF-8"):
        page = parse_page(TEXT_PAGE_URL, raw, {"Content-Type": content_type})
        assert page.template == "text"
        assert page.is_article
    html = mirror_file(TEXT_PAGE_URL).read_bytes()
    assert parse_page(TEXT_PAGE_URL, html, {"Content-Type": "text/html"}).template == "desktop"
    assert parse_page(TEXT_PAGE_URL, html).template == "desktop"


# Real documents have paragraphs that open like the site's own lines. The text's layout
# and labels decide what is what, so they stay.
LOOKALIKES = (
    "下面是我镇本年度重点工作安排：",
    "本文件自印发之日起施行，由镇团委负责解释。",
    "推荐各基层团组织结合实际，认真抓好贯彻落实。",
    "加强版权保护意识，尊重他人著作权，是团员青年应有的素养。",
)


def _with_paragraphs(after: str, paragraphs: tuple[str, ...]) -> bytes:
    text = text_page()
    anchor = text.index(after) + len(after)
    inserted = "".join(f"\n\n  {p}" for p in paragraphs)
    return (text[:anchor] + inserted + text[anchor:]).encode("utf-8")


def test_paragraphs_that_look_like_boilerplate_but_are_the_document_stay() -> None:
    body = _with_paragraphs("  二、存在问题", LOOKALIKES)
    lines = through_pipelines(extract_text(body)).body.split("\n")
    for paragraph in LOOKALIKES:
        assert paragraph in lines
    assert lines[0] == "2023年镇团委上半年意识形态工作情况汇报"


def test_first_paragraph_after_the_title_line_stays_whatever_it_says() -> None:
    first = "下面是本镇团委2023年上半年意识形态工作的总体情况。"
    body = _with_paragraphs("\n2023年镇团委上半年意识形态工作情况汇报", (first,))
    lines = through_pipelines(extract_text(body)).body.split("\n")
    assert lines[:2] == ["2023年镇团委上半年意识形态工作情况汇报", first]
    assert "小编" not in "\n".join(lines)


def test_a_last_paragraph_that_starts_like_a_label_is_the_documents() -> None:
    last = "本文件自印发之日起施行。"
    body = _with_paragraphs("服务大局。", (last,))
    assert through_pipelines(extract_text(body)).body.split("\n")[-1] == last


def test_without_a_title_line_nothing_is_guessed_away() -> None:
    text = text_page().replace("\n2023年镇团委上半年意识形态工作情况汇报\n", "\n", 1)
    item = extract_text(text.encode("utf-8"))
    # With no copy of the title to mark where the document starts, the editor's line is
    # kept: no word list decides.
    assert item.body.startswith("下面是小编为大家整理的")


def test_spaces_ideographic_indents_and_crlf_read_the_same() -> None:
    text = text_page().replace("\n  ", "\n\u3000\u3000").replace("\n", "\r\n")
    assert through_pipelines(extract_text(text.encode("utf-8"))).body == text_item().body


def test_a_text_page_in_gb18030_decodes() -> None:
    text = _with_paragraphs("  二、存在问题", ("王喆同志牵头负责阵地建设。",)).decode("utf-8")
    raw = text.encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    for content_type in ("text/plain", "text/plain; charset=gb2312"):
        page = parse_page(TEXT_PAGE_URL, raw, {"Content-Type": content_type})
        assert page.encoding == "gb18030"
        assert page.problems == ()
        item = through_pipelines(extract_text(raw, content_type=content_type))
        assert "王喆同志牵头负责阵地建设。" in item.body.split("\n")  # 喆 is outside GB2312
        assert item.title == "2024年镇团委上半年意识形态工作情况汇报"
        assert item.url == TEXT_PAGE_URL


def _without_link_line() -> bytes:
    lines = text_page().split("\n")
    return "\n".join(line for line in lines if not line.startswith("链接地址")).encode("utf-8")


def test_a_text_page_with_no_link_and_no_url_is_not_an_article() -> None:
    item = extract_text(_without_link_line())
    assert item.problems[0] == "not_article: no url"
    with pytest.raises(DropItem, match=r"^not_article: "):
        through_pipelines(item)


def test_the_given_url_is_the_fallback_when_the_text_names_none() -> None:
    item = through_pipelines(extract_text(_without_link_line(), url=TEXT_PAGE_URL))
    assert item.url == TEXT_PAGE_URL
    assert item.body == text_item().body


def test_the_link_line_wins_over_the_given_url() -> None:
    elsewhere = "http://www.ylwt22.com/dangtuangongzuo/2023/1009/316197.html"
    assert extract_text(url=elsewhere).url == TEXT_PAGE_URL


def test_a_text_without_its_labelled_parts_is_dropped_not_stored_with_its_footer() -> None:
    text = text_page()
    cut = text[: text.index("推荐访问")]  # no tags, link, 版权声明 or footer
    item = extract_text(cut.encode("utf-8"), url=TEXT_PAGE_URL)
    assert item.body == ""
    with pytest.raises(DropItem, match=r"^missing_body: "):
        through_pipelines(item)
