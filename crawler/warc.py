"""Writes fetched responses, each with its request, to WARC files (ISO 28500, WARC/1.0).

Every record is its own gzip member, so a reader can seek straight to one and a crash
loses at most the record being written. Files are named the IIPC way,
``{prefix}-{UTC timestamp}-{serial}-{hostname}.warc.gz``, begin with a ``warcinfo``
record and are rotated once they reach a size.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from io import BufferedWriter, BytesIO
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

WARC_VERSION = "1.0"
_WARC_DATE = "%Y-%m-%dT%H:%M:%SZ"  # WARC/1.0 dates have whole seconds

Header = tuple[bytes | str, bytes | str]


@dataclass(frozen=True)
class WarcLocation:
    """Where a response record was written: its gzip member is ``length`` bytes at
    ``offset`` in ``file``."""

    file: str
    offset: int
    length: int
    record_id: str
    date: datetime
    """The record's WARC-Date: aware, UTC, whole seconds."""


class _RawHttpHeaders(StatusAndHeaders):  # type: ignore[misc]
    """An HTTP head written byte for byte. warcio re-serialises the heads it is given
    and percent-encodes non-ASCII values; the archive keeps what was on the wire."""

    def __init__(self, protocol: str, statusline: str, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(
            statusline,
            [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers],
            protocol=protocol,
        )
        first_line = f"{protocol} {statusline}".encode("latin-1")
        lines = [first_line, *(name + b": " + value for name, value in headers)]
        self.headers_buff = b"\r\n".join(lines) + b"\r\n\r\n"

    def compute_headers_buffer(self, header_filter: Any = None) -> None:
        pass  # headers_buff is already the exact bytes


class WarcWriter:
    """Appends request/response record pairs to rotating WARC files in ``directory``.

    Thread-safe. A file is started at the first write and after the current one has
    reached ``max_size`` bytes, so a pair never spans two files. Each record is flushed
    to the operating system as soon as it is written.
    """

    def __init__(self, directory: str | os.PathLike[str], prefix: str, max_size: int) -> None:
        if max_size <= 0:
            raise ValueError(f"max_size must be positive, got {max_size}")
        self.directory = Path(directory).resolve()
        self.prefix = prefix
        self.max_size = max_size
        self.hostname = socket.gethostname()
        self.files_started = 0
        self.bytes_written = 0
        self._lock = threading.Lock()
        self._file: BufferedWriter | None = None
        self._path: Path | None = None
        self._warc: Any = None
        self._records_start = 0  # where the current file's first record pair begins
        self._serial = 0
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def write(
        self,
        url: str,
        *,
        method: str,
        request_headers: Iterable[Header],
        request_body: bytes,
        status: int,
        response_headers: Iterable[Header],
        response_body: bytes,
        date: datetime | None = None,
    ) -> WarcLocation:
        """Writes the response record, then the request record concurrent to it, and
        returns where the response record is. ``date`` is when the response was
        captured (default now); it is written to the second."""
        if date is not None and date.utcoffset() is None:
            raise ValueError(f"date must be timezone-aware, got {date!r}")
        when = (date or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        response_id = _record_id()
        response = _http_response(status, _as_bytes(response_headers), response_body)
        request = _http_request(url, method, _as_bytes(request_headers), request_body)
        with self._lock:
            if self._closed:
                raise ValueError("the WARC writer is closed")
            out = self._current_file()
            start = out.tell()
            try:
                self._record(url, "response", response, when=when, record_id=response_id)
                end = out.tell()
                self._record(
                    url,
                    "request",
                    request,
                    when=when,
                    record_id=_record_id(),
                    concurrent_to=response_id,
                )
                written = out.tell()
            except BaseException:
                self._discard(start)
                raise
            self.bytes_written += written - start
            location = WarcLocation(str(self._path), start, end - start, response_id, when)
            if written >= self.max_size:
                self._close_file()
            return location

    def close(self) -> None:
        """Closes the current file; later writes are refused."""
        with self._lock:
            self._closed = True
            self._close_file()

    def _current_file(self) -> BufferedWriter:
        if self._file is not None:
            return self._file
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        name = f"{self.prefix}-{stamp}-{self._serial:05d}-{self.hostname}.warc.gz"
        path = self.directory / name
        out = path.open("xb")  # never append to someone else's file
        try:
            warc = WARCWriter(out, gzip=True, warc_version=WARC_VERSION)
            warc.write_record(warc.create_warcinfo_record(name, _warcinfo(self.hostname)))
        except BaseException:
            # Closing flushes, which fails again on a full disk: the file goes all the same.
            with suppress(OSError):
                out.close()
            path.unlink(missing_ok=True)
            raise
        self._file, self._path, self._warc = out, path, warc
        self._records_start = out.tell()
        self._serial += 1
        self.files_started += 1
        self.bytes_written += out.tell()
        return out

    def _record(
        self,
        url: str,
        kind: str,
        message: tuple[_RawHttpHeaders, bytes],
        *,
        when: datetime,
        record_id: str,
        concurrent_to: str | None = None,
    ) -> None:
        head, body = message
        fields = {
            "WARC-Type": kind,
            "WARC-Record-ID": record_id,
            "WARC-Date": when.strftime(_WARC_DATE),
            "WARC-Target-URI": url,
        }
        if concurrent_to:
            fields["WARC-Concurrent-To"] = concurrent_to
        record = self._warc.create_warc_record(
            url,
            kind,
            payload=BytesIO(body),
            length=len(body),
            http_headers=head,
            warc_headers_dict=fields,
        )
        self._warc.write_record(record)  # flushes the gzip member to the file

    def _discard(self, start: int) -> None:
        """After a failed write: cut the file back to its last whole record and close
        it, so it stays readable; the next record starts a new file. A file left with
        no record but its warcinfo is removed."""
        path, out = self._path, self._file
        self._file = self._path = self._warc = None
        if out is None or path is None:
            return
        # Any of these may fail again (a full disk); the original error is the one to report.
        with suppress(OSError):
            out.close()  # the descriptor is closed even when flushing fails
        with suppress(OSError):
            if start <= self._records_start:
                path.unlink()
                self.files_started -= 1
                self.bytes_written -= self._records_start
            else:
                os.truncate(path, start)

    def _close_file(self) -> None:
        out = self._file
        self._file = self._path = self._warc = None
        if out is not None:
            out.close()


def _record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


def _as_bytes(headers: Iterable[Header]) -> list[tuple[bytes, bytes]]:
    return [(_latin1(name), _latin1(value)) for name, value in headers]


def _latin1(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def _http_response(
    status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[_RawHttpHeaders, bytes]:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    # Some download handlers keep "Transfer-Encoding: chunked" but hand over the body
    # already de-chunked; frame it again so the stored message reads back as one.
    encodings = b",".join(v for n, v in headers if n.lower() == b"transfer-encoding")
    if b"chunked" in encodings.lower():
        body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    return _RawHttpHeaders("HTTP/1.1", f"{status} {reason}", headers), body


def _http_request(
    url: str, method: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[_RawHttpHeaders, bytes]:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not any(name.lower() == b"host" for name, _ in headers):
        host = parts.netloc.rpartition("@")[2]  # never the URL's user:password
        headers = [(b"Host", host.encode("latin-1")), *headers]
    return _RawHttpHeaders(method, f"{target} HTTP/1.1", headers), body


def _warcinfo(hostname: str) -> dict[str, str]:
    return {
        "software": f"ylwt22-archive/{_version('ylwt22-archive')} warcio/{_version('warcio')}",
        "format": "WARC File Format 1.0",
        "conformsTo": "http://bibnum.bnf.fr/WARC/WARC_ISO_28500_version1_latestdraft.pdf",
        "hostname": hostname,
        "description": "HTTP responses as fetched by the ylwt22 archiving crawler, "
        "each followed by the request that fetched it",
    }


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"
