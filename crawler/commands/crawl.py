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

from crawler.addons import CrawlRate, OfflineMirror
from crawler.distributed.addon import DistributedCrawl, SetupError
from crawler.extensions.runs import EXIT_RUN_IN_PROGRESS, RunRecorder
from crawler.site import Site
from crawler.spiders.ylwt22 import MODES

__all__ = ["EXIT_RUN_IN_PROGRESS", "Command", "check_spider_arguments"]


def check_spider_arguments(spargs: dict[str, str]) -> None:
    """The spider's -a arguments, checked before the crawl starts."""
    if spargs.get("mode", MODES[0]) not in MODES:
        raise UsageError(f"-a mode must be one of {', '.join(MODES)}, got {spargs['mode']!r}")
    if not str(spargs.get("depth", 0)).isdigit():
        raise UsageError(f"-a depth must be a number of list pages, got {spargs['depth']!r}")


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
        check_spider_arguments(opts.spargs)
        super().run(args, opts)
        self.judge()

    def check_settings(self) -> None:
        """Settings that would fail every request fail here, once, before the crawl."""
        assert self.settings is not None
        OfflineMirror.check(self.settings)
        CrawlRate.check(self.settings)
        try:
            Site.from_root(self.settings.get("SITE_ROOT"))
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        # A distributed crawl's Redis (crawler/distributed): one error line and status 1
        # for a REDIS_URL that is malformed or out of reach, before any worker starts.
        try:
            DistributedCrawl.check(self.settings)
        except SetupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None

    def run_spider(self, name: str, opts: argparse.Namespace, **kwargs: Any) -> Crawler:
        """Run the project's spider ``name`` to the end, then judge how it ended."""
        assert self.crawler_process is not None
        crawler = self._create_crawler(name)
        self.crawler_process.crawl(crawler, **opts.spargs, **kwargs)
        self.crawler_process.start()
        self.judge()
        return crawler

    def judge(self) -> None:
        """Print each run's report, and exit with the status its run recorder decided."""
        for crawler in self._crawlers:
            try:
                recorder = crawler.get_extension(RunRecorder)
            except RuntimeError:  # the crawl never got as far as its extensions
                recorder = None
            outcome = recorder.outcome if recorder is not None else None
            if outcome is None:
                self.exitcode = 1
                print("error: the crawl was stopped before it started", file=sys.stderr)
                continue
            for line in recorder.report if recorder is not None else ():
                print(line)
            if outcome.exit_code:
                self.exitcode = outcome.exit_code
                print(f"error: {outcome.error}", file=sys.stderr)
