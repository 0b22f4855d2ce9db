"""How the spider finds articles: the nav's categories, every page of the DedeCMS pager,
and the sitemap as a second path; only the site's own hosts are followed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.pages.listing import category_urls, parse_list_page, parse_sitemap
from crawler.site import DEFAULT_SITE, Site
from tests.support.crawl import MIRROR, crawl
from tests.support.pages import expected_records, mirror_file
from tests.support.siteproxy import Reply, SiteProxy
from tests.test_crawl import assert_ok, stored

ROOT = "http://www.ylwt22.com/"
ARTICLE = "http://www.ylwt22.com/xindetihui/2023/0912/315175.html"


@pytest.fixture
def site() -> Iterator[SiteProxy]:
    with SiteProxy(MIRROR) as proxy:
        yield proxy


def listing(
    items: list[str], pages: int, current: int, typeid: int = 7, articles: int | None = None
) -> bytes:
    """A category list page in the stock DedeCMS form, its pager showing a window of
    page numbers around the current one; by default, ``items`` on every page."""
    articles = pages * len(items) if articles is None else articles
    lis = "".join(
        f'<li><span class="date">2023-09-12</span><a href="{u}">文章</a><p>…</p></li>'
        for u in items
    )
    window = range(max(1, current - 1), min(pages, current + 1) + 1)
    numbers = "".join(f"<li><a href='list_{typeid}_{n}.html'>{n}</a></li>" for n in window)
    pager = (
        f"<li><a href='list_{typeid}_1.html'>首页</a></li>{numbers}"
        f"<li><a href='list_{typeid}_{pages}.html'>末页</a></li>"
        f'<li><span class="pageinfo">共 <strong>{pages}</strong>页'
        f"<strong>{articles}</strong>条</span></li>"
    )
    return (
        '<html><head><meta charset="utf-8"></head><body><div class="list"><ul>'
        f'{lis}</ul></div><div class="pages"><ul class="pagelist">{pager}</ul></div>'
        "</body></html>"
    ).encode()


def test_categories_come_from_the_nav() -> None:
    body = mirror_file(ROOT + "index.html").read_bytes()
    names = "dangtuangongzuo gongzuozongjie xindetihui shuzhibaogao yanjianggao gongzuojihua"
    assert category_urls(ROOT, body) == [f"{ROOT}{name}/" for name in names.split()]


def test_every_list_page_is_named_even_outside_the_pagers_window() -> None:
    page = parse_list_page(ROOT + "xindetihui/", listing([ARTICLE], pages=6, current=1))
    assert (page.page_count, page.article_count, page.typeid) == (6, 6, 7)
    # The window shows 1 and 2 only; 共 6 页 names the rest, and page 1 is the category.
    assert [page.page_url(n) for n in range(1, 7)] == [ROOT + "xindetihui/"] + [
        ROOT + f"xindetihui/list_7_{n}.html" for n in range(2, 7)
    ]
    assert page.next_url == ROOT + "xindetihui/list_7_2.html"
    assert page.article_urls == (ARTICLE,)


def test_list_pages_from_the_snapshot() -> None:
    url = ROOT + "dangtuangongzuo/list_5_2.html"
    page = parse_list_page(url, mirror_file(url).read_bytes())
    assert page.article_urls == (ROOT + "dangtuangongzuo/2022/1220/305064.html",)
    # The last page: its pager links back to list_5_1, the category page, only.
    assert (page.page_number, page.page_count, page.article_count) == (2, 2, 3)
    assert (page.next_url, page.typeid) == (None, 5)
    assert page.page_url(1) == ROOT + "dangtuangongzuo/"


def test_sitemap_articles_are_canonical_and_on_site() -> None:
    body = (
        b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>http://m.ylwt22.com/xindetihui/2023/0912/315175.html</loc></url>"
        b"<url><loc>http://www.ylwt22.com/xindetihui/2023/0912/315175_2.html</loc></url>"
        b"<url><loc>http://elsewhere.example/xindetihui/2023/0912/1.html</loc></url>"
        b"<url><loc>http://www.ylwt22.com/tags/abc.html</loc></url></urlset>"
    )
    assert parse_sitemap(body).article_urls == (ARTICLE,)
    index = (
        b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<sitemap><loc>http://www.ylwt22.com/sitemap_2.xml</loc></sitemap>"
        b"<sitemap><loc>http://elsewhere.example/sitemap.xml</loc></sitemap></sitemapindex>"
    )
    assert parse_sitemap(index).sitemaps == ("http://www.ylwt22.com/sitemap_2.xml",)


def test_canonical_urls() -> None:
    site = DEFAULT_SITE
    for variant in (
        ARTICLE,
        "https://www.ylwt22.com/xindetihui/2023/0912/315175.html",
        "http://m.ylwt22.com/xindetihui/2023/0912/315175_3.html?from=timeline#p2",
        "http://WWW.YLWT22.COM/xindetihui/2023/0912/315175.html",
    ):
        assert site.canonical_article_url(variant) == ARTICLE, variant
    for not_article in (
        "http://www.ylwt22.com/xindetihui/",
        "http://www.ylwt22.com/tags/315175.html",
        "http://other.example/xindetihui/2023/0912/315175.html",
    ):
        assert site.canonical_article_url(not_article) is None, not_article
    assert site.article_page_url(ARTICLE, 3) == ARTICLE.replace(".html", "_3.html")
    assert site.hosts == ("www.ylwt22.com", "m.ylwt22.com")
    local = Site.from_root("http://127.0.0.1:8080")
    assert local.hosts == ("127.0.0.1",)
    assert local.canonical_article_url("http://127.0.0.1:8080/a/2023/0101/1_2.html") == (
        "http://127.0.0.1:8080/a/2023/0101/1.html"
    )
    with pytest.raises(ValueError, match="SITE_ROOT"):
        Site.from_root("ftp://www.ylwt22.com/")


# --- crawls --------------------------------------------------------------------------


def test_an_article_linked_only_from_the_sitemap_is_archived(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    unlisted = "http://www.ylwt22.com/xindetihui/2023/0913/315200.html"
    page = mirror_file(ARTICLE).read_bytes().replace("李静".encode(), "王芳".encode())
    site.replies[unlisted] = Reply(200, page, {"Content-Type": "text/html"})
    sitemap = mirror_file(ROOT + "sitemap.xml").read_bytes()
    site.replies[ROOT + "sitemap.xml"] = Reply(
        200, sitemap.replace(b"</urlset>", f"<url><loc>{unlisted}</loc></url></urlset>".encode())
    )
    assert_ok(crawl(sqlite_url, proxy=site.url, data_dir=tmp_path))
    rows = stored(sqlite_url)
    assert rows[unlisted].author == "王芳"
    assert len(rows) == len(expected_records()) + 1


def test_without_a_sitemap_the_category_lists_still_reach_every_article(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    site.replies[ROOT + "sitemap.xml"] = Reply(404, b"")
    site.replies[ROOT + "robots.txt"] = Reply(200, b"User-agent: *\nDisallow: /plus/\n")
    assert_ok(crawl(sqlite_url, proxy=site.url, data_dir=tmp_path))
    assert sorted(stored(sqlite_url)) == sorted(r["url"] for r in expected_records())


def test_a_new_category_in_the_nav_is_walked_through_all_its_pages(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    home = mirror_file(ROOT + "index.html").read_bytes()
    site.replies[ROOT] = Reply(
        200,
        home.replace(b"</ul></div>", '<li><a href="/fanwen/">范文</a></li></ul></div>'.encode(), 1),
    )
    article = mirror_file(ARTICLE).read_bytes()
    new = [f"{ROOT}fanwen/2023/0912/9000{n}.html" for n in range(3)]
    for n, url in enumerate(new):
        site.replies[url] = Reply(200, article.replace("李静".encode(), f"作者{n}".encode()))
    # Three list pages; the pager on page 1 shows pages 1 and 2 only.
    site.replies[ROOT + "fanwen/"] = Reply(200, listing([new[0]], pages=3, current=1, typeid=42))
    site.replies[ROOT + "fanwen/list_42_2.html"] = Reply(200, listing([new[1]], 3, 2, 42))
    site.replies[ROOT + "fanwen/list_42_3.html"] = Reply(200, listing([new[2]], 3, 3, 42))
    assert_ok(crawl(sqlite_url, proxy=site.url, data_dir=tmp_path))
    rows = stored(sqlite_url)
    assert [rows[url].author for url in new] == ["作者0", "作者1", "作者2"]
    assert site.requests.count(ROOT + "fanwen/list_42_1.html") == 0  # it is the category page


def test_only_the_sites_hosts_are_followed(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    sitemap = mirror_file(ROOT + "sitemap.xml").read_bytes()
    offsite = b"<url><loc>http://elsewhere.example/xindetihui/2023/0912/1.html</loc></url>"
    site.replies[ROOT + "sitemap.xml"] = Reply(
        200, sitemap.replace(b"</urlset>", offsite + b"</urlset>")
    )
    site.replies[ROOT + "robots.txt"] = Reply(
        200, b"User-agent: *\nDisallow: /plus/\nSitemap: http://elsewhere.example/sitemap.xml\n"
    )
    assert_ok(crawl(sqlite_url, proxy=site.url, data_dir=tmp_path))
    assert {url.split("/")[2] for url in site.requests} == {"www.ylwt22.com"}
