"""`scrapy schedule`: crawl the site at an interval or on a cron schedule, one run at a
time. The engine is crawler/scheduling.py; this command reads its options."""

from __future__ import annotations

import shlex
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand

from crawler.errors import ReportsErrors, UsageFailure

if TYPE_CHECKING:
    import argparse

    from crawler.scheduling import ScheduledCrawls

# The spider each run crawls with. Named rather than imported: every `scrapy` command
# imports this module, and none of them should have to load the spider for it.
SPIDER = "ylwt22"


class Command(ReportsErrors, ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    # The scheduler's own lines are its output; each crawl logs as usual.
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "(--every INTERVAL | --cron EXPR) [--utc] [--now] [--max-runs N] [-- CRAWL-ARGS]"

    def short_desc(self) -> str:
        return "Crawl the site at an interval or on a cron schedule, one run at a time"

    def long_desc(self) -> str:
        return (
            f"Run `scrapy crawl {SPIDER}` as a separate process every INTERVAL "
            "(90s, 30m, 6h, 1d) or at the times of a cron expression (local time, or UTC "
            "with --utc), for as long as this command runs. Arguments after -- are passed "
            "to each crawl. A failed run is logged and the schedule goes on; a run that "
            "outlasts its interval delays the next one, which then starts at once. "
            "SIGINT or SIGTERM stops the schedule, passing the signal on to a run in "
            "progress; a second one kills the run. The global options -s, --logfile, -L "
            "and --nolog are the crawls': give them after --."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "--every", metavar="INTERVAL", help="run at this interval: 90s, 30m, 6h, 1d"
        )
        parser.add_argument("--cron", metavar="EXPR", help='run at these times: "0 3 * * *"')
        parser.add_argument(
            "--utc", action="store_true", help="read --cron in UTC, and log UTC times"
        )
        parser.add_argument("--now", action="store_true", help="run once at start, then wait")
        parser.add_argument("--max-runs", metavar="N", help="stop after N runs")

    def execute(self, args: list[str], opts: argparse.Namespace) -> None:
        scheduler = self.scheduled_crawls(args, opts)
        zone = "UTC" if opts.utc else "local time"
        when = f"every {opts.every}" if opts.every else f"at {opts.cron!r} {zone}"
        scheduler.log(f"crawling {when}: {shlex.join(scheduler.command[2:])}")
        scheduler.run()

    def scheduled_crawls(self, args: list[str], opts: argparse.Namespace) -> ScheduledCrawls:
        """The engine the options ask for; UsageFailure for bad ones."""
        from crawler.scheduling import (  # noqa: PLC0415  (only this command needs it)
            Every,
            Schedule,
            ScheduledCrawls,
            crawl_arguments,
            parse_cron,
            parse_interval,
        )

        # These set the scheduler's own settings, which no crawl would see.
        misplaced = [
            name
            for name, given in (("-s", opts.set), ("--logfile", opts.logfile),
                                ("-L", opts.loglevel), ("--nolog", opts.nolog))
            if given
        ]  # fmt: skip
        if misplaced:
            raise UsageFailure(
                f"{', '.join(misplaced)} would apply to the scheduler, not to the crawls: "
                "give the crawl's options after --, as in: "
                "scrapy schedule --every 6h -- -s NAME=VALUE"
            )
        crawl_args = crawl_arguments(args)

        def clock() -> datetime:
            return datetime.now(UTC) if opts.utc else datetime.now().astimezone()

        schedule: Schedule
        if (opts.every is None) == (opts.cron is None):
            raise UsageFailure("give one of --every INTERVAL or --cron EXPR")
        if opts.every is not None:
            schedule = Every(parse_interval(opts.every))
        else:
            schedule = parse_cron(opts.cron, utc=opts.utc, now=clock())
        max_runs = None
        if opts.max_runs is not None:
            if not (opts.max_runs.isascii() and opts.max_runs.isdigit()) or int(opts.max_runs) == 0:
                raise UsageFailure(
                    f"invalid --max-runs {opts.max_runs!r}: give a whole number above 0"
                )
            max_runs = int(opts.max_runs)
        command = [sys.executable, "-m", "scrapy", "crawl", SPIDER, *crawl_args]
        return ScheduledCrawls(schedule, command, clock=clock, run_now=opts.now, max_runs=max_runs)
