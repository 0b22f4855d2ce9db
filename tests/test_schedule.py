"""`scrapy schedule`: crawls at an interval or on a cron expression, one at a time.

The scheduler runs as a real process, and so does each crawl it starts: offline, from
the bundled mirror, into a SQLite file of the test's own."""

from __future__ import annotations

import argparse
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from scrapy.settings import Settings

from crawler.commands.schedule import Command as ScheduleCommand
from crawler.errors import EXIT_RUN_IN_PROGRESS, EXIT_USAGE, UsageFailure
from crawler.scheduling import (
    Cron,
    Every,
    crawl_arguments,
    describe_outcome,
    next_due,
    parse_cron,
    parse_interval,
)
from tests.support.crawl import MIRROR, PROJECT_ROOT, scrapy

# Every crawl: offline, from the bundled mirror, writing no WARC files.
OFFLINE = ("-s", f"OFFLINE_MIRROR={MIRROR}", "-s", "WARC_ENABLED=False")
# Signalled once it has fetched a page: a crawl stopped while its spider is still
# opening ends without a finish reason, which is not what these tests look at.
UNDER_WAY = "Crawled (200)"
# How late a run may start on a busy machine; and, since a start is logged once its
# process is spawned, by how much the log may understate the time between two starts.
SLACK = timedelta(seconds=1)
JITTER = timedelta(seconds=0.1)
SNAPSHOT_ARTICLES = 14
_LINE = re.compile(r"(\S+ \S+) \[schedule\] (.*)")


@dataclass
class Event:
    at: datetime
    message: str


def events(stderr: str) -> list[Event]:
    """The scheduler's own lines, among the crawls' log lines."""
    return [
        Event(datetime.fromisoformat(m[1]), m[2])
        for line in stderr.splitlines()
        if (m := _LINE.fullmatch(line))
    ]


def one(found: list[Event], pattern: str) -> Event:
    matching = [e for e in found if re.search(pattern, e.message)]
    assert len(matching) == 1, (pattern, [e.message for e in found])
    return matching[0]


def slow(log: Path) -> tuple[str, ...]:
    """A crawl still running long after its first page: one request at a time, 2 s apart.

    It logs a line per page (DEBUG) to its own file, where its long lines cannot cut
    into the scheduler's on stderr."""
    return (
        "-s", "DOWNLOAD_DELAY=2", "-s", "AUTOTHROTTLE_ENABLED=False",
        "-s", "CONCURRENT_REQUESTS=1", "-s", "LOG_LEVEL=DEBUG", "-s", f"LOG_FILE={log}",
    )  # fmt: skip


