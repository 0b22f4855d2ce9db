"""Distributed crawling: `scrapy crawl ylwt22` workers sharing one crawl through a real
Redis, into a real PostgreSQL archive, against the site's stand-in on 127.0.0.1.

Workers share the snapshot's crawl and store what a crawl on its own stores; a worker
killed with -9 midway leaves nothing undone (the survivor queues again what it held);
without REDIS_URL a crawl is Scrapy's own; a bad REDIS_URL fails at once, in one line.
The acknowledgement protocol is tested on its own too, in process, against the real
Redis: a request leaves todo once its work is done; what a dead worker held is queued
again, its attempts counted; past DISTRIBUTED_MAX_REQUEUES it is given up.
Each test's keys live under a CRAWL_ID of its own, and are deleted after it.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pytest
import redis
from scrapy import Request
from scrapy.utils.test import get_crawler
from sqlalchemy import Engine, select

from crawler.distributed.acknowledgements import Settlement
from crawler.distributed.dupefilter import RedisDupeFilter
from crawler.distributed.keys import CrawlKeys
from crawler.distributed.queue import TrackedQueue
from crawler.distributed.scheduler import RedisScheduler
from crawler.reading import PartialArticle
from crawler.spiders.ylwt22 import Ylwt22Spider
from storage.db import open_database, session_factory
from storage.models import Article, CategoryProgress
from tests.conftest import fresh_pg_database
from tests.support.crawl import FAST, MIRROR, PROJECT_ROOT, crawl, scrapy
from tests.support.sitegen import Site
from tests.support.siteproxy import SiteProxy
from tests.test_crawl import assert_ok, stored
from tests.test_incremental import runs

pytestmark = pytest.mark.postgres

# Fast enough for tests: a worker stops after 2 s of quiet, and one silent for 2.5 s
# (5 heartbeats) is dead.
WORKER = ("-s", "DISTRIBUTED_IDLE_TIMEOUT=2", "-s", "DISTRIBUTED_HEARTBEAT=0.5")
# Columns that differ between two crawls of the same pages: when they were fetched,
# and where the raw copies are kept.
RUN_DEPENDENT = {"fetched_at", "first_seen_at", "last_seen_at", "provenance"}
TWO_AT_A_TIME = ("-s", "CONCURRENT_REQUESTS=2")


@pytest.fixture
def crawl_id(redis_url: str) -> Iterator[str]:
    crawl_id = f"test-{uuid.uuid4().hex[:12]}"
    yield crawl_id
    client = redis.Redis.from_url(redis_url)
    if keys := list(client.scan_iter(f"ylwt22:{crawl_id}*")):  # and f"{crawl_id}-next"
        client.delete(*keys)
    client.close()


@pytest.fixture
def other_pg_url(pg_server: Engine) -> Iterator[str]:
    """A second fresh PostgreSQL database, for a crawl to compare with."""
    with fresh_pg_database(pg_server) as url:
        yield url


class Worker:
    """`scrapy crawl ylwt22` as one worker of crawl ``crawl_id``, its output in a file."""

    def __init__(
        self,
        database_url: str,
        redis_url: str,
        crawl_id: str,
        proxy: SiteProxy,
        log: Path,
        *settings: str,
    ) -> None:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": database_url,
            "REDIS_URL": "",  # from the command line only
            "http_proxy": proxy.url,
            "no_proxy": "",
        }
        self.log = log
        self._out: IO[str] = log.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scrapy", "crawl", "ylwt22", *FAST, *WORKER,
             "-s", f"REDIS_URL={redis_url}", "-s", f"CRAWL_ID={crawl_id}",
             "-s", "WARC_ENABLED=False", *settings],
            cwd=PROJECT_ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._out.close()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.wait()

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8")


def export(database_url: str, path: Path) -> dict[str, dict[str, str]]:
    """`scrapy export` of the archive, by URL, without the run-dependent columns."""
    assert_ok(scrapy("export", "-o", str(path), env={"DATABASE_URL": database_url}))
    with path.open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len({row["url"] for row in rows})
    return {row["url"]: {k: v for k, v in row.items() if k not in RUN_DEPENDENT} for row in rows}


def pending_readings(database_url: str) -> dict[str, object]:
    engine = open_database(database_url)
    with session_factory(engine)() as session:
        progress = {p.url: p.pending_since for p in session.scalars(select(CategoryProgress))}
    engine.dispose()
    return {url: since for url, since in progress.items() if since is not None}


def article_fetches(proxy: SiteProxy) -> Counter[str]:
    return Counter(
        url for url in proxy.requests if "/20" in url and url.endswith(".html")
    )  # the site's article URLs hold the year: /<category>/<yyyy>/<mmdd>/<id>.html


def test_workers_share_a_crawl_and_store_what_one_process_stores(
    redis_url: str, crawl_id: str, pg_url: str, other_pg_url: str, tmp_path: Path
) -> None:
    with SiteProxy(MIRROR) as proxy:
        proxy.delay = 0.2  # slow enough that every worker gets a share
        workers = [
            Worker(pg_url, redis_url, crawl_id, proxy, tmp_path / f"{n}.log", *TWO_AT_A_TIME)
            for n in range(3)
        ]
        statuses = [worker.wait() for worker in workers]
        distributed = article_fetches(proxy)
        proxy.requests.clear()
        proxy.delay = 0
        alone = crawl(other_pg_url, proxy=proxy.url, env={"REDIS_URL": ""})
        assert_ok(alone)

    for worker, status in zip(workers, statuses, strict=True):
        assert status == 0, worker.output[-4000:]
        # Each stopped by itself, once the crawl had been quiet for the idle timeout.
        assert "has been quiet for 2s: this worker is done" in worker.output
        assert "Traceback" not in worker.output
        assert "Deprecat" not in worker.output
    # One shared seen-filter: every article page was fetched once, by one worker.
    assert set(distributed.values()) == {1}
    assert sorted(distributed) == sorted(article_fetches(proxy))

    # The same archive as a crawl on its own, row for row and field for field
    # (duplicates and their originals included).
    shared = export(pg_url, tmp_path / "shared.csv")
    assert len(shared) == 14
    assert shared == export(other_pg_url, tmp_path / "alone.csv")

    recorded = runs(pg_url)
    assert [(r.mode, r.status, r.crawl_id) for r in recorded] == [
        ("incremental", "finished", crawl_id)
    ] * 3
    assert sum(r.articles_new for r in recorded) == 14
    assert sum(r.requests > 0 for r in recorded) >= 2  # the work was shared
    assert [r.crawl_id for r in runs(other_pg_url)] == [None]
    # The last worker out completed every category's reading for the next crawl.
    assert pending_readings(pg_url) == {}
    assert sum("ended by its last worker" in worker.output for worker in workers) == 1

    # The ended crawl's keys expire rather than live forever.
    client = redis.Redis.from_url(redis_url)
    keys = CrawlKeys(crawl_id)
    assert client.exists(keys.ended)
    assert 0 < client.ttl(keys.dupefilter) <= 86400
    assert not client.exists(keys.todo, keys.requests, keys.workers)
    client.close()

    # A worker that comes late finds the crawl ended, says so, and leaves at once.
    with SiteProxy(MIRROR) as proxy:
        late = Worker(pg_url, redis_url, crawl_id, proxy, tmp_path / "late.log")
        assert late.wait() == 0, late.output[-4000:]
        assert not proxy.requests
    assert f"Crawl ylwt22:{crawl_id} ended at " in late.output
    assert "Start the next crawl with another CRAWL_ID" in late.output


def test_the_requests_of_a_killed_worker_are_queued_again_by_the_survivor(
    redis_url: str, crawl_id: str, pg_url: str, tmp_path: Path
) -> None:
    site = Site(per_page=6)
    for folder, name in (("fanwen", "范文"), ("zongjie", "总结"), ("jihua", "计划")):
        site.add(site.category(folder, name), 22)
    site.write(tmp_path / "mirror")
    client = redis.Redis.from_url(redis_url)
    keys = CrawlKeys(crawl_id)
    with SiteProxy(tmp_path / "mirror") as proxy:
        # The site stalls before the crawl can finish (82 pages): the doomed worker is
        # killed midway, with requests in flight, however fast or slow the machine.
        proxy.stall_after = 50
        settings = ("-s", "CONCURRENT_REQUESTS=4", "-s", "DATABASE_BATCH_SIZE=4")
        doomed = Worker(pg_url, redis_url, crawl_id, proxy, tmp_path / "doomed.log", *settings)
        survivor = Worker(pg_url, redis_url, crawl_id, proxy, tmp_path / "survivor.log", *settings)
        try:
            # Midway: rows stored, more requests queued, the doomed worker downloading.
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                # Worker ids are <host>:<pid>:<random>.
                beats = {k.decode(): json.loads(v) for k, v in client.hgetall(keys.workers).items()}
                downloading = {who.split(":")[-2] for who, b in beats.items() if b["requests"]}
                if (
                    len(stored_safely(pg_url)) >= 12
                    and client.zcard(keys.requests) >= 4
                    and str(doomed.process.pid) in downloading
                ):
                    break
                time.sleep(0.05)
            doomed.kill()
            killed_at = len(stored_safely(pg_url))
            assert 12 <= killed_at < len(site.articles)
            proxy.resume()
            status = survivor.wait()
        finally:
            for worker in (doomed, survivor):
                if worker.process.poll() is None:
                    worker.kill()
    client.close()

    assert status == 0, survivor.output[-4000:]
    output = survivor.output
    assert "is gone (no heartbeat for" in output
    requeued = [int(n) for n in re.findall(r"Completeness pass of .*, (\d+) queued again", output)]
    assert sum(requeued) >= 1, output[-4000:]  # what the dead worker held

    rows = stored(pg_url)
    assert sorted(rows) == sorted(a.url for a in site.articles)  # every article
    engine = open_database(pg_url)
    with session_factory(engine)() as session:
        urls = session.scalars(select(Article.url)).all()
    engine.dispose()
    assert len(urls) == len(set(urls)) == 66  # and each once
    for article in site.articles:
        assert rows[article.url].body == article.body

    recorded = runs(pg_url)
    assert sorted(r.status for r in recorded) == ["finished", "interrupted"]
    assert {r.crawl_id for r in recorded} == {crawl_id}
    assert pending_readings(pg_url) == {}

    # The next crawl, incremental, by two workers: only the new articles are fetched.
    new = site.add(site.categories[0], 3)
    site.write(tmp_path / "mirror")
    with SiteProxy(tmp_path / "mirror") as proxy:
        workers = [
            Worker(pg_url, redis_url, f"{crawl_id}-next", proxy, tmp_path / f"next{n}.log")
            for n in range(2)
        ]
        for worker in workers:
            assert worker.wait() == 0, worker.output[-4000:]
    assert sorted(article_fetches(proxy)) == sorted(a.url for a in new)
    assert len(stored(pg_url)) == 69
    following = runs(pg_url)[2:]
    assert [(r.status, r.crawl_id) for r in following] == [("finished", f"{crawl_id}-next")] * 2
    assert sum(r.articles_new for r in following) == 3
    assert pending_readings(pg_url) == {}


def stored_safely(database_url: str) -> dict[str, Article]:
    """The stored articles, or none while the first worker creates the schema."""
    try:
        return stored(database_url)
    except Exception:
        return {}


def test_without_redis_url_a_crawl_uses_scrapys_own_scheduler(
    sqlite_url: str, tmp_path: Path
) -> None:
    with SiteProxy(MIRROR) as proxy:
        result = crawl(sqlite_url, proxy=proxy.url, env={"REDIS_URL": ""})
    assert_ok(result)
    assert "'scheduler/enqueued/memory'" in result.stderr
    assert "scheduler/enqueued/redis" not in result.stderr
    assert "crawler.distributed" not in result.stderr
    assert len(stored(sqlite_url)) == 14
    assert [r.crawl_id for r in runs(sqlite_url)] == [None]


@pytest.mark.parametrize(
    ("settings", "env", "message"),
    [
        (
            ("-s", "REDIS_URL=http://127.0.0.1:6379/0"),
            {},
            "REDIS_URL 'http://127.0.0.1:6379/0' is not a Redis URL",
        ),
        (
            (),
            {"REDIS_URL": "redis://:secret@127.0.0.1:1/0"},  # from the environment
            "cannot reach Redis at REDIS_URL 'redis://:***@127.0.0.1:1/0'",
        ),
        (
            ("-s", "REDIS_URL=redis://127.0.0.1/0", "-s", "CRAWL_ID=a b"),
            {},
            "CRAWL_ID must be",
        ),
    ],
    ids=["malformed", "unreachable", "bad-crawl-id"],
)
def test_a_bad_redis_url_fails_the_crawl_at_once_in_one_line(
    settings: tuple[str, ...], env: dict[str, str], message: str, sqlite_url: str
) -> None:
    result = crawl(sqlite_url, *settings, env=env)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert errors[0].startswith(f"error: {message}")
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()  # nothing started


def open_scheduler(redis_url: str, crawl_id: str, **settings: object) -> RedisScheduler:
    """A worker's scheduler on crawl ``crawl_id``, open, in this process."""
    keys = CrawlKeys(crawl_id)
    crawler = get_crawler(
        Ylwt22Spider,
        {
            "REDIS_URL": redis_url,
            "CRAWL_ID": crawl_id,
            "SCHEDULER_QUEUE_KEY": keys.requests,
            "SCHEDULER_DUPEFILTER_KEY": keys.dupefilter,
            "DUPEFILTER_CLASS": "crawler.distributed.dupefilter.RedisDupeFilter",
            "SCHEDULER_PERSIST": True,
            **settings,
        },
    )
    spider = Ylwt22Spider.from_crawler(crawler)
    crawler.spider = spider
    scheduler = RedisScheduler.from_crawler(crawler)
    scheduler.open(spider)
    return scheduler


