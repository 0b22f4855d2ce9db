"""Item pipelines that misbehave on purpose, for the tests of what a run reports."""

from __future__ import annotations

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
