"""The raw web archive: WARC files written by crawler.warc and the crawl's middleware,
read back with warcio's own reader and command-line checker."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import HtmlResponse, Response
from scrapy.utils.test import get_crawler
from sqlalchemy import text
from warcio.archiveiterator import ArchiveIterator

from crawler import settings as project
from crawler.middlewares.warc import WarcMiddleware
from crawler.warc import WarcLocation, WarcWriter
from storage.db import make_engine
from tests.support.crawl import MIRROR, PROJECT_ROOT, crawl, replay
from tests.support.siteproxy import Reply, SiteProxy
from tests.test_crawl import assert_ok, stored

URL = "http://www.ylwt22.com/gongzuozongjie/2023/1224/320094.html?from=list"
NAME = re.compile(r"^ylwt22-(\d{20})-(\d{5})-(.+)\.warc\.gz$")


@dataclass
class Record:
    """One WARC record as read back: headers, and the block after the HTTP head."""

    type: str
    fields: dict[str, str]
    http: Any  # warcio StatusAndHeaders, or None for warcinfo
    raw: bytes  # the HTTP body as stored (still content-encoded)
    content: bytes  # transfer- and content-decoded, as warcio gives it to a reader
    offset: int
    length: int


def read_records(path: Path) -> list[Record]:
    records = []
    with path.open("rb") as stream:
        iterator = ArchiveIterator(stream)
        for record in iterator:
            if record.rec_type == "warcinfo":
                content = record.raw_stream.read()
            else:
                content = record.content_stream().read()
            iterator.read_to_end(record)
            offset, length = iterator.get_record_offset(), iterator.get_record_length()
            records.append(
                Record(
                    record.rec_type,
                    dict(record.rec_headers.headers),
                    record.http_headers,
                    content if record.rec_type == "warcinfo" else raw_block(path, offset, length),
                    content,
                    offset,
                    length,
                )
            )
    return records


def member(path: Path, offset: int, length: int) -> bytes:
    """The gzip member at offset, decompressed; it must be exactly one whole member."""
    with path.open("rb") as stream:
        stream.seek(offset)
        data = stream.read(length)
    decompressor = zlib.decompressobj(wbits=31)
    record = decompressor.decompress(data)
    assert decompressor.eof
    assert decompressor.unused_data == b""
    return record


def raw_block(path: Path, offset: int, length: int) -> bytes:
    """The HTTP body of the record at offset, byte for byte as stored."""
    record = member(path, offset, length)
    _warc_head, block = record.split(b"\r\n\r\n", 1)
    _http_head, body = block.split(b"\r\n\r\n", 1)
    assert body.endswith(b"\r\n\r\n")
    return body[: -len(b"\r\n\r\n")]


def read_at(location: WarcLocation) -> tuple[Any, bytes]:
    """The one record in the ``length`` bytes at ``offset``, and its decoded content."""
    with open(location.file, "rb") as stream:
        stream.seek(location.offset)
        chunk = stream.read(location.length)
    found = [(r.rec_headers, r.content_stream().read()) for r in ArchiveIterator(BytesIO(chunk))]
    assert len(found) == 1
    return found[0]


def warcio_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warcio.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def assert_warcio_check_passes(files: list[Path]) -> None:
    result = warcio_cli("check", "-v", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr
    # -v reports each record; each must say its digests were checked and matched.
    lines = [line.strip() for line in result.stdout.splitlines()]
    checked = [line for line in lines if line.startswith("offset ")]
    assert checked
    assert lines.count("digest pass") == len(checked), result.stdout


def warc_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.warc.gz"))


def mirror_bytes(url: str) -> bytes:
    """What the stand-in site serves for ``url``: the mirror's file, query ignored."""
    parts = urlsplit(url)
    path = parts.path + ("index.html" if parts.path.endswith("/") else "")
    return (MIRROR / parts.netloc / path.lstrip("/")).read_bytes()


