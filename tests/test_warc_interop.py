"""The crawl's WARC files read by another tool: pywb's CDX indexer finds every
response, at the offsets the stored articles name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.crawl import MIRROR, crawl
from tests.support.siteproxy import SiteProxy
from tests.test_crawl import assert_ok, stored


def test_pywb_indexes_every_response_where_the_archive_says_it_is(
    sqlite_url: str, tmp_path: Path
) -> None:
    with SiteProxy(MIRROR) as site:
        assert_ok(crawl(sqlite_url, proxy=site.url, data_dir=tmp_path))
        answered = set(site.requests)
    indexer = Path(sys.executable).parent / "cdx-indexer"
    result = subprocess.run(
        [str(indexer), "-j", str(tmp_path / "warc")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line.split(" ", 2)[2]) for line in result.stdout.splitlines()]
    assert {entry["url"] for entry in entries} == answered
    indexed = {(e["filename"], int(e["offset"]), int(e["length"])) for e in entries}
    for row in stored(sqlite_url).values():
        for page in row.provenance:
            assert (Path(page["file"]).name, page["offset"], page["length"]) in indexed
