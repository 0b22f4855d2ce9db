"""What the site claims about its own size is bounded before the crawl acts on it.

- A list page's pager (共 N 页 M 条) is checked against what a category can hold
  (CATEGORY_MAX_ARTICLES) and against the articles the page lists; a claim that cannot
  be believed is logged, counted (list/implausible_pager) and read by its 下一页 links
  instead. A full crawl reads a believed pager's pages by number, LIST_PAGES_AHEAD at
  a time, so a category of 16,000 pages is read whole and a hostile one cannot fill
  the queue.
- Sitemap indexes are followed SITEMAP_MAX_DEPTH deep and SITEMAP_MAX_COUNT sitemaps
  per crawl (sitemap/skipped/too_deep, sitemap/skipped/too_many).
- A gzipped sitemap (sitemap.xml.gz) is read, up to DOWNLOAD_MAXSIZE once decompressed
  (sitemap/skipped/too_large past it), entities refused as in a plain one.
"""

from __future__ import annotations

import asyncio
import gzip
import random
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import scrapy
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler
from twisted.python.failure import Failure

import crawler.settings as project
from crawler.pages.listing import (
    ListPage,
    SitemapLinks,
    pager_problem,
    parse_list_page,
    parse_sitemap,
    read_sitemap,
)
from crawler.spiders.ylwt22 import Ylwt22Spider
from tests.support.crawl import MIRROR, crawl
from tests.support.pages import expected_records, mirror_file
from tests.support.siteproxy import Reply, SiteProxy
from tests.test_crawl import assert_ok, stored
from tests.test_discovery import listing
from tests.test_replay import stats

ROOT = "http://www.ylwt22.com/"
ALL = sorted(record["url"] for record in expected_records())
ARTICLE = ROOT + "xindetihui/2023/0912/315175.html"
HTML = {"Content-Type": "text/html"}
XML = {"Content-Type": "application/xml"}
GZIP_FILE = {"Content-Type": "application/x-gzip"}
MIB = 1024 * 1024
MAX_ARTICLES = project.CATEGORY_MAX_ARTICLES
# A crawl of the snapshot takes seconds; one that does not end is killed at 180.
CRAWL_TIME_LIMIT = 90


@pytest.fixture
def site() -> Iterator[SiteProxy]:
    with SiteProxy(MIRROR) as proxy:
        yield proxy


def with_pager(url: str, pages: int | str, articles: int | str) -> bytes:
    """The snapshot's list page at ``url`` (a category's page 1, 共 2页3条) claiming
    ``pages`` pages and ``articles`` articles instead."""
    body = mirror_file(url + "index.html").read_bytes()
    real = "共 <strong>2</strong>页<strong>3</strong>条".encode()
    assert body.count(real) == 1
    return body.replace(
        real, f"共 <strong>{pages}</strong>页<strong>{articles}</strong>条".encode()
    )


def timed_crawl(database_url: str, *settings: str, proxy: str, data_dir: Path) -> Any:
    started = time.monotonic()
    result = crawl(database_url, *settings, proxy=proxy, data_dir=data_dir)
    assert time.monotonic() - started < CRAWL_TIME_LIMIT, result.stderr[-3000:]
    return result


# --- the pager's claim, checked ------------------------------------------------------------


