"""Scheduled crawls: the engine of `scrapy schedule` (crawler/commands/schedule.py, which
only reads its options).

A schedule (an interval, or a cron expression in local time or UTC) says when runs are
due; :class:`ScheduledCrawls` starts one `scrapy crawl` process per run, one at a time,
waits with signals in mind (a stop signal between two runs ends it at once; during a
run it is passed on once), and logs one line per event."""

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
from typing import TYPE_CHECKING, Protocol

from croniter import CroniterError, croniter  # type: ignore[import-untyped]

from crawler.errors import EXIT_RUN_IN_PROGRESS, UsageFailure

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType, TracebackType

# The spider each run crawls with. Named rather than imported: every `scrapy` command
# imports this module, and none of them should have to load the spider for it.
SPIDER = "ylwt22"
_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
# Waits are cut into naps of at most this many seconds, after which the wall clock is
# read again: a suspended machine or a clock set forward must not delay a run for long.
_MAX_NAP = 60.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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
    if status == EXIT_RUN_IN_PROGRESS:
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


class ScheduledCrawls:
    """Runs a crawl process at each time ``schedule`` gives, one at a time, until
    ``max_runs`` or a stop signal."""

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