def write_page(
    writer: WarcWriter,
    url: str = URL,
    *,
    body: bytes = b"<html>page</html>",
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
    date: datetime | None = None,
) -> WarcLocation:
    return writer.write(
        url,
        method="GET",
        request_headers=[(b"User-Agent", b"ylwt22-archive/test"), (b"Accept-Encoding", b"gzip")],
        request_body=b"",
        status=status,
        response_headers=headers or [(b"Content-Type", b"text/html")],
        response_body=body,
        date=date,
    )


# --- The writer ----------------------------------------------------------------------


def test_records_read_back_with_warcinfo_first_and_each_request_after_its_response(
    tmp_path: Path,
) -> None:
    when = datetime(2024, 1, 20, 3, 0, 5, 123456, tzinfo=UTC)
    with WarcWriter(tmp_path / "warc", "ylwt22", 100 * 1024 * 1024) as writer:
        first = write_page(writer, date=when)
        second = write_page(writer, "http://www.ylwt22.com/missing.html", body=b"gone", status=404)
        odd = write_page(writer, "http://www.ylwt22.com/odd", body=b"", status=599)
    [path] = warc_files(tmp_path / "warc")
    assert first.file == second.file == str(path.resolve())
    assert NAME.match(path.name)
    records = read_records(path)
    assert [r.type for r in records] == ["warcinfo", *["response", "request"] * 3]

    info = records[0]
    assert info.fields["WARC-Filename"] == path.name
    assert info.fields["Content-Type"] == "application/warc-fields"
    assert b"software: ylwt22-archive/" in info.raw
    assert b"format: WARC File Format 1.0" in info.raw
    assert f"hostname: {socket.gethostname()}".encode() in info.raw

    for (response, request), location in zip(
        zip(records[1::2], records[2::2], strict=True), [first, second, odd], strict=True
    ):
        assert response.fields["WARC-Record-ID"] == location.record_id
        assert request.fields["WARC-Concurrent-To"] == location.record_id
        assert request.fields["WARC-Record-ID"] != location.record_id
        for record in (response, request):
            assert record.fields["WARC-Date"] == location.date.strftime("%Y-%m-%dT%H:%M:%SZ")
            assert record.fields["WARC-Block-Digest"].startswith("sha1:")
            assert record.fields["WARC-Payload-Digest"].startswith("sha1:")
        assert response.fields["WARC-Target-URI"] == request.fields["WARC-Target-URI"]
        assert response.fields["Content-Type"] == "application/http; msgtype=response"
        assert request.fields["Content-Type"] == "application/http; msgtype=request"
        assert location.offset == response.offset
        assert location.length == response.length

    # The fetch time, to the second, as written.
    assert first.date == datetime(2024, 1, 20, 3, 0, 5, tzinfo=UTC)
    assert second.date.tzinfo is UTC
    assert second.date.microsecond == 0

    response, request = records[1], records[2]
    assert response.fields["WARC-Target-URI"] == URL
    assert response.http.protocol == "HTTP/1.1"
    assert response.http.statusline == "200 OK"
    assert response.http.headers == [("Content-Type", "text/html")]
    assert response.content == b"<html>page</html>"
    assert request.http.protocol == "GET"
    assert request.http.statusline == "/gongzuozongjie/2023/1224/320094.html?from=list HTTP/1.1"
    assert request.http.headers == [
        ("Host", "www.ylwt22.com"),
        ("User-Agent", "ylwt22-archive/test"),
        ("Accept-Encoding", "gzip"),
    ]
    assert records[3].http.statusline == "404 Not Found"
    assert records[5].http.statusline.rstrip() == "599"  # no reason phrase known
    assert_warcio_check_passes([path])


def test_each_response_record_is_one_gzip_member_at_its_offset(tmp_path: Path) -> None:
    with WarcWriter(tmp_path, "ylwt22", 100 * 1024 * 1024) as writer:
        locations = [
            write_page(writer, f"http://www.ylwt22.com/{n}.html", body=b"x" * n) for n in range(5)
        ]
    for n, location in enumerate(locations):
        fields, content = read_at(location)  # exactly one record, whole
        assert fields.get_header("WARC-Type") == "response"
        assert fields.get_header("WARC-Record-ID") == location.record_id
        assert fields.get_header("WARC-Target-URI") == f"http://www.ylwt22.com/{n}.html"
        assert content == b"x" * n
        member(Path(location.file), location.offset, location.length)


