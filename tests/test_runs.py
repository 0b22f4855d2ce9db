"""Runs that can be believed: every article a run handled ends in exactly one counted
outcome, the counts add up or the run is not finished, a value the database refuses
costs one article and never its batch, a full disk is said in one line with how many
articles were not saved, and a run killed with -9 is found interrupted by the next.

(Every archive any test writes is also checked by conftest.py: its finished runs must
add up.)"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler import settings
from crawler.extensions.runs import Tally, account, outcome_total
from pipelines.store import StoreOutcomes
from storage.db import make_engine, open_database, session_factory
from storage.models import BEIJING, Run
from tests.support.crawl import FULL_LOG, MIRROR, PROJECT_ROOT, crawl, replay
from tests.support.pages import expected_records, mirror_file
from tests.support.reconcile import unreconciled
from tests.support.sitegen import Site
from tests.support.siteproxy import Reply, SiteProxy
from tests.test_crawl import assert_ok, stored
from tests.test_store_pipeline import count_rows, items, pipeline_for

ALL = sorted(record["url"] for record in expected_records())
B = "http://www.ylwt22.com/xindetihui/2023/0912/315175.html"
C = "http://www.ylwt22.com/gongzuojihua/2024/0116/319969.html"
HUGE_ID = "http://www.ylwt22.com/xindetihui/2023/0912/123456789012345678901234567890.html"
YEAR_ONE = "http://www.ylwt22.com/gongzuojihua/2024/0116/319970.html"
HTML = {"Content-Type": "text/html"}


def runs(database_url: str) -> list[Run]:
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            return list(session.scalars(select(Run).order_by(Run.id)))
    finally:
        engine.dispose()


# --- the accounts ------------------------------------------------------------------------


def test_every_outcome_is_counted_once_and_the_total_adds_up() -> None:
    tally = Tally(scraped=10, dropped=Counter(missing_body=2), seen_unchanged=3, seen_gone=1)
    store = StoreOutcomes(
        received=10, new=5, updated=1, unchanged=1, outranked=1, spilled=1, lost=0,
        dropped=Counter(unstorable=1), reprints=2, sightings_received=4, seen_unchanged=3,
        seen_gone=1,
    )  # fmt: skip
    counts, short = account(tally, store)
    assert short == []
    assert counts.articles_handled == 16 == outcome_total(counts)
    assert counts.dropped == {"missing_body": 2, "unstorable": 1}
    assert (counts.articles_unchanged, counts.articles_unsaved) == (4, 1)


def test_what_does_not_add_up_is_named() -> None:
    tally = Tally(scraped=5000)
    store = StoreOutcomes(received=5000, new=4983)
    counts, short = account(tally, store)
    assert short == ["17 articles received by the store were neither written, dropped nor spilled"]
    assert (outcome_total(counts), counts.articles_handled) == (4983, 5000)
    _, short = account(Tally(scraped=12), StoreOutcomes(received=14, new=14))
    assert short == ["12 articles passed the pipelines, the store received 14"]


def test_the_suite_wide_check_finds_a_finished_run_that_does_not_add_up() -> None:
    row = (7, "finished", 5000, 4983, 0, 0, 0, 0, 0, json.dumps({}))
    assert unreconciled([row]) == ["run 7: 4983 outcomes for 5000"]
    assert unreconciled([(7, "failed", *row[2:])]) == []  # failed: said so
    assert unreconciled([(8, "finished", 3, 1, 0, 0, 0, 0, 0, {"missing_body": 2})]) == []


# --- a value the database refuses costs that article only ---------------------------------


def test_a_value_the_database_refuses_costs_only_its_article(db_url: str, tmp_path: Path) -> None:
    """The storage pipeline's own guard, for values that pass validation: the batch is
    halved until the refused article is alone, and the others are stored."""
    good = items(6)
    records = [
        good[0],
        replace(good[1], aid=10**30),  # OverflowError on SQLite, out of range on PostgreSQL
        good[2],
        replace(good[3], published_at=datetime(1, 1, 1, tzinfo=BEIJING)),  # before year 1 in UTC
        good[4],
        good[5],
    ]
    pipeline = pipeline_for(db_url, tmp_path, DATABASE_BATCH_SIZE=6)

    async def crawl_() -> None:
        await pipeline.open_spider()
        for record in records:
            await pipeline.process_item(record)
        await pipeline.close_spider()

    asyncio.run(crawl_())
    outcomes = pipeline.outcomes
    assert (outcomes.received, outcomes.new, outcomes.pending) == (6, 4, 0)
    assert outcomes.dropped == {"unstorable": 2}
    assert pipeline.failed is None
    assert not (tmp_path / "unsaved").exists()
    engine = open_database(db_url)
    try:
        assert count_rows(engine) == 4
    finally:
        engine.dispose()


def hostile_site(site: SiteProxy) -> None:
    """Two articles the site cannot hold: a 30-digit id, and 0001-01-01 as 发布时间,
    listed in the sitemap beside the snapshot's own."""
    sitemap = mirror_file("http://www.ylwt22.com/sitemap.xml").read_bytes()
    extra = "".join(f"<url><loc>{url}</loc></url>" for url in (HUGE_ID, YEAR_ONE)).encode()
    site.replies["http://www.ylwt22.com/sitemap.xml"] = Reply(
        200, sitemap.replace(b"</urlset>", extra + b"</urlset>"), {"Content-Type": "text/xml"}
    )
    site.replies[HUGE_ID] = Reply(200, mirror_file(B).read_bytes(), HTML)
    year_one = mirror_file(C).read_bytes()
    year_one = re.sub(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", b"0001-01-01 00:00:00", year_one, count=1)
    site.replies[YEAR_ONE] = Reply(200, year_one, HTML)


def test_an_article_the_site_cannot_hold_is_dropped_and_the_rest_stored(
    db_url: str, tmp_path: Path
) -> None:
    with SiteProxy(MIRROR) as site:
        hostile_site(site)
        first = crawl(db_url, "-s", "DATABASE_BATCH_SIZE=100", proxy=site.url, data_dir=tmp_path)
        assert_ok(first)
        # The next run is not harmed: it has nothing new to store, and says so.
        second = crawl(db_url, proxy=site.url, data_dir=tmp_path)
    assert_ok(second)
    assert sorted(stored(db_url)) == ALL
    assert "invalid_aid: article id 123456789012345678901234567890 is outside" in first.stderr
    assert "invalid_published_at: publication date 0001-01-01 00:00:00+08:00" in first.stderr
    assert "Traceback" not in first.stderr + second.stderr
    one, two = runs(db_url)
    assert (one.status, one.articles_new, one.articles_handled) == ("finished", 14, 16)
    assert one.dropped == {"invalid_aid": 1, "invalid_published_at": 1}
    assert first.stdout.splitlines()[:2] == [
        "Run 1 (incremental) finished: 16 articles, every one accounted for:",
        "  14 new (1 of them a reprint), 0 updated, 0 unchanged, 0 kept as another copy, "
        "0 gone, 2 dropped (invalid_aid 1, invalid_published_at 1), 0 not saved.",
    ]
    assert two.status == "finished"


def test_a_replay_of_pages_the_site_cannot_hold_stores_the_rest(
    sqlite_url: str, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR, mirror)
    with SiteProxy(MIRROR) as site:  # only to build the pages: nothing is fetched
        hostile_site(site)
        for url in (HUGE_ID, YEAR_ONE):
            target = mirror / url.removeprefix("http://")
            target.write_bytes(site.answer(url).body)
    result = replay(sqlite_url, mirror)
    assert_ok(result)
    assert sorted(stored(sqlite_url)) == ALL
    (run,) = runs(sqlite_url)
    assert run.status == "finished"
    assert run.dropped == {"invalid_aid": 1, "invalid_published_at": 1}


# --- a run's status is its exit status --------------------------------------------------


def test_a_run_whose_counts_do_not_add_up_fails_and_says_which(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A pipeline set after the store drops what the store already took: the spider's
    side and the store's disagree, and the run must not say finished."""
    pipelines = {**settings.ITEM_PIPELINES, "tests.support.misbehaving.DropAfterStore": 1000}
    with SiteProxy(MIRROR) as site:
        result = crawl(
            sqlite_url,
            "-s", f"ITEM_PIPELINES={json.dumps(pipelines)}",
            proxy=site.url,
            data_dir=tmp_path,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "error: its counts do not add up: 12 articles passed the pipelines, the store received 14"
    )
    (run,) = runs(sqlite_url)
    assert run.status == "failed"
    assert result.stdout.startswith("Run 1 (incremental) failed: 14 articles, 16 accounted for:")


# --- kill -9 ----------------------------------------------------------------------------


def big_mirror(folder: Path, count: int) -> Path:
    """A site of ``count`` articles: enough for a replay that lasts a few seconds."""
    site = Site()
    site.add(site.category("gongzuozongjie", "工作总结"), count)
    mirror = folder / "mirror"
    site.write(mirror)
    return mirror


def wait_for_running(database_url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(run.status == "running" for run in runs(database_url)):
                return
        except Exception:  # the schema may be being created right now
            pass
        time.sleep(0.05)
    raise AssertionError("the run never started")


def test_a_replay_killed_with_sigkill_is_marked_interrupted_by_the_next_run(
    sqlite_url: str, tmp_path: Path
) -> None:
    mirror = big_mirror(tmp_path, 600)
    killed = subprocess.Popen(
        [sys.executable, "-m", "scrapy", "replay", *FULL_LOG, str(mirror)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": sqlite_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_running(sqlite_url)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    assert [run.status for run in runs(sqlite_url)] == ["running"]
    assert_ok(replay(sqlite_url, MIRROR))
    assert [run.status for run in runs(sqlite_url)] == ["interrupted", "finished"]


def test_a_live_run_is_not_taken_for_a_dead_one(sqlite_url: str, tmp_path: Path) -> None:
    """A replay that starts while another runs leaves it running."""
    mirror = big_mirror(tmp_path, 600)
    first = subprocess.Popen(
        [sys.executable, "-m", "scrapy", "replay", *FULL_LOG, str(mirror)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": sqlite_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_running(sqlite_url)
        assert_ok(replay(sqlite_url, MIRROR))
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert [run.status for run in runs(sqlite_url)] == ["finished", "finished"]


# --- a full disk ------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB file system of its own (tmpfs): the disk that fills."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode:
        reason = f"cannot mount a small file system: {mounted.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave: int) -> None:
    """Fill the file system until about ``leave`` bytes are free."""
    free = shutil.disk_usage(disk).free
    with (disk / "filler").open("wb") as out:
        out.write(b"\0" * max(0, free - leave))


def test_when_neither_the_database_nor_the_spill_can_take_articles_the_crawl_says_so(
    small_disk: Path,
) -> None:
    database = f"sqlite:///{small_disk / 'archive.sqlite3'}"
    open_database(database).dispose()  # the schema fits; the articles will not
    fill(small_disk, 48 * 1024)
    with SiteProxy(MIRROR) as site:
        result = crawl(
            database,
            "-s", "DATABASE_BATCH_SIZE=2",
            "-s", "DATABASE_WRITE_RETRIES=0",
            "-s", f"DATABASE_SPILL_DIR={small_disk / 'unsaved'}",
            "-s", "WARC_ENABLED=False",
            proxy=site.url,
        )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    found = re.fullmatch(
        r"error: the crawl ended with 'database_error': OperationalError: database or disk "
        r"is full; (\d+) articles not saved: (\d+) kept in (\S+), (\d+) lost",
        last,
    )
    assert found, last
    unsaved, spilled, folder, lost = int(found[1]), int(found[2]), found[3], int(found[4])
    assert spilled + lost == unsaved > 0
    assert folder == str(small_disk / "unsaved")
    # What counts as spilled is on disk, whole: no empty or cut file.
    files = sorted(Path(folder).glob("*.jsonl"))
    spilled_urls = [json.loads(line)["url"] for f in files for line in f.read_text().splitlines()]
    assert len(spilled_urls) == spilled
    assert all(f.stat().st_size for f in files)
    # Every article the run handled is stored, spilled or counted as not saved.
    report = re.match(r"Run 1 \(incremental\) failed: (\d+) articles, every one", result.stdout)
    assert report, result.stdout
    os.remove(small_disk / "filler")  # room for the reader's own files
    rows = stored(database)
    assert len(rows) + spilled + lost == int(report[1])
    assert not set(rows) & set(spilled_urls)
