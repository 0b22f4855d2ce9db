"""The archive as the spider sees it: which articles it holds, and whether the last
reading of each category's list completed. Every call runs on a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from storage.db import open_database, session_factory
from storage.repository import KnownArticle, known_after, known_articles
from storage.runs import begin_reading, finish_reading

T = TypeVar("T")


class Archive:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._engine: Engine | None = None
        self._reads: sessionmaker[Session] | None = None
        self._writes: sessionmaker[Session] | None = None
        # One thread: the spider's questions are answered in the order it asks them.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive")

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    async def open(self) -> None:
        self._engine = await self._run(open_database, self.database_url)
        self._reads = session_factory(self._engine, readonly=True)
        self._writes = session_factory(self._engine)

    async def close(self) -> None:
        if self._engine is not None:
            await self._run(self._engine.dispose)
        self._executor.shutdown(wait=False)

    async def known(self, urls: Iterable[str]) -> dict[str, KnownArticle]:
        """What the archive holds of the articles at ``urls`` (absent: not archived)."""
        wanted = list(urls)
        if not wanted:
            return {}
        return await self._run(self._known, wanted)

    def _known(self, urls: list[str]) -> dict[str, KnownArticle]:
        assert self._reads is not None
        with self._reads() as session:
            return known_articles(session, urls)

    async def every_article(self, chunk: int = 1000) -> AsyncIterator[tuple[str, KnownArticle]]:
        """Every archived article, a chunk at a time, in the order they were stored."""
        after = 0
        while rows := await self._run(self._known_after, after, chunk):
            for row_id, url, known in rows:
                after = row_id
                yield url, known

    def _known_after(self, after: int, chunk: int) -> list[tuple[int, str, KnownArticle]]:
        assert self._reads is not None
        with self._reads() as session:
            return known_after(session, after, limit=chunk)

    async def begin_reading(self, category_url: str, at: datetime) -> datetime | None:
        return await self._run(self._write, begin_reading, category_url, at)

    async def finish_reading(self, category_urls: Iterable[str]) -> None:
        await self._run(self._write, finish_reading, list(category_urls))

    def _write(self, func: Callable[..., T], *args: Any) -> T:
        assert self._writes is not None
        with self._writes.begin() as session:
            return func(session, *args)