def test_files_rotate_by_size_and_no_record_pair_spans_two_files(tmp_path: Path) -> None:
    bodies = [os.urandom(900) for _ in range(12)]  # incompressible, so sizes are real
    with WarcWriter(tmp_path, "ylwt22", 2500) as writer:
        locations = [
            write_page(writer, f"http://www.ylwt22.com/{n}.html", body=body)
            for n, body in enumerate(bodies)
        ]
        assert writer.files_started == len(warc_files(tmp_path))
        total = writer.bytes_written
    files = warc_files(tmp_path)
    assert len(files) >= 4
    assert total == sum(f.stat().st_size for f in files)
    names = [NAME.match(f.name) for f in files]
    assert all(names)
    serials = [int(m[2]) for m in names if m]
    assert serials == list(range(len(files)))
    stamps = [m[1] for m in names if m]
    assert stamps == sorted(stamps)

    seen = []
    for path in files:
        records = read_records(path)
        assert records[0].type == "warcinfo"
        assert [r.type for r in records[1:]] == ["response", "request"] * ((len(records) - 1) // 2)
        for response, request in zip(records[1::2], records[2::2], strict=True):
            assert request.fields["WARC-Concurrent-To"] == response.fields["WARC-Record-ID"]
            seen.append((str(path), response.fields["WARC-Record-ID"], response.content))
        # Rotation happens once a file reaches the size: only its last pair goes past it.
        assert records[-2].offset < 2500
    assert seen == [
        (loc.file, loc.record_id, body) for loc, body in zip(locations, bodies, strict=True)
    ]

    assert_warcio_check_passes(files)
    index = warcio_cli("index", "-f", "warc-type,warc-record-id,warc-target-uri", *map(str, files))
    assert index.returncode == 0, index.stderr
    lines = [json.loads(line) for line in index.stdout.splitlines()]
    assert Counter(line["warc-type"] for line in lines) == Counter(
        {"warcinfo": len(files), "response": 12, "request": 12}
    )
    indexed = {line["warc-record-id"] for line in lines if line["warc-type"] == "response"}
    assert indexed == {loc.record_id for loc in locations}


def test_a_gzip_encoded_body_is_stored_as_sent(tmp_path: Path) -> None:
    page = mirror_bytes("http://www.ylwt22.com/")
    sent = gzip.compress(page)
    headers = [(b"Content-Type", b"text/html"), (b"Content-Encoding", b"gzip")]
    with WarcWriter(tmp_path, "ylwt22", 100 * 1024 * 1024) as writer:
        location = write_page(writer, "http://www.ylwt22.com/", body=sent, headers=headers)
    path = Path(location.file)
    [response] = [r for r in read_records(path) if r.type == "response"]
    assert response.raw == sent  # compressed, as it came over the wire
    assert response.content == page  # warcio decodes it for a reader
    assert raw_block(path, location.offset, location.length) == sent
    assert_warcio_check_passes([path])


def test_a_dechunked_body_is_framed_as_chunked_when_the_headers_say_so(tmp_path: Path) -> None:
    headers = [(b"Content-Type", b"text/html"), (b"Transfer-Encoding", b"chunked")]
    with WarcWriter(tmp_path, "ylwt22", 100 * 1024 * 1024) as writer:
        location = write_page(writer, body=b"<html>whole page</html>", headers=headers)
    path = Path(location.file)
    assert raw_block(path, location.offset, location.length) == (
        b"17\r\n<html>whole page</html>\r\n0\r\n\r\n"
    )
    [response] = [r for r in read_records(path) if r.type == "response"]
    assert response.content == b"<html>whole page</html>"
    assert_warcio_check_passes([path])


def test_header_bytes_are_kept_as_received(tmp_path: Path) -> None:
    # warcio would percent-encode a non-ASCII header value; the archive keeps the bytes.
    disposition = "attachment; filename=工作总结.doc".encode("gbk")
    headers = [(b"Content-Type", b"text/html"), (b"Content-Disposition", disposition),
               (b"Set-Cookie", b"a=1"), (b"Set-Cookie", b"b=2")]  # fmt: skip
    with WarcWriter(tmp_path, "ylwt22", 100 * 1024 * 1024) as writer:
        location = write_page(writer, headers=headers)
    record = member(Path(location.file), location.offset, location.length)
    http_head = record.split(b"\r\n\r\n")[1]
    assert http_head.split(b"\r\n") == [
        b"HTTP/1.1 200 OK",
        b"Content-Type: text/html",
        b"Content-Disposition: " + disposition,
        b"Set-Cookie: a=1",
        b"Set-Cookie: b=2",
    ]
    assert_warcio_check_passes([Path(location.file)])


def test_writes_from_many_threads_give_whole_valid_records(tmp_path: Path) -> None:
    locations: list[tuple[WarcLocation, bytes]] = []
    lock = threading.Lock()

    with WarcWriter(tmp_path, "ylwt22", 64 * 1024) as writer:

        def work(thread: int) -> None:
            for n in range(25):
                body = f"thread {thread} page {n} ".encode() * 50 + os.urandom(200)
                location = write_page(writer, f"http://www.ylwt22.com/{thread}/{n}.html", body=body)
                with lock:
                    locations.append((location, body))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    files = warc_files(tmp_path)
    assert len(files) > 1
    assert_warcio_check_passes(files)
    by_id = {}
    for path in files:
        records = read_records(path)
        assert records[0].type == "warcinfo"
        for response, request in zip(records[1::2], records[2::2], strict=True):
            assert (response.type, request.type) == ("response", "request")
            assert request.fields["WARC-Concurrent-To"] == response.fields["WARC-Record-ID"]
            by_id[response.fields["WARC-Record-ID"]] = (str(path), response.content)
    assert len(locations) == len(by_id) == 200
    for location, body in locations:
        assert by_id[location.record_id] == (location.file, body)
        assert read_at(location)[1] == body


_FILL_UNTIL_FULL = """
import os, resource, signal, sys
from crawler.warc import WarcWriter
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # exceeding the limit is then an OSError
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
writer = WarcWriter(sys.argv[1], "ylwt22", 10**9)
ok = 0
def write(n):
    return writer.write(f"http://www.ylwt22.com/{n}.html", method="GET",
        request_headers=[], request_body=b"", status=200,
        response_headers=[(b"Content-Type", b"text/html")], response_body=os.urandom(3000))
try:
    while True:
        write(ok)
        ok += 1
except OSError as exc:
    print("failed after", ok, type(exc).__name__)
write(ok)  # the next record goes to a new file
writer.close()
print("wrote", ok + 1)
"""


def test_a_failed_write_leaves_only_whole_records(tmp_path: Path) -> None:
    # A real write error: the file-size limit stops the file in the middle of a record.
    result = subprocess.run(
        [sys.executable, "-c", _FILL_UNTIL_FULL, str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    failed = re.search(r"failed after (\d+) OSError", result.stdout)
    assert failed, result.stdout
    failed_after = int(failed[1])
    assert f"wrote {failed_after + 1}" in result.stdout
    first, second = warc_files(tmp_path)
    assert first.stat().st_size < 20000
    assert [r.type for r in read_records(first)] == [
        "warcinfo",
        *["response", "request"] * failed_after,
    ]
    assert [r.type for r in read_records(second)] == ["warcinfo", "response", "request"]
    assert_warcio_check_passes([first, second])


def test_bad_arguments_and_writes_after_close_are_refused(tmp_path: Path) -> None:
    writer = WarcWriter(tmp_path, "ylwt22", 1000)
    with pytest.raises(ValueError, match="timezone-aware"):
        write_page(writer, date=datetime(2024, 1, 1))
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        write_page(writer)
    assert warc_files(tmp_path) == []  # nothing written, not even a warcinfo
    with pytest.raises(ValueError, match="max_size"):
        WarcWriter(tmp_path, "ylwt22", 0)


# --- The middleware, in process ----------------------------------------------------------


def middleware(warc_dir: Path, **settings: Any) -> WarcMiddleware:
    defaults = {name: getattr(project, name) for name in dir(project) if name.startswith("WARC_")}
    crawler = get_crawler(settings_dict={**defaults, "WARC_DIR": str(warc_dir), **settings})
    assert crawler.stats is not None
    crawler.stats.open_spider()
    return WarcMiddleware.from_crawler(crawler)


def fetched(url: str, body: bytes, **meta: Any) -> tuple[Request, Response]:
    request = Request(url, meta=meta, headers={"User-Agent": "ylwt22-archive/test"})
    response = HtmlResponse(url, status=200, headers={"Content-Type": "text/html"}, body=body,
                            request=request)  # fmt: skip
    return request, response


def test_the_middleware_archives_a_response_and_says_where(tmp_path: Path) -> None:
    async def run() -> tuple[WarcMiddleware, list[Request]]:
        mw = middleware(tmp_path / "warc", WARC_PREFIX="test")
        archived, response = fetched(URL, b"<html>one</html>")
        mw.process_request(archived)
        assert await mw.process_response(archived, response) is response
        skipped, response = fetched(URL, b"<html>two</html>", dont_archive=True)
        mw.process_request(skipped)
        assert await mw.process_response(skipped, response) is response
        # A retry copies meta; what it said of the first response is gone before the next.
        retry = archived.copy()
        mw.process_request(retry)
        assert "fetched_at" not in retry.meta
        assert "provenance" not in retry.meta
        await mw.spider_closed()
        return mw, [archived, skipped]

    mw, (archived, skipped) = asyncio.run(run())
    [path] = warc_files(tmp_path / "warc")
    assert path.name.startswith("test-")
    provenance = archived.meta["provenance"]
    assert json.loads(json.dumps(provenance)) == provenance
    assert provenance["kind"] == "warc"
    assert provenance["url"] == URL
    assert provenance["file"] == str(path.resolve())
    [response, request] = [r for r in read_records(path) if r.type != "warcinfo"]
    assert provenance["record_id"] == response.fields["WARC-Record-ID"]
    assert (provenance["offset"], provenance["length"]) == (response.offset, response.length)
    assert archived.meta["fetched_at"].tzinfo is UTC
    assert (
        archived.meta["fetched_at"].strftime("%Y-%m-%dT%H:%M:%SZ") == response.fields["WARC-Date"]
    )
    assert response.content == b"<html>one</html>"
    assert ("User-Agent", "ylwt22-archive/test") in request.http.headers
    assert "provenance" not in skipped.meta
    stats = mw.crawler.stats
    assert stats is not None
    assert stats.get_value("warc/records") == 1
    assert stats.get_value("warc/files") == 1
    assert stats.get_value("warc/bytes") == path.stat().st_size
    assert stats.get_value("warc/errors") is None


def test_a_fetch_time_set_by_the_download_handler_becomes_the_warc_date(tmp_path: Path) -> None:
    saved = datetime(2023, 12, 25, 8, 30, 15, 987654, tzinfo=UTC)

    async def run() -> Request:
        mw = middleware(tmp_path)
        request, response = fetched(URL, b"<html>saved</html>")
        mw.process_request(request)
        request.meta["fetched_at"] = saved  # as the mirror handler does during download
        await mw.process_response(request, response)
        await mw.spider_closed()
        return request

    request = asyncio.run(run())
    assert request.meta["fetched_at"] == saved.replace(microsecond=0)
    [path] = warc_files(tmp_path)
    assert read_records(path)[1].fields["WARC-Date"] == "2023-12-25T08:30:15Z"


def test_a_write_error_is_logged_once_and_no_response_goes_on_without_its_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_directory = tmp_path / "warc"
    not_a_directory.write_text("a file where the WARC directory should be")

    async def run() -> tuple[WarcMiddleware, list[Request], list[str]]:
        mw = middleware(not_a_directory)
        requests, refused = [], []
        for body in (b"<html>one</html>", b"<html>two</html>"):
            request, response = fetched(URL, body)
            mw.process_request(request)
            with pytest.raises(IgnoreRequest) as excinfo:
                await mw.process_response(request, response)
            requests.append(request)
            refused.append(str(excinfo.value))
        await mw.spider_closed()
        return mw, requests, refused

    with caplog.at_level(logging.ERROR, logger="crawler.middlewares.warc"):
        mw, requests, refused = asyncio.run(run())
    assert all("provenance" not in request.meta for request in requests)
    assert refused == ["not archived: FileExistsError: [Errno 17] File exists: "
                       f"'{not_a_directory}'"] * 2  # fmt: skip
    stats = mw.crawler.stats
    assert stats is not None
    assert stats.get_value("warc/errors") == 1  # the second was not even tried
    assert stats.get_value("warc/records") is None
    assert stats.get_value("warc/error") == f"cannot write the WARC files: {refused[0][14:]}"
    [error] = caplog.records
    assert error.levelno == logging.ERROR
    assert error.getMessage() == (
        f"Could not write {URL} to the WARC files in {not_a_directory}: {refused[0][14:]}. "
        "Stopping the crawl."
    )


def test_warc_enabled_false_turns_the_middleware_off(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured):
        middleware(tmp_path, WARC_ENABLED=False)


# --- End to end --------------------------------------------------------------------------


@pytest.fixture
def site() -> Iterator[SiteProxy]:
    with SiteProxy(MIRROR) as proxy:
        yield proxy


def crawl_records(warc_dir: Path) -> list[tuple[Path, Record]]:
    return [(path, record) for path in warc_files(warc_dir) for record in read_records(path)]


def test_a_crawl_archives_every_response_it_received(
    site: SiteProxy, sqlite_url: str, tmp_path: Path
) -> None:
    busy = "http://www.ylwt22.com/yanjianggao/2023/0428/309973.html"
    gone = "http://www.ylwt22.com/dangtuangongzuo/2022/1220/305064_2.html"
    site.replies[gone] = Reply(404, b"gone", {"Content-Type": "text/html"})
    site.replies[busy] = [Reply(503, b"busy")]  # then the mirror's file
    zipped = "http://www.ylwt22.com/dangtuangongzuo/2023/1224/320094.html"
    page = mirror_bytes(zipped)
    sent = gzip.compress(page)
    site.replies[zipped] = Reply(
        200, sent, {"Content-Type": "text/html", "Content-Encoding": "gzip"}
    )
    moved = "http://www.ylwt22.com/sitemap.xml?moved=1"
    site.replies["http://www.ylwt22.com/sitemap.xml"] = Reply(301, b"", {"Location": moved})
    warc_dir = tmp_path / "warc"

    result = crawl(sqlite_url, "-s", f"WARC_DIR={warc_dir}", proxy=site.url, data_dir=tmp_path)
    assert_ok(result)

    records = crawl_records(warc_dir)
    responses = {}
    for _path, record in records:
        if record.type == "response":
            responses.setdefault(record.fields["WARC-Target-URI"], []).append(record)
    # Every answer the site gave, once: robots.txt, the 404, the 503 and its retry, the
    # redirect and where it led.
    assert Counter(site.requests) == Counter({url: len(found) for url, found in responses.items()})
    assert [r.http.get_statuscode() for r in responses[busy]] == ["503", "200"]
    assert responses["http://www.ylwt22.com/sitemap.xml"][0].http.get_statuscode() == "301"
    assert "http://www.ylwt22.com/robots.txt" in responses
    [missing] = responses[gone]
    assert (missing.http.get_statuscode(), missing.content) == ("404", b"gone")
    assert f"'warc/records': {len(site.requests)}" in result.stderr
    assert "warc/errors" not in result.stderr

    for url, found in responses.items():
        for record in found:
            if record.http.get_statuscode() == "200":
                assert record.content == mirror_bytes(url), url
    [zipped_record] = responses[zipped]
    assert zipped_record.raw == sent  # stored compressed, as sent
    assert zipped_record.content == page

    # Each request record follows its response and is concurrent to it.
    for (_, response), (_, request) in pairwise(records):
        if response.type == "response":
            assert request.type == "request"
            assert request.fields["WARC-Concurrent-To"] == response.fields["WARC-Record-ID"]
            assert request.http.get_header("User-Agent").startswith("ylwt22-archive/")
    assert_warcio_check_passes(warc_files(warc_dir))

    # The stored fetch time is the WARC-Date of the article's first page.
    rows = stored(sqlite_url)
    assert zipped in rows
    assert len(rows) == 13  # all but the article that lost a page
    for url, row in rows.items():
        [date] = {r.fields["WARC-Date"] for r in responses[url] if r.http.get_statuscode() == "200"}
        assert row.fetched_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") == date, url


def test_offline_mode_writes_no_warc_unless_asked(sqlite_url: str, tmp_path: Path) -> None:
    warc_dir = tmp_path / "warc"
    offline = ("-s", f"OFFLINE_MIRROR={MIRROR}", "-s", f"WARC_DIR={warc_dir}")
    assert_ok(crawl(sqlite_url, *offline, data_dir=tmp_path))
    assert not warc_dir.exists()

    result = crawl(sqlite_url, *offline, "-s", "WARC_ENABLED=True", data_dir=tmp_path)
    assert_ok(result)
    files = warc_files(warc_dir)
    assert len(files) == 1
    assert_warcio_check_passes(files)
    records = [record for _, record in crawl_records(warc_dir) if record.type == "response"]
    home = next(r for r in records if r.fields["WARC-Target-URI"] == "http://www.ylwt22.com/")
    # The mirror's copy was fetched when it was saved: that is the WARC-Date.
    saved = datetime.fromtimestamp((MIRROR / "www.ylwt22.com/index.html").stat().st_mtime, UTC)
    assert home.fields["WARC-Date"] == saved.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- A WARC that cannot be written ------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("a-file", "not a directory"),
        ("a-file/warc", "cannot create it: Not a directory"),
    ],
)
def test_a_warc_dir_that_is_not_a_writable_folder_fails_at_start(
    sqlite_url: str, tmp_path: Path, where: str, problem: str
) -> None:
    (tmp_path / "a-file").write_text("in the way")
    warc_dir = tmp_path / where
    result = crawl(sqlite_url, "-s", f"OFFLINE_MIRROR={MIRROR}", "-s", "WARC_ENABLED=True",
                   "-s", f"WARC_DIR={warc_dir}", data_dir=tmp_path)  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"error: bad setting WARC_DIR={warc_dir}: {problem}"]
    assert not (tmp_path / "archive.sqlite3").exists()  # nothing was started


