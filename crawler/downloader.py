"""Scrapy's downloader, with its per-host concurrency kept when there is no delay.

Scrapy 2.19 starts each download of a slot's queue as a task, and the task marks its
request as transferring only once it runs. With ``DOWNLOAD_DELAY = 0``, the loop that
hands out the queue sees the slot still free and hands out every queued request at
once, past ``CONCURRENT_REQUESTS_PER_DOMAIN``. With a delay it hands out one per delay,
so the project's defaults were never affected; a user who turns the delay off still
gets the concurrency they set. The fix marks each request as transferring before its
task starts (the task marks it again, a set, and unmarks it when done).

The method is a copy of Scrapy's private ``Downloader._process_queue`` with that one
line added, so Scrapy is pinned below its next minor release (pyproject.toml), and
tests/test_politeness.py fails when the upstream method changes shape, or when Scrapy's
own downloader stops sending the burst this works around. Upstream, scrapy/scrapy#6931
(a throttler in the engine that enforces each slot's concurrency, open as of 2026-12)
would replace this code; scrapy/scrapy#6476 describes the burst with no delay.
"""

from __future__ import annotations

from time import monotonic

from scrapy.core.downloader import Downloader as ScrapyDownloader
from scrapy.core.downloader import Slot
from scrapy.utils.asyncio import call_later
from scrapy.utils.defer import _schedule_coro


class Downloader(ScrapyDownloader):
    def _process_queue(self, slot: Slot) -> None:
        # Scrapy's own, but for the line marked below.
        if slot.latercall:
            return
        now = monotonic()
        delay = slot.download_delay()
        if delay:
            penalty = delay - now + slot.lastseen
            if penalty > 0:
                slot.latercall = call_later(penalty, self._latercall, slot)
                return
        while slot.queue and slot.free_transfer_slots() > 0:
            slot.lastseen = now
            request, queue_dfd = slot.queue.popleft()
            slot.transferring.add(request)  # the fix: counted before its task runs
            _schedule_coro(self._wait_for_download(slot, request, queue_dfd))
            if delay:  # one request per delay
                self._process_queue(slot)
                break
