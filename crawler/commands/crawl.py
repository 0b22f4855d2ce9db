"""`scrapy crawl`, exiting non-zero when the crawl did not finish normally.

Scheduled runs (cron, systemd) judge a run by its exit status: a crawl stopped by a
database error must not look like a success. `replay` and `reextract` build on it."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from typing import Any

from scrapy import Spider
from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.crawler import Crawler

from crawler.addons import CrawlRate, OfflineMirror
from crawler.checks import BadSetting, check_objects, check_values, check_writable_directory
from crawler.errors import ReportsErrors, UsageFailure
from crawler.modes import crawl_mode, list_depth
from crawler.site import Site

# Every `scrapy` command imports this module as it starts: what only a crawl needs (the
# spider, the storage, Redis) is imported when a crawl runs.


def check_spider_arguments(spargs: dict[str, str]) -> None:
    """The spider's -a arguments, checked before the crawl starts."""
    try:
        crawl_mode(spargs.get("mode", "incremental"))
        list_depth(spargs.get("depth", 0))
    except ValueError as exc:
        raise UsageFailure(str(exc)) from None


class Command(ReportsErrors, ScrapyCrawlCommand):
    def __init__(self) -> None:
        super().__init__()
        self._crawlers: list[Crawler] = []

    def _create_crawler(self, spidercls: type[Spider] | str) -> Crawler:
        crawler = super()._create_crawler(spidercls)
        self._crawlers.append(crawler)
        return crawler

    def execute(self, args: list[str], opts: argparse.Namespace) -> None:
        self.check_settings(args[0] if len(args) == 1 else None)
        check_spider_arguments(opts.spargs)
        ScrapyCrawlCommand.run(self, args, opts)
        self.judge()

    def check_settings(self, spider: str | None) -> None:
        """Settings that would fail every request fail here, once, before the crawl
        of ``spider`` (replay and reextract run the spider "replay")."""
        assert self.settings is not None
        # Every number and switch read (crawler/checks.py): one "error: bad setting
        # NAME=VALUE: ..." line and status 2.
        self._check(check_values, self.settings)
        self._check(check_objects, "EXTRACT_PIPELINES", self.settings.getlist("EXTRACT_PIPELINES"))
        OfflineMirror.check(self.settings)
        CrawlRate.check(self.settings)
        try:
            Site.from_root(self.settings.get("SITE_ROOT"))
        except ValueError as exc:
            raise UsageFailure(str(exc)) from exc
        # The raw copy is part of what the archive keeps: a crawl that could not write
        # it does not start.
        if spider is not None and self._writes_warc(spider):
            self._check(check_writable_directory, "WARC_DIR", self.settings.get("WARC_DIR"))
        # A distributed crawl's Redis (crawler/distributed): one error line and status 1
        # for a REDIS_URL that is malformed or out of reach, before any worker starts.
        from crawler.distributed.addon import DistributedCrawl  # noqa: PLC0415

        DistributedCrawl.check(self.settings)  # SetupError, a CommandError: status 1

    @staticmethod
    def _check(check: Callable[..., None], *args: Any) -> None:
        try:
            check(*args)
        except BadSetting as exc:
            raise UsageFailure(str(exc)) from None

    def _writes_warc(self, spider: str) -> bool:
        """Whether the crawl will write WARC files: WARC_ENABLED as the spider's own
        settings and offline mode's add-on leave it (both switch it off)."""
        assert self.settings is not None
        assert self.crawler_process is not None
        try:
            spidercls = self.crawler_process.spider_loader.load(spider)
        except KeyError:
            return False  # Scrapy reports an unknown spider itself
        settings = self.settings.copy()
        spidercls.update_settings(settings)
        OfflineMirror().update_settings(settings)
        return settings.getbool("WARC_ENABLED")

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
        from crawler.extensions.runs import RunRecorder  # noqa: PLC0415

        for crawler in self._crawlers:
            try:
                recorder = crawler.get_extension(RunRecorder)
            except RuntimeError:  # the crawl never got as far as its extensions
                recorder = None
            outcome = recorder.verdict() if recorder is not None else None
            if outcome is None:
                self.exitcode = 1
                print("error: the crawl was stopped before it started", file=sys.stderr)
                continue
            for line in recorder.report if recorder is not None else ():
                print(line)
            if where := _where(crawler):
                print(where)
            if outcome.exit_code:
                self.exitcode = outcome.exit_code
                print(f"error: {outcome.error}", file=sys.stderr)


def _where(crawler: Crawler) -> str:
    """Where the run's articles and its full log are, for the report's last line."""
    from crawler.extensions.progress import Progress  # noqa: PLC0415
    from pipelines.store import DatabasePipeline  # noqa: PLC0415
    from storage.errors import StorageError  # noqa: PLC0415

    parts = []
    store = crawler.get_item_pipeline(DatabasePipeline)
    if store is not None:
        with contextlib.suppress(StorageError):  # never opened: nothing is there
            parts.append(f"Archive: {store.database.where}")
    progress = crawler.get_extension(Progress)
    if progress is not None and progress.log_path is not None:
        parts.append(f"full log: {progress.log_path}")
    return "; ".join(parts) + "." if parts else ""
