"""Offline mode: requests answered from a saved `wget --mirror` tree."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from crawler.handlers.mirror import mirror_path
from tests.support.crawl import MIRROR, crawl
from tests.support.pages import expected_records
from tests.test_crawl import assert_ok, stored

ROOT = "http://www.ylwt22.com/"


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    copy = tmp_path / "mirror"
    shutil.copytree(MIRROR, copy)
    return copy


def test_urls_map_to_files_in_wget_layout(mirror: Path) -> None:
    www = mirror / "www.ylwt22.com"
    assert mirror_path(mirror, ROOT) == (www / "index.html").resolve()
    assert mirror_path(mirror, ROOT + "xindetihui/") == (www / "xindetihui/index.html").resolve()
    assert mirror_path(mirror, ROOT + "xindetihui") == (www / "xindetihui/index.html").resolve()
    assert mirror_path(mirror, "http://WWW.YLWT22.COM/robots.txt") == (www / "robots.txt").resolve()
    assert mirror_path(mirror, ROOT + "missing.html") is None
    (www / "plus").mkdir()
    (www / "plus" / "list.php@tid=5").write_text("windows names")
    (www / "plus" / "view.php?aid=7").write_text("unix names")
    assert (
        mirror_path(mirror, ROOT + "plus/list.php?tid=5") == (www / "plus/list.php@tid=5").resolve()
    )
    assert (
        mirror_path(mirror, ROOT + "plus/view.php?aid=7") == (www / "plus/view.php?aid=7").resolve()
    )


def test_nothing_outside_the_mirror_is_served(mirror: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.html"
    secret.write_text("not the site's")
    assert mirror_path(mirror, ROOT + "%2e%2e/%2e%2e/secret.html") is None
    assert mirror_path(mirror, "http://../secret.html") is None
    (mirror / "www.ylwt22.com" / "link.html").symlink_to(secret)
    assert mirror_path(mirror, ROOT + "link.html") is None


def test_a_missing_page_answers_404_and_the_rest_is_archived(
    mirror: Path, sqlite_url: str, tmp_path: Path
) -> None:
    multi_page = "http://www.ylwt22.com/dangtuangongzuo/2022/1220/305064.html"
    (mirror / "www.ylwt22.com/dangtuangongzuo/2022/1220/305064_2.html").unlink()
    result = crawl(sqlite_url, "-s", f"OFFLINE_MIRROR={mirror}", data_dir=tmp_path)
    assert_ok(result)
    assert "'downloader/response_status_count/404': 1" in result.stderr
    assert "'drop/incomplete_article': 1" in result.stderr
    rows = stored(sqlite_url)
    assert multi_page not in rows
    assert len(rows) == len(expected_records()) - 1


def test_fetch_time_is_when_the_mirror_saved_the_page(
    mirror: Path, sqlite_url: str, tmp_path: Path
) -> None:
    url = "http://www.ylwt22.com/xindetihui/2023/0912/315175.html"
    saved = mirror / "www.ylwt22.com/xindetihui/2023/0912/315175.html"
    os.utime(saved, (1_700_000_000, 1_700_000_000))  # 2023-11-14T22:13:20Z
    assert_ok(crawl(sqlite_url, "-s", f"OFFLINE_MIRROR={mirror}", data_dir=tmp_path))
    assert stored(sqlite_url)[url].fetched_at.isoformat() == "2023-11-14T22:13:20+00:00"


def test_a_mirror_that_is_not_a_directory_is_a_clear_error(sqlite_url: str, tmp_path: Path) -> None:
    result = crawl(sqlite_url, "-s", f"OFFLINE_MIRROR={tmp_path / 'nowhere'}", data_dir=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"error: OFFLINE_MIRROR '{tmp_path / 'nowhere'}' is not a directory"
    )