def test_a_pager_claiming_a_million_pages_is_read_in_constant_time_and_memory() -> None:
    body = with_pager(ROOT + "xindetihui/", 999999, 999999)
    tracemalloc.start()
    try:
        page = parse_list_page(ROOT + "xindetihui/", body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * MIB  # a tuple of a million URLs alone would be some 100 MiB
    assert (page.page_count, page.article_count, page.typeid) == (999999, 999999, 7)
    assert page.next_url == ROOT + "xindetihui/list_7_2.html"  # the pager's own 下一页
    assert page.page_url(999999) == ROOT + "xindetihui/list_7_999999.html"  # built when asked
    assert pager_problem(page, max_articles=MAX_ARTICLES) == (
        f"it claims 999999 articles, more than CATEGORY_MAX_ARTICLES ({MAX_ARTICLES})"
    )


def test_a_count_too_long_to_be_a_number_is_more_than_any_bound() -> None:
    body = with_pager(ROOT + "xindetihui/", "9" * 5000, 3)  # int() of it would raise
    page = parse_list_page(ROOT + "xindetihui/", body)
    assert page.page_count == 10**12
    assert pager_problem(page, max_articles=MAX_ARTICLES) == (
        "it claims 1000000000000 pages for 3 articles"
    )


def claim(pages: int | None, articles: int | None, listed: int, number: int = 1) -> ListPage:
    urls = tuple(f"{ROOT}fanwen/2023/0101/{n}.html" for n in range(listed))
    return ListPage(
        url=f"{ROOT}fanwen/list_42_{number}.html",
        article_urls=urls,
        page_count=pages,
        page_number=number,
        article_count=articles,
        typeid=42,
    )


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        # Honest pagers: N = ceil(M / page size); the last page lists fewer.
        (claim(2, 3, 2), ""),
        (claim(2, 3, 1, number=2), ""),
        (claim(16000, 320000, 20), ""),
        (claim(16000, 320000, 7, number=16000), ""),
        (claim(1, 0, 0), ""),
        (claim(None, None, 5), ""),  # no pager: nothing claimed
        (claim(300, None, 20), ""),  # 共 N 页 alone
        # Within reason: a few items more or fewer than the page size.
        (claim(100, 2000, 25), ""),
        (claim(100, 2000, 12), ""),
        # Past what a category holds.
        (claim(999999, 999999, 20), "it claims 999999 articles, more than CATEGORY_MAX_ARTICLES"),
        (claim(MAX_ARTICLES + 1, None, 1), f"it claims {MAX_ARTICLES + 1} pages, more than"),
        # N does not agree with M, or with the page size.
        (claim(999999, 3, 2), "it claims 999999 pages for 3 articles"),
        (claim(1000, 1000, 20), "it claims 1000 pages for 1000 articles, but lists 20 a page (50"),
        (claim(5, 2000, 20), "it claims 5 pages for 2000 articles, but lists 20 a page (100 pages"),
        (claim(40, 800, 0), "it claims 800 articles on 40 pages but lists none"),
    ],
    ids=lambda value: "" if isinstance(value, str) else repr(value.page_count),
)
def test_a_pager_is_believed_only_when_its_claim_is_plausible(page: ListPage, problem: str) -> None:
    found = pager_problem(page, max_articles=MAX_ARTICLES)
    assert found.startswith(problem), found
    assert bool(found) == bool(problem), found


def test_the_snapshots_pagers_are_all_believed() -> None:
    for path in sorted((MIRROR / "www.ylwt22.com").glob("*/*.html")):
        url = ROOT + str(path.relative_to(MIRROR / "www.ylwt22.com")).replace("index.html", "")
        page = parse_list_page(url, path.read_bytes())
        assert page.page_count is not None, url
        assert pager_problem(page, max_articles=MAX_ARTICLES) == "", url


# --- a full crawl's reading of a category, in process ---------------------------------------


class NothingArchived:
    async def begin_reading(self, category: str, at: object) -> None:
        return None

    async def known(self, urls: object) -> dict[str, object]:
        return {}


def list_spider(mode: str = "full", **settings: Any) -> Ylwt22Spider:
    names = ("SITE_ROOT", "CATEGORY_MAX_ARTICLES", "LIST_PAGES_AHEAD", "SITEMAP_MAX_DEPTH",
             "SITEMAP_MAX_COUNT", "DOWNLOAD_MAXSIZE")  # fmt: skip
    crawler = get_crawler(Ylwt22Spider, {name: getattr(project, name) for name in names} | settings)
    spider = Ylwt22Spider.from_crawler(crawler, mode=mode)
    crawler.spider = spider
    assert crawler.stats is not None
    crawler.stats.open_spider()
    spider.archive = NothingArchived()  # type: ignore[assignment]
    return spider


