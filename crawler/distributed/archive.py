"""The archive as a distributed crawl's workers see it: the spider's questions, and
the runs of workers found dead."""

from __future__ import annotations

from collections.abc import Iterable

from crawler.archive import Archive
from storage.runs import interrupt_runs


class CrawlArchive(Archive):
    async def interrupt_runs(self, run_ids: Iterable[int]) -> None:
        """Mark the runs of dead workers interrupted, as a crawl on its own marks the
        runs it finds with their process gone."""
        if wanted := list(run_ids):
            await self._run(self._write, interrupt_runs, wanted)
