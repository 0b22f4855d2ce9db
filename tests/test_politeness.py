"""Politeness over real sockets: robots.txt Crawl-delay, host-wide backoff on 429 and 503,
and CRAWL_RATE, measured by when the stand-in for the site receives each request.

Timing is only ever bounded from below, with room for the few milliseconds by which
arrivals at the proxy vary; a slow machine makes gaps longer, never shorter.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from scrapy.core.downloader import Downloader as ScrapyDownloader
from scrapy.settings import Settings

from crawler import settings as project_settings
from crawler.addons import CrawlRate
from crawler.downloader import Downloader
from crawler.errors import UsageFailure
from tests.support.crawl import MIRROR, crawl
from tests.support.siteproxy import Reply, SiteProxy

ROBOTS_URL = "http://www.ylwt22.com/robots.txt"
SNAPSHOT_ROBOTS = (MIRROR / "www.ylwt22.com" / "robots.txt").read_text(encoding="utf-8")
# The first article the sitemap leads to: early in the crawl.
ARTICLE = "http://www.ylwt22.com/xindetihui/2023/0825/314577.html"
TOLERANCE = 0.9


@pytest.fixture
def site() -> Iterator[SiteProxy]:
    with SiteProxy(MIRROR) as proxy:
        yield proxy


def robots_with_crawl_delay(delay: str) -> Reply:
    """The snapshot's robots.txt (its Disallow and Sitemap lines) with a Crawl-delay."""
    body = f"{SNAPSHOT_ROBOTS.rstrip()}\nCrawl-delay: {delay}\n"
    return Reply(200, body.encode(), {"Content-Type": "text/plain"})


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in pairwise(times)]


def options(*settings: str) -> list[str]:
    """``-s NAME=VALUE`` for each setting."""
    return [part for setting in settings for part in ("-s", setting)]


def assert_ok(result: object) -> None:
    assert getattr(result, "returncode", None) == 0, getattr(result, "stderr", "")[-4000:]


# How late SiteProxy may note a request's arrival: its handler threads run in the test's
# own process, which a loaded machine may keep waiting for a core. A request noted late
# shortens the gap after it by as much as it lengthens the gap before it.
JITTER = 0.1


def assert_spaced(times: list[float], seconds: float) -> None:
    """Requests k apart arrived at least k times ``seconds`` apart, within the jitter of
    noting each arrival: the rate holds over every stretch of the crawl, and no two
    requests came close together."""
    assert len(times) >= 3, times  # enough requests for the spacing to mean something
    for i, earlier in enumerate(times):
        for k, later in enumerate(times[i + 1 :], start=1):
            assert later - earlier >= k * seconds - JITTER, (i, k, gaps(times))


# --- robots.txt Crawl-delay -------------------------------------------------------------


