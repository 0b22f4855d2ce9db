"""`scrapy schedule --every 6h | --cron EXPR [-- CRAWL-ARGS]`: crawl on a schedule.

Each run is its own `python -m scrapy crawl ylwt22` process: a Twisted reactor cannot be
started twice in one process, and a run that crashes or leaks must not take the
schedule down with it."""

from __future__ import annotations

import os
import re
import select
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from croniter import CroniterError, croniter  # type: ignore[import-untyped]
from scrapy.commands import ScrapyCommand

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from types import FrameType, TracebackType

# The spider each run crawls with. Named rather than imported: every `scrapy` command
# imports this module, and none of them should have to load the spider for it.
SPIDER = "ylwt22"
_USAGE_EXITCODE = 2  # as argparse and `scrapy` itself use for bad options
# The crawl's status when another run holds the archive's run lock (EX_TEMPFAIL).
LOCKED_EXITCODE = 75
_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
# Waits are cut into naps of at most this many seconds, after which the wall clock is
# read again: a suspended machine or a clock set forward must not delay a run for long.
_MAX_NAP = 60.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class UsageFailure(Exception):
    """Bad arguments, reported as one "error: ..." line with exit status 2."""


class Schedule(Protocol):
    def after(self, moment: datetime) -> datetime:
        """The first time strictly after `moment` at which a run is due."""


@dataclass(frozen=True)
class Every:
    interval: timedelta

    def after(self, moment: datetime) -> datetime:
        return moment + self.interval


@dataclass(frozen=True)
class Cron:
    expression: str
    utc: bool = False

    def after(self, moment: datetime) -> datetime:
        if self.utc:
            tick: datetime = croniter(self.expression, moment.astimezone(UTC)).get_next(datetime)
            return tick
        # The fields name local wall-clock times, so croniter steps through naive local
        # times. When clocks go back, the repeated hour's ticks map to instants that
        # have already passed once; they are skipped, not run twice.
        wall = moment.astimezone().replace(tzinfo=None)
        while True:
            wall = croniter(self.expression, wall).get_next(datetime)
            tick = wall.astimezone()
            if tick.replace(tzinfo=None) != wall:
                # A time the clocks skipped when they went forward: run that long after
                # the change (02:30 becomes 03:30), rather than an hour before it.
                tick = wall.replace(fold=1).astimezone()
            if tick > moment:
                return tick


def parse_interval(text: str) -> timedelta:
    """`90s`, `30m`, `6h`, `1d`, or several together (`1h30m`)."""
    if not re.fullmatch(r"(?:\d+[smhd])+", text):
        raise UsageFailure(
            f"invalid interval {text!r}: give a number and a unit, s, m, h or d (90s, 30m, 6h, 1d)"
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+)([smhd])", text))
    if seconds == 0:
        raise UsageFailure(f"invalid interval {text!r}: it must be longer than 0")
    return timedelta(seconds=seconds)


def parse_cron(expression: str, *, utc: bool, now: datetime) -> Cron:
    """A standard five-field expression (minute hour day month weekday) or an alias
    such as @daily, as crontab takes them."""
    if not expression.startswith("@") and len(expression.split()) != 5:
        raise UsageFailure(
            f"invalid cron expression {expression!r}: "
            "give five fields, minute hour day month weekday (0 3 * * *)"
        )
    cron = Cron(expression, utc)
    try:
        cron.after(now)  # also finds expressions that never match, such as 30 February
    except CroniterError as exc:
        raise UsageFailure(f"invalid cron expression {expression!r}: {exc}") from exc
    return cron


def crawl_arguments(args: list[str]) -> list[str]:
    """The arguments after `--`, passed to every crawl; nothing may come before it."""
    if "--" in args:
        split = args.index("--")
        before, after = args[:split], args[split + 1 :]
    else:
        before, after = args, []
    if before:
        raise UsageFailure(
            f"unexpected arguments: {shlex.join(before)} "
            "(the crawl's own arguments go after --, as in: scrapy schedule --every 6h -- "
            "-a mode=full)"
        )
    return after


def next_due(
    schedule: Schedule, last_due: datetime, now: datetime
) -> tuple[datetime, datetime | None]:
    """When the run after the one due at `last_due` starts, and the time it was due
    if the schedule slipped (the last run outlasted it).

    A run that outlasted the ticks after it is followed at once by one run, not by one
    per missed tick; the schedule goes on from there."""
    due = schedule.after(last_due)
    if due >= now:
        return due, None
    return now, due


def describe_outcome(status: int, seconds: float, *, stopped: bool = False) -> str:
    """How a run ended, for the log; `status` as `Popen.returncode` gives it, and
    `stopped` when the scheduler passed a stop signal on to the run."""
    if status == LOCKED_EXITCODE:
        return f"skipped: another run is in progress (status {status}, {seconds:.1f} s)"
    if status < 0:
        return f"killed by {signal.Signals(-status).name} after {seconds:.1f} s"
    if status == 0:
        return f"finished: status 0, {seconds:.1f} s"
    # A crawl stopped before the end of its work exits 1: asked for, not a failure.
    return f"{'stopped' if stopped else 'failed'}: status {status}, {seconds:.1f} s"


