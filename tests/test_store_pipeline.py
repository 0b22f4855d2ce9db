"""The storage pipeline against real databases: batching, retries, and what happens to
items when the database goes away (they are kept, never dropped)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from scrapy.utils.test import get_crawler
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

from pipelines.provenance import ProvenancePipeline
from pipelines.store import DatabasePipeline
from storage.db import open_database, session_factory
from storage.models import Article
from tests.support.pages import expected_records, extract

URLS = [record["url"] for record in expected_records()]


def items(count: int) -> list[Any]:
    return [ProvenancePipeline().process_item(extract(url)) for url in URLS[:count]]


def pipeline_for(database_url: str, tmp_path: Path, **settings: Any) -> DatabasePipeline:
    crawler = get_crawler(
        settings_dict={
            "DATABASE_URL": database_url,
            "DATABASE_BATCH_SIZE": 4,
            "DATABASE_FLUSH_INTERVAL": 0,
            "DATABASE_WRITE_RETRIES": 2,
            "DATABASE_RETRY_BACKOFF": 0.05,
            "DATABASE_SPILL_DIR": str(tmp_path / "unsaved"),
            **settings,
        }
    )
    return DatabasePipeline.from_crawler(crawler)


def count_rows(engine: Engine) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(Article)) or 0


def spilled_urls(tmp_path: Path) -> list[str]:
    files = sorted((tmp_path / "unsaved").glob("*.jsonl"))
    return [json.loads(line)["url"] for f in files for line in f.read_text().splitlines()]


def test_items_are_written_in_batches_and_all_flushed_at_close(db_url: str, tmp_path: Path) -> None:
    pipeline = pipeline_for(db_url, tmp_path)
    engine = open_database(db_url)

    async def crawl() -> list[int]:
        await pipeline.open_spider()
        seen = []
        for item in items(6):
            assert await pipeline.process_item(item) is item
            seen.append(await asyncio.to_thread(count_rows, engine))
        await pipeline.close_spider()
        return seen

    # Rows land four at a time (the batch size); the last two at close.
    assert asyncio.run(crawl()) == [0, 0, 0, 4, 4, 4]
    assert count_rows(engine) == 6
    stats = pipeline.stats.get_stats()
    assert stats["database/articles_new"] == 6
    engine.dispose()


def test_a_partial_batch_is_written_after_the_flush_interval(
    sqlite_url: str, tmp_path: Path
) -> None:
    pipeline = pipeline_for(sqlite_url, tmp_path, DATABASE_FLUSH_INTERVAL=0.05)
    engine = open_database(sqlite_url)

    async def crawl() -> int:
        await pipeline.open_spider()
        for item in items(2):
            await pipeline.process_item(item)
        for _ in range(100):  # the ticker writes without waiting for a full batch
            if await asyncio.to_thread(count_rows, engine) == 2:
                break
            await asyncio.sleep(0.05)
        rows = await asyncio.to_thread(count_rows, engine)
        await pipeline.close_spider()
        return rows

    assert asyncio.run(crawl()) == 2
    engine.dispose()


def test_a_failed_write_is_retried_and_then_succeeds(sqlite_url: str, tmp_path: Path) -> None:
    pipeline = pipeline_for(sqlite_url, tmp_path, DATABASE_BATCH_SIZE=1, DATABASE_RETRY_BACKOFF=1.0)
    engine = open_database(sqlite_url)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE articles RENAME TO articles_away"))

    async def crawl() -> None:
        await pipeline.open_spider()
        write = asyncio.create_task(pipeline.process_item(items(1)[0]))
        while not pipeline.stats.get_value("database/write_retries"):
            await asyncio.sleep(0.01)  # the first attempt has failed; the retry waits
        await asyncio.to_thread(_rename_back, engine)
        await write
        await pipeline.close_spider()

    asyncio.run(crawl())
    assert pipeline.stats.get_value("database/write_retries") == 1
    assert pipeline.stats.get_value("database/articles_new") == 1
    assert count_rows(engine) == 1
    assert not (tmp_path / "unsaved").exists()
    engine.dispose()


def _rename_back(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE articles_away RENAME TO articles"))


def test_when_sqlite_writes_keep_failing_items_are_spilled_not_lost(
    sqlite_url: str, tmp_path: Path
) -> None:
    pipeline = pipeline_for(sqlite_url, tmp_path, DATABASE_BATCH_SIZE=2)
    engine = open_database(sqlite_url)
    batch = items(5)

    async def crawl() -> None:
        await pipeline.open_spider()
        for item in batch[:2]:
            await pipeline.process_item(item)
        await asyncio.to_thread(_drop_table, engine)
        for item in batch[2:]:
            await pipeline.process_item(item)
        await pipeline.close_spider()

    asyncio.run(crawl())
    stats = pipeline.stats.get_stats()
    assert stats["database/articles_new"] == 2
    assert stats["database/write_retries"] == 2  # then it gave up on the first failing batch
    assert stats["database/articles_unsaved"] == 3
    assert "no such table" in stats["database/error"]
    assert spilled_urls(tmp_path) == [item.url for item in batch[2:]]
    engine.dispose()


def _drop_table(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE articles"))


@pytest.mark.postgres
def test_when_postgresql_goes_away_items_are_spilled_not_lost(pg_url: str, tmp_path: Path) -> None:
    pipeline = pipeline_for(pg_url, tmp_path, DATABASE_BATCH_SIZE=1)
    name = make_url(pg_url).database
    admin = create_engine(make_url(pg_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    batch = items(3)

    def go_away() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )

    async def crawl() -> None:
        await pipeline.open_spider()
        await pipeline.process_item(batch[0])
        await asyncio.to_thread(go_away)
        for item in batch[1:]:
            await pipeline.process_item(item)
        await pipeline.close_spider()

    try:
        asyncio.run(crawl())
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        admin.dispose()
    stats = pipeline.stats.get_stats()
    assert stats["database/articles_new"] == 1
    assert stats["database/write_retries"] == 2
    assert stats["database/articles_unsaved"] == 2
    assert spilled_urls(tmp_path) == [item.url for item in batch[1:]]
    # What was spilled is complete: every stored field, ready to be loaded again.
    spill = sorted((tmp_path / "unsaved").glob("*.jsonl"))[0]
    record = json.loads(spill.read_text().splitlines()[0])
    assert record["body"] == batch[1].body
    assert record["published_at"] == batch[1].published_at.isoformat()


def test_an_unreachable_database_stops_the_crawl_and_keeps_its_items(tmp_path: Path) -> None:
    pipeline = pipeline_for("postgresql+psycopg://nobody@127.0.0.1:1/none", tmp_path)
    batch = items(2)

    async def crawl() -> None:
        await pipeline.open_spider()
        for item in batch:
            await pipeline.process_item(item)
        await pipeline.close_spider()

    asyncio.run(crawl())
    assert "cannot connect to" in pipeline.stats.get_value("database/error")
    assert spilled_urls(tmp_path) == [item.url for item in batch]