def test_crawl_delay_holds_every_request_apart_under_autothrottle(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    # AutoThrottle on, with nothing under it: on a fast local site it would go to ~0 s.
    # Several requests in flight: those already queued in the slot when AutoThrottle
    # lowers its delay are held apart too.
    site.replies[ROBOTS_URL] = robots_with_crawl_delay("1")
    settings = options("AUTOTHROTTLE_ENABLED=True", "AUTOTHROTTLE_START_DELAY=0",
                       "CLOSESPIDER_PAGECOUNT=6", "CONCURRENT_REQUESTS=4")  # fmt: skip
    result = crawl(sqlite_url, *settings, proxy=site.url, data_dir=tmp_path)
    assert_ok(result)
    assert_spaced(site.times, 1.0)
    assert len(site.requests) >= 6
    assert result.stderr.count("Crawl-delay of www.ylwt22.com: at least 1s between requests") == 1
    # The snapshot's rules still hold alongside the Crawl-delay.
    assert not [url for url in site.requests if "/plus/" in url]


def test_a_crawl_delay_above_the_maximum_is_capped_with_one_warning(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    site.replies[ROBOTS_URL] = robots_with_crawl_delay("1000")
    settings = options("ROBOTSTXT_CRAWL_DELAY_MAX=1.5", "CLOSESPIDER_TIMEOUT=2",
                       "CONCURRENT_REQUESTS=2")  # fmt: skip
    result = crawl(sqlite_url, *settings, proxy=site.url, data_dir=tmp_path)
    assert_ok(result)
    warning = (
        "WARNING: robots.txt of www.ylwt22.com asks for a Crawl-delay of 1000s; "
        "using ROBOTSTXT_CRAWL_DELAY_MAX (1.5s)"
    )
    assert result.stderr.count(warning) == 1
    assert "Crawl-delay of www.ylwt22.com: at least 1.5s between requests" in result.stderr
    assert_spaced(site.times, 1.5)


def test_the_longest_crawl_delay_honoured_is_a_minute_by_default() -> None:
    assert project_settings.ROBOTSTXT_CRAWL_DELAY_MAX == 60.0


def test_robotstxt_obey_false_switches_the_crawl_delay_off(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    site.replies[ROBOTS_URL] = robots_with_crawl_delay("1")
    settings = options("ROBOTSTXT_OBEY=False", "CLOSESPIDER_PAGECOUNT=6")
    result = crawl(sqlite_url, *settings, proxy=site.url, data_dir=tmp_path)
    assert_ok(result)
    assert "Crawl-delay" not in result.stderr
    assert "robotstxt/" not in result.stderr  # no robots.txt middleware at all
    assert site.requests.count(ROBOTS_URL) == 1  # the spider's own, for its sitemaps


# --- 429 and 503 slow the whole host ----------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "setting"),
    [
        # No Retry-After: the backoff before the first retry, 0.5 s at the most.
        pytest.param(Reply(429, b"slow down"), "RETRY_BACKOFF_BASE=0.5", id="429-backoff"),
        # Retry-After: 1 s, capped by RETRY_BACKOFF_MAX for the rest of the host.
        pytest.param(
            Reply(503, b"busy", {"Retry-After": "1"}), "RETRY_BACKOFF_MAX=0.5", id="503-retry-after"
        ),
    ],
)
def test_429_and_503_slow_down_the_host_until_it_recovers(
    site: SiteProxy, sqlite_url: str, tmp_path: Path, reply: Reply, setting: str
) -> None:
    site.replies[ARTICLE] = [reply]
    # One request in flight at a time (and no delay, no AutoThrottle): every request after
    # the 429 or 503 was sent after the crawler received it, and would otherwise follow
    # at once.
    settings = options(setting, "CONCURRENT_REQUESTS_PER_DOMAIN=1", "CONCURRENT_REQUESTS=2",
                       "CLOSESPIDER_PAGECOUNT=10")  # fmt: skip
    result = crawl(sqlite_url, *settings, proxy=site.url, data_dir=tmp_path)
    assert_ok(result)
    logged = f"Slowing down www.ylwt22.com after a {reply.status}: at least 0.5s between requests"
    assert logged in result.stderr
    assert "'retry/slot_backoff': 1," in result.stderr
    first = site.requests.index(ARTICLE)
    assert set(site.requests[first + 1 :]) - {ARTICLE}  # other URLs, not just the retry
    after = gaps(site.times[first:])
    # The next request waits the whole backoff; then, AutoThrottle being off here, each
    # success halves the extra delay, as AutoThrottle itself would.
    assert after[0] >= 0.5 * TOLERANCE, after
    assert after[1] >= 0.25 * TOLERANCE, after


# --- CRAWL_RATE -------------------------------------------------------------------------


@pytest.mark.parametrize("autothrottle", ["False", "True"])
def test_crawl_rate_spaces_requests_whatever_the_concurrency(
    site: SiteProxy, sqlite_url: str, tmp_path: Path, autothrottle: str
) -> None:
    # The crawl helper's settings allow 8 requests in flight per host with no delay.
    settings = options("CRAWL_RATE=2", f"AUTOTHROTTLE_ENABLED={autothrottle}",
                       "AUTOTHROTTLE_START_DELAY=0", "CLOSESPIDER_PAGECOUNT=6",
                       "CONCURRENT_REQUESTS=2")  # fmt: skip
    result = crawl(sqlite_url, *settings, proxy=site.url, data_dir=tmp_path)
    assert_ok(result)
    assert "'DOWNLOAD_DELAY': 0.5," in result.stderr
    assert_spaced(site.times, 0.5)


# --- Per-host concurrency ---------------------------------------------------------------


def test_the_per_host_concurrency_holds_with_no_delay(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    # Each answer takes 0.2 s; with one request in flight at a time, no two answers come
    # closer than that (Scrapy's own downloader would send the queued ones all at once).
    site.delay = 0.2
    settings = options("CONCURRENT_REQUESTS_PER_DOMAIN=1", "DOWNLOAD_DELAY=0",
                       "CLOSESPIDER_PAGECOUNT=8")  # fmt: skip
    assert_ok(crawl(sqlite_url, *settings, proxy=site.url, data_dir=tmp_path))
    assert_spaced(site.times, 0.2)


def test_scrapys_own_downloader_still_sends_the_burst_this_project_works_around(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    """The reason for crawler/downloader.py: when Scrapy's own downloader keeps the
    per-host concurrency with no delay, this fails, and the copy can go."""
    site.delay = 0.2
    settings = options("CONCURRENT_REQUESTS_PER_DOMAIN=1", "DOWNLOAD_DELAY=0",
                       "CLOSESPIDER_PAGECOUNT=8",
                       "DOWNLOADER=scrapy.core.downloader.Downloader")  # fmt: skip
    assert_ok(crawl(sqlite_url, *settings, proxy=site.url, data_dir=tmp_path))
    assert min(gaps(site.times)) < 0.2 * TOLERANCE, gaps(site.times)


@pytest.mark.unit
def test_the_downloader_copies_scrapys_method_but_for_one_line() -> None:
    """crawler/downloader.py's _process_queue is Scrapy's own with one statement added:
    when Scrapy changes its method, the copy must be looked at again."""

    def code(function: object) -> list[str]:
        """The method's statements, one per line, without its comments."""
        source = textwrap.dedent(inspect.getsource(function))  # type: ignore[arg-type]
        return ast.unparse(ast.parse(source)).splitlines()

    ours, theirs = code(Downloader._process_queue), code(ScrapyDownloader._process_queue)
    added = "        slot.transferring.add(request)"
    assert ours.count(added) == 1
    ours.remove(added)
    assert ours == theirs


def applied(**values: object) -> Settings:
    """The project's settings, ``values`` given on the command line, after CrawlRate."""
    settings = Settings()
    settings.setmodule(project_settings, priority="project")
    settings.setdict(values, priority="cmdline")
    CrawlRate().update_settings(settings)
    return settings


def test_crawl_rate_replaces_the_project_delays() -> None:
    settings = applied(CRAWL_RATE="0.25")
    assert settings.getfloat("DOWNLOAD_DELAY") == 4.0
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 1
    assert settings.getfloat("DOWNLOAD_DELAY_JITTER") == 0.0
    assert settings.getfloat("AUTOTHROTTLE_MAX_DELAY") == 60.0
    assert settings.getbool("AUTOTHROTTLE_ENABLED")


def test_crawl_rate_keeps_slower_settings_and_raises_faster_ones() -> None:
    assert applied(CRAWL_RATE="2", DOWNLOAD_DELAY="3").getfloat("DOWNLOAD_DELAY") == 3.0
    assert applied(CRAWL_RATE="2", DOWNLOAD_DELAY="0").getfloat("DOWNLOAD_DELAY") == 0.5
    concurrent = applied(CRAWL_RATE="2", CONCURRENT_REQUESTS_PER_DOMAIN="4")
    assert concurrent.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 4
    # A jitter given: the shortest of its draws is still 1 / CRAWL_RATE.
    jittered = applied(CRAWL_RATE="2", DOWNLOAD_DELAY_JITTER="0.5")
    assert jittered.getfloat("DOWNLOAD_DELAY") == 1.0
    # AutoThrottle may not shorten a delay beyond its own maximum.
    assert applied(CRAWL_RATE="0.01").getfloat("AUTOTHROTTLE_MAX_DELAY") == 100.0


def test_without_crawl_rate_the_settings_are_untouched() -> None:
    settings = applied()
    assert settings.getfloat("DOWNLOAD_DELAY") == 1.0
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 2


@pytest.mark.parametrize("rate", ["0", "-1", "fast", "nan"])
def test_a_crawl_rate_that_is_no_rate_is_a_usage_error(rate: str) -> None:
    with pytest.raises(UsageFailure, match="CRAWL_RATE must be requests per second above 0"):
        applied(CRAWL_RATE=rate)
