"""Retries that wait: Retry-After when the server sends one, exponential backoff with
jitter otherwise. The wait is an asynchronous sleep, so other requests carry on."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from scrapy import Request
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Response
from scrapy.settings import BaseSettings
from scrapy.utils.asyncio import sleep
from scrapy.utils.response import response_status_message

logger = logging.getLogger(__name__)


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
    """

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.backoff_base = settings.getfloat("RETRY_BACKOFF_BASE", 1.0)
        self.backoff_max = settings.getfloat("RETRY_BACKOFF_MAX", 60.0)
        self.retry_after_max = settings.getfloat("RETRY_AFTER_MAX", 600.0)

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
