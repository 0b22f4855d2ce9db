"""Runs: what each crawl did, one at a time per archive, and how far incremental crawls
have read each category."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, Integer, cast, func, literal, select, update
from sqlalchemy.orm import Session

from storage.models import CategoryProgress, Run

# Shared by every process that crawls into this archive; the value itself is arbitrary.
_RUN_LOCK_KEY = 0x796C777432325F33
# The first half of a run's life lock on PostgreSQL (its id is the second).
_RUN_LIFE_KEY = 0x796C7774


class RunLock:
    """One crawl at a time on an archive. PostgreSQL: a session-level advisory lock on
    a connection of its own; SQLite: an exclusive lock on a file next to the database.
    Either is released by the operating system or the server when the process dies,
    even by kill -9, so a crashed run never blocks the next one."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Connection | None = None
        self._file: IO[bytes] | None = None

    @property
    def where(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def acquire(self) -> bool:
        """Take the lock if it is free; False when another run holds it."""
        match self.engine.dialect.name:
            case "postgresql":
                # Autocommit: the lock outlives transactions, so none is kept open.
                connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                taken = connection.scalar(select(func.pg_try_advisory_lock(_RUN_LOCK_KEY)))
                if not taken:
                    connection.close()
                    return False
                self._connection = connection
            case "sqlite" if self.engine.url.database not in {None, "", ":memory:"}:
                # Held open for the whole run: closing it releases the lock.
                handle = Path(f"{self.engine.url.database}.run-lock").open("ab")  # noqa: SIM115
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    return False
                self._file = handle
        return True

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # a lost connection has released it
                self._connection.scalar(select(func.pg_advisory_unlock(_RUN_LOCK_KEY)))
            self._connection.close()
            self._connection = None
        if self._file is not None:
            self._file.close()  # closing the file releases the lock
            self._file = None


class RunLife:
    """Held by a run for as long as its process lives, so that a later run can tell a
    run still marked running whose process is gone (killed with -9, or its machine
    lost) from one that is alive. PostgreSQL: a session-level advisory lock on a
    connection of its own, keyed by the run's id; SQLite: an exclusive lock on a file
    named after the run in a folder next to the database. Either is released by the
    server or the operating system when the process dies."""

    def __init__(self, engine: Engine, run_id: int) -> None:
        self.engine = engine
        self.run_id = run_id
        self._connection: Connection | None = None
        self._file: IO[bytes] | None = None

    def hold(self) -> None:
        match self.engine.dialect.name:
            case "postgresql":
                connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                connection.scalar(select(func.pg_advisory_lock(*_life_key(self.run_id))))
                self._connection = connection
            case "sqlite" if (folder := _life_folder(self.engine)) is not None:
                folder.mkdir(exist_ok=True)
                handle = (folder / str(self.run_id)).open("ab")
                fcntl.flock(handle, fcntl.LOCK_EX)
                self._file = handle

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # a lost connection has released it
                self._connection.close()
            self._connection = None
        if self._file is not None:
            with contextlib.suppress(OSError):
                Path(self._file.name).unlink()
            self._file.close()
            self._file = None

    @staticmethod
    def alive(engine: Engine, run_id: int) -> bool:
        """Whether the process of run ``run_id`` still holds its life."""
        match engine.dialect.name:
            case "postgresql":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    key = _life_key(run_id)
                    if not conn.scalar(select(func.pg_try_advisory_lock(*key))):
                        return True
                    conn.scalar(select(func.pg_advisory_unlock(*key)))
                    return False
            case "sqlite" if (folder := _life_folder(engine)) is not None:
                try:
                    handle = (folder / str(run_id)).open("rb")
                except FileNotFoundError:
                    return False
                with handle:
                    try:
                        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    except BlockingIOError:
                        return True
                with contextlib.suppress(OSError):
                    (folder / str(run_id)).unlink()
                return False
        return True  # an in-memory database lives and dies with its one process


def _life_key(run_id: int) -> tuple[Any, Any]:
    # The two-key form takes two 32-bit integers: say so, whatever the driver would send.
    return cast(literal(_RUN_LIFE_KEY), Integer), cast(literal(run_id), Integer)


def _life_folder(engine: Engine) -> Path | None:
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(f"{database}.runs")


@dataclass(frozen=True, slots=True)
class RunCounts:
    """What a run did: each article it handled under exactly one outcome, so that
    ``articles_handled`` is the sum of new, updated, unchanged, outranked, gone,
    dropped and unsaved."""

    articles_new: int = 0
    articles_updated: int = 0
    articles_unchanged: int = 0
    articles_duplicate: int = 0
    """Of the new and updated articles, those that are reprints of another."""
    articles_gone: int = 0
    articles_outranked: int = 0
    articles_unsaved: int = 0
    articles_spilled: int = 0
    articles_handled: int = 0
    dropped: Mapping[str, int] | None = None
    errors: int = 0
    requests: int = 0
    bytes: int = 0
    health: Mapping[str, float] | None = None


def start_run(
    session: Session, *, mode: str, started_at: datetime, crawl_id: str | None = None
) -> int:
    """``crawl_id``: the distributed crawl the run is a worker of, None for one alone."""
    run = Run(
        mode=mode,
        crawl_id=crawl_id,
        status="running",
        started_at=started_at,
        host=os.uname().nodename,
        pid=os.getpid(),
        articles_new=0,
        articles_updated=0,
        articles_unchanged=0,
        articles_duplicate=0,
        articles_gone=0,
        dropped={},
        errors=0,
        requests=0,
        bytes=0,
        health={},
    )
    session.add(run)
    session.flush()
    return run.id


def finish_run(
    session: Session,
    run_id: int,
    *,
    status: str,
    finished_at: datetime,
    finish_reason: str | None,
    counts: RunCounts,
) -> None:
    values: dict[str, Any] = {
        name: getattr(counts, name) for name in RunCounts.__dataclass_fields__
    }
    values["dropped"] = dict(counts.dropped or {})
    values["health"] = dict(counts.health or {})
    session.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(status=status, finished_at=finished_at, finish_reason=finish_reason, **values)
    )


