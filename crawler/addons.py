"""Offline mode: with ``OFFLINE_MIRROR`` set, the same spider runs on a saved mirror."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scrapy.exceptions import UsageError
from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings

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
            raise UsageError(f"OFFLINE_MIRROR {mirror!r} is not a directory")

    def update_settings(self, settings: BaseSettings) -> None:
        self.check(settings)
        if not settings.get("OFFLINE_MIRROR"):
            return
        _default(settings, "DOWNLOAD_HANDLERS", {"http": _HANDLER, "https": _HANDLER})
        _default(settings, "AUTOTHROTTLE_ENABLED", False)
        _default(settings, "DOWNLOAD_DELAY", 0)
        _default(settings, "CONCURRENT_REQUESTS_PER_DOMAIN", settings.getint("CONCURRENT_REQUESTS"))
        # Nothing is fetched from the web: the mirror itself is the raw copy.
        _default(settings, "WARC_ENABLED", False)


def _default(settings: BaseSettings, name: str, value: Any) -> None:
    # Addon priority ranks below the project's settings.py, which holds the polite
    # defaults this mode replaces; a value given on the command line still wins.
    if (settings.getpriority(name) or 0) <= SETTINGS_PRIORITIES["project"]:
        settings.set(name, value, "project")