def wait_for_line(log: Path, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not (log.exists() and text in log.read_text(encoding="utf-8", errors="replace")):
        assert time.monotonic() < deadline, f"no {text!r} in {log}"
        time.sleep(0.1)


def stored_articles(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        count: int = connection.execute("SELECT count(*) FROM articles").fetchone()[0]
    return count


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "archive.sqlite3"


@pytest.fixture
def env(database: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{database}"}


@pytest.fixture
def crawl(tmp_path: Path) -> tuple[str, ...]:
    """The crawls' arguments; a failed write's articles would go to the test's folder."""
    return ("--", *OFFLINE, "-s", f"DATABASE_SPILL_DIR={tmp_path / 'unsaved'}")


class Background:
    """`scrapy schedule ...` running on its own, its stderr read as it is written."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scrapy", "schedule", *args],
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 15) -> None:
        """Read stderr until a line holds `text`."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            assert line is not None, f"exited without {text!r}:\n" + "\n".join(self.lines)
            self.lines.append(line)

    def finish(self, timeout: float = 15) -> tuple[int, str]:
        """The exit status and the whole of stderr."""
        status = self.process.wait(timeout)
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line)
        return status, "\n".join(self.lines)

    def stop(self) -> None:
        """Stop the scheduler and a run in progress (two signals kill the run)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def background() -> Iterator[list[Background]]:
    started: list[Background] = []
    yield started
    for schedule in started:  # a failed test leaves no scheduler or crawl behind
        schedule.stop()


# --- Runs, as real processes ------------------------------------------------------------


def test_every_runs_the_crawls_one_after_another(
    env: dict[str, str], crawl: tuple[str, ...], database: Path
) -> None:
    result = scrapy("schedule", "--every", "1s", "--max-runs", "2", *crawl, env=env)

    assert result.returncode == 0, result.stderr
    found = events(result.stderr)
    begin = one(found, r"^crawling every 1s: scrapy crawl ylwt22 -s OFFLINE_MIRROR=")
    start1, end1 = one(found, r"^run 1 started \(pid \d+\)$"), one(found, r"^run 1 finished")
    start2, end2 = one(found, r"^run 2 started \(pid \d+\)$"), one(found, r"^run 2 finished")
    assert re.fullmatch(r"run 1 finished: status 0, \d+\.\d s", end1.message)
    assert re.fullmatch(r"run 2 finished: status 0, \d+\.\d s", end2.message)
    assert found[1].message.startswith("next run at ")
    assert found[-2].message == "--max-runs 2 reached"
    assert found[-1].message == "stopped after 2 runs"
    # Both runs crawled the snapshot into the database (the second, incremental, finds
    # nothing new in it): one row per article, and each run's closing line from the store.
    assert stored_articles(database) == SNAPSHOT_ARTICLES
    assert result.stdout.count(f"Archive: sqlite:///{database}") == 2

    second = timedelta(seconds=1)
    # Without --now the first run waits one interval.
    assert second <= start1.at - begin.at < second + SLACK
    # Never two at once: the second run starts an interval after the first started, or,
    # when the first outlasted the interval, as soon as it ended.
    assert start2.at >= end1.at
    due = max(start1.at + second - JITTER, end1.at)
    assert due <= start2.at < due + SLACK
    if end1.at > start1.at + second:
        slipped = one(found, r"^schedule slipped: ")
        assert re.fullmatch(
            r"schedule slipped: run 1 outlasted the run due at \S+ \S+; run 2 starts now",
            slipped.message,
        )
        assert end1.at <= slipped.at <= start2.at


def test_every_keeps_its_interval_between_starts(
    env: dict[str, str], crawl: tuple[str, ...]
) -> None:
    result = scrapy("schedule", "--every", "6s", "--now", "--max-runs", "2", *crawl, env=env)

    assert result.returncode == 0, result.stderr
    found = events(result.stderr)
    begin = one(found, r"^crawling every 6s")
    start1, end1 = one(found, r"^run 1 started"), one(found, r"^run 1 finished: status 0")
    start2 = one(found, r"^run 2 started")
    assert start1.at - begin.at < SLACK  # --now: no wait for the first
    assert start2.at >= end1.at
    due = max(start1.at + timedelta(seconds=6) - JITTER, end1.at)
    assert due <= start2.at < due + SLACK


def test_a_failing_run_does_not_stop_the_schedule(env: dict[str, str]) -> None:
    result = scrapy(
        "schedule", "--every", "1s", "--max-runs", "2",
        "--", "-s", "OFFLINE_MIRROR=/no/such/dir", env=env,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    found = events(result.stderr)
    for number in (1, 2):
        one(found, rf"^run {number} started")
        one(found, rf"^run {number} failed: status 2, \d+\.\d s$")
    assert result.stderr.count("OFFLINE_MIRROR '/no/such/dir' is not a directory") == 2
    assert found[-1].message == "stopped after 2 runs"


def test_sigterm_while_waiting_stops_at_once(
    env: dict[str, str], crawl: tuple[str, ...], background: list[Background]
) -> None:
    schedule = Background("--every", "1h", *crawl, env=env)
    background.append(schedule)
    schedule.wait_for("[schedule] next run at")

    sent = time.monotonic()
    schedule.process.send_signal(signal.SIGTERM)
    status, stderr = schedule.finish()

    assert status == 0, stderr
    assert time.monotonic() - sent < 3
    found = events(stderr)
    assert [e.message for e in found[-2:]] == [
        "received SIGTERM while waiting: stopping",
        "stopped after 0 runs",
    ]
    assert not any(e.message.startswith("run ") for e in found)


def test_sigterm_during_a_run_is_passed_on_and_awaited(
    env: dict[str, str],
    crawl: tuple[str, ...],
    background: list[Background],
    database: Path,
    tmp_path: Path,
) -> None:
    log = tmp_path / "crawl.log"
    schedule = Background("--every", "1h", "--now", *crawl, *slow(log), env=env)
    background.append(schedule)
    wait_for_line(log, UNDER_WAY)

    schedule.process.send_signal(signal.SIGTERM)
    status, stderr = schedule.finish()

    assert status == 0, stderr
    found = events(stderr)
    one(found, r"^received SIGTERM: passing it to run 1 \(pid \d+\) and stopping when it ends$")
    # Scrapy got it once, closed the spider cleanly, and so ended with status 1.
    crawl_log = log.read_text(encoding="utf-8")
    assert crawl_log.count("Received SIGTERM, shutting down gracefully") == 1
    assert "Spider closed (shutdown)" in crawl_log
    one(found, r"^run 1 stopped: status 1, ")
    assert found[-1].message == "stopped after 1 run"
    assert stored_articles(database) < SNAPSHOT_ARTICLES


def test_a_second_signal_kills_the_run(
    env: dict[str, str], crawl: tuple[str, ...], background: list[Background], tmp_path: Path
) -> None:
    log = tmp_path / "crawl.log"
    schedule = Background("--every", "1h", "--now", *crawl, *slow(log), env=env)
    background.append(schedule)
    wait_for_line(log, UNDER_WAY)

    schedule.process.send_signal(signal.SIGTERM)
    schedule.process.send_signal(signal.SIGINT)
    status, stderr = schedule.finish()

    assert status == 0, stderr
    found = events(stderr)
    one(found, r"^received SIG(TERM|INT): passing it to run 1")
    one(found, r"^received SIG(TERM|INT) while stopping: killing run 1 \(pid \d+\)$")
    one(found, r"^run 1 killed by SIGKILL after ")
    assert found[-1].message == "stopped after 1 run"


# --- Bad arguments ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give one of --every INTERVAL or --cron EXPR"),
        (("--every", "6h", "--cron", "0 3 * * *"), "give one of --every INTERVAL or --cron EXPR"),
        (("--every", "6x"), "invalid interval '6x': give a number and a unit"),
        (("--cron", "61 * * * *"), "invalid cron expression '61 * * * *': "),
        (("--cron", "0 0 30 2 *"), "invalid cron expression '0 0 30 2 *': "),
        (("--cron", "0 3 * *"), "invalid cron expression '0 3 * *': give five fields"),
        (("--every", "1h", "--max-runs", "0"), "invalid --max-runs '0'"),
        (("--every", "6h", "-a", "mode=full"), "unexpected arguments: -a mode=full (the crawl's"),
        (("--every", "6h", "-s", "LOG_FILE=run.log"), "-s would apply to the scheduler"),
    ],
)
@pytest.mark.unit
def test_bad_arguments_get_one_error_line_and_status_2(
    args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """In this process, as `scrapy schedule` reads its options: the parser, then the
    command's own checks, reported by the project's one error path."""
    command = ScheduleCommand()
    command.settings = Settings()
    command.settings.setdict(ScheduleCommand.default_settings, priority="command")
    parser = argparse.ArgumentParser()
    command.add_options(parser)
    opts, rest = parser.parse_known_args(args)
    command.process_options(rest, opts)
    command.run(rest, opts)

    assert command.exitcode == EXIT_USAGE
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {message}")


def test_bad_arguments_end_the_command_with_status_2(env: dict[str, str], database: Path) -> None:
    """The same, end to end: the process says it in one line, and starts no crawl."""
    result = scrapy("schedule", "--every", "6x", env=env, timeout=30)

    assert result.returncode == EXIT_USAGE
    [line] = result.stderr.splitlines()
    assert line.startswith("error: invalid interval '6x': give a number and a unit")
    assert not database.exists()


# --- The schedule, without processes -------------------------------------------------

NOW = datetime(2026, 11, 28, 16, 52, 37, 250000, tzinfo=UTC)


def test_cron_every_minute_is_due_at_the_next_minute_boundary() -> None:
    cron = parse_cron("* * * * *", utc=True, now=NOW)

    assert cron.after(NOW) == datetime(2026, 11, 28, 16, 53, tzinfo=UTC)
    # Strictly after: a run due on the boundary is followed by the next minute.
    assert cron.after(datetime(2026, 11, 28, 16, 53, tzinfo=UTC)) == datetime(
        2026, 11, 28, 16, 54, tzinfo=UTC
    )
    assert Cron("0 3 * * *", utc=True).after(NOW) == datetime(2026, 11, 29, 3, tzinfo=UTC)
    assert Cron("@daily", utc=True).after(NOW) == datetime(2026, 11, 29, tzinfo=UTC)


@pytest.fixture
def berlin() -> Iterator[None]:
    """Local time in a zone whose clocks change, for the length of a test."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    yield
    if previous is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = previous
    time.tzset()


@pytest.mark.usefixtures("berlin")
def test_cron_reads_local_time_across_clock_changes() -> None:
    cron = Cron("30 2 * * *")

    def following(moment: datetime, count: int) -> list[datetime]:
        ticks = []
        for _ in range(count):
            moment = cron.after(moment)
            ticks.append(moment.astimezone(UTC))
        return ticks

    # 02:30 is 01:30 UTC in winter, 00:30 UTC in summer.
    assert cron.after(NOW) == datetime(2026, 11, 29, 1, 30, tzinfo=UTC)
    # 29 March: the clocks skip 02:00-03:00, and the run comes at 03:30 summer time.
    assert following(datetime(2026, 3, 28, 12, tzinfo=UTC), 2) == [
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),
    ]
    # 25 October: 02:30 happens twice, and the run happens once.
    assert following(datetime(2026, 10, 24, 12, tzinfo=UTC), 2) == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
    ]


