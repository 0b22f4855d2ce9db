"""robots.txt obeyed, its Crawl-delay included.

Scrapy's RobotsTxtMiddleware decides what may be fetched; this subclass also reads the
Crawl-delay that the host's robots.txt gives our User-Agent and holds the host's
download slot to it, so that no two requests to the host are sent closer together.
AutoThrottle may lower a slot's delay after any response; the Crawl-delay is a floor it
cannot go under.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Request, signals
from scrapy.core.downloader import Downloader, Slot
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.http import Response
from scrapy.robotstxt import RobotParser
from scrapy.utils.httpobj import urlparse_cached

logger = logging.getLogger(__name__)


def narrowed_jitter(jitter: float, delay: float, floor: float) -> float:
    """The largest jitter, up to ``jitter``, whose shortest draw of ``delay`` is still
    ``floor``: a slot waits ``delay * (1 ± jitter)`` between requests."""
    return max(0.0, min(jitter, 1 - floor / delay))


class CrawlDelayRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Scrapy's RobotsTxtMiddleware (same settings and meta keys), plus the Crawl-delay:

    - ``ROBOTSTXT_CRAWL_DELAY_MAX``: the longest Crawl-delay honoured; a robots.txt
      asking for more gets this, with a warning.

    ``ROBOTSTXT_OBEY = False`` switches it off with the rest of robots.txt.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.crawl_delay_max = crawler.settings.getfloat("ROBOTSTXT_CRAWL_DELAY_MAX")
        self._jitter = crawler.settings.getfloat("DOWNLOAD_DELAY_JITTER")
        self._floors: dict[str, float] = {}  # netloc: seconds between requests
        self._own_jitter: dict[str, float] = {}  # slot key: its jitter before any floor
        crawler.signals.connect(self._robots_parsed, signal=signals.robots_parsed)
        # Middlewares are built after the extensions, so this runs after AutoThrottle
        # has adjusted the slot, and before the slot sends its next queued request.
        crawler.signals.connect(self._response_downloaded, signal=signals.response_downloaded)

    async def process_request(self, request: Request) -> None:  # type: ignore[override]
        await super().process_request(request)
        self._hold_slot(request)

    def _crawl_delay(self, robots: RobotParser, request: Request) -> float | None:
        """The Crawl-delay for our User-Agent, as Scrapy matches it for Allow/Disallow."""
        user_agent = self._robotstxt_useragent or request.headers.get(
            b"User-Agent", self._default_useragent
        )
        return robots.crawl_delay(user_agent) if user_agent is not None else None

    def _robots_parsed(self, robotparser: RobotParser, request: Request) -> None:
        delay = self._crawl_delay(robotparser, request)
        if not delay or delay <= 0:
            return
        netloc = urlparse_cached(request).netloc
        if delay > self.crawl_delay_max:
            logger.warning(
                "robots.txt of %s asks for a Crawl-delay of %gs; "
                "using ROBOTSTXT_CRAWL_DELAY_MAX (%gs)",
                netloc,
                delay,
                self.crawl_delay_max,
            )
            delay = self.crawl_delay_max
        if delay <= 0:  # ROBOTSTXT_CRAWL_DELAY_MAX = 0: Crawl-delay is not honoured
            return
        self._floors[netloc] = delay
        logger.info("Crawl-delay of %s: at least %gs between requests", netloc, delay)
        self._hold_slot(request)

    def _response_downloaded(self, response: Response, request: Request) -> None:
        self._hold_slot(request)

    def _hold_slot(self, request: Request) -> None:
        floor = self._floors.get(urlparse_cached(request).netloc)
        if floor is None:
            return
        downloader: Downloader = self.crawler.engine.downloader
        key = downloader.get_slot_key(request)
        slot = downloader.slots.get(key)
        if slot is None:
            self._configure_new_slot(downloader, key, floor)
        else:
            self._raise_to_floor(key, slot, floor)

    def _raise_to_floor(self, key: str, slot: Slot, floor: float) -> None:
        # The jitter is narrowed rather than the delay raised further, so a host that
        # asks for N seconds gets N on average when AutoThrottle would go faster; it
        # widens again, up to the slot's own, when AutoThrottle slows down.
        own_jitter = self._own_jitter.setdefault(key, slot.jitter)
        slot.delay = max(slot.delay, floor)
        slot.jitter = narrowed_jitter(own_jitter, slot.delay, floor)

    def _configure_new_slot(self, downloader: Downloader, key: str, floor: float) -> None:
        # The downloader reads these when it creates the slot, and again if it drops an
        # idle slot and creates it anew.
        given: dict[str, Any] = downloader.per_slot_settings.get(key, {})
        delay = max(float(given.get("delay", 0.0)), floor)
        own_jitter = self._own_jitter.setdefault(key, float(given.get("jitter", self._jitter)))
        downloader.per_slot_settings[key] = {
            **given,
            "delay": delay,
            "jitter": narrowed_jitter(own_jitter, delay, floor),
        }
