"""The gate before storage: an item that is not a whole, well-formed article is dropped
with a reason, logged and counted, never stored as a wrong row."""

from __future__ import annotations

from typing import Any

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.statscollectors import StatsCollector

REQUIRED_FIELDS = ("url", "title", "category", "published_at", "body")


def drop_reason(adapter: ItemAdapter) -> tuple[str, str] | None:
    """(reason, detail) for an item that must not be stored, or None.

    Reasons: the ones extraction reported (``not_article``, ``incomplete_article``,
    ``truncated_page``, ``undecodable``), then ``missing_<field>`` for an empty required
    field."""
    for problem in adapter.get("problems") or ():
        reason, _, detail = problem.partition(": ")
        return reason, detail
    for name in REQUIRED_FIELDS:
        if not adapter.get(name):
            return f"missing_{name}", f"the page has no {name}"
    return None


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
        raise DropItem(f"{reason}: {detail} <{adapter.get('url')}>", log_level="WARNING")