async def answered(request: scrapy.Request, body: bytes) -> list[scrapy.Request]:
    """What the spider's callback gives for ``body`` as the answer to ``request``."""
    response = HtmlResponse(request.url, body=body, headers=HTML, request=request)
    assert request.callback is not None
    return [r async for r in request.callback(response, **request.cb_kwargs)]  # type: ignore[misc]


def answer(request: scrapy.Request, body: bytes) -> list[scrapy.Request]:
    return asyncio.run(answered(request, body))


def fail(request: scrapy.Request) -> list[scrapy.Request]:
    failure = Failure(ConnectionRefusedError("refused"))
    failure.request = request  # type: ignore[attr-defined]
    assert request.errback is not None
    return list(request.errback(failure) or ())


def category_page(number: int, pages: int) -> bytes:
    """Page ``number`` of a category of ``pages`` pages of one article each, its pager
    cut down to its 下一页 link, so that reading 16,000 of them takes seconds."""
    following = f"<li><a href='list_42_{number + 1}.html'>下一页</a></li>" if number < pages else ""
    return (
        '<html><head><meta charset="utf-8"></head><body><div class="list"><ul><li>'
        f'<a href="/fanwen/2023/0101/{number}.html">文章</a></li></ul></div>'
        f'<div class="pages"><ul class="pagelist">{following}<li><span class="pageinfo">'
        f"共 <strong>{pages}</strong>页<strong>{pages}</strong>条</span></li></ul></div>"
        "</body></html>"
    ).encode()


def test_a_full_crawl_queues_list_pages_a_window_at_a_time() -> None:
    spider = list_spider()
    first = scrapy.Request(ROOT + "fanwen/", callback=spider.parse_list,
                           cb_kwargs={"category": ROOT + "fanwen/"})  # fmt: skip
    out = answer(first, category_page(1, 16000))
    lists = [r for r in out if r.callback == spider.parse_list]
    articles = [r for r in out if r.callback == spider.parse_article]
    # Pages 2 to 5 (LIST_PAGES_AHEAD, 4), not 16,000 pages; behind the articles queued.
    assert [r.url for r in lists] == [f"{ROOT}fanwen/list_42_{n}.html" for n in range(2, 6)]
    assert {r.priority for r in lists} == {-1}
    assert [r.priority for r in articles] == [0]
    assert lists[0].cb_kwargs == {"category": ROOT + "fanwen/", "last": 16000, "misses": 0}
    # Each page parsed queues the one 4 after it; the last pages queue none.
    assert [r.url for r in answer(lists[2], category_page(4, 16000))] == [
        f"{ROOT}fanwen/2023/0101/4.html",
        f"{ROOT}fanwen/list_42_8.html",
    ]
    near_end = scrapy.Request(f"{ROOT}fanwen/list_42_15997.html", callback=spider.parse_list,
                              cb_kwargs=dict(lists[0].cb_kwargs))  # fmt: skip
    assert [r.url for r in answer(near_end, category_page(15997, 16000))] == [
        f"{ROOT}fanwen/2023/0101/15997.html"
    ]


