"""`scrapy replay PATH...`: store the articles in saved pages, without the web."""

from __future__ import annotations

import argparse

from crawler.commands.crawl import Command as CrawlCommand
from crawler.errors import UsageFailure


class Command(CrawlCommand):
    def syntax(self) -> str:
        return "[options] PATH [PATH ...]"

    def short_desc(self) -> str:
        return "Replay saved pages (WARC files, wget mirrors, saved text pages) into the archive"

    def long_desc(self) -> str:
        return (
            "Run the ylwt22 extraction and pipelines over saved pages and store the "
            "articles in DATABASE_URL, as a crawl would. Each PATH is a WARC file "
            "(.warc, .warc.gz), a folder of them, a mirror in `wget --mirror` layout "
            "(<host>/<path>), a saved text page (.txt, its URL read from its 链接地址 "
            "line) or an HTML file that names its own URL. No web host is contacted. "
            "Paths that cannot be read are reported, counted and skipped."
        )

    def execute(self, args: list[str], opts: argparse.Namespace) -> None:
        if not args:
            raise UsageFailure("name at least one PATH to replay")
        self.check_settings("replay")
        self.run_spider("replay", opts, paths=args)
