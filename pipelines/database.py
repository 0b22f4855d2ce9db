"""The archive's database as the crawl's components share it: one per process.

One engine for ``DATABASE_URL``, its schema brought up to date once, one writer thread
(so that SQLite sees a single writer per process and the reactor never waits on a
write) and one reader thread (so that the spider's questions do not queue behind a
batch being written). Every component reaches it through the storage pipeline,
``crawler.get_item_pipeline(DatabasePipeline).database``, rather than opening its own;
and it is the one place that knows whether the database has failed, and why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from storage.db import StorageError, describe_error, open_database, session_factory

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ArchiveDatabase:
    def __init__(self, url: str) -> None:
        self.url = url
        self.failed: str | None = None
        """Why the database could not be used, once it could not: the first failure."""
        self._engine: Engine | None = None
        self._opening: asyncio.Future[Engine] | None = None
        self._writes: sessionmaker[Session] | None = None
        self._reads: sessionmaker[Session] | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-reader")

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise StorageError(self.failed or "the archive database is not open")
        return self._engine

    @property
    def where(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    async def open(self) -> Engine:
        """Connect and migrate, once: every caller awaits the same opening. Raises
        StorageError, the same one to every caller, when that fails."""
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        return await asyncio.shield(self._opening)

    async def _open(self) -> Engine:
        try:
            engine = await self._in(self._writer, open_database, self.url)
        except StorageError as exc:
            self.fail(str(exc))
            raise
        self._engine = engine
        self._writes = session_factory(engine)
        self._reads = session_factory(engine, readonly=True)
        return engine

    async def write(self, func: Callable[..., T], *args: Any) -> T:
        """``func(session, *args)`` in one writing transaction, on the writer thread."""
        await self.open()
        return await self._guarded(self._writer, self._in_transaction, func, *args)

    async def read(self, func: Callable[..., T], *args: Any) -> T:
        """``func(session, *args)`` in a read-only session, on the reader thread."""
        await self.open()
        return await self._guarded(self._reader, self._in_session, func, *args)

    async def call(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` on the writer thread, for work that manages its own
        connections and transactions (the run lock, a batch with its own retries).
        Its errors are the caller's to handle."""
        await self.open()
        return await self._in(self._writer, func, *args)

    def fail(self, message: str) -> None:
        """Remember the first failure, and say it once."""
        if self.failed is None:
            self.failed = message
            logger.error("Database error: %s", message)

    async def close(self) -> None:
        if self._opening is not None and self._engine is not None:
            await self._in(self._writer, self._engine.dispose)
        self._writer.shutdown(wait=False)
        self._reader.shutdown(wait=False)

    def _in_transaction(self, func: Callable[..., T], *args: Any) -> T:
        assert self._writes is not None
        with self._writes.begin() as session:
            return func(session, *args)

    def _in_session(self, func: Callable[..., T], *args: Any) -> T:
        assert self._reads is not None
        with self._reads() as session:
            return func(session, *args)

    async def _guarded(self, executor: ThreadPoolExecutor, func: Callable[..., T], *args: Any) -> T:
        """A database error is said once, as StorageError, and remembered."""
        try:
            return await self._in(executor, func, *args)
        except DBAPIError as exc:
            message = describe_error(exc)
            self.fail(message)
            raise StorageError(message) from exc

    @staticmethod
    async def _in(executor: ThreadPoolExecutor, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, func, *args)