def test_the_queue_and_the_seen_filter_speak_scrapys_fingerprints_and_serialization(
    redis_url: str, crawl_id: str
) -> None:
    """In process, where Scrapy's deprecation warnings are errors (pyproject.toml)."""
    scheduler = open_scheduler(redis_url, crawl_id)
    spider = scheduler.spider
    crawler = spider.crawler
    assert isinstance(scheduler.queue, TrackedQueue)
    assert isinstance(scheduler.df, RedisDupeFilter)

    url = "http://www.ylwt22.com/dangtuangongzuo/2022/1220/305064_2.html"
    request = spider.article_request(url, meta={"note": "kept"})
    request.cb_kwargs["partial"] = PartialArticle(etag='"abc"')
    fingerprint = crawler.request_fingerprinter.fingerprint(request).hex()
    assert scheduler.df.request_fingerprint(request) == fingerprint

    assert scheduler.enqueue_request(request)
    assert not scheduler.enqueue_request(Request(url))  # seen, by Scrapy's fingerprint
    client = redis.Redis.from_url(redis_url)
    keys = CrawlKeys(crawl_id)
    # The todo entry is the queue's entry, under Scrapy's fingerprint.
    assert client.hkeys(keys.todo) == [fingerprint.encode()]
    assert client.zrange(keys.requests, 0, -1) == [client.hget(keys.todo, fingerprint)]

    popped = scheduler.next_request()
    assert popped is not None
    assert popped.url == url
    assert popped.callback == spider.parse_article
    assert popped.errback == spider.article_page_failed
    assert popped.cb_kwargs["partial"] == PartialArticle(etag='"abc"')
    assert popped.meta["note"] == "kept"
    assert crawler.stats.get_value("scheduler/enqueued/redis") == 1
    assert crawler.stats.get_value("scheduler/dequeued/redis") == 1
    # Popped is not done: the entry stays until the request's work is.
    assert client.hexists(keys.todo, fingerprint)
    scheduler.acknowledgements.done(popped)
    assert not client.exists(keys.todo)
    client.close()