def test_a_category_of_16000_pages_is_read_whole_with_at_most_a_window_queued() -> None:
    """Every page answered in a random order among those queued, as concurrent
    downloads would; a few fail for good, and the pages after them are still read."""
    spider = list_spider()
    pages, failing = 16000, {7, 5000, 15999}
    read: list[int] = []
    shuffle = random.Random(20231009)

    async def crawl_category() -> tuple[int, int]:
        queued = [scrapy.Request(ROOT + "fanwen/", callback=spider.parse_list,
                                 cb_kwargs={"category": ROOT + "fanwen/"})]  # fmt: skip
        listed = most = 0
        while queued:
            most = max(most, len(queued))
            request = queued.pop(shuffle.randrange(len(queued)))
            number = spider.site.list_page_number(request.url)
            read.append(number)
            if number in failing:
                out = fail(request)
            else:
                out = await answered(request, category_page(number, pages))
            queued += [r for r in out if r.callback == spider.parse_list]
            listed += sum(r.callback == spider.parse_article for r in out)
        return listed, most

    listed, most = asyncio.run(crawl_category())
    assert sorted(read) == list(range(1, pages + 1))  # each page once, none past the end
    assert listed == pages - len(failing)
    assert most <= 4  # LIST_PAGES_AHEAD
    assert spider.crawler.stats.get_value("list/fetch_failed") == len(failing)  # type: ignore[union-attr]


def test_pages_past_the_real_end_stop_the_reading_after_two_misses_in_a_row() -> None:
    """A believed claim of more pages than there are: each run of pages LIST_PAGES_AHEAD
    apart ends at its second missing page."""
    spider = list_spider(LIST_PAGES_AHEAD=3)
    queued = [scrapy.Request(ROOT + "fanwen/", callback=spider.parse_list,
                             cb_kwargs={"category": ROOT + "fanwen/"})]  # fmt: skip
    read = []
    while queued:
        request = queued.pop(0)
        number = spider.site.list_page_number(request.url)
        read.append(number)
        # Ten real pages, claiming 300,000 (one article each: plausible).
        out = answer(request, category_page(number, 300000)) if number <= 10 else fail(request)
        queued += [r for r in out if r.callback == spider.parse_list]
    assert read == list(range(1, 10 + 2 * 3 + 1))


# --- crawls: list pages -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["incremental", "full"])
def test_an_implausible_pager_is_reported_and_its_category_read_by_its_next_links(
    site: SiteProxy, sqlite_url: str, tmp_path: Path, mode: str
) -> None:
    site.replies[ROOT + "xindetihui/"] = Reply(
        200, with_pager(ROOT + "xindetihui/", 999999, 999999)
    )
    site.replies[ROOT + "dangtuangongzuo/"] = Reply(
        200, with_pager(ROOT + "dangtuangongzuo/", 999999, 3)
    )
    result = timed_crawl(sqlite_url, "-a", f"mode={mode}", proxy=site.url, data_dir=tmp_path)
    assert_ok(result)
    assert sorted(stored(sqlite_url)) == ALL  # page 2 of each was read through 下一页
    assert stats(result.stderr, "list/") == {"list/implausible_pager": 2}
    assert (
        f"WARNING: Implausible pager on {ROOT}xindetihui/: it claims 999999 articles, more "
        f"than CATEGORY_MAX_ARTICLES ({MAX_ARTICLES}); not believed" in result.stderr
    )
    assert (
        f"WARNING: Implausible pager on {ROOT}dangtuangongzuo/: it claims 999999 pages for 3 "
        "articles; not believed" in result.stderr
    )
    lists = sorted(u for u in site.requests if "/list_" in u)
    assert lists == [ROOT + "dangtuangongzuo/list_5_2.html", ROOT + "xindetihui/list_7_2.html"]
    # home, robots.txt, sitemap.xml, 6 categories, 2 more list pages, 15 article pages
    assert stats(result.stderr, "scheduler/enqueued") == {
        "scheduler/enqueued": 26,
        "scheduler/enqueued/memory": 26,
    }


