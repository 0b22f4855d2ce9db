"""End to end: `scrapy crawl ylwt22` over real sockets, through an HTTP proxy on
127.0.0.1 that stands in for the site, into a real database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from storage.db import make_engine, session_factory
from storage.models import Article
from tests.support.crawl import MIRROR, crawl
from tests.support.pages import expected_records
from tests.support.siteproxy import Reply, SiteProxy

FIELDS = ("title", "category", "source", "author", "body", "copyright_notice",
          "site_name", "icp")  # fmt: skip
MULTI_PAGE = "http://www.ylwt22.com/dangtuangongzuo/2022/1220/305064.html"


@pytest.fixture
def site() -> Iterator[SiteProxy]:
    with SiteProxy(MIRROR) as proxy:
        yield proxy


def stored(database_url: str) -> dict[str, Article]:
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            return {a.url: a for a in session.scalars(select(Article))}
    finally:
        engine.dispose()


def assert_archive_matches_expected(database_url: str) -> dict[str, Article]:
    rows = stored(database_url)
    records = {r["url"]: r for r in expected_records()}
    assert sorted(rows) == sorted(records)  # every article, and nothing else
    for url, record in records.items():
        row = rows[url]
        for name in FIELDS:
            assert getattr(row, name) == record[name], (url, name)
        assert list(row.tags) == record["tags"], url
        assert row.published_at.isoformat() == record["published_at"], url
        assert row.rights_holder == "原作者"
        assert row.fetched_at.utcoffset() is not None
        assert len(row.page_urls) == record["pages"]
    return rows


def assert_ok(result: object) -> None:
    assert getattr(result, "returncode", None) == 0, getattr(result, "stderr", "")[-4000:]


def test_crawl_through_a_proxy_archives_every_article(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    result = crawl(sqlite_url, proxy=site.url, data_dir=tmp_path)
    assert_ok(result)
    rows = assert_archive_matches_expected(sqlite_url)
    assert rows[MULTI_PAGE].page_urls == [MULTI_PAGE, MULTI_PAGE.replace(".html", "_2.html")]

    hosts = {urlsplit(url).hostname for url in site.requests}
    assert hosts == {"www.ylwt22.com"}  # the site's own URLs, no other host
    assert "http://www.ylwt22.com/robots.txt" in site.requests
    assert "http://www.ylwt22.com/sitemap.xml" in site.requests
    assert not [url for url in site.requests if "/plus/" in url]  # disallowed by robots.txt
    assert len(site.user_agents) == 1
    assert next(iter(site.user_agents)).startswith("ylwt22-archive/")
    assert "'database/articles_new': 14" in result.stderr
    assert f"Stored in {sqlite_url}: 14 new, 0 updated, 0 unchanged, 0 outranked." in result.stderr


@pytest.mark.postgres
def test_crawl_into_postgresql(site: SiteProxy, pg_url: str, tmp_path: Path) -> None:
    assert_ok(crawl(pg_url, proxy=site.url, data_dir=tmp_path))
    assert_archive_matches_expected(pg_url)


def test_offline_mirror_gives_the_same_archive_and_contacts_no_host(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    # The proxy is offered; offline mode must not use it, nor anything else.
    result = crawl(sqlite_url, "-s", f"OFFLINE_MIRROR={MIRROR}", proxy=site.url, data_dir=tmp_path)
    assert_ok(result)
    assert site.requests == []
    assert_archive_matches_expected(sqlite_url)


def test_second_crawl_stores_no_second_row_and_moves_last_seen(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    assert_ok(crawl(sqlite_url, proxy=site.url, data_dir=tmp_path))
    first = {url: (a.id, a.first_seen_at, a.last_seen_at, a.fetched_at)
             for url, a in stored(sqlite_url).items()}  # fmt: skip
    # A full crawl fetches every article again (an incremental one would skip them).
    again = crawl(sqlite_url, "-a", "mode=full", proxy=site.url, data_dir=tmp_path)
    assert_ok(again)
    assert "'database/articles_unchanged': 14" in again.stderr
    second = stored(sqlite_url)
    assert sorted(second) == sorted(first)
    for url, (row_id, first_seen, last_seen, fetched) in first.items():
        row = second[url]
        assert row.id == row_id
        assert row.first_seen_at == first_seen
        assert row.fetched_at == fetched  # the stored version is still the first fetch
        assert row.last_seen_at > last_seen


def test_retry_after_is_honoured_and_the_article_is_kept(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    url = "http://www.ylwt22.com/yanjianggao/2023/0428/309973.html"
    site.replies[url] = [Reply(503, b"busy", {"Retry-After": "1"}), Reply(429, b"slow down")]
    result = crawl(sqlite_url, "-s", "LOG_LEVEL=DEBUG", "-s", "RETRY_BACKOFF_BASE=0.2",
                   proxy=site.url, data_dir=tmp_path)  # fmt: skip
    assert_ok(result)
    assert site.requests.count(url) == 3
    assert "Waiting 1.0s (Retry-After) before retrying" in result.stderr
    # No Retry-After on the 429: exponential backoff, 0.2 s doubled once, half jittered.
    assert re.search(r"Waiting 0\.[2-4]s \(backoff\) before retrying", result.stderr)
    assert url in stored(sqlite_url)


def test_an_article_missing_a_page_is_dropped_not_half_stored(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    site.replies[MULTI_PAGE.replace(".html", "_2.html")] = Reply(404, b"gone")
    result = crawl(sqlite_url, proxy=site.url, data_dir=tmp_path)
    assert_ok(result)
    rows = stored(sqlite_url)
    assert MULTI_PAGE not in rows
    assert len(rows) == len(expected_records()) - 1
    assert "'drop/incomplete_article': 1" in result.stderr
    assert "incomplete_article: could not fetch" in result.stderr


def test_unreachable_database_fails_the_crawl_with_one_clear_line(
    site: SiteProxy, tmp_path: Path
) -> None:
    result = crawl("postgresql+psycopg://nobody@127.0.0.1:1/none", proxy=site.url,
                   data_dir=tmp_path)  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "error: the crawl ended with 'database_error': cannot connect to "
        "postgresql+psycopg://nobody@127.0.0.1:1/none"
    )


def test_a_bad_site_root_is_a_usage_error(tmp_path: Path) -> None:
    result = crawl(f"sqlite:///{tmp_path / 'a.db'}", "-s", "SITE_ROOT=ftp://www.ylwt22.com/")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "error: SITE_ROOT must be an http(s) URL, got 'ftp://www.ylwt22.com/'"
    )
