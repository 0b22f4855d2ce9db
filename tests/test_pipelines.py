"""The pipelines before storage: cleaning, every drop reason, copyright, provenance."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.utils.test import get_crawler

from crawler.items import ArticleItem
from crawler.pages.article import assemble_article, parse_article_page
from pipelines.clean import CleanTextPipeline
from pipelines.copyright import CopyrightPipeline, rights_holder
from pipelines.provenance import ProvenancePipeline, content_hash
from pipelines.validate import ValidateArticlePipeline
from tests.support.pages import extract, mirror_file

URL = "http://www.ylwt22.com/dangtuangongzuo/2023/1224/320094.html"


@pytest.fixture
def crawler() -> Crawler:
    return get_crawler(settings_dict={})


def good_item() -> ArticleItem:
    return extract(URL)


def assert_dropped(crawler: Crawler, item: ArticleItem, reason: str) -> None:
    pipeline = ValidateArticlePipeline.from_crawler(crawler)
    with pytest.raises(DropItem, match=rf"^{reason}: ") as caught:
        pipeline.process_item(item)
    assert caught.value.log_level == "WARNING"
    assert crawler.stats.get_value(f"drop/{reason}") == 1


def test_a_whole_article_passes(crawler: Crawler) -> None:
    item = good_item()
    assert ValidateArticlePipeline.from_crawler(crawler).process_item(item) is item
    assert not any(key.startswith("drop/") for key in crawler.stats.get_stats())


def test_drop_not_article(crawler: Crawler) -> None:
    not_found = mirror_file("http://www.ylwt22.com/404.html").read_bytes()
    assert_dropped(crawler, extract(URL.replace("320094", "999999"), not_found), "not_article")


def test_drop_incomplete_multi_page_article(crawler: Crawler) -> None:
    url = "http://www.ylwt22.com/dangtuangongzuo/2022/1220/305064.html"
    first = parse_article_page(url, mirror_file(url).read_bytes())
    assert first.page_count == 2
    item = assemble_article([first], missing_pages=[url.replace(".html", "_2.html")])
    assert_dropped(crawler, item, "incomplete_article")


def test_drop_undecodable(crawler: Crawler) -> None:
    raw = mirror_file(URL).read_bytes().replace("镇团委坚决".encode(), b"\xff\xfe\x80", 1)
    assert_dropped(crawler, extract(URL, raw), "undecodable")


@pytest.mark.parametrize(
    ("field", "empty"),
    [("url", ""), ("title", ""), ("category", ""), ("published_at", None), ("body", "")],
)
def test_drop_missing_required_field(crawler: Crawler, field: str, empty: object) -> None:
    assert_dropped(crawler, replace(good_item(), **{field: empty}), f"missing_{field}")


def test_template_drift_is_a_drop_not_a_wrong_row(crawler: Crawler) -> None:
    # The site renames the info bar's class: the date can no longer be found.
    html = mirror_file(URL).read_bytes().replace(b'class="info"', b'class="meta"')
    assert_dropped(crawler, extract(URL, html), "missing_published_at")


def test_an_empty_body_after_cleaning_is_dropped(crawler: Crawler) -> None:
    item = CleanTextPipeline().process_item(replace(good_item(), body=" \u3000\n\xa0\n\u200b"))
    assert_dropped(crawler, item, "missing_body")


def test_cleaning_normalises_without_removing_words() -> None:
    item = replace(
        good_item(),
        title="  2024年\u200b镇团委\n汇报 ",
        body="\ufeff第一段\r\n\r\n\u3000\u3000第二段\xa0\n  \n e\u0301 ",
        tags=[" 团委 ", "团委", "", "意识形态"],
    )
    cleaned = CleanTextPipeline().process_item(item)
    assert cleaned.title == "2024年镇团委 汇报"
    assert cleaned.body == "第一段\n第二段\n\u00e9"  # NFC composes e + combining acute
    assert cleaned.tags == ["团委", "意识形态"]


def test_rights_holder_is_whom_the_notice_names(crawler: Crawler) -> None:
    item = CopyrightPipeline.from_crawler(crawler).process_item(good_item())
    assert item.rights_holder == "原作者"
    assert rights_holder("2.《某文》一文的著作权归 张三 所有,仅供学习参考。") == "张三"
    assert rights_holder("3.如果本网所转载内容不慎侵犯了您的权益,请联系我们。") == ""


def test_missing_notice_and_source_are_stored_but_counted(crawler: Crawler) -> None:
    pipeline = CopyrightPipeline.from_crawler(crawler)
    item = pipeline.process_item(replace(good_item(), copyright_notice="", source=""))
    assert item.rights_holder == ""
    assert crawler.stats.get_value("copyright/no_notice") == 1
    assert crawler.stats.get_value("copyright/no_source") == 1


def test_provenance_sets_utc_fetch_time_and_hash() -> None:
    beijing = timezone(timedelta(hours=8))
    item = replace(good_item(), fetched_at=datetime(2026, 11, 28, 20, 0, tzinfo=beijing))
    item = ProvenancePipeline().process_item(item)
    assert item.fetched_at == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert item.fetched_at.utcoffset() == timedelta(0)
    assert item.content_hash == content_hash(item.body)

    unstamped = ProvenancePipeline().process_item(replace(good_item(), fetched_at=None))
    assert unstamped.fetched_at is not None
    assert abs(datetime.now(UTC) - unstamped.fetched_at) < timedelta(minutes=1)


def test_content_hash_ignores_markup_but_not_text() -> None:
    body = "2023年工作总结\n一、主要做法，取得成效。\n二、存在问题"
    assert content_hash(body) == content_hash(
        "2023年工作总结 一、主要做法,取得成效。\n\n 二、存在问题\xa0"
    )
    assert content_hash(body) != content_hash(body.replace("成效", "成绩"))
    assert content_hash(body) != content_hash(body.replace("2023", "2024"))
