"""The gate before storage: an item that is not a whole, well-formed article is dropped
with a reason, logged and counted, never stored as a wrong row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.statscollectors import StatsCollector

REQUIRED_FIELDS = ("url", "title", "category", "published_at", "body")

# DedeCMS keeps an article's id in an unsigned INT column and its date of publication
# as a Unix time in another: a value outside them cannot come from the site, and it
# would not fit the archive's columns either (BIGINT, timestamps in UTC).
AID_MAX = 2**32 - 1
PUBLISHED_RANGE = (
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime.fromtimestamp(2**32 - 1, tz=UTC),
)


class ArticleDropped(DropItem):
    """An article that is not stored, and why: ``reason`` is one word, as counted in
    the run (``drop/<reason>``)."""

    def __init__(self, reason: str, detail: str, url: str | None) -> None:
        super().__init__(f"{reason}: {detail} <{url}>", log_level="WARNING")
        self.reason = reason


def drop_reason(adapter: ItemAdapter) -> tuple[str, str] | None:
    """(reason, detail) for an item that must not be stored, or None.

    Reasons: the ones extraction reported (``not_article``, ``incomplete_article``,
    ``truncated_page``, ``undecodable``), then ``missing_<field>`` for an empty required
    field, then ``invalid_<field>`` for a value the site cannot hold."""
    for problem in adapter.get("problems") or ():
        reason, _, detail = problem.partition(": ")
        return reason, detail
    for name in REQUIRED_FIELDS:
        if not adapter.get(name):
            return f"missing_{name}", f"the page has no {name}"
    aid = adapter.get("aid")
    if aid is not None and not 0 < aid <= AID_MAX:
        return "invalid_aid", f"article id {aid} is outside 1..{AID_MAX}"
    published: datetime = adapter["published_at"]
    low, high = PUBLISHED_RANGE
    if published.utcoffset() is None or not low <= _utc(published) <= high:
        return "invalid_published_at", f"publication date {published} is outside {low}..{high}"
    return None


def _utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01 in UTC+8 is before year 1 in UTC
        return datetime.min.replace(tzinfo=UTC)


class ValidateArticlePipeline:
    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidateArticlePipeline:
        assert crawler.stats is not None
        return cls(crawler.stats)

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        found = drop_reason(adapter)
        if found is None:
            return item
        reason, detail = found
        self.stats.inc_value(f"drop/{reason}")
        raise ArticleDropped(reason, detail, adapter.get("url"))