def test_a_run_that_outlasts_its_interval_is_followed_at_once_and_only_once() -> None:
    every = Every(timedelta(seconds=10))
    due = datetime(2026, 11, 28, 12, tzinfo=UTC)

    # In time: the next run is an interval after the last one was due.
    assert next_due(every, due, due + timedelta(seconds=4)) == (due + timedelta(seconds=10), None)
    # Three ticks passed during the run: one run now, which the schedule then follows.
    now = due + timedelta(seconds=35)
    assert next_due(every, due, now) == (now, due + timedelta(seconds=10))
    assert next_due(every, now, now + timedelta(seconds=2)) == (now + timedelta(seconds=10), None)
    # A cron schedule goes back to its own times after a slip.
    cron = Cron("0 * * * *", utc=True)
    late = datetime(2026, 11, 28, 13, 10, tzinfo=UTC)
    assert next_due(cron, datetime(2026, 11, 28, 12, tzinfo=UTC), late) == (
        late,
        datetime(2026, 11, 28, 13, tzinfo=UTC),
    )
    assert next_due(cron, late, late + timedelta(minutes=5)) == (
        datetime(2026, 11, 28, 14, tzinfo=UTC),
        None,
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("6h", 21600), ("1d", 86400), ("1h30m", 5400)],
)
def test_intervals(text: str, seconds: int) -> None:
    assert parse_interval(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "6", "6x", "h", "1.5h", "-1h", "0s", "6 h"])
