"""Mobile pages (m. host): read with the mobile template and stored with what they
hold; the document is the same as on the www page."""

from __future__ import annotations

from datetime import datetime

import pytest

from crawler.pages.article import parse_article_page, parse_page
from storage.models import BEIJING
from tests.support.pages import expected, expected_records, extract, mirror_file, through_pipelines

MOBILE_URL = "http://m.ylwt22.com/dangtuangongzuo/2023/1224/320094.html"
WWW_URL = "http://www.ylwt22.com/dangtuangongzuo/2023/1224/320094.html"

# What the mobile template puts around the document. None of it is the document's.
FURNITURE = ("本文链接", "小编", "手机版", "电脑版", "©", "十号范文网", "版权", "http",
             "<", "&nbsp;", "\xa0")  # fmt: skip


def test_the_mobile_page_is_read_with_the_mobile_template() -> None:
    page = parse_article_page(MOBILE_URL, mirror_file(MOBILE_URL).read_bytes())
    assert page.is_article
    assert page.template == "mobile"
    assert page.canonical_url == WWW_URL
    assert page.declared_url == WWW_URL  # <link rel=canonical>
    assert page.page_count == 1
    assert page.problems == ()
    html = {"Content-Type": "text/html"}
    assert parse_page(MOBILE_URL, mirror_file(MOBILE_URL).read_bytes(), html).template == "mobile"


def test_every_field_holds_what_the_mobile_page_shows() -> None:
    item = through_pipelines(extract(MOBILE_URL))
    assert item.url == WWW_URL
    assert item.template == "mobile"
    assert item.page_urls == [MOBILE_URL]
    assert item.title == "2024年镇团委上半年意识形态工作情况汇报"
    assert item.category == "党团工作"
    # 时间:2023-12-24, no time of day: the day's midnight, Beijing time.
    assert item.published_at == datetime(2023, 12, 24, tzinfo=BEIJING)
    assert item.published_at.isoformat() == "2023-12-24T00:00:00+08:00"
    assert item.published_at.date().isoformat() == expected(WWW_URL)["published_at"][:10]
    assert item.source == "网友投稿"
    assert item.author == ""
    assert item.tags == []
    # Only line 2 of the 版权声明 is on the page, and the 本文链接 line is not the notice.
    assert item.copyright_notice == expected(WWW_URL)["copyright_notice"].split("\n")[1]
    assert item.rights_holder == "原作者"
    assert item.site_name == "十号范文网"
    assert item.site_copyright == "十号范文网 手机版 © 2018-2024 电脑版"
    assert item.icp == ""
    assert item.problems == []


def test_the_body_is_the_www_pages_body() -> None:
    item = through_pipelines(extract(MOBILE_URL))
    assert item.body == expected(WWW_URL)["body"]
    assert item.body == through_pipelines(extract(WWW_URL)).body
    assert item.content_hash == through_pipelines(extract(WWW_URL)).content_hash


def test_no_furniture_in_the_body() -> None:
    item = through_pipelines(extract(MOBILE_URL))
    for text in FURNITURE:
        assert text not in item.body, text
    assert item.copyright_notice not in item.body
    assert all(line == line.strip() for line in item.body.split("\n"))


@pytest.mark.parametrize("url", [record["url"] for record in expected_records()])
def test_desktop_pages_still_say_desktop(url: str) -> None:
    assert extract(url).template == "desktop"
    html = {"Content-Type": "text/html"}
    assert parse_page(url, mirror_file(url).read_bytes(), html).template == "desktop"


def test_a_mobile_page_without_its_article_is_not_an_article() -> None:
    html = mirror_file(MOBILE_URL).read_bytes().replace(b'class="m-article"', b'class="m-list"')
    page = parse_article_page(MOBILE_URL, html)
    assert not page.is_article
    assert page.problems[-1].startswith("not_article")
