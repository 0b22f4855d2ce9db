"""`scrapy replay`: saved pages of every kind into the archive, offline, deterministic;
bad inputs reported, counted and skipped."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.crawl import MIRROR, PROJECT_ROOT, crawl, replay, scrapy
from tests.support.pages import TEXT_PAGE, TEXT_PAGE_URL, expected, expected_records
from tests.support.siteproxy import SiteProxy
from tests.test_crawl import FIELDS, assert_archive_matches_expected, assert_ok, stored

MOBILE = MIRROR / "m.ylwt22.com/dangtuangongzuo/2023/1224/320094.html"
WWW = MIRROR / "www.ylwt22.com"


def stats(stderr: str, prefix: str) -> dict[str, int]:
    """Integer stats starting with ``prefix`` from the crawl's stats dump."""
    found = {}
    for raw in stderr.splitlines():
        line = raw.strip(" {},")
        if line.startswith(f"'{prefix}"):
            key, _, value = line.partition("': ")
            if value.strip().isdigit():
                found[key.strip("'")] = int(value)
    return found


def copy(source: Path, folder: Path) -> Path:
    """``source`` copied into ``folder`` under its mirror path (host/...)."""
    target = folder / source.relative_to(MIRROR)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    return target


def test_the_snapshot_and_the_text_page_replay_to_the_expected_archive(sqlite_url: str) -> None:
    result = replay(sqlite_url, MIRROR, TEXT_PAGE)
    assert_ok(result)
    rows = assert_archive_matches_expected(sqlite_url)
    # Three copies of one article (desktop, mobile, text): one row, the desktop's.
    row = rows[TEXT_PAGE_URL]
    assert row.template == "desktop"
    assert [p["kind"] for p in row.provenance] == ["mirror"]
    assert row.provenance[0]["path"] == str(WWW / "dangtuangongzuo/2023/1224/320094.html")
    assert stats(result.stderr, "replay/articles/") == {
        "replay/articles/mirror": 15,
        "replay/articles/text": 1,
    }
    assert all(r.template == "desktop" for r in rows.values())
    multi_page = rows["http://www.ylwt22.com/dangtuangongzuo/2022/1220/305064.html"]
    assert [p["url"] for p in multi_page.provenance] == multi_page.page_urls


def test_the_seed_text_page_replays_with_every_field_it_holds(
    sqlite_url: str, tmp_path: Path
) -> None:
    page = tmp_path / TEXT_PAGE.name
    shutil.copy2(TEXT_PAGE, page)
    os.utime(page, (1_700_000_000, 1_700_000_000))
    assert_ok(replay(sqlite_url, page))
    rows = stored(sqlite_url)
    assert list(rows) == [TEXT_PAGE_URL]
    row, record = rows[TEXT_PAGE_URL], expected(TEXT_PAGE_URL)
    assert row.title == "2024年镇团委上半年意识形态工作情况汇报"
    assert row.category == "党团工作"
    assert row.published_at.isoformat() == "2023-12-24T18:32:02+08:00"
    assert row.source == "网友投稿"
    assert row.tags == ["镇团委上半年意识形态工作情况汇报", "意识形态", "团委", "上半年"]
    assert row.body.startswith("2023年镇团委上半年意识形态工作情况汇报\n")
    assert row.body.endswith("服务大局。")
    for name in FIELDS:
        assert getattr(row, name) == record[name], name
    assert row.template == "text"
    assert row.fetched_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert row.provenance == [{"kind": "text", "url": TEXT_PAGE_URL, "path": str(page)}]


@pytest.mark.parametrize("text_first", [True, False], ids=["text-first", "html-first"])
def test_the_text_page_and_the_html_page_are_one_article(
    sqlite_url: str, tmp_path: Path, text_first: bool
) -> None:
    html = copy(WWW / "dangtuangongzuo/2023/1224/320094.html", tmp_path / "mirror")
    order = [TEXT_PAGE, tmp_path / "mirror"] if text_first else [tmp_path / "mirror", TEXT_PAGE]
    for path in order:
        assert_ok(replay(sqlite_url, path))
    rows = stored(sqlite_url)
    assert list(rows) == [TEXT_PAGE_URL]
    assert rows[TEXT_PAGE_URL].template == "desktop"
    assert rows[TEXT_PAGE_URL].provenance[0]["path"] == str(html)


