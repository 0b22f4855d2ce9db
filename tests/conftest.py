"""Shared test fixtures.

Databases: `sqlite_url` and `pg_url` give a fresh, empty database each; `db_url`
runs a test once on each, and `engine` and `session` open it migrated.
PostgreSQL comes from the server named by TEST_DATABASE_URL (superuser, trust
auth); when it cannot be reached its tests are skipped, except on CI (CI=true),
where that is a failure. `redis_url` is the Redis server named by TEST_REDIS_URL
(database 15 by default), skipped or failed the same way.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from storage.db import open_database, session_factory
from tests.support.reconcile import QUERY, unreconciled, unreconciled_in_sqlite

PG_SERVER_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_SERVER_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'archive.sqlite3'}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Engine]:
    """An autocommit connection to the test server, for CREATE and DROP DATABASE."""
    engine = create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        shown = engine.url.render_as_string(hide_password=True)
        first_line = str(exc.orig).strip().splitlines()[0]
        reason = f"PostgreSQL test server {shown} unreachable (set TEST_DATABASE_URL): {first_line}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    yield engine
    engine.dispose()


@contextmanager
def fresh_pg_database(pg_server: Engine) -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex}"
    with pg_server.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(PG_SERVER_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
        problems = _unreconciled_in_postgres(url)
        assert not problems, f"runs that say finished and do not add up: {problems}"
    finally:
        with pg_server.connect() as connection:
            # FORCE ends connections a failed test may have left open.
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_server: Engine) -> Iterator[str]:
    with fresh_pg_database(pg_server) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis server's URL; tests keep their keys apart (a CRAWL_ID each)."""
    client = redis.Redis.from_url(REDIS_SERVER_URL, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = f"Redis test server {REDIS_SERVER_URL} unreachable (set TEST_REDIS_URL): {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    finally:
        client.close()
    return REDIS_SERVER_URL


_URL_FIXTURES = {"sqlite": "sqlite_url", "postgresql": "pg_url"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database URL; tests using it run once on SQLite and once on PostgreSQL."""
    url: str = request.getfixturevalue(_URL_FIXTURES[request.param])
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated, empty archive database (on SQLite and on PostgreSQL, as db_url)."""
    engine = open_database(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_factory(engine)() as session:
        yield session


def _unreconciled_in_postgres(url: str) -> list[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return unreconciled(connection.execute(text(QUERY)).all())
    except ProgrammingError:  # no runs table, or one from before runs were accounted
        return []
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def _runs_add_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After each test: every SQLite archive it wrote holds only runs that add up (the
    PostgreSQL ones are checked as their database is dropped)."""
    started = time.time()
    yield
    problems = []
    for path in tmp_path_factory.getbasetemp().rglob("*.sqlite3"):
        if path.stat().st_mtime >= started - 1:
            problems += unreconciled_in_sqlite(path)
    assert not problems, f"runs that say finished and do not add up: {problems}"