def interrupt_dead_runs(session: Session, engine: Engine, *, besides: int) -> list[int]:
    """Runs still marked running whose process is gone (see RunLife), other than run
    ``besides``: they are marked interrupted. Returns their ids."""
    running = session.scalars(select(Run.id).where(Run.status == "running", Run.id != besides))
    dead = [run_id for run_id in running if not RunLife.alive(engine, run_id)]
    interrupt_runs(session, dead)
    return dead


def interrupt_runs(session: Session, run_ids: Iterable[int]) -> None:
    """Mark the runs interrupted, those still marked running: their process died."""
    if wanted := list(run_ids):
        session.execute(
            update(Run)
            .where(Run.id.in_(wanted), Run.status == "running")
            .values(status="interrupted")
        )


def recent_runs(session: Session, *, before: int, limit: int = 5) -> list[Run]:
    """The last finished runs before run ``before``, newest first."""
    return list(
        session.scalars(
            select(Run)
            .where(Run.id < before, Run.status == "finished")
            .order_by(Run.id.desc())
            .limit(limit)
        )
    )


def begin_reading(session: Session, category_url: str, at: datetime) -> datetime | None:
    """A crawl that started at ``at`` begins reading the category's list. Returns the
    start of the earliest earlier crawl whose reading did not complete (None if the
    last one did): articles first seen since then may hide unread pages below them.
    Several workers of one crawl share its start, and count as one reading.

    The start is kept to the whole second: an article's first sighting may be its
    WARC-Date, which has no fraction, and an article fetched in the run's first second
    must not pass for one archived before the run."""
    at = at.replace(microsecond=0)
    progress = session.get(CategoryProgress, category_url, with_for_update=True)
    if progress is None:
        session.add(CategoryProgress(url=category_url, pending_since=at))
        return None
    pending = progress.pending_since
    if pending is None:
        progress.pending_since = at
    return pending if pending is not None and pending < at else None


def finish_reading(session: Session, category_urls: Iterable[str]) -> None:
    """The categories were read down to known articles, and all they listed is stored."""
    session.execute(
        update(CategoryProgress)
        .where(CategoryProgress.url.in_(list(category_urls)))
        .values(pending_since=None)
    )