def test_a_warc_dir_only_matters_when_warc_files_are_written(
    sqlite_url: str, tmp_path: Path
) -> None:
    in_the_way = tmp_path / "warc"
    in_the_way.write_text("in the way")
    # Offline mode and replay write no WARC files (unless asked): the setting is not used.
    assert_ok(crawl(sqlite_url, "-s", f"OFFLINE_MIRROR={MIRROR}", "-s",
                    f"WARC_DIR={in_the_way}", data_dir=tmp_path))  # fmt: skip
    assert_ok(replay(sqlite_url, MIRROR / "www.ylwt22.com/xindetihui",
                     settings=("-s", f"WARC_DIR={in_the_way}")))  # fmt: skip
    assert len(stored(sqlite_url)) == 14


@pytest.fixture(scope="module")
def namespaces() -> None:
    """A mount namespace of our own, where a small file system can be mounted."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) for a small file system of our own")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, text=True,
                           check=False)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"unshare -rm is not allowed here: {probe.stderr.strip()}")


def in_small_filesystem(mount: Path, size: str, keep: Path, *, full: bool) -> tuple[str, ...]:
    """A command prefix: run the command with a tmpfs of ``size`` mounted on ``mount``
    (filled up before it starts when ``full``), then copy what the command left in
    ``mount/warc`` to ``keep``. Its exit status is the command's."""
    mount.mkdir()
    keep.mkdir()
    script = (
        'mount -t tmpfs -o size="$1" tmpfs "$0" || exit 99; '
        'if [ "$2" = full ]; then head -c 1048576 /dev/zero > "$0/filler" 2>/dev/null; fi; '
        'shift 3; "$@"; status=$?; '
        f"cp -a {mount}/warc/. {keep}/ 2>/dev/null; exit $status"
    )
    return ("unshare", "-rm", "sh", "-c", script, str(mount), size,
            "full" if full else "empty", "--")  # fmt: skip


