"""Retries that wait: Retry-After when the server sends one, exponential backoff with
jitter otherwise. The wait is an asynchronous sleep, so other requests carry on.

A 429 or 503 says the whole host is overloaded, not just one URL: the host's download
slot is slowed down too, so every request to it waits, and AutoThrottle brings the
pace back up as successful responses return."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from scrapy import Request, signals
from scrapy.core.downloader import Downloader, Slot
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Response
from scrapy.settings import BaseSettings
from scrapy.utils.asyncio import sleep
from scrapy.utils.response import response_status_message

logger = logging.getLogger(__name__)

# The statuses by which a server asks the client to slow down.
SLOW_DOWN_CODES = frozenset({429, 503})


def parse_retry_after(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP-date)."""
    if value is None:
        return None
    text = (value.decode("latin-1") if isinstance(value, bytes) else value).strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's RetryMiddleware (same settings and meta keys), plus:

    - ``RETRY_BACKOFF_BASE``: first wait in seconds, doubled on every further retry;
    - ``RETRY_BACKOFF_MAX``: the longest backoff wait;
    - ``RETRY_AFTER_MAX``: the longest wait a Retry-After header can ask for.

    On a 429 or 503, retried or not, the host's slot sends no two requests closer
    together than the wait (at most ``RETRY_BACKOFF_MAX``); each time this slows a
    slot down it is logged and counted as ``retry/slot_backoff``.
    """

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.backoff_base = settings.getfloat("RETRY_BACKOFF_BASE")
        self.backoff_max = settings.getfloat("RETRY_BACKOFF_MAX")
        self.retry_after_max = settings.getfloat("RETRY_AFTER_MAX")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BackoffRetryMiddleware:
        middleware = super().from_crawler(crawler)
        # Without AutoThrottle nothing would bring a slowed host's pace back up: each
        # success halves the extra delay, down to what the slot had before.
        middleware.recover = not crawler.settings.getbool("AUTOTHROTTLE_ENABLED")
        middleware.delays_before = {}
        # The signal comes before the slot, freed by this response, sends its next
        # request; process_response would come after it.
        crawler.signals.connect(middleware.slow_down_host, signal=signals.response_downloaded)
        return middleware

    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response
    ) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        await self._wait(request, parse_retry_after(response.headers.get("Retry-After")))
        return retry

    async def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception
    ) -> Request | Response | None:
        retry = super().process_exception(request, exception)
        if isinstance(retry, Request):
            await self._wait(request, None)
        return retry

    def backoff(self, retries_so_far: int) -> float:
        """Equal-jitter exponential backoff: half fixed, half random, so that requests
        that failed together do not all come back together."""
        ceiling = min(self.backoff_max, self.backoff_base * 2.0**retries_so_far)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def host_wait(self, request: Request, response: Response) -> float:
        """How far apart the host's requests go after ``response``: the Retry-After
        wait, or the most the backoff before this request's retry can be; at most
        ``RETRY_BACKOFF_MAX``."""
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None:
            wait = min(retry_after, self.retry_after_max)
        else:
            wait = self.backoff_base * 2.0 ** request.meta.get("retry_times", 0)
        return min(wait, self.backoff_max)

    recover: bool
    delays_before: dict[str, float]

    def slow_down_host(self, response: Response, request: Request) -> None:
        downloader: Downloader = self.crawler.engine.downloader
        key = request.meta.get(Downloader.DOWNLOAD_SLOT)
        slot = downloader.slots.get(key) if key is not None else None
        if slot is None or key is None:
            return
        if response.status not in SLOW_DOWN_CODES:
            if self.recover and response.status < 400 and key in self.delays_before:
                before = self.delays_before[key]
                slot.delay = max(before, before + (slot.delay - before) / 2)
                if slot.delay - before < 0.01:
                    slot.delay = before
                    del self.delays_before[key]
            return
        wait = self.host_wait(request, response)
        delay_before = self.delays_before.get(key, slot.delay)
        if wait <= 0 or not _space_requests(slot, wait):
            return
        self.delays_before[key] = delay_before
        logger.info(
            "Slowing down %s after a %d: at least %gs between requests (slot delay %.2fs)",
            key,
            response.status,
            wait,
            slot.delay,
        )
        self.crawler.stats.inc_value("retry/slot_backoff")

    async def _wait(self, request: Request, retry_after: float | None) -> None:
        if retry_after is not None:
            delay, why = min(retry_after, self.retry_after_max), "Retry-After"
        else:
            delay, why = self.backoff(request.meta.get("retry_times", 0)), "backoff"
        if delay <= 0:
            return
        logger.debug("Waiting %.1fs (%s) before retrying %s", delay, why, request)
        self.crawler.stats.inc_value("retry/wait_ms", round(delay * 1000))
        await sleep(delay)


def _space_requests(slot: Slot, gap: float) -> bool:
    """Raise the slot's delay so that no two of its requests go out less than ``gap``
    seconds apart; False if they already do not."""
    changed = False
    if slot.jitter >= 1:  # a draw of the delay could be 0: no delay guarantees a gap
        slot.jitter, changed = 0.0, True
    # The slot waits delay * (1 ± jitter): the shortest draw must still be the gap.
    delay = gap / (1 - slot.jitter)
    if delay > slot.delay:
        slot.delay, changed = delay, True
    return changed
