"""Progress for people: one live line while a crawl, replay or re-extraction runs, and
the run's full log kept in a file.

On a terminal the line updates in place (tqdm): pages fetched and their rate, articles
stored, what is queued; for a replay or a re-extraction, whose total is known, a bar
with the time left. Warnings and errors print above it. Without a terminal (cron,
systemd, a pipe) a plain line is printed every ``PROGRESS_INTERVAL`` seconds instead.

The console shows warnings and errors only (``LOG_LEVEL``); Scrapy's full log, at
``RUN_LOG_LEVEL``, goes to a file of its own under ``RUN_LOG_DIR`` that the report
names, unless ``LOG_FILE`` already takes it.

Settings: ``PROGRESS_ENABLED``, ``PROGRESS_INTERVAL``, ``RUN_LOG_DIR``,
``RUN_LOG_LEVEL``, ``LOG_FILE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.utils.log import get_scrapy_root_handler

from pipelines.store import DatabasePipeline

if TYPE_CHECKING:
    from tqdm import tqdm

# Seconds between refreshes of the line on a terminal.
_REFRESH = 0.5


class Progress:
    def __init__(
        self, crawler: Crawler, *, enabled: bool, interval: float, log_dir: str, log_level: str
    ) -> None:
        self.crawler = crawler
        self.enabled = enabled
        self.interval = interval
        self.log_dir = Path(log_dir) if log_dir else None
        self.log_level = log_level
        self.log_path: Path | None = None
        """The file that holds this run's full log, when it has one of its own."""
        self.total: int | None = None
        """Articles the run will handle, when it knows (replay, re-extraction)."""
        self._stream: IO[str] = sys.stderr
        self._bar: tqdm[Any] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._handler: logging.Handler | None = None
        self._started = time.monotonic()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Progress:
        settings = crawler.settings
        progress = cls(
            crawler,
            enabled=settings.getbool("PROGRESS_ENABLED"),
            interval=settings.getfloat("PROGRESS_INTERVAL"),
            log_dir="" if settings.get("LOG_FILE") else settings["RUN_LOG_DIR"] or "",
            log_level=settings["RUN_LOG_LEVEL"],
        )
        progress.keep_log(crawler.spidercls.name if crawler.spidercls else "run")
        crawler.signals.connect(progress.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(progress.engine_stopped, signal=signals.engine_stopped)
        return progress

    def keep_log(self, name: str) -> None:
        """Send the full log to a file of its own: this run's, named by when it began."""
        if self.log_dir is None:
            return
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            path = self.log_dir / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.log"
            handler = logging.FileHandler(path, encoding="utf-8")
        except OSError as exc:
            logging.getLogger(__name__).warning("Not keeping the run's log: %s", exc)
            return
        console = get_scrapy_root_handler()
        if console is not None and console.formatter is not None:
            handler.setFormatter(console.formatter)
        handler.setLevel(self.log_level)
        logging.root.addHandler(handler)
        self._handler, self.log_path = handler, path

    def spider_opened(self, spider: Spider) -> None:
        self._started = time.monotonic()
        if not self.enabled:
            return
        if self._stream.isatty():
            self._bar = self._terminal_bar()
        self._ticker = asyncio.ensure_future(self._tick())

    def _terminal_bar(self) -> tqdm[Any]:
        from tqdm import tqdm  # noqa: PLC0415  (only a terminal shows it)

        # Articles when their number is known (a replay, a re-extraction), else pages.
        unit = " articles" if self.total is not None else " pages"
        bar = tqdm(total=self.total, unit=unit, file=self._stream, dynamic_ncols=True, leave=False)
        # Log lines print above the bar, not through it.
        console = get_scrapy_root_handler()
        if isinstance(console, logging.StreamHandler) and console.stream is self._stream:
            console.setStream(_AboveTheBar(bar, self._stream))
        return bar

    async def _tick(self) -> None:
        last_line = time.monotonic()
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(_REFRESH if self._bar is not None else 1.0)
                if self._bar is not None:
                    self._refresh(self._bar)
                elif time.monotonic() - last_line >= self.interval:
                    last_line = time.monotonic()
                    print(self.line(), file=self._stream, flush=True)

    def counts(self) -> tuple[int, int, int, int]:
        """(pages fetched or read, articles handled, articles stored, requests queued)."""
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        pages = stats.get("response_received_count", 0) + stats.get("replay/pages", 0)
        handled = stats.get("item_scraped_count", 0) + stats.get("item_dropped_count", 0)
        queued = stats.get("scheduler/enqueued", 0) - stats.get("scheduler/dequeued", 0)
        store = self.crawler.get_item_pipeline(DatabasePipeline)
        stored = 0 if store is None else store.outcomes.new + store.outcomes.updated
        return pages, handled, stored, queued

    def line(self) -> str:
        pages, handled, stored, queued = self.counts()
        rate = pages / max(time.monotonic() - self._started, 1e-9)
        done = f" of {self.total:,}" if self.total is not None else ""
        return (
            f"{datetime.now().astimezone():%Y-%m-%d %H:%M:%S} progress: {pages:,} pages "
            f"({rate:,.1f}/s), {handled:,}{done} articles handled, {stored:,} stored, "
            f"{queued:,} queued"
        )

    def _refresh(self, bar: tqdm[Any]) -> None:
        pages, handled, stored, queued = self.counts()
        if self.total is not None:
            bar.total, bar.unit = self.total, " articles"
            bar.n = handled
            bar.set_postfix_str(f"{pages:,} pages, {stored:,} stored", refresh=False)
        else:
            bar.n = pages
            bar.set_postfix_str(f"{stored:,} stored, {queued:,} queued", refresh=False)
        bar.refresh()

    def engine_stopped(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self._bar is not None:
            console = get_scrapy_root_handler()
            if isinstance(console, logging.StreamHandler):
                console.setStream(self._stream)
            self._bar.close()
        if self._handler is not None:
            logging.root.removeHandler(self._handler)
            self._handler.close()


class _AboveTheBar:
    """A stream for the log's console handler that writes above the live line."""

    def __init__(self, bar: tqdm[Any], stream: IO[str]) -> None:
        self.bar = bar
        self.stream = stream

    def write(self, text: str) -> None:
        if text := text.rstrip("\n"):
            self.bar.write(text, file=self.stream)

    def flush(self) -> None:
        self.stream.flush()
