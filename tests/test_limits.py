"""crawler.limits: the size limits and bounded decompression that crawl and replay share,
as plain functions and in the crawl's SizeLimitsMiddleware."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import brotli
import pytest
from backports import zstd
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawler import settings as project
from crawler.limits import (
    BodyTooLarge,
    DecompressionBomb,
    UndecodableBody,
    decode_body,
    split_encodings,
)
from crawler.middlewares.limits import SizeLimitsMiddleware

MIB = 1024 * 1024
PAGE = "<html><body><p>第一段</p></body></html>".encode() * 50
COMPRESS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "raw-deflate": lambda data: zlib.compress(data, wbits=-15),
    "br": brotli.compress,
    "zstd": zstd.compress,
}


@pytest.mark.parametrize("name", list(COMPRESS))
def test_each_encoding_is_decoded_within_the_limit(name: str) -> None:
    encoding = "deflate" if name == "raw-deflate" else name
    assert decode_body(COMPRESS[name](PAGE), [encoding], MIB) == (PAGE, [])


@pytest.mark.parametrize("name", list(COMPRESS))
def test_each_encoding_stops_at_the_limit(name: str) -> None:
    encoding = "deflate" if name == "raw-deflate" else name
    bomb = COMPRESS[name](bytes(64 * MIB))
    assert len(bomb) < MIB
    with pytest.raises(DecompressionBomb) as refused:
        decode_body(bomb, [encoding], MIB)
    # Stopped within a chunk or so of the limit, not after expanding it all.
    assert MIB < refused.value.decompressed <= 17 * MIB
    assert str(refused.value) == (
        f"its body ({len(bomb)} B compressed, {refused.value.decompressed} B decompressed so "
        f"far) exceeded DOWNLOAD_MAXSIZE ({MIB} B) during decompression"
    )


def test_encodings_are_undone_last_applied_first_up_to_an_unknown_one() -> None:
    twice = gzip.compress(zlib.compress(PAGE))
    assert decode_body(twice, [b"deflate", b"x-gzip"], MIB) == (PAGE, [])
    assert decode_body(twice, ["deflate, gzip"], MIB) == (PAGE, [])
    assert decode_body(gzip.compress(PAGE), ["compress", "gzip"], MIB) == (PAGE, [b"compress"])
    assert split_encodings([b"gzip, identity", b"br"]) == ([b"br", b"gzip"], [])
    assert decode_body(PAGE, [], MIB) == (PAGE, [])


def test_a_body_over_the_limit_is_refused_before_decoding() -> None:
    with pytest.raises(BodyTooLarge, match=r"its body \(2000 B\) is larger than DOWNLOAD_MAXSIZE"):
        decode_body(bytes(2000), [], 1000)
    assert decode_body(bytes(2000), [], 0) == (bytes(2000), [])  # 0: no limit


def test_a_stream_cut_short_gives_what_came_before_the_cut() -> None:
    cut, _ = decode_body(gzip.compress(PAGE)[:-30], ["gzip"], MIB)
    assert cut
    assert PAGE.startswith(cut)
    with pytest.raises(UndecodableBody, match="not valid gzip"):
        decode_body(b"not gzip at all", ["gzip"], MIB)


def middleware(**settings: Any) -> SizeLimitsMiddleware:
    names = ("DOWNLOAD_MAXSIZE", "DOWNLOAD_WARNSIZE")
    defaults = {name: getattr(project, name) for name in names}
    crawler = get_crawler(settings_dict={**defaults, **settings})
    crawler.stats.open_spider()
    return SizeLimitsMiddleware.from_crawler(crawler)


def response(body: bytes, **meta: Any) -> tuple[Request, HtmlResponse]:
    request = Request("http://www.ylwt22.com/a.html", meta=meta)
    headers = {"Content-Type": "text/html", "Content-Encoding": "gzip"}
    return request, HtmlResponse(request.url, body=body, headers=headers, request=request)


def test_the_middleware_refuses_and_counts_what_decoding_refuses() -> None:
    mw = middleware(DOWNLOAD_MAXSIZE=MIB)
    with pytest.raises(IgnoreRequest, match="during decompression"):
        mw.process_response(*response(gzip.compress(bytes(8 * MIB))))
    # A request may ask for a smaller limit than the handler applied.
    with pytest.raises(IgnoreRequest, match="is larger than DOWNLOAD_MAXSIZE"):
        mw.process_response(*response(gzip.compress(PAGE), download_maxsize=10))
    request, _ = response(b"")
    mw.process_exception(request, BodyTooLarge(2 * MIB, MIB))  # as a replay handler raises it
    decoded = mw.process_response(*response(gzip.compress(PAGE)))
    assert decoded.body == PAGE
    assert "Content-Encoding" not in decoded.headers
    stats = mw.crawler.stats.get_stats()
    assert {k: v for k, v in stats.items() if k.startswith("download/")} == {
        "download/decompression_bomb": 1,
        "download/too_large": 2,
    }
