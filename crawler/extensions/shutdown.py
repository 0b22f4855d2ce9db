"""A crawl asked to stop by a signal ends within ``SHUTDOWN_TIMEOUT`` seconds.

On the first SIGINT or SIGTERM Scrapy's CrawlerProcess starts a graceful close: it
waits for the requests in flight, the pipelines and every component to finish. Should
that close hang (a request to a server that never answers, a thread blocked in I/O, a
component waiting for ever), the process would never end, and it would keep the
archive's run lock, so every scheduled crawl after it would be skipped.

This extension adds a bound. When Scrapy's own shutdown handler is in place, it is
chained after a handler that arms a watchdog thread on the first signal. If the
process is still alive ``SHUTDOWN_TIMEOUT`` seconds later, the watchdog logs one line,
records the finish reason ``shutdown_timeout``, and stops the reactor, so that the
command can still print its report and exit with status 1. If even that has not ended
the process a few seconds later (a thread that cannot be joined), it exits at once
with status 1.

A crawl run inside another program, where Scrapy installs no signal handlers, is left
alone: its process is not the crawl's to end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler, CrawlerProcessBase

from crawler.extensions.runs import RunRecorder

logger = logging.getLogger(__name__)

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)
FINISH_REASON = "shutdown_timeout"
# After the reactor was asked to stop: how long the process may take to exit.
_EXIT_GRACE = 5.0
_EXIT_STATUS = 1

Handler = Callable[[int, FrameType | None], Any]


class ShutdownTimeout:
    """Settings: ``SHUTDOWN_TIMEOUT``, the seconds a crawl may take to end after its
    first shutdown signal."""

    def __init__(self, crawler: Crawler, timeout: float) -> None:
        self.crawler = crawler
        self.timeout = timeout
        self._signalled = threading.Event()
        self._chained = False
        # Started now and waiting, so that the signal handler only has to set an event.
        self._watchdog = threading.Thread(target=self._watch, name="shutdown", daemon=True)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ShutdownTimeout:
        extension = cls(crawler, crawler.settings.getfloat("SHUTDOWN_TIMEOUT"))
        extension.chain()
        # Scrapy installs its handlers as the reactor starts: by now, or at the latest
        # when the engine starts.
        crawler.signals.connect(extension.chain, signal=signals.engine_started)
        return extension

    def chain(self) -> None:
        """Put our handler before Scrapy's shutdown handler, once."""
        if self._chained or threading.current_thread() is not threading.main_thread():
            return
        previous = {signum: signal.getsignal(signum) for signum in SHUTDOWN_SIGNALS}
        if not all(_is_scrapy_shutdown(handler) for handler in previous.values()):
            return
        self._chained = True
        self._watchdog.start()
        for signum, handler in previous.items():
            signal.signal(signum, self._handler(handler))  # type: ignore[arg-type]

    def _handler(self, scrapy_handler: Handler) -> Handler:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            self._signalled.set()
            # Scrapy's handler starts the graceful close and installs its own for a
            # second signal, which forces an unclean stop.
            scrapy_handler(signum, frame)

        return on_signal

    def _watch(self) -> None:
        # A daemon thread: when the process ends in time, it ends with it.
        self._signalled.wait()
        time.sleep(self.timeout)
        logger.error(
            "The crawl did not end within SHUTDOWN_TIMEOUT (%gs) of the signal to stop; "
            "stopping it now",
            self.timeout,
        )
        self.crawler.stats.set_value("finish_reason", FINISH_REASON)
        if self.crawler.settings.getbool("TWISTED_REACTOR_ENABLED"):
            from twisted.internet import reactor  # noqa: PLC0415  (the crawl's, installed)

            reactor.callFromThread(self._give_up, reactor)
            time.sleep(_EXIT_GRACE)
        _flush()
        os._exit(_EXIT_STATUS)

    def _give_up(self, reactor: Any) -> None:
        """On the reactor's thread: the run fails, saying why, and the reactor stops."""
        if (recorder := self.crawler.get_extension(RunRecorder)) is not None:
            recorder.fail(
                FINISH_REASON, f"it did not end within SHUTDOWN_TIMEOUT ({self.timeout:g} s)"
            )
        if reactor.running:
            reactor.stop()


def _is_scrapy_shutdown(handler: object) -> bool:
    return isinstance(getattr(handler, "__self__", None), CrawlerProcessBase)


def _flush() -> None:
    # os._exit writes out nothing still buffered; what is there is the reason why.
    streams = [*logging.getLogger().handlers, sys.stdout, sys.stderr]
    for stream in streams:
        with contextlib.suppress(Exception):  # exiting anyway: nothing more to report
            stream.flush()
