"""Copyright and source fields: who holds the rights to each document."""

from __future__ import annotations

import re
from typing import Any

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector

# Line 2 of the site's 版权声明: 《<title>》一文的著作权归原作者所有,…
_HOLDER = re.compile(r"著作权归\s*(?P<holder>[^,，。;；\n]+?)\s*所有")


def rights_holder(notice: str) -> str:
    """Whom the notice names as the holder of the copyright, or "" if it names nobody."""
    match = _HOLDER.search(notice)
    return match["holder"] if match else ""


class CopyrightPipeline:
    """Records ``rights_holder`` from the page's copyright notice. An article with no
    notice, or a notice that names no holder, is stored as it is and counted, so a
    change in the site's template shows up in the crawl stats."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CopyrightPipeline:
        assert crawler.stats is not None
        return cls(crawler.stats)

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        notice = adapter.get("copyright_notice") or ""
        adapter["rights_holder"] = rights_holder(notice)
        if not notice:
            self.stats.inc_value("copyright/no_notice")
        elif not adapter["rights_holder"]:
            self.stats.inc_value("copyright/no_holder")
        if not adapter.get("source"):
            self.stats.inc_value("copyright/no_source")
        return item