@pytest.mark.parametrize("mobile_first", [True, False], ids=["mobile-first", "www-first"])
def test_www_fields_win_over_the_mobile_copy_whichever_comes_first(
    sqlite_url: str, tmp_path: Path, mobile_first: bool
) -> None:
    mobile = copy(MOBILE, tmp_path / "m")
    www = copy(WWW / "dangtuangongzuo/2023/1224/320094.html", tmp_path / "www")
    first, second = (tmp_path / "m", tmp_path / "www")
    if not mobile_first:
        first, second = second, first
    assert_ok(replay(sqlite_url, first))
    assert_ok(replay(sqlite_url, second))
    row = stored(sqlite_url)[TEXT_PAGE_URL]
    assert row.template == "desktop"
    assert row.published_at.isoformat() == expected(TEXT_PAGE_URL)["published_at"]
    assert row.tags == expected(TEXT_PAGE_URL)["tags"]
    assert row.provenance[0]["path"] == str(www)
    assert mobile.exists()


def test_a_mobile_page_alone_is_stored_with_what_it_holds(sqlite_url: str, tmp_path: Path) -> None:
    copy(MOBILE, tmp_path / "m")
    assert_ok(replay(sqlite_url, tmp_path / "m"))
    row = stored(sqlite_url)[TEXT_PAGE_URL]
    record = expected(TEXT_PAGE_URL)
    assert row.template == "mobile"
    assert row.body == record["body"]
    assert row.title == record["title"]
    assert row.source == record["source"]
    assert row.published_at.isoformat() == "2023-12-24T00:00:00+08:00"  # the date alone
    assert row.tags == []
    assert row.page_urls == ["http://m.ylwt22.com/dangtuangongzuo/2023/1224/320094.html"]