@pytest.mark.usefixtures("namespaces")
@pytest.mark.parametrize("full", [True, False], ids=["full-from-the-start", "fills-up-mid-crawl"])
def test_a_failed_warc_write_stops_the_crawl_with_one_line(
    site: SiteProxy, sqlite_url: str, tmp_path: Path, full: bool
) -> None:
    mount, kept = tmp_path / "small", tmp_path / "kept"
    wrapper = in_small_filesystem(mount, "96k", kept, full=full)
    result = crawl(sqlite_url, "-s", f"WARC_DIR={mount / 'warc'}", proxy=site.url,
                   data_dir=tmp_path, wrapper=wrapper)  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    [error] = [line for line in lines if " ERROR: " in line]
    assert "to the WARC files in" in error
    assert error.endswith("OSError: [Errno 28] No space left on device. Stopping the crawl.")
    assert [line for line in lines if line.startswith("error:")] == [
        "error: the crawl ended with 'warc_error': cannot write the WARC files: "
        "OSError: [Errno 28] No space left on device"
    ]
    # The run failed; no file is left empty, or with nothing but its warcinfo.
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        runs = connection.execute(text("SELECT status, finish_reason FROM runs")).all()
    engine.dispose()
    assert [tuple(run) for run in runs] == [("failed", "warc_error")]
    files = warc_files(kept)
    rows = stored(sqlite_url)
    if full:
        assert files == []
        assert rows == {}
        return
    assert len(files) == 1
    assert_warcio_check_passes(files)
    assert [r.type for r in read_records(files[0])].count("response") > 1
    # Every article stored has its raw copy: its records are there, whole.
    assert rows
    for url, row in rows.items():
        for entry in row.provenance:
            copy = str(kept / Path(entry["file"]).name)
            location = WarcLocation(
                copy, entry["offset"], entry["length"], entry["record_id"], row.fetched_at
            )
            headers, _ = read_at(location)
            assert headers.get_header("WARC-Target-URI") == entry["url"], url


def test_a_file_that_gets_no_record_is_removed(tmp_path: Path) -> None:
    # A real write error: the file-size limit stops the first file in its warcinfo
    # record (a disk full from the start), or in its first response record.
    for limit in (100, 2000):
        folder = tmp_path / str(limit)
        folder.mkdir()
        result = subprocess.run(
            [sys.executable, "-c", _FIRST_WRITES_FAIL, str(folder), str(limit)],
            cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == ["failed 27"] * 3 + ["0 0"]
        assert os.listdir(folder) == [], limit


_FIRST_WRITES_FAIL = """
import os, resource, signal, sys
from crawler.warc import WarcWriter
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
writer = WarcWriter(sys.argv[1], "ylwt22", 10**9)
for n in range(3):
    try:
        writer.write(f"http://www.ylwt22.com/{n}.html", method="GET", request_headers=[],
            request_body=b"", status=200, response_headers=[(b"Content-Type", b"text/html")],
            response_body=os.urandom(3000))
    except OSError as exc:
        print("failed", exc.errno)
writer.close()
print(writer.files_started, writer.bytes_written)
"""
