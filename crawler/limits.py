"""The size limits on a page's bytes, in one place for every way a page arrives.

A crawl applies them in :class:`crawler.middlewares.limits.SizeLimitsMiddleware`; a
replay applies them where it reads saved pages (:func:`crawler.replay.sources.read_source`),
so a WARC record holding a decompression bomb is refused as the crawl refused it. Both
call :func:`decode_body`: plain functions over bytes, the ``Content-Encoding`` values
and ``DOWNLOAD_MAXSIZE``, with no Scrapy request or response needed.

Decompression stops as soon as its output passes the limit: memory stays within
``max_size`` plus one chunk (64 KiB; for brotli without an output limit in its API,
what 256 bytes of input expand to), however small the compressed body.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable
from gzip import GzipFile
from io import BytesIO
from typing import ClassVar

# What the crawl asks for in Accept-Encoding, and can decode.
ACCEPTED_ENCODINGS = (b"gzip", b"deflate", b"br", b"zstd")
_ALIASES = {b"x-gzip": b"gzip"}
_CHUNK = 64 * 1024
_BROTLI_SLICE = 256


class SizeLimitExceeded(ValueError):
    """A body refused for its size; ``reason`` names the case in the stats
    (``download/<reason>``)."""

    reason: ClassVar[str]


class BodyTooLarge(SizeLimitExceeded):
    reason = "too_large"

    def __init__(self, size: int, max_size: int, *, at_least: bool = False) -> None:
        """``at_least``: ``size`` is what was read before the limit stopped the reading."""
        shown = f"at least {size}" if at_least else str(size)
        super().__init__(f"its body ({shown} B) is larger than DOWNLOAD_MAXSIZE ({max_size} B)")
        self.size = size
        self.max_size = max_size


class DecompressionBomb(SizeLimitExceeded):
    reason = "decompression_bomb"

    def __init__(self, compressed: int, decompressed: int, max_size: int) -> None:
        super().__init__(
            f"its body ({compressed} B compressed, {decompressed} B decompressed so far) "
            f"exceeded DOWNLOAD_MAXSIZE ({max_size} B) during decompression"
        )
        self.compressed = compressed
        self.decompressed = decompressed
        self.max_size = max_size


class UndecodableBody(ValueError):
    """The body is not in the encoding it declares (a corrupt or empty stream)."""


def check_size(size: int, max_size: int) -> None:
    """Refuse a body of ``size`` bytes when it is over ``max_size`` (0: no limit)."""
    if max_size and size > max_size:
        raise BodyTooLarge(size, max_size)


def decode_body(
    body: bytes, content_encoding: Iterable[bytes | str], max_size: int
) -> tuple[bytes, list[bytes]]:
    """``body`` decoded of the encodings in ``content_encoding`` (the header's values,
    in the order they were applied), and the encodings left undecoded (an unknown one
    and every encoding applied before it), as the header should say afterwards.

    Raises :class:`BodyTooLarge` when ``body`` itself is over ``max_size`` (0: no
    limit), :class:`DecompressionBomb` when decoding passes it, and
    :class:`UndecodableBody` when a stream cannot be decoded at all.
    """
    check_size(len(body), max_size)
    to_decode, to_keep = split_encodings(content_encoding)
    decoded = body
    for encoding in to_decode:
        output = _Output(len(body), max_size)
        try:
            _DECODERS[encoding](decoded, output)
        except SizeLimitExceeded:
            raise
        except Exception as exc:
            # A stream cut short still gives what came before the cut, as browsers show.
            if not output.size:
                raise UndecodableBody(f"not valid {encoding.decode()}: {exc}") from exc
        decoded = output.value()
    return decoded, to_keep


def split_encodings(content_encoding: Iterable[bytes | str]) -> tuple[list[bytes], list[bytes]]:
    """The encodings to undo, last applied first, and those to keep: decoding stops
    at the first one that is not known."""
    applied = [
        _ALIASES.get(name, name)
        for value in content_encoding
        for name in (part.strip().lower() for part in _bytes(value).split(b","))
        if name and name != b"identity"
    ]
    to_decode: list[bytes] = []
    while applied and applied[-1] in _DECODERS:
        to_decode.append(applied.pop())
    return to_decode, applied


class _Output:
    """Decompressed bytes, refused as soon as they pass the limit."""

    def __init__(self, compressed: int, max_size: int) -> None:
        self.compressed = compressed
        self.max_size = max_size
        self.size = 0
        self._chunks: list[bytes] = []

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_size and self.size > self.max_size:
            raise DecompressionBomb(self.compressed, self.size, self.max_size)
        self._chunks.append(chunk)

    def value(self) -> bytes:
        return b"".join(self._chunks)


def _gunzip(data: bytes, out: _Output) -> None:
    # GzipFile reads every member of a multi-member stream; read1 returns at most one
    # chunk of output at a time.
    with GzipFile(fileobj=BytesIO(data)) as stream:
        try:
            while chunk := stream.read1(_CHUNK):
                out.write(chunk)
        except (OSError, EOFError, struct.error, zlib.error):
            if not out.size:
                raise


def _inflate(data: bytes, out: _Output) -> None:
    decompressor = zlib.decompressobj()
    try:
        chunk = decompressor.decompress(data, _CHUNK)
    except zlib.error:
        # Raw deflate, without the zlib header, as some servers send it.
        decompressor = zlib.decompressobj(wbits=-15)
        chunk = decompressor.decompress(data, _CHUNK)
    out.write(chunk)
    while decompressor.unconsumed_tail and not decompressor.eof:
        out.write(decompressor.decompress(decompressor.unconsumed_tail, _CHUNK))


def _unbrotli(data: bytes, out: _Output) -> None:
    import brotli  # type: ignore[import-untyped]  # noqa: PLC0415  (Scrapy's dependency)

    decompressor = brotli.Decompressor()
    if not hasattr(decompressor, "process"):  # an older API, without an output limit:
        for start in range(0, len(data), _BROTLI_SLICE):  # a little input at a time
            out.write(decompressor.decompress(data[start : start + _BROTLI_SLICE]))
        return
    chunk = decompressor.process(data, output_buffer_limit=_CHUNK)
    out.write(chunk)
    while not decompressor.is_finished():
        chunk = decompressor.process(b"", output_buffer_limit=_CHUNK)
        if not chunk:
            break
        out.write(chunk)


def _unzstd(data: bytes, out: _Output) -> None:
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
    except ImportError:  # before Python 3.14: Scrapy's dependency
        from backports import zstd  # type: ignore[no-redef,unused-ignore]  # noqa: PLC0415

    with zstd.ZstdFile(BytesIO(data)) as stream:
        try:
            while chunk := stream.read(_CHUNK):
                out.write(chunk)
        except EOFError:
            if not out.size:
                raise


_DECODERS: dict[bytes, Callable[[bytes, _Output], None]] = {
    b"gzip": _gunzip,
    b"deflate": _inflate,
    b"br": _unbrotli,
    b"zstd": _unzstd,
}


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")