def test_replay_is_deterministic(sqlite_url: str, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    assert_ok(replay(sqlite_url, MIRROR, TEXT_PAGE))
    assert_ok(replay(other, TEXT_PAGE, MIRROR))
    assert_ok(replay(sqlite_url, MIRROR, TEXT_PAGE))  # and again, into the same archive
    first, second = stored(sqlite_url), stored(other)
    assert sorted(first) == sorted(second)
    columns = [*FIELDS, "tags", "published_at", "page_urls", "template", "provenance",
               "content_hash", "extractor_version", "fetched_at", "rights_holder"]  # fmt: skip
    for url in first:
        for name in columns:
            assert getattr(first[url], name) == getattr(second[url], name), (url, name)


def replay_watched(
    database_url: str, tmp_path: Path, *paths: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, str]]]:
    """`scrapy replay`, and every connection or name lookup Python made during it."""
    log = tmp_path / "network.jsonl"
    result = subprocess.run(
        [sys.executable, "tests/support/nonet.py", str(log), "replay", *map(str, paths)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": database_url, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    events = log.read_text().splitlines() if log.exists() else []
    return result, [json.loads(line) for line in events]


def test_replay_contacts_no_web_host(sqlite_url: str, tmp_path: Path) -> None:
    # A proxy is offered: nothing may use it.
    result, network = replay_watched(
        sqlite_url, tmp_path, MIRROR, TEXT_PAGE, env={"http_proxy": "http://127.0.0.1:9"}
    )
    assert_ok(result)
    assert len(stored(sqlite_url)) == len(expected_records())
    assert network == []  # not a connection, not a name lookup: SQLite is a file


@pytest.mark.postgres
def test_with_postgresql_the_database_is_the_only_connection(pg_url: str, tmp_path: Path) -> None:
    result, network = replay_watched(pg_url, tmp_path, MIRROR)
    assert_ok(result)
    assert len(stored(pg_url)) == len(expected_records())
    # libpq opens the database connection below Python; nothing else connects at all.
    assert network == []


# --- bad input -------------------------------------------------------------------------


def test_bad_inputs_are_reported_counted_and_skipped(sqlite_url: str, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR, mirror)
    # A link inside the mirror that leads out of it.
    outside = tmp_path / "elsewhere.html"
    shutil.copy2(WWW / "xindetihui/2023/0912/315175.html", outside)
    (mirror / "www.ylwt22.com/xindetihui/2023/0912/315176.html").symlink_to(outside)
    # An HTML page that does not say which URL it is.
    nameless = tmp_path / "saved.html"
    nameless.write_text("<html><body><p>一篇文章</p></body></html>", encoding="utf-8")
    result = replay(sqlite_url, mirror, tmp_path / "no-such-dir", nameless)
    assert_ok(result)
    assert stats(result.stderr, "replay/skipped/") == {
        "replay/skipped/missing_path": 1,
        "replay/skipped/outside_directory": 1,
        "replay/skipped/unknown_url": 1,
    }
    assert "no-such-dir: missing path" in result.stderr
    assert "it leads out of" in result.stderr
    assert "saved.html: unknown url" in result.stderr
    assert len(stored(sqlite_url)) == len(expected_records())  # the rest replayed


def test_a_text_page_with_no_url_is_skipped(sqlite_url: str, tmp_path: Path) -> None:
    page = tmp_path / "page.txt"
    text = TEXT_PAGE.read_text(encoding="utf-8")
    page.write_text(
        "\n".join(line for line in text.splitlines() if "链接地址" not in line), "utf-8"
    )
    result = replay(sqlite_url, page, WWW / "xindetihui/2023/0912/315175.html")
    assert_ok(result)
    assert stats(result.stderr, "replay/skipped/") == {"replay/skipped/unknown_url": 1}
    assert list(stored(sqlite_url)) == ["http://www.ylwt22.com/xindetihui/2023/0912/315175.html"]


def test_replay_needs_a_path(sqlite_url: str) -> None:
    result = replay(sqlite_url)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == "error: name at least one PATH to replay"


# --- WARC ------------------------------------------------------------------------------


def export_rows(database_url: str, tmp_path: Path, name: str) -> list[dict[str, str]]:
    out = tmp_path / f"{name}.csv"
    assert_ok(scrapy("export", "-o", str(out), env={"DATABASE_URL": database_url}))
    with out.open(encoding="utf-8-sig", newline="") as handle:
        return sorted(csv.DictReader(handle), key=lambda row: row["url"])


def test_crawl_then_replay_its_warc_gives_the_same_export(sqlite_url: str, tmp_path: Path) -> None:
    with SiteProxy(MIRROR) as site:
        assert_ok(crawl(sqlite_url, proxy=site.url, data_dir=tmp_path))
    warcs = sorted((tmp_path / "warc").glob("*.warc.gz"))
    assert warcs
    fresh = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    result = replay(fresh, tmp_path / "warc")
    assert_ok(result)
    assert_archive_matches_expected(fresh)

    crawled, replayed = (
        export_rows(sqlite_url, tmp_path, "crawl"),
        export_rows(fresh, tmp_path, "replay"),
    )
    assert [row["url"] for row in crawled] == [row["url"] for row in replayed]
    for before, after in zip(crawled, replayed, strict=True):
        # Fetch times agree too: the crawl stored each page's WARC-Date.
        differing = {k for k in before if before[k] != after[k]}
        assert differing <= {"first_seen_at", "last_seen_at"}, (before["url"], differing)
    # Each row points at the WARC records its pages came from.
    row = stored(fresh)["http://www.ylwt22.com/dangtuangongzuo/2022/1220/305064.html"]
    assert [p["kind"] for p in row.provenance] == ["warc", "warc"]
    assert [p["url"] for p in row.provenance] == row.page_urls
    assert all(p["record_id"].startswith("<urn:uuid:") for p in row.provenance)


def test_a_damaged_warc_keeps_its_whole_records_and_the_rest_replays(
    sqlite_url: str, tmp_path: Path
) -> None:
    with SiteProxy(MIRROR) as site:
        assert_ok(crawl(sqlite_url, proxy=site.url, data_dir=tmp_path))
    (warc,) = sorted((tmp_path / "warc").glob("*.warc.gz"))
    data = warc.read_bytes()
    # Two article records, a third and two thirds of the way through the file.
    records = [
        p for row in stored(sqlite_url).values() for p in row.provenance if p["kind"] == "warc"
    ]
    records.sort(key=lambda p: p["offset"])
    early, late = records[len(records) // 3], records[2 * len(records) // 3]
    truncated = tmp_path / "in" / "truncated.warc.gz"
    truncated.parent.mkdir()
    truncated.write_bytes(data[: late["offset"] + late["length"] // 2])  # cut in a record
    corrupt = tmp_path / "in" / "corrupt.warc.gz"
    middle = early["offset"] + early["length"] // 2  # inside a record's compressed bytes
    corrupt.write_bytes(
        data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :]
    )
    fresh = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    result = replay(fresh, truncated, corrupt, MIRROR / "www.ylwt22.com/xindetihui")
    assert_ok(result)
    assert stats(result.stderr, "replay/skipped/") == {"replay/skipped/damaged_warc_record": 2}
    assert "truncated.warc.gz: damaged warc record" in result.stderr
    rows = stored(fresh)
    assert rows  # what came before the damage, and the mirror folder, replayed
    assert "http://www.ylwt22.com/xindetihui/2023/0912/315175.html" in rows