def new_category(site: SiteProxy, pages: int, claimed: int, typeid: int = 42) -> list[str]:
    """A category 范文 added to the nav: ``pages`` list pages of one article each, whose
    pagers claim ``claimed`` pages (and as many articles); its articles are the
    snapshot's ARTICLE under another author each."""
    home = mirror_file(ROOT + "index.html").read_bytes()
    nav = '<li><a href="/fanwen/">范文</a></li></ul></div>'.encode()
    site.replies[ROOT] = Reply(200, home.replace(b"</ul></div>", nav, 1), HTML)
    article = mirror_file(ARTICLE).read_bytes()
    urls = [f"{ROOT}fanwen/2023/0912/{900000 + n}.html" for n in range(1, pages + 1)]
    for n, url in enumerate(urls, 1):
        site.replies[url] = Reply(200, article.replace("李静".encode(), f"作者{n}".encode()), HTML)
        page = ROOT + "fanwen/" if n == 1 else f"{ROOT}fanwen/list_{typeid}_{n}.html"
        site.replies[page] = Reply(200, listing([url], claimed, n, typeid=typeid), HTML)
    return urls


def test_a_full_crawl_reads_every_page_of_a_long_category_in_turn(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    urls = new_category(site, pages=40, claimed=40)
    site.replies[ROOT + "fanwen/list_42_12.html"] = Reply(500, b"")  # fails for good
    result = timed_crawl(sqlite_url, "-a", "mode=full", "-s", "LIST_PAGES_AHEAD=3",
                         proxy=site.url, data_dir=tmp_path)  # fmt: skip
    assert_ok(result)
    rows = stored(sqlite_url)
    assert sorted(rows) == sorted([*ALL, *urls[:11], *urls[12:]])  # all but page 12's
    fanwen = [u for u in site.requests if u.startswith(ROOT + "fanwen/list_")]
    assert sorted(set(fanwen)) == sorted(f"{ROOT}fanwen/list_42_{n}.html" for n in range(2, 41))
    assert len(fanwen) == 39 + 3  # page 12 retried 3 times; no page twice otherwise
    # A window at a time: page n + 3 is asked for only once page n has been.
    first = {url: fanwen.index(url) for url in fanwen}
    for n in range(2, 38):
        assert first[f"{ROOT}fanwen/list_42_{n + 3}.html"] > first[f"{ROOT}fanwen/list_42_{n}.html"]
    assert stats(result.stderr, "list/") == {"list/fetch_failed": 1}
    assert f"Could not fetch list page {ROOT}fanwen/list_42_12.html" in result.stderr


def test_a_believed_claim_past_the_real_pages_costs_a_few_requests(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    # Three pages of one article each, claiming 250,000: as many as a category may
    # hold, so it is believed; the pages past the third answer 404.
    urls = new_category(site, pages=3, claimed=250000)
    result = timed_crawl(sqlite_url, "-a", "mode=full", proxy=site.url, data_dir=tmp_path)
    assert_ok(result)
    assert sorted(stored(sqlite_url)) == sorted([*ALL, *urls])
    fanwen = sorted(u for u in site.requests if u.startswith(ROOT + "fanwen/list_"))
    # LIST_PAGES_AHEAD (4) runs of pages, each ended by its second missing page.
    assert fanwen == sorted(f"{ROOT}fanwen/list_42_{n}.html" for n in range(2, 3 + 2 * 4 + 1))
    assert stats(result.stderr, "list/") == {"list/fetch_failed": 8}
    assert stats(result.stderr, "scheduler/enqueued")["scheduler/enqueued"] < 50


# --- crawls: sitemaps ---------------------------------------------------------------------


def robots_with(*sitemaps: str) -> Reply:
    robots = mirror_file(ROOT + "robots.txt").read_text("utf-8")
    robots += "".join(f"Sitemap: {url}\n" for url in sitemaps)
    return Reply(200, robots.encode(), {"Content-Type": "text/plain"})


def sitemap_index(*urls: str) -> bytes:
    entries = "".join(f"<sitemap><loc>{url}</loc></sitemap>" for url in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}'
        "</sitemapindex>"
    ).encode()


def urlset(*urls: str) -> bytes:
    entries = "".join(f"<url><loc>{url}</loc></url>" for url in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
    ).encode()


class EndlessSitemaps(SiteProxy):
    """Answers sitemap_index.xml?p=N with an index of one sitemap: ?p=N+1."""

    chain = ROOT + "sitemap_index.xml"

    def _answer(self, url: str, headers: dict[str, str]) -> Reply:
        reply = super()._answer(url, headers)  # recorded as asked for
        if urlsplit(url)._replace(query="").geturl() != self.chain:
            return reply
        number = int(parse_qs(urlsplit(url).query).get("p", ["0"])[0])
        return Reply(200, sitemap_index(f"{self.chain}?p={number + 1}"), XML)


def test_a_sitemap_index_that_never_ends_is_followed_three_deep(
    sqlite_url: str, tmp_path: Path
) -> None:
    with EndlessSitemaps(MIRROR) as site:
        site.replies[ROOT + "robots.txt"] = robots_with(EndlessSitemaps.chain)
        result = timed_crawl(sqlite_url, proxy=site.url, data_dir=tmp_path)
        chain = [u for u in site.requests if u.startswith(EndlessSitemaps.chain)]
    assert_ok(result)
    # The index robots.txt names, and three levels of indexes below it (SITEMAP_MAX_DEPTH).
    assert chain == [EndlessSitemaps.chain] + [f"{EndlessSitemaps.chain}?p={n}" for n in (1, 2, 3)]
    assert stats(result.stderr, "sitemap/") == {"sitemap/skipped/too_deep": 1}
    assert (
        f"WARNING: Skipped 1 sitemap(s) listed in {EndlessSitemaps.chain}?p=3: nested deeper than "
        f"SITEMAP_MAX_DEPTH (3): {EndlessSitemaps.chain}?p=4" in result.stderr
    )
    assert sorted(stored(sqlite_url)) == ALL


def test_no_more_sitemaps_than_the_limit_are_read(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    parts = [f"{ROOT}sitemap_part{n}.xml" for n in range(1, 31)]
    site.replies[ROOT + "robots.txt"] = robots_with(ROOT + "sitemap_wide.xml")
    site.replies[ROOT + "sitemap_wide.xml"] = Reply(200, sitemap_index(*parts), XML)
    for part in parts:
        site.replies[part] = Reply(200, urlset(ARTICLE), XML)
    result = timed_crawl(sqlite_url, "-s", "SITEMAP_MAX_COUNT=10", proxy=site.url,
                         data_dir=tmp_path)  # fmt: skip
    assert_ok(result)
    # sitemap.xml (named twice, read once), sitemap_wide.xml, and 8 of its 30.
    read = [u for u in site.requests if u.startswith(ROOT + "sitemap")]
    assert sorted(read) == sorted([ROOT + "sitemap.xml", ROOT + "sitemap_wide.xml", *parts[:8]])
    assert stats(result.stderr, "sitemap/") == {"sitemap/skipped/too_many": 22}
    assert (
        f"WARNING: Skipped 22 sitemap(s) listed in {ROOT}sitemap_wide.xml: past SITEMAP_MAX_COUNT "
        f"(10): {parts[8]}, {parts[9]}, {parts[10]}, …" in result.stderr
    )
    assert sorted(stored(sqlite_url)) == ALL


# --- gzipped sitemaps ----------------------------------------------------------------------


def gzip_bomb(size: int) -> bytes:
    """A gzipped sitemap of ``size`` bytes of XML: one <url> repeated."""
    head, entry = urlset()[: -len(b"</urlset>")], b"<url><loc>" + ARTICLE.encode() + b"</loc></url>"
    compressor = zlib.compressobj(wbits=31)  # a gzip stream
    chunk = entry * (MIB // len(entry))
    parts = [compressor.compress(head)]
    parts += [compressor.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join([*parts, compressor.compress(b"</urlset>"), compressor.flush()])


def test_a_gzipped_sitemap_reads_as_the_plain_one() -> None:
    plain = mirror_file(ROOT + "sitemap.xml").read_bytes()
    links = parse_sitemap(plain)
    assert len(links.article_urls) == len(ALL)
    assert read_sitemap(gzip.compress(plain), max_size=MIB) == links
    assert read_sitemap(plain, max_size=MIB) == links
    assert read_sitemap(gzip.compress(plain), max_size=0) == links  # 0: no limit, as Scrapy's


def test_a_gzipped_sitemap_past_the_size_limit_is_refused() -> None:
    bomb = gzip_bomb(32 * MIB)
    assert len(bomb) < MIB // 8
    tracemalloc.start()
    try:
        links = read_sitemap(bomb, max_size=MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (links.sitemaps, links.article_urls) == ((), ())
    assert links.problem.startswith(
        f"too_large: its {len(bomb)} B of gzip expand past DOWNLOAD_MAXSIZE ({MIB} B; "
    )
    assert peak < 4 * MIB  # decompression stopped at the limit


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"\x1f\x8b\x08\x00 not gzip at all", "malformed: not gzip"),
        (
            gzip.compress(
                b'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>&xxe;</loc>'
                b"</url></urlset>"
            ),
            "entities: its DOCTYPE declares xxe; none was read",
        ),
        (gzip.compress(b"<html><body>soft 404</body></html>"), "malformed: <html> is not"),
    ],
    ids=["bad-gzip", "entities-inside", "not-a-sitemap-inside"],
)
def test_a_gzipped_sitemap_that_is_not_one_gives_no_urls(body: bytes, problem: str) -> None:
    links = read_sitemap(body, max_size=MIB)
    assert (links.sitemaps, links.article_urls) == ((), ())
    assert links.problem.startswith(problem), links.problem
    assert isinstance(links, SitemapLinks)


def test_gzipped_sitemaps_are_read_as_files_and_as_content_encoding(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    page = mirror_file(ARTICLE).read_bytes()
    unlisted = [f"{ROOT}xindetihui/2023/0913/{315200 + n}.html" for n in range(3)]
    for n, url in enumerate(unlisted):
        site.replies[url] = Reply(200, page.replace("李静".encode(), f"王芳{n}".encode()), HTML)
    gzipped_file, content_encoded, both, bomb = (
        f"{ROOT}{name}" for name in ("sitemap_new.xml.gz", "sitemap_ce.xml",
                                     "sitemap_both.xml.gz", "sitemap_bomb.xml.gz")
    )  # fmt: skip
    site.replies[ROOT + "robots.txt"] = robots_with(gzipped_file, content_encoded, both, bomb)
    site.replies[gzipped_file] = Reply(200, gzip.compress(urlset(unlisted[0])), GZIP_FILE)
    site.replies[content_encoded] = Reply(
        200, gzip.compress(urlset(unlisted[1])), {**XML, "Content-Encoding": "gzip"}
    )
    # A .gz file that the server compresses again on the way.
    site.replies[both] = Reply(
        200, gzip.compress(gzip.compress(urlset(unlisted[2]))),
        {**GZIP_FILE, "Content-Encoding": "gzip"},
    )  # fmt: skip
    site.replies[bomb] = Reply(200, gzip_bomb(32 * MIB), GZIP_FILE)
    result = timed_crawl(sqlite_url, "-s", f"DOWNLOAD_MAXSIZE={MIB}", proxy=site.url,
                         data_dir=tmp_path)  # fmt: skip
    assert_ok(result)
    rows = stored(sqlite_url)
    assert sorted(rows) == sorted([*ALL, *unlisted])
    assert [rows[url].author for url in unlisted] == ["王芳0", "王芳1", "王芳2"]
    assert stats(result.stderr, "sitemap/") == {"sitemap/skipped/too_large": 1}
    assert f"Skipped sitemap {bomb}: too_large: its " in result.stderr
    assert f"expand past DOWNLOAD_MAXSIZE ({MIB} B; " in result.stderr
    assert "malformed" not in result.stderr
