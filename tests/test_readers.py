"""The extraction pool: pages read in worker processes give the items that reading in
the crawl's own process gives, and a worker that crashes or hangs costs one page."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler import settings as project
from crawler.extensions.readers import ArticleReaders, ReadFailed
from crawler.items import ArticleItem
from crawler.reading import Fetch, PageJob, PageRead, PartialArticle, Reader, ReaderConfig
from tests.support.crawl import MIRROR, crawl
from tests.support.misbehaving import MARKER
from tests.support.pages import expected, expected_records, mirror_file
from tests.support.siteproxy import SiteProxy
from tests.test_crawl import assert_ok, stored
from tests.test_runs import runs

CONFIG = ReaderConfig(project.SITE_ROOT, tuple(project.EXTRACT_PIPELINES))
HTML = {"Content-Type": "text/html"}
VICTIM = "http://www.ylwt22.com/xindetihui/2023/0912/315175.html"


FETCHED = Fetch(fetched_at=datetime(2024, 1, 20, 3, 0, tzinfo=UTC))


def marked(url: str) -> str:
    """The article's page with MARKER in the first paragraph of its document."""
    paragraph = expected(url)["body"].split("\n")[1][:20]
    head, content = mirror_file(url).read_text("utf-8").split('<div class="content"', 1)
    assert paragraph in content
    return f'{head}<div class="content"{content.replace(paragraph, paragraph + MARKER, 1)}'


def job(url: str, partial: PartialArticle | None = None) -> PageJob:
    return PageJob(url, mirror_file(url).read_bytes(), HTML, FETCHED, partial or PartialArticle())


async def read_article(read: object, url: str) -> ArticleItem:
    """Every page of the article at ``url``, read in order as the spider reads them."""
    answer: PageRead = await read(job(url))  # type: ignore[operator]
    while answer.next_url is not None:
        answer = await read(job(answer.next_url, answer.partial))  # type: ignore[operator]
    assert answer.item is not None
    return answer.item


def test_the_pool_reads_the_snapshot_as_the_crawls_own_process_does() -> None:
    urls = [record["url"] for record in expected_records()]
    reader = Reader(CONFIG)

    async def in_process(page: PageJob) -> PageRead:
        return reader.read(page)

    async def both() -> tuple[list[ArticleItem], list[ArticleItem]]:
        pool = ArticleReaders(CONFIG, workers=2, queue=4, timeout=60)
        pool.start()
        try:
            pooled = await asyncio.gather(*(read_article(pool.read, url) for url in urls))
        finally:
            await pool.stop()
        alone = [await read_article(in_process, url) for url in urls]
        return list(pooled), alone

    pooled, alone = asyncio.run(both())
    assert pooled == alone
    multi_page = next(item for item in pooled if len(item.page_urls) == 2)
    assert multi_page.page_urls == [multi_page.url, multi_page.url.replace(".html", "_2.html")]
    # The pipelines that run where pages are read have run: cleaned, hashed, signed.
    assert all(item.content_hash and item.signature for item in pooled)


@pytest.mark.parametrize("misbehaviour", ["CrashOnMarker", "HangOnMarker"])
def test_a_reader_that_crashes_or_hangs_costs_that_page_only(
    misbehaviour: str, sqlite_url: str, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR, mirror)
    (mirror / VICTIM.removeprefix("http://")).write_text(marked(VICTIM), "utf-8")
    pipelines = [*project.EXTRACT_PIPELINES, f"tests.support.misbehaving.{misbehaviour}"]
    with SiteProxy(mirror) as site:
        result = crawl(
            sqlite_url,
            "-s", f"EXTRACT_PIPELINES={','.join(pipelines)}",
            "-s", "EXTRACT_WORKERS=2",
            "-s", "EXTRACT_TIMEOUT=5",
            proxy=site.url,
            data_dir=tmp_path,
        )  # fmt: skip
    assert_ok(result)
    urls = {record["url"] for record in expected_records()}
    assert sorted(stored(sqlite_url)) == sorted(urls - {VICTIM})
    (run,) = runs(sqlite_url)
    assert run.status == "finished"
    assert run.dropped == {"extraction_failed": 1}
    assert f"Could not read {VICTIM}: " in result.stderr
    assert "Traceback" not in result.stderr


def test_an_error_in_the_reading_is_one_exception_that_says_it() -> None:
    config = ReaderConfig(
        CONFIG.site_root, (*CONFIG.pipelines, "tests.support.misbehaving.RaiseOnMarker")
    )
    bad = PageJob(VICTIM, marked(VICTIM).encode(), HTML, FETCHED)

    async def read() -> tuple[PageRead, str]:
        pool = ArticleReaders(config, workers=1, queue=1, timeout=30)
        pool.start()
        try:
            good = await pool.read(job(VICTIM))  # the worker reads other pages as ever
            with pytest.raises(ReadFailed) as failed:
                await pool.read(bad)
            return good, str(failed.value)
        finally:
            await pool.stop()

    good, message = asyncio.run(read())
    assert good.item is not None
    assert message == "ValueError: a reader that fails"