LIST_PAGE = "http://www.ylwt22.com/fanwen/list_1_2.html"
ARTICLE = "http://www.ylwt22.com/fanwen/2022/1220/305064.html"


def test_a_request_leaves_todo_once_its_work_is_done(redis_url: str, crawl_id: str) -> None:
    worker = open_scheduler(redis_url, crawl_id)
    acknowledgements = worker.acknowledgements
    released: list[str] = []
    acknowledgements.before_release(lambda: released.append("categories recorded"))
    client = redis.Redis.from_url(redis_url)
    keys = CrawlKeys(crawl_id)

    def held(*requests: Request) -> list[bytes]:
        """The todo fields of ``requests``."""
        return sorted(acknowledgements.fingerprint(r).encode() for r in requests)

    # Queued: in the queue and in todo. Popped: in todo only, until it is done.
    list_page = Request(LIST_PAGE)
    assert worker.enqueue_request(list_page)
    assert client.hkeys(keys.todo) == held(list_page)
    popped = worker.next_request()
    assert popped is not None
    assert popped.url == LIST_PAGE
    assert not client.zcard(keys.requests)
    assert client.hkeys(keys.todo) == held(list_page)

    # Parsed, it gave an article request: done only once that request is scheduled too.
    article = Request(ARTICLE)
    acknowledgements.parsed(popped, [article], gave_item=False)
    assert released == ["categories recorded"]
    assert client.hkeys(keys.todo) == held(list_page)
    assert worker.enqueue_request(article)
    assert client.hkeys(keys.todo) == held(article)

    # An article's request waits for its article to be written: the worker's idle.
    popped = worker.next_request()
    assert popped is not None
    acknowledgements.parsed(popped, [], gave_item=True)
    acknowledgements.idle(articles_written=False)  # the archive failed: spilled
    assert client.hkeys(keys.todo) == held(article)
    acknowledgements.idle(articles_written=True)
    assert not client.exists(keys.todo)

    # A download failed for good, or an item dropped: done at once.
    failed = Request(f"{ARTICLE}?failed")
    worker.enqueue_request(failed)
    popped = worker.next_request()
    assert popped is not None
    acknowledgements.done(popped)
    assert not client.exists(keys.todo, keys.attempts, keys.requests)
    client.close()