class _Signals:
    """SIGINT, SIGTERM and SIGCHLD, received through a pipe (signal.set_wakeup_fd).

    One select() on it then waits for a deadline, a stop signal and a run's end at
    once, and a signal that arrives between two waits is not lost: it waits in the
    pipe."""

    def __enter__(self) -> _Signals:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._previous_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        # A Python-level handler is what makes the interpreter write to the pipe; the
        # handler itself has nothing left to do.
        self._previous_handlers = {
            sig: signal.signal(sig, _noted)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)
        }
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(self._previous_fd)
        os.close(self._read)
        os.close(self._write)

    def wait(self, timeout: float | None) -> list[signal.Signals]:
        """The signals received, waiting up to `timeout` seconds (None: for one)."""
        select.select([self._read], [], [], timeout)
        received: list[signal.Signals] = []
        while True:
            try:
                data = os.read(self._read, 512)
            except BlockingIOError:
                return received
            received += (signal.Signals(number) for number in data)


def _noted(signum: int, frame: FrameType | None) -> None:
    """The signal is already in the wakeup pipe."""


class Scheduler:
    def __init__(
        self,
        schedule: Schedule,
        command: list[str],
        *,
        clock: Callable[[], datetime],
        run_now: bool = False,
        max_runs: int | None = None,
    ) -> None:
        self.schedule = schedule
        self.command = command
        self.clock = clock
        self.run_now = run_now
        self.max_runs = max_runs
        self.runs = 0

    def log(self, message: str) -> None:
        stamp = self.clock().isoformat(sep=" ", timespec="milliseconds")
        print(f"{stamp} [schedule] {message}", file=sys.stderr, flush=True)

    def run(self) -> None:
        """Run crawls until --max-runs is reached or a stop signal arrives."""
        with _Signals() as signals:
            self._run(signals)
        self.log(f"stopped after {self.runs} run{'' if self.runs == 1 else 's'}")

    def _run(self, signals: _Signals) -> None:
        start = self.clock()
        due = start if self.run_now else self.schedule.after(start)
        while True:
            if due > self.clock():
                self.log(f"next run at {_show(due)}")
            stop = self._wait_until(due, signals)
            if stop is not None:
                self.log(f"received {stop.name} while waiting: stopping")
                return
            self.runs += 1
            if self._crawl(signals):
                return
            if self.runs == self.max_runs:
                self.log(f"--max-runs {self.max_runs} reached")
                return
            due, missed = next_due(self.schedule, due, self.clock())
            if missed is not None:
                self.log(
                    f"schedule slipped: run {self.runs} outlasted the run due at "
                    f"{_show(missed)}; run {self.runs + 1} starts now"
                )

    def _wait_until(self, due: datetime, signals: _Signals) -> signal.Signals | None:
        """Wait until `due`; the stop signal that cut the wait short, if one did."""
        while (left := (due - self.clock()).total_seconds()) > 0:
            for sig in signals.wait(min(left, _MAX_NAP)):
                if sig in _STOP_SIGNALS:
                    return sig
        return None

    def _crawl(self, signals: _Signals) -> bool:
        """Run one crawl to its end; whether a stop signal arrived meanwhile."""
        number = self.runs
        started = time.monotonic()
        try:
            # Its own process group: a Ctrl-C at the terminal reaches the scheduler
            # only, which passes it on once; Scrapy reads a second one as "force stop".
            run = subprocess.Popen(self.command, process_group=0)
        except OSError as exc:
            self.log(f"run {number} failed to start: {exc}")
            return False
        self.log(f"run {number} started (pid {run.pid})")
        stopping = False
        while (status := run.poll()) is None:
            for sig in signals.wait(None):
                if sig not in _STOP_SIGNALS:
                    continue
                if not stopping:
                    self.log(
                        f"received {sig.name}: passing it to run {number} (pid {run.pid}) "
                        "and stopping when it ends"
                    )
                    run.send_signal(sig)
                    stopping = True
                else:
                    self.log(
                        f"received {sig.name} while stopping: killing run {number} (pid {run.pid})"
                    )
                    run.kill()
        outcome = describe_outcome(status, time.monotonic() - started, stopped=stopping)
        self.log(f"run {number} {outcome}")
        return stopping


def _show(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="milliseconds" if moment.microsecond else "seconds")


class Command(ScrapyCommand):
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

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        try:
            scheduler = self._scheduler(args, opts)
        except UsageFailure as exc:
            print(f"error: {exc}", file=sys.stderr)
            self.exitcode = _USAGE_EXITCODE
            return
        zone = "UTC" if opts.utc else "local time"
        when = f"every {opts.every}" if opts.every else f"at {opts.cron!r} {zone}"
        scheduler.log(f"crawling {when}: {shlex.join(scheduler.command[2:])}")
        scheduler.run()

    def _scheduler(self, args: list[str], opts: argparse.Namespace) -> Scheduler:
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
        return Scheduler(schedule, command, clock=clock, run_now=opts.now, max_runs=max_runs)
