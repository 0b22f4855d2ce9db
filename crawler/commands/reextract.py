"""`scrapy reextract`: run today's extraction over the archived raw pages again."""

from __future__ import annotations

import argparse

from scrapy.statscollectors import StatsCollector

from crawler.commands.crawl import Command as CrawlCommand
from crawler.errors import UsageFailure

_OUTCOMES = ("updated", "unchanged", "outranked")


class Command(CrawlCommand):
    def syntax(self) -> str:
        return "[options]"

    def short_desc(self) -> str:
        return "Re-extract the stored articles from their raw pages and update what changed"

    def long_desc(self) -> str:
        return (
            "Read the raw pages each stored article names in its provenance (WARC "
            "records, mirror files, saved text pages), run the current extraction and "
            "pipelines over them, and update the rows whose fields changed. Prints how "
            "many articles changed in each field, with a few examples."
        )

    def execute(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageFailure("reextract takes no arguments")
        self.check_settings("replay")
        crawler = self.run_spider("replay", opts, from_database=True)
        if crawler.stats is not None:
            print(report(crawler.stats))


def report(stats: StatsCollector) -> str:
    """What re-extraction changed: counts by outcome and by field, with examples."""
    values = stats.get_stats()
    outcomes = ", ".join(f"{values.get(f'database/articles_{o}', 0)} {o}" for o in _OUTCOMES)
    dropped = sum(v for k, v in values.items() if k.startswith("drop/"))
    lines = [f"Re-extracted {values.get('item_scraped_count', 0)} articles: {outcomes}; "
             f"{dropped} dropped."]  # fmt: skip
    changed = sorted(
        (key.removeprefix("database/changed/"), count)
        for key, count in values.items()
        if key.startswith("database/changed/") and not key.endswith("/examples")
    )
    if changed:
        lines.append("Changed fields:")
    for name, count in changed:
        lines.append(f"  {name}: {count}")
        lines += [
            f"    {example}" for example in values.get(f"database/changed/{name}/examples", [])
        ]
    return "\n".join(lines)
