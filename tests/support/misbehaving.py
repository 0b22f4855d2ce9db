"""Item pipelines that misbehave on purpose, for the tests of what a run reports and of
the extraction pool."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from scrapy.exceptions import DropItem


class DropAfterStore:
    """Set after the storage pipeline, it drops the first two items the store already
    took: the spider's side and the store's no longer agree."""

    def __init__(self) -> None:
        self.dropped = 0

    def process_item(self, item: Any) -> Any:
        if self.dropped < 2:
            self.dropped += 1
            raise DropItem("dropped after it was stored")
        return item


# A phrase no real article holds: the page that carries it makes its reader misbehave.
MARKER = "此段落用于测试读取进程的故障"


class CrashOnMarker:
    """Run where pages are read (EXTRACT_PIPELINES): the worker dies, as one that
    segfaults in a C library would, on the article whose body holds MARKER."""

    def process_item(self, item: Any) -> Any:
        if MARKER in (item.body or ""):
            os.kill(os.getpid(), signal.SIGKILL)
        return item


class HangOnMarker:
    """The worker never answers for the article whose body holds MARKER."""

    def process_item(self, item: Any) -> Any:
        if MARKER in (item.body or ""):
            time.sleep(3600)
        return item


class RaiseOnMarker:
    """The reading raises on the article whose body holds MARKER."""

    def process_item(self, item: Any) -> Any:
        if MARKER in (item.body or ""):
            raise ValueError("a reader that fails")
        return item