def test_bad_intervals(text: str) -> None:
    with pytest.raises(UsageFailure, match="invalid interval"):
        parse_interval(text)


@pytest.mark.parametrize("expression", ["* * * *", "* * * * * *", "0 3 * * * 2027", "bad"])
def test_cron_expressions_have_five_fields(expression: str) -> None:
    with pytest.raises(UsageFailure, match="give five fields"):
        parse_cron(expression, utc=True, now=NOW)


def test_crawl_arguments_come_after_the_double_dash() -> None:
    assert crawl_arguments([]) == []
    assert crawl_arguments(["--"]) == []
    assert crawl_arguments(["--", "-a", "mode=full", "--", "-s", "X=1"]) == [
        "-a", "mode=full", "--", "-s", "X=1",
    ]  # fmt: skip
    with pytest.raises(UsageFailure, match="unexpected arguments: extra"):
        crawl_arguments(["extra", "--", "-a", "mode=full"])


def test_outcomes() -> None:
    assert describe_outcome(0, 12.34) == "finished: status 0, 12.3 s"
    assert describe_outcome(1, 2) == "failed: status 1, 2.0 s"
    # The crawl's status when another run holds the archive's lock: not a failure.
    assert describe_outcome(EXIT_RUN_IN_PROGRESS, 0.8) == (
        "skipped: another run is in progress (status 75, 0.8 s)"
    )
    assert describe_outcome(1, 2, stopped=True) == "stopped: status 1, 2.0 s"
    assert describe_outcome(-signal.SIGKILL, 3) == "killed by SIGKILL after 3.0 s"
