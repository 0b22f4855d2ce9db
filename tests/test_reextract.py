"""`scrapy reextract`: the current extraction over the stored articles' raw pages."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import update

from storage.db import make_engine, session_factory
from storage.models import Article
from tests.support.crawl import MIRROR, reextract, replay
from tests.support.pages import expected_records
from tests.test_crawl import assert_archive_matches_expected, assert_ok
from tests.test_replay import stats

URLS = [record["url"] for record in expected_records()]
EDITOR_LINE = "下面是小编为大家整理的范文,供大家参考。"


def changes_report(stdout: str) -> list[str]:
    """The re-extraction's own report, after the run's summary."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Re-extracted"))
    return lines[start:]


def tamper(database_url: str, url: str, **values: object) -> None:
    engine = make_engine(database_url)
    with session_factory(engine).begin() as session:
        session.execute(update(Article).where(Article.url == url).values(**values))
    engine.dispose()


def test_reextraction_updates_what_an_older_extraction_got_wrong(sqlite_url: str) -> None:
    assert_ok(replay(sqlite_url, MIRROR))
    # Rows as an older extraction stored them: one kept the editor's line in the body,
    # one read the title wrongly; both say which version produced them.
    tamper(sqlite_url, URLS[0], body=EDITOR_LINE + "\n" + expected_records()[0]["body"],
           extractor_version="2020.1")  # fmt: skip
    tamper(sqlite_url, URLS[1], title="十号范文网", extractor_version="2020.1")

    result = reextract(sqlite_url)
    assert_ok(result)
    assert_archive_matches_expected(sqlite_url)  # every field right again
    report = changes_report(result.stdout)
    assert report[0] == (
        f"Re-extracted {len(URLS)} articles: 2 updated, {len(URLS) - 2} unchanged, "
        "0 outranked; 0 dropped."
    )
    assert report[1] == "Changed fields:"
    assert "  body: 1" in report
    assert "  extractor_version: 2" in report
    assert "  title: 1" in report
    assert f"    {URLS[1]}: '十号范文网' -> '{expected_records()[1]['title']}'" in report
    assert any(line.startswith(f"    {URLS[0]}: '{EDITOR_LINE[:20]}") for line in report)


def test_reextraction_with_nothing_changed_changes_nothing(sqlite_url: str) -> None:
    assert_ok(replay(sqlite_url, MIRROR))
    result = reextract(sqlite_url)
    assert_ok(result)
    assert changes_report(result.stdout) == [
        f"Re-extracted {len(URLS)} articles: 0 updated, {len(URLS)} unchanged, 0 outranked; "
        "0 dropped."
    ]
    assert result.stdout.startswith(
        f"Run 2 (reextract) finished: {len(URLS)} articles, every one accounted for:\n"
        f"  0 new, 0 updated, {len(URLS)} unchanged,"
    )


def test_a_raw_page_that_is_gone_is_reported_and_its_row_kept(
    sqlite_url: str, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR, mirror)
    assert_ok(replay(sqlite_url, mirror))
    gone = mirror / "www.ylwt22.com/xindetihui/2023/0912/315175.html"
    gone.unlink()
    result = reextract(sqlite_url)
    assert_ok(result)
    assert "Could not fetch http://www.ylwt22.com/xindetihui/2023/0912/315175.html" in (
        result.stderr
    )
    assert stats(result.stderr, "article/fetch_failed") == {"article/fetch_failed": 1}
    assert_archive_matches_expected(sqlite_url)  # nothing stored is harmed
