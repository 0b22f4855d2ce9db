"""The archive as the spider sees it: which articles it holds, and whether the last
reading of each category's list completed. It asks the process's one archive database
(the storage pipeline's). A database that fails stops the crawl with its reason, said
once: the spider cannot tell what is new without it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider
from sqlalchemy.orm import Session

from pipelines.database import ArchiveDatabase
from pipelines.store import DatabasePipeline
from storage.db import StorageError
from storage.repository import KnownArticle, iter_provenance, known_after, known_articles
from storage.runs import begin_reading, finish_reading, interrupt_runs

T = TypeVar("T")


class Archive:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._database: ArchiveDatabase | None = None

    @property
    def database(self) -> ArchiveDatabase:
        if self._database is None:
            store = self.crawler.get_item_pipeline(DatabasePipeline)
            if store is None:
                raise RuntimeError("the archive needs the storage pipeline (DatabasePipeline)")
            self._database = store.database
        return self._database

    async def open(self) -> None:
        await self._answer(self.database.open())

    async def known(self, urls: Iterable[str]) -> dict[str, KnownArticle]:
        """What the archive holds of the articles at ``urls`` (absent: not archived)."""
        wanted = list(urls)
        if not wanted:
            return {}
        return await self._answer(self.database.read(known_articles, wanted))

    async def every_article(self, chunk: int = 1000) -> AsyncIterator[tuple[str, KnownArticle]]:
        """Every archived article, a chunk at a time, in the order they were stored."""
        after = 0
        while rows := await self._answer(self.database.read(_known_after, after, chunk)):
            for row_id, url, known in rows:
                after = row_id
                yield url, known

    async def begin_reading(self, category_url: str, at: datetime) -> datetime | None:
        return await self._answer(self.database.write(begin_reading, category_url, at))

    async def finish_reading(self, category_urls: Iterable[str]) -> None:
        await self._answer(self.database.write(finish_reading, list(category_urls)))

    async def interrupt_runs(self, run_ids: Iterable[int]) -> None:
        """Mark the runs of dead workers of a distributed crawl interrupted."""
        if wanted := list(run_ids):
            await self._answer(self.database.write(interrupt_runs, wanted))

    async def provenance(self) -> list[tuple[str, datetime, list[dict[str, Any]]]]:
        """(url, fetched_at, provenance) of every archived article, in the order they
        were stored: where the raw bytes behind each stored version are kept."""
        return await self._answer(self.database.read(_provenance))

    @staticmethod
    async def _answer(question: Awaitable[T]) -> T:
        try:
            return await question
        except StorageError as exc:
            raise CloseSpider("database_error") from exc


def _known_after(session: Session, after: int, chunk: int) -> list[tuple[int, str, KnownArticle]]:
    return known_after(session, after, limit=chunk)


def _provenance(session: Session) -> list[tuple[str, datetime, list[dict[str, Any]]]]:
    return [tuple(row) for row in iter_provenance(session)]  # type: ignore[misc]
