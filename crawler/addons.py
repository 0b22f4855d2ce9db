"""Add-ons that decide settings from others: offline mode (``OFFLINE_MIRROR``, the same
spider on a saved mirror) and the crawl rate (``CRAWL_RATE``)."""

from __future__ import annotations

from pathlib import Path

from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings

from crawler.errors import UsageFailure
from crawler.settings_util import default

_HANDLER = "crawler.handlers.mirror.MirrorDownloadHandler"


class OfflineMirror:
    """Routes http and https to the mirror handler. No host is contacted, so the
    politeness delays that protect the site are switched off too, and so is the WARC
    archive, unless the user set them on the command line."""

    @staticmethod
    def check(settings: BaseSettings) -> None:
        """Fail before the crawl starts, not with an error per request."""
        mirror = settings.get("OFFLINE_MIRROR")
        if mirror and not Path(mirror).is_dir():
            raise UsageFailure(f"OFFLINE_MIRROR {mirror!r} is not a directory")

    def update_settings(self, settings: BaseSettings) -> None:
        self.check(settings)
        if not settings.get("OFFLINE_MIRROR"):
            return
        default(settings, "DOWNLOAD_HANDLERS", {"http": _HANDLER, "https": _HANDLER})
        default(settings, "AUTOTHROTTLE_ENABLED", False)
        default(settings, "DOWNLOAD_DELAY", 0)
        default(settings, "CONCURRENT_REQUESTS_PER_DOMAIN", settings.getint("CONCURRENT_REQUESTS"))
        # Nothing is fetched from the web: the mirror itself is the raw copy.
        default(settings, "WARC_ENABLED", False)
        # A mirror's robots.txt Crawl-delay was meant for the site, not for a folder.
        default(settings, "ROBOTSTXT_CRAWL_DELAY_MAX", 0)


class CrawlRate:
    """``CRAWL_RATE``: the most requests per second to any one host, turned into
    Scrapy's own settings: ``DOWNLOAD_DELAY = 1 / CRAWL_RATE`` without jitter, and one
    request in flight per host. AutoThrottle never goes below ``DOWNLOAD_DELAY``, so it
    may slow down but never exceeds the rate. A concurrency or jitter given on the
    command line stands, and so does a longer ``DOWNLOAD_DELAY``; a shorter one is
    raised."""

    @staticmethod
    def check(settings: BaseSettings) -> float | None:
        """CRAWL_RATE as a number, None when unset; a UsageFailure when it is no rate."""
        given = settings.get("CRAWL_RATE")
        if given is None or given == "":
            return None
        try:
            rate = float(given)
        except (TypeError, ValueError):
            rate = float("nan")
        if not rate > 0:  # NaN included
            raise UsageFailure(f"CRAWL_RATE must be requests per second above 0, got {given!r}")
        return rate

    def update_settings(self, settings: BaseSettings) -> None:
        rate = self.check(settings)
        if rate is None:
            return
        default(settings, "CONCURRENT_REQUESTS_PER_DOMAIN", 1)
        default(settings, "DOWNLOAD_DELAY_JITTER", 0.0)
        jitter = settings.getfloat("DOWNLOAD_DELAY_JITTER")
        if jitter >= 1:
            raise UsageFailure(f"CRAWL_RATE needs DOWNLOAD_DELAY_JITTER below 1, got {jitter}")
        # A slot waits DOWNLOAD_DELAY * (1 ± jitter): the shortest draw is the rate's gap.
        delay = 1 / rate / (1 - jitter)
        default(settings, "DOWNLOAD_DELAY", delay)
        _raise_to(settings, "DOWNLOAD_DELAY", delay)
        # AutoThrottle's maximum wins over its minimum: it must leave room for the delay.
        _raise_to(settings, "AUTOTHROTTLE_MAX_DELAY", delay)


def _raise_to(settings: BaseSettings, name: str, value: float) -> None:
    # The rate is a limit: a smaller value, wherever it was given, does not lift it.
    if settings.getfloat(name) < value:
        priority = max(settings.getpriority(name) or 0, SETTINGS_PRIORITIES["project"])
        settings.set(name, value, priority)
