"""Engines, connection checks and schema migrations for the archive database.

`open_database(url)` is the one call the pipelines and commands need; the other
functions are its steps, public for tests and tools that want only one of them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, func, make_url, select
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from storage.errors import StorageError
from storage.urls import hide_password

__all__ = [
    "StorageError",
    "check_connection",
    "describe_error",
    "make_engine",
    "migrate",
    "open_database",
    "session_factory",
]

# Long enough for a crawl, an export and a scheduled run to queue behind each other.
_SQLITE_BUSY_TIMEOUT_MS = 30_000
# Shared by every process that migrates this schema; the value itself is arbitrary.
_MIGRATION_LOCK_KEY = 0x796C777432325F31


def make_engine(url: str) -> Engine:
    """Create an engine for `url`; for SQLite files, create their folder too."""
    try:
        parsed = make_url(url)
        is_sqlite = parsed.get_backend_name() == "sqlite"
        engine = create_engine(parsed, pool_pre_ping=not is_sqlite, json_serializer=_json_dumps)
    except (ArgumentError, ValueError) as exc:
        # ArgumentError also means an unknown dialect or driver; ValueError, a bad port.
        raise StorageError(f"malformed DATABASE_URL {_display(url)!r}: {_reason(exc)}") from exc
    except ImportError as exc:
        raise StorageError(
            f"cannot use {_display(parsed)}: its database driver is not installed ({exc})"
        ) from exc
    if is_sqlite:
        _create_sqlite_folder(parsed)
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
    return engine


def check_connection(engine: Engine) -> None:
    """Connect once, so that a wrong URL or a server that is down fails early and clearly."""
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        raise StorageError(f"cannot connect to {_display(engine.url)}: {_reason(exc)}") from exc


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest revision; safe when many processes start at once."""
    # Alembic is imported only when a database is opened, not by every command.
    from alembic import command  # noqa: PLC0415
    from alembic.config import Config  # noqa: PLC0415
    from alembic.util import CommandError  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", "storage:migrations")
    try:
        with engine.begin() as connection:
            _lock_schema(connection)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except (DBAPIError, CommandError) as exc:
        raise StorageError(f"cannot migrate {_display(engine.url)}: {_reason(exc)}") from exc


def session_factory(engine: Engine, *, readonly: bool = False) -> sessionmaker[Session]:
    """Sessions on ``engine``. On SQLite a session's transaction takes the write lock
    when it begins, unless it is ``readonly`` (an export, a report): see _begin_sqlite."""
    bind = engine.execution_options(readonly=True) if readonly else engine
    # Stored objects stay readable after commit, e.g. to report what was saved.
    return sessionmaker(bind, expire_on_commit=False)


def open_database(url: str) -> Engine:
    """Connect to `url` and bring its schema up to date: ready for sessions."""
    engine = make_engine(url)
    try:
        check_connection(engine)
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _create_sqlite_folder(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or url.query.get("uri"):
        return
    folder = Path(database).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create folder {folder}: {exc.strerror}") from exc


def _configure_sqlite(dbapi_connection: Any, _connection_record: Any) -> None:
    # WAL lets readers (exports) run while a crawl writes; busy_timeout makes
    # concurrent writers wait for each other instead of failing with
    # "database is locked". The driver's own transaction handling is switched off:
    # _begin_sqlite begins every transaction itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    """Begin a writing transaction with the write lock taken at once (IMMEDIATE).

    A transaction that reads first and writes later would otherwise hold a snapshot
    that another writer's commit makes stale, and SQLite then fails its first write
    with "database is locked" at once, whatever the busy timeout. Taking the lock
    first makes writers wait their turn, and what a writer reads (which URLs are
    stored, which articles are originals) is what it writes against. Read-only
    sessions begin an ordinary transaction and never block a writer."""
    readonly = connection.get_execution_options().get("readonly", False)
    connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    """Put the database in WAL mode, which the file then keeps for good.

    When connections race to switch a new database, SQLite answers "database is
    locked" at once instead of applying busy_timeout, so wait for the turn here.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY  # any extended BUSY code
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _lock_schema(connection: Connection) -> None:
    """Make concurrent migrations take turns until the surrounding transaction ends.

    Otherwise processes started together all find the schema missing, all try
    to create it, and all but one fail.
    """
    # SQLite: every transaction begins with the write lock taken (_begin_sqlite).
    if connection.dialect.name == "postgresql":
        # The transaction-scoped variant is released by the commit or rollback
        # that ends the upgrade, even if the upgrade fails.
        connection.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))


def _json_dumps(value: Any) -> str:
    # Chinese tags stay readable to anyone querying the database directly.
    return json.dumps(value, ensure_ascii=False)


def _display(url: str | URL) -> str:
    """`url` as fit to print: never with its password."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return hide_password(url)  # a string that may not parse: redacted by pattern


def describe_error(exc: BaseException) -> str:
    """An error in one line: its kind, and the first line of what the driver (or
    SQLAlchemy) said."""
    if isinstance(exc, StorageError):
        return str(exc)
    return f"{type(exc).__name__}: {_reason(exc)}"


def _reason(exc: BaseException) -> str:
    """The first line of what the driver (or SQLAlchemy) said went wrong."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
