"""`scrapy crawl`, exiting non-zero when the crawl did not finish normally.

Scheduled runs (cron, systemd) judge a run by its exit status: a crawl stopped by a
database error must not look like a success. `replay` and `reextract` build on it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from scrapy import Spider
from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.crawler import Crawler
from scrapy.exceptions import UsageError

from crawler.addons import OfflineMirror
from crawler.site import Site

# Reasons for which a run has done what was asked of it.
SUCCESS_REASONS = frozenset(
    {"finished", "closespider_timeout", "closespider_itemcount", "closespider_pagecount"}
)


class Command(ScrapyCrawlCommand):
    def __init__(self) -> None:
        super().__init__()
        self._crawlers: list[Crawler] = []

    def _create_crawler(self, spidercls: type[Spider] | str) -> Crawler:
        crawler = super()._create_crawler(spidercls)
        self._crawlers.append(crawler)
        return crawler

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        self.check_settings()
        super().run(args, opts)
        self.judge()

    def check_settings(self) -> None:
        """Settings that would fail every request fail here, once, before the crawl."""
        assert self.settings is not None
        OfflineMirror.check(self.settings)
        try:
            Site.from_root(self.settings.get("SITE_ROOT"))
        except ValueError as exc:
            raise UsageError(str(exc)) from exc

    def run_spider(self, name: str, opts: argparse.Namespace, **kwargs: Any) -> Crawler:
        """Run the project's spider ``name`` to the end, then judge how it ended."""
        assert self.crawler_process is not None
        crawler = self._create_crawler(name)
        self.crawler_process.crawl(crawler, **opts.spargs, **kwargs)
        self.crawler_process.start()
        self.judge()
        return crawler

    def judge(self) -> None:
        for crawler in self._crawlers:
            try:
                stats = crawler.stats.get_stats()
            except RuntimeError:  # the crawl never started
                stats = {}
            reason = stats.get("finish_reason")
            if reason not in SUCCESS_REASONS:
                self.exitcode = 1
                detail = stats.get("database/error")
                print(
                    f"error: the crawl ended with {reason!r}" + (f": {detail}" if detail else ""),
                    file=sys.stderr,
                )
