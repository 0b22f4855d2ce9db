"""The archive as a distributed crawl's workers see it: the spider's questions, and
the runs of workers found dead."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import update
from sqlalchemy.orm import Session

from crawler.archive import Archive
from storage.models import Run


def _interrupt(session: Session, run_ids: list[int]) -> None:
    session.execute(
        update(Run).where(Run.id.in_(run_ids), Run.status == "running").values(status="interrupted")
    )


class CrawlArchive(Archive):
    async def interrupt_runs(self, run_ids: Iterable[int]) -> None:
        """Mark the runs of dead workers interrupted, as a crawl on its own marks the
        runs it finds with their process gone."""
        if wanted := list(run_ids):
            await self._run(self._write, _interrupt, wanted)