async def nothing_archived(requests: Sequence[Request]) -> set[Request]:
    return set()


def test_what_a_dead_worker_held_is_queued_again_with_its_attempts_counted(
    redis_url: str, crawl_id: str
) -> None:
    dead = open_scheduler(redis_url, crawl_id, DISTRIBUTED_MAX_REQUEUES=3)
    survivor = open_scheduler(redis_url, crawl_id, DISTRIBUTED_MAX_REQUEUES=3)
    client = redis.Redis.from_url(redis_url)
    keys = CrawlKeys(crawl_id)
    request = dead.spider.article_request(ARTICLE, meta={"note": "kept"})
    assert dead.enqueue_request(request)
    assert dead.next_request() is not None  # and the worker dies with it
    fingerprint = survivor.acknowledgements.fingerprint(request)

    settle = survivor.acknowledgements.settle(survivor.queue, nothing_archived)
    assert asyncio.run(settle) == Settlement(archived=0, requeued=1, given_up=0)
    assert client.hget(keys.attempts, fingerprint) == b"1"
    assert client.hexists(keys.todo, fingerprint)
    again = survivor.next_request()
    assert again is not None
    assert again.url == ARTICLE
    assert again.callback == survivor.spider.parse_article
    assert again.meta["note"] == "kept"
    survivor.acknowledgements.done(again)
    assert not client.exists(keys.todo, keys.attempts, keys.requests)

    # What a dead worker held whose article the archive holds is done.
    async def everything_archived(requests: Sequence[Request]) -> set[Request]:
        return set(requests)

    other = Request(f"{ARTICLE}?other")
    assert dead.enqueue_request(other)
    assert dead.next_request() is not None
    settle = survivor.acknowledgements.settle(survivor.queue, everything_archived)
    assert asyncio.run(settle) == Settlement(archived=1, requeued=0, given_up=0)
    assert not client.exists(keys.todo, keys.attempts, keys.requests)
    client.close()


def test_past_the_limit_a_request_is_given_up_with_an_error_naming_its_url(
    redis_url: str, crawl_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    worker = open_scheduler(redis_url, crawl_id, DISTRIBUTED_MAX_REQUEUES=2)
    acknowledgements = worker.acknowledgements
    client = redis.Redis.from_url(redis_url)
    keys = CrawlKeys(crawl_id)
    assert worker.enqueue_request(Request(ARTICLE))
    settlements = []
    with caplog.at_level(logging.ERROR, logger="crawler.distributed"):
        for _ in range(3):
            assert worker.next_request() is not None  # taken by a worker that dies
            settle = acknowledgements.settle(worker.queue, nothing_archived)
            settlements.append(asyncio.run(settle))
    assert settlements == [Settlement(requeued=1)] * 2 + [Settlement(given_up=1)]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [f"Giving up on {ARTICLE}: queued again 2 times, never done"]
    assert not client.exists(keys.todo, keys.attempts, keys.requests)
    client.close()
