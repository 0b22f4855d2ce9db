"""Golden tests: every field of every saved article against the hand-checked
expectations in seeds/expected.json, with negative checks for the site's furniture."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from crawler.pages.article import EXTRACTOR_VERSION, parse_article_page
from crawler.pages.decode import decode_html
from tests.support.pages import (
    expected,
    expected_records,
    extract,
    mirror_file,
    saved_response,
    through_pipelines,
)

URLS = [record["url"] for record in expected_records()]
TEXT_FIELDS = ("title", "category", "source", "author", "body", "copyright_notice",
               "site_name", "icp")  # fmt: skip
SITE_COPYRIGHT = "Copyright © 2018-2024 十号范文网 Inc. All Rights Reserved.十号范文网 版权所有"

# What the article template puts around the document. None of it is the document's.
FURNITURE = ("小编", "推荐访问", "版权声明", "本文标题", "链接地址", "上一篇", "下一篇",
             "相关推荐", "热门文章", "当前位置", "发布时间", "ad_show", "Copyright", "ICP",
             "十号范文网", "共2页", "下一页", "<", "&nbsp;", "\xa0", "\u3000")  # fmt: skip


@pytest.mark.parametrize("url", URLS)
def test_every_field_matches_the_hand_checked_record(url: str) -> None:
    record = expected(url)
    item = through_pipelines(extract(url))
    assert item.url == url
    for name in TEXT_FIELDS:
        assert getattr(item, name) == record[name], name
    assert item.tags == record["tags"]
    assert item.published_at is not None
    assert item.published_at.isoformat() == record["published_at"]
    assert item.published_at.utcoffset() == timedelta(hours=8)
    assert item.rights_holder == "原作者"
    assert item.site_copyright == SITE_COPYRIGHT
    assert len(item.page_urls) == record["pages"]
    assert item.extractor_version == EXTRACTOR_VERSION
    assert re.fullmatch(r"[0-9a-f]{64}", item.content_hash)
    assert item.problems == []


@pytest.mark.parametrize("url", URLS)
def test_no_furniture_in_the_body(url: str) -> None:
    item = through_pipelines(extract(url))
    for text in FURNITURE:
        assert text not in item.body, text
    for tag in item.tags:
        assert f"{tag} " not in item.body.split("\n")[-1]
    # Each copyright line and the page title's own line are outside the body.
    for line in item.copyright_notice.split("\n"):
        assert line not in item.body
    assert all(line == line.strip() for line in item.body.split("\n"))
    assert "" not in item.body.split("\n")


@pytest.mark.parametrize("url", URLS)
def test_body_opens_with_the_documents_own_title_line(url: str) -> None:
    item = extract(url)
    first_line = item.body.split("\n", 1)[0]
    # The site re-dates documents: the body's title line may carry another year.
    assert re.sub(r"\d", "", first_line) == re.sub(r"\d", "", item.title)


def test_gbk_page_declaring_gb2312_decodes_without_loss() -> None:
    url = "http://www.ylwt22.com/gongzuozongjie/2024/0105/319543.html"
    raw = mirror_file(url).read_bytes()
    assert b"charset=gb2312" in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("gb2312")  # it holds characters GB2312 lacks
    page = parse_article_page(url, raw, {"Content-Type": "text/html"})
    assert page.encoding == "gb18030"
    item = through_pipelines(extract(url))
    assert "王喆" in item.body  # 喆 is outside GB2312
    for name in TEXT_FIELDS:
        assert "\ufffd" not in getattr(item, name)
    assert item.body == expected(url)["body"]


def test_multi_page_article_is_one_item_with_all_pages_in_order() -> None:
    url = "http://www.ylwt22.com/dangtuangongzuo/2022/1220/305064.html"
    item = through_pipelines(extract(url))
    assert item.page_urls == [url, url.replace(".html", "_2.html")]
    lines = item.body.split("\n")
    assert lines[0] == "2022年信息工程学院团委“青年大学习”行动开展情况报告"
    # The last paragraph of page 1 comes right before the first of page 2.
    page_one_last = lines.index(next(x for x in lines if x.startswith("（四）加强阵地建设")))
    assert lines[page_one_last + 1].startswith("（五）注重典型引领")
    assert lines[-1].startswith("下一步，学院团委将坚持问题导向")
    assert item.author == "刘思远"


def test_a_later_page_alone_has_no_title_line_to_find() -> None:
    url = "http://www.ylwt22.com/dangtuangongzuo/2022/1220/305064_2.html"
    page = parse_article_page(url, mirror_file(url).read_bytes())
    assert page.page_number == 2
    assert page.canonical_url == url.replace("_2.html", ".html")
    assert page.body_lines[0].startswith("（五）注重典型引领")


def test_missing_source_is_empty_and_author_is_kept() -> None:
    item = through_pipelines(extract("http://www.ylwt22.com/xindetihui/2023/0912/315175.html"))
    assert item.source == ""
    assert item.author == "李静"


def test_masked_words_are_the_sites_content_and_are_kept() -> None:
    item = extract("http://www.ylwt22.com/dangtuangongzuo/2023/1224/320094.html")
    assert "*镇团委坚决贯彻执行" in item.body
    assert "***新时代中国特色社会主义思想" in item.body
    assert "新**提供有力的思想保证" in item.body


def test_br_joined_points_are_one_line_each() -> None:
    item = extract("http://www.ylwt22.com/dangtuangongzuo/2023/1224/320094.html")
    lines = item.body.split("\n")
    assert (
        "制定并完善舆情应急处置方案,切实做好第一时间知晓、引导、服务,牢牢把握话语权,确保处置有效;"
        in lines
    )
    assert any(line.startswith("积极借力理论武装志愿服务队") for line in lines)


# Real documents have paragraphs that open like the site's own lines. Cleaning follows
# the page's structure, so they stay.
LOOKALIKES = (
    "推荐各基层团组织结合实际，认真抓好贯彻落实。",
    "下面是我镇本年度重点工作安排：",
    "本文件自印发之日起施行，由镇团委负责解释。",
    "加强版权保护意识，尊重他人著作权，是团员青年应有的素养。",
    "小编按：本期简报由团委宣传部编辑。",
)


def _with_paragraphs(url: str, paragraphs: tuple[str, ...], after: str) -> bytes:
    html = mirror_file(url).read_bytes().decode("utf-8")
    inserted = "".join(f"<p>&nbsp;&nbsp;{p}</p>\n" for p in paragraphs)
    anchor = html.index(after)
    return (html[:anchor] + inserted + html[anchor:]).encode("utf-8")


def test_paragraphs_that_look_like_boilerplate_but_are_the_document_stay() -> None:
    url = "http://www.ylwt22.com/dangtuangongzuo/2023/1224/320094.html"
    body = _with_paragraphs(url, LOOKALIKES, "<p>&nbsp;&nbsp;二、存在问题</p>")
    item = through_pipelines(extract(url, body))
    lines = item.body.split("\n")
    for paragraph in LOOKALIKES:
        assert paragraph in lines
    assert "下面是小编为大家整理的" not in item.body


def test_first_paragraph_after_the_title_line_stays_whatever_it_says() -> None:
    url = "http://www.ylwt22.com/gongzuojihua/2024/0116/319969.html"
    html = mirror_file(url).read_bytes().decode("utf-8")
    title_line = re.search(r'<p style="text-align: center;"><strong>.*?</p>\n', html)
    assert title_line is not None
    first = "下面是本院2024年基本公共卫生服务工作的总体安排。"
    edited = html.replace(title_line[0], title_line[0] + f"<p>&nbsp;&nbsp;{first}</p>\n", 1)
    item = extract(url, edited.encode("utf-8"))
    assert item.body.split("\n")[1] == first


def test_without_a_title_line_nothing_is_guessed_away() -> None:
    url = "http://www.ylwt22.com/gongzuojihua/2024/0116/319969.html"
    html = mirror_file(url).read_bytes().decode("utf-8")
    no_title = re.sub(r'<p style="text-align: center;"><strong>.*?</p>\n', "", html, count=1)
    item = extract(url, no_title.encode("utf-8"))
    # With no copy of the title to mark where the document starts, every paragraph is
    # kept, the editor's line included: no word list decides.
    assert item.body.startswith("下面是小编为大家整理的")


def test_ads_and_scripts_inside_the_body_are_left_out() -> None:
    url = "http://www.ylwt22.com/dangtuangongzuo/2023/1009/316197.html"
    raw = mirror_file(url).read_bytes()
    assert b'class="ad_content"' in raw
    item = extract(url)
    assert "ad_show" not in item.body
    assert "art_mid" not in item.body


def test_a_page_that_is_not_an_article_is_reported_as_such() -> None:
    url = "http://www.ylwt22.com/dangtuangongzuo/2023/1224/999999.html"
    not_found = (mirror_file("http://www.ylwt22.com/404.html")).read_bytes()
    assert extract(url, not_found).problems[0].startswith("not_article")
    listing = mirror_file("http://www.ylwt22.com/dangtuangongzuo/list_5_1.html").read_bytes()
    assert extract(url, listing).problems[0].startswith("not_article")


def test_page_urls_of_mobile_and_https_copies_map_to_the_canonical_url() -> None:
    url = "http://www.ylwt22.com/dangtuangongzuo/2023/1224/320094.html"
    body = mirror_file(url).read_bytes()
    for variant in (
        "https://www.ylwt22.com/dangtuangongzuo/2023/1224/320094.html?from=rss#top",
        "http://m.ylwt22.com/dangtuangongzuo/2023/1224/320094.html",
    ):
        assert parse_article_page(variant, body).canonical_url == url


def test_a_wrongly_declared_charset_is_caught_and_flagged() -> None:
    text = "<html><head><meta charset='gb2312'></head><body>王喆同志的总结</body></html>"
    honest = decode_html(text.encode("gb18030"), {"Content-Type": "text/html"})
    assert "王喆同志" in honest.text
    assert not honest.mismatch
    # Declared gb2312, written in UTF-8: read as UTF-8 and flagged.
    utf8 = decode_html(text.encode("utf-8"), {"Content-Type": "text/html"})
    assert "王喆同志" in utf8.text
    assert utf8.mismatch
    assert not utf8.lossy
    # The header says UTF-8, the bytes are GBK throughout.
    gbk = decode_html(text.encode("gb18030"), {"Content-Type": "text/html; charset=utf-8"})
    assert "王喆同志" in gbk.text
    assert gbk.encoding == "gb18030"
    assert gbk.mismatch


def test_bytes_no_charset_can_decode_are_reported_not_stored() -> None:
    url = "http://www.ylwt22.com/dangtuangongzuo/2023/1224/320094.html"
    raw = mirror_file(url).read_bytes()
    broken = raw.replace("镇团委坚决".encode(), b"\xff\xfe\xff\x80\x81", 1)
    page = parse_article_page(url, broken, saved_response(url, broken).headers)
    assert page.problems
    assert page.problems[0].startswith("undecodable")
