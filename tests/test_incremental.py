"""Scheduled runs against a site that changes between them: incremental crawls fetch
only what is new, full crawls find edits and deletions, a crawl killed with -9 is
completed by the next one, two runs never overlap, and every run is recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from storage.db import open_database, session_factory
from storage.models import Article, ArticleVersion, Run
from tests.support.crawl import FAST, PROJECT_ROOT, crawl
from tests.support.sitegen import ROOT, Site
from tests.support.siteproxy import SiteProxy
from tests.test_crawl import assert_ok, stored


@pytest.fixture
def site() -> Site:
    site = Site(per_page=4)
    site.add(site.category("fanwen", "范文"), 10)
    site.add(site.category("zongjie", "总结"), 6)
    return site


@pytest.fixture
def mirror(tmp_path: Path, site: Site) -> Path:
    site.write(tmp_path / "mirror")
    return tmp_path / "mirror"


@pytest.fixture
def proxy(mirror: Path) -> Iterator[SiteProxy]:
    with SiteProxy(mirror) as proxy:
        yield proxy


def runs(database_url: str) -> list[Run]:
    engine = open_database(database_url)
    with session_factory(engine)() as session:
        found = list(session.scalars(select(Run).order_by(Run.id)))
    engine.dispose()
    return found


def list_pages(proxy: SiteProxy) -> set[str]:
    return {url for url in proxy.requests if "/list_" in url or url.endswith("/")} - {ROOT}


def article_pages(proxy: SiteProxy) -> set[str]:
    return {url for url in proxy.requests if url.endswith(".html") and "/list_" not in url}


def test_incremental_runs_fetch_only_the_list_pages_they_need_and_the_new_articles(
    site: Site, mirror: Path, proxy: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    fanwen, zongjie = site.categories
    assert_ok(crawl(sqlite_url, proxy=proxy.url, data_dir=tmp_path))
    assert len(stored(sqlite_url)) == 16
    assert list_pages(proxy) == {site.list_url(fanwen, n) for n in (1, 2, 3)} | {
        site.list_url(zongjie, n) for n in (1, 2)
    }

    # Three new articles at the top of one category push the others down its pages.
    new = site.add(fanwen, 3)
    site.write(mirror)
    proxy.requests.clear()
    result = crawl(sqlite_url, proxy=proxy.url, data_dir=tmp_path)
    assert_ok(result)

    # Page 1 holds the new ones; page 2 only archived ones: no need to go further.
    assert list_pages(proxy) == {site.list_url(fanwen, 1), site.list_url(fanwen, 2),
                                 site.list_url(zongjie, 1)}  # fmt: skip
    assert article_pages(proxy) == {a.url for a in new}
    rows = stored(sqlite_url)
    assert len(rows) == 19
    assert result.stdout.splitlines()[:2] == [
        "Run 2 (incremental) finished: 3 articles, every one accounted for:",
        "  3 new, 0 updated, 0 unchanged, 0 kept as another copy, 0 gone, 0 dropped, 0 not saved.",
    ]
    assert [(r.mode, r.status, r.articles_new) for r in runs(sqlite_url)] == [
        ("incremental", "finished", 16),
        ("incremental", "finished", 3),
    ]


def test_a_full_run_finds_the_edited_and_the_deleted_article(
    site: Site, mirror: Path, proxy: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    proxy.conditional = True  # the site sends ETags and answers 304 when nothing changed
    assert_ok(crawl(sqlite_url, proxy=proxy.url, data_dir=tmp_path))
    edited, deleted = site.articles[2], site.articles[5]
    edited.paragraphs = [
        *edited.paragraphs[:-1],
        "本段为修订后新增的内容，补充了下一步的工作安排与保障措施。",
    ]
    site.delete(deleted)
    site.write(mirror)
    proxy.requests.clear()
    proxy.statuses.clear()

    result = crawl(sqlite_url, "-a", "mode=full", proxy=proxy.url, data_dir=tmp_path)
    assert_ok(result)
    assert result.stdout.splitlines()[:2] == [
        "Run 2 (full) finished: 16 articles, every one accounted for:",
        "  0 new, 1 updated, 14 unchanged, 0 kept as another copy, 1 gone, 0 dropped, 0 not saved.",
    ]
    # Unchanged articles were not sent again: the site answered 304 to the validators.
    assert proxy.statuses.count(304) == 14
    rows = stored(sqlite_url)
    assert len(rows) == 16  # the deleted article is kept
    assert rows[deleted.url].gone_at is not None
    assert rows[edited.url].body == edited.body
    assert all(r.gone_at is None for url, r in rows.items() if url != deleted.url)
    engine = open_database(sqlite_url)
    with session_factory(engine)() as session:
        history = session.scalars(
            select(ArticleVersion.body)
            .join(Article, Article.id == ArticleVersion.article_id)
            .where(Article.url == edited.url)
            .order_by(ArticleVersion.id)
        ).all()
        versions = session.scalar(select(func.count()).select_from(ArticleVersion))
    engine.dispose()
    assert len(history) == 2  # the first text and the edited one
    assert history[1] == edited.body
    assert "补充了下一步的工作安排" not in history[0]
    assert versions == 17


def test_a_crawl_killed_midway_is_completed_by_the_next_run(
    site: Site, mirror: Path, proxy: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    fanwen, zongjie = site.categories
    site.add(fanwen, 14)
    site.add(zongjie, 6)
    site.write(mirror)
    # The site stalls before the crawl can finish (48 pages), so that it is killed
    # midway however fast or slow the machine.
    proxy.stall_after = 40
    env = {**os.environ, "DATABASE_URL": sqlite_url, "http_proxy": proxy.url, "no_proxy": ""}
    killed = subprocess.Popen(
        [sys.executable, "-m", "scrapy", "crawl", "ylwt22", *FAST,
         "-s", "DATABASE_BATCH_SIZE=1", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=2",
         "-s", f"WARC_DIR={tmp_path / 'warc'}"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(stored_safely(sqlite_url)) < 8:
            time.sleep(0.1)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    stopped_at = len(stored_safely(sqlite_url))
    assert 8 <= stopped_at < len(site.articles)

    proxy.resume()
    assert_ok(crawl(sqlite_url, proxy=proxy.url, data_dir=tmp_path))
    rows = stored(sqlite_url)
    assert sorted(rows) == sorted(a.url for a in site.articles)  # nothing lost
    engine = open_database(sqlite_url)
    with session_factory(engine)() as session:
        urls = session.scalars(select(Article.url)).all()
    engine.dispose()
    assert len(urls) == len(set(urls))  # nothing stored twice
    assert [r.status for r in runs(sqlite_url)] == ["interrupted", "finished"]


def stored_safely(database_url: str) -> dict[str, Article]:
    """The stored articles, or none yet if the first run has not created the schema: the
    file appears before its tables do."""
    if not Path(database_url.removeprefix("sqlite:///")).exists():
        return {}
    try:
        return stored(database_url)
    except OperationalError:  # no such table, yet
        return {}


def test_two_runs_never_overlap_on_one_archive(
    mirror: Path, proxy: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    # The first run's site stalls until the second run has come and gone: the two
    # overlap however long the second takes to start.
    proxy.stall_after = 0
    env = {**os.environ, "DATABASE_URL": sqlite_url, "http_proxy": proxy.url, "no_proxy": ""}
    first = subprocess.Popen(
        [sys.executable, "-m", "scrapy", "crawl", "ylwt22", *FAST, "-s", "WARC_ENABLED=False"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not runs_safely(sqlite_url):
            time.sleep(0.1)
        with SiteProxy(mirror) as other:
            second = crawl(sqlite_url, proxy=other.url, data_dir=tmp_path)
    finally:
        proxy.resume()
        _, err = first.communicate(timeout=120)
    assert second.returncode == 75
    assert second.stderr.splitlines()[-1] == (f"error: another run is in progress on {sqlite_url}")
    assert first.returncode == 0, err[-3000:]
    assert [r.status for r in runs(sqlite_url)] == ["finished"]
    assert len(stored(sqlite_url)) == 16


def runs_safely(database_url: str) -> list[Run]:
    if not Path(database_url.removeprefix("sqlite:///")).exists():
        return []
    try:
        return runs(database_url)
    except Exception:  # the first run may be creating the schema right now
        return []


def test_a_template_change_is_reported_as_a_jump_in_extraction_health(
    site: Site, mirror: Path, proxy: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    assert_ok(crawl(sqlite_url, proxy=proxy.url, data_dir=tmp_path))
    # The site renames the class of its date line: no article has a date any more.
    for page in mirror.rglob("*.html"):
        page.write_text(page.read_text("utf-8").replace('class="info"', 'class="meta"'), "utf-8")
    result = crawl(sqlite_url, "-a", "mode=full", proxy=proxy.url, data_dir=tmp_path)
    assert_ok(result)
    report = result.stdout.splitlines()
    assert report[3:5] == [
        "Extraction health: empty body 0.0%, no date 100.0%, no 来源 0.0% of 16 articles.",
        "Warning: 100% of this run's articles have no date, against 0% in recent runs: "
        "the site's template may have changed (see crawler/pages/selectors.py)",
    ]
    assert "the site's template may have changed" in result.stderr
    assert len(stored(sqlite_url)) == 16  # nothing stored is harmed
    assert runs(sqlite_url)[-1].health["no_date"] == 1.0
