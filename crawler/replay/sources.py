"""Saved pages to replay: found in WARC files, `wget --mirror` trees, saved text pages
and stand-alone HTML files, or named by the stored articles' provenance.

Each saved page becomes a :class:`Source`: the URL the page had on the site, when it
was fetched, and how to read its bytes again. Reading the bytes is
:func:`read_source`'s job; nothing here touches the network.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from parsel import Selector
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import ChunkedDataReader
from warcio.exceptions import ArchiveLoadFailed

from crawler.files import NotRegularFile, open_regular, read_regular, regular_status
from crawler.limits import BodyTooLarge, decode_body
from crawler.pages.decode import decode_html
from crawler.site import Site

logger = logging.getLogger(__name__)

WARC_SUFFIXES = (".warc", ".warc.gz")
# When one page was saved more than once, the fullest kind of copy is replayed.
KIND_PREFERENCE = ("warc", "mirror", "html", "text")
_DECLARED_URL = re.compile(r"链接地址\s*[:：]\s*(\S+)")
# Hop-by-hop and encoding headers describe the transfer, not the decoded body served.
_TRANSFER_HEADERS = {b"content-encoding", b"transfer-encoding", b"content-length"}
_READ_CHUNK = 1024 * 1024
_HTTP = frozenset({"http", "https"})


@dataclass(frozen=True, slots=True)
class Source:
    kind: str
    """"warc", "mirror", "html" or "text"."""
    url: str
    """The page's URL on the site."""
    path: str
    fetched_at: datetime
    offset: int | None = None
    length: int | None = None
    record_id: str | None = None

    def provenance(self) -> dict[str, Any]:
        """Where the bytes are, as stored with the article (JSON-ready)."""
        if self.kind != "warc":
            return {"kind": self.kind, "url": self.url, "path": self.path}
        # The same shape as the crawl's WARC writer records.
        return {"kind": "warc", "url": self.url, "file": self.path, "offset": self.offset,
                "length": self.length, "record_id": self.record_id}  # fmt: skip

    @classmethod
    def from_provenance(cls, entry: dict[str, Any], fetched_at: datetime) -> Source:
        # A WARC record found by the crawl names its file under "file".
        path = entry.get("path") or entry.get("file")
        if not path or not entry.get("url") or not entry.get("kind"):
            raise ValueError(f"incomplete provenance {entry!r}")
        return cls(
            kind=entry["kind"],
            url=entry["url"],
            path=path,
            fetched_at=fetched_at,
            offset=entry.get("offset"),
            length=entry.get("length"),
            record_id=entry.get("record_id"),
        )


@dataclass
class SourceIndex:
    """Every saved page by URL, plus what was skipped and why."""

    site: Site
    max_size: int = 0
    """Saved text and HTML pages larger than this (0: no limit) are not read."""
    by_url: dict[str, list[Source]] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, source: Source) -> None:
        self.by_url.setdefault(source.url, []).append(source)

    def skip(self, reason: str, where: object, detail: str = "") -> None:
        self.skipped[reason] += 1
        because = f" ({detail})" if detail else ""
        logger.warning("Skipped %s: %s%s", where, reason.replace("_", " "), because)

    def lookup(self, url: str) -> Source | None:
        """The best saved copy of ``url``: the preferred kind, then the latest fetch."""
        sources = self.by_url.get(url)
        if not sources:
            return None
        return min(sources, key=_preference)

    def first_pages(self) -> list[Source]:
        """One source per saved first page of an article, in a stable order. Copies of
        one article from different renderings (desktop, mobile, text) are all kept:
        storage decides which one's fields stand."""
        found: list[Source] = []
        for url in sorted(self.by_url):
            ref = self.site.article_ref(url)
            if ref is None or ref.page != 1:
                continue
            by_kind: dict[str, Source] = {}
            for source in self.by_url[url]:
                best = by_kind.get(source.kind)
                if best is None or source.fetched_at > best.fetched_at:
                    by_kind[source.kind] = source
            found += sorted(by_kind.values(), key=lambda s: KIND_PREFERENCE.index(s.kind))
        return found


def _preference(source: Source) -> tuple[int, float]:
    return KIND_PREFERENCE.index(source.kind), -source.fetched_at.timestamp()


def index_paths(paths: Iterable[str | Path], site: Site, max_size: int = 0) -> SourceIndex:
    """Index every saved page under ``paths`` (files or directories, any mix). A saved
    text or HTML page over ``max_size`` bytes (0: no limit) is not read.

    An entry that cannot be read is skipped with its reason, and the others are indexed:
    ``missing_path``, ``symlink_loop``, ``not_regular_file`` (a FIFO, a socket, a
    device: never opened), ``too_large``, ``unreadable`` (any other error of the system).
    """
    index = SourceIndex(site, max_size=max_size)
    for given in paths:
        path = Path(given)
        if _climbs_out(path):
            index.skip("outside_directory", path, "its .. leads out of a folder it names")
            continue
        try:
            status = path.stat()
        except OSError as exc:
            _skip_error(index, path, exc)
            continue
        if stat.S_ISDIR(status.st_mode):
            _index_directory(index, path)
        else:
            _index_entry(index, path)
    return index


def _climbs_out(path: Path) -> bool:
    """Whether ``path`` names a folder and then climbs out of it with ``..``
    (``mirror/www.ylwt22.com/../../etc``): it would read outside what it names.
    Leading ones (``../crawl/warc``) only say where the path starts."""
    named = False
    for part in path.parts[1:] if path.anchor else path.parts:
        if part != "..":
            named = True
        elif named:
            return True
    return False


def _index_directory(index: SourceIndex, root: Path) -> None:
    resolved_root = root.resolve()

    def unlistable(exc: OSError) -> None:
        _skip_error(index, Path(exc.filename or root), exc)

    for folder, dirs, files in os.walk(root, onerror=unlistable):
        dirs.sort()
        for name in dirs:  # os.walk does not follow a link to a folder: say so when it leads out
            link = Path(folder) / name
            try:
                if link.is_symlink() and not _resolve(link).is_relative_to(resolved_root):
                    index.skip("outside_directory", link, f"it leads out of {root}")
            except OSError as exc:
                _skip_error(index, link, exc)
        for name in sorted(files):
            path = Path(folder) / name
            try:
                inside = _resolve(path).is_relative_to(resolved_root)
            except OSError as exc:
                _skip_error(index, path, exc)
                continue
            if not inside:
                index.skip("outside_directory", path, f"it leads out of {root}")
                continue
            _index_entry(index, path)


def _index_entry(index: SourceIndex, path: Path) -> None:
    """Index one file; what goes wrong with it is a reason to skip it, not the others."""
    try:
        _index_file(index, path, regular_status(path))
    except NotRegularFile as exc:
        index.skip("not_regular_file", path, f"it is {exc.kind}; only regular files are read")
    except BodyTooLarge as exc:
        index.skip("too_large", path, str(exc).replace("its body", "the file"))
    except OSError as exc:
        _skip_error(index, path, exc)


def _skip_error(index: SourceIndex, path: Path, exc: OSError) -> None:
    if exc.errno == errno.ELOOP:
        index.skip("symlink_loop", path, "a link that leads back to itself")
    elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
        index.skip("missing_path", path, "no such file or directory")
    else:
        index.skip("unreadable", path, exc.strerror or str(exc))


def _resolve(path: Path) -> Path:
    """``path`` with every link followed; a loop of links is an OSError (ELOOP), as
    from the system, whatever the Python version."""
    try:
        return path.resolve()
    except RuntimeError as exc:  # Python before 3.13: "Symlink loop from ..."
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path)) from exc


def _index_file(index: SourceIndex, path: Path, status: os.stat_result) -> None:
    name = path.name.lower()
    if name.endswith(WARC_SUFFIXES):
        _index_warc(index, path)
        return
    fetched_at = datetime.fromtimestamp(status.st_mtime, UTC)
    url = _mirror_url(path, index.site)
    if url is not None:
        if index.site.article_ref(url) is not None:
            index.add(Source("mirror", url, str(_resolve(path)), fetched_at))
        return
    if name.endswith(".txt"):
        kind = "text"
    elif name.endswith((".html", ".htm")):
        kind = "html"
    else:
        index.skip("unknown_file_type", path)
        return
    body, _ = read_regular(path, index.max_size)
    url = _declared_url(body, text=kind == "text")
    if url is None or index.site.article_ref(url) is None:
        index.skip("unknown_url", path, "the page names no article URL of the site")
        return
    index.add(Source(kind, url, str(_resolve(path)), fetched_at))


def _mirror_url(path: Path, site: Site) -> str | None:
    """The URL of a file in a `wget --mirror` tree (``.../<host>/<path>``, where the
    tree or any folder in it may be the path given), or None for a file in no such
    tree. The nearest folder named for one of the site's hosts is the host."""
    parts = path.absolute().parts
    for depth in range(len(parts) - 2, -1, -1):
        if parts[depth] in site.hosts:
            return f"http://{parts[depth]}/{'/'.join(parts[depth + 1 :])}"
    return None


def _declared_url(body: bytes, *, text: bool) -> str | None:
    """The URL a saved page names for itself: its 链接地址 line, or for HTML its
    canonical link or the 链接地址 anchor."""
    decoded = decode_html(body, {"Content-Type": "text/plain" if text else "text/html"}).text
    if not text:
        sel = Selector(text=decoded)
        href = sel.css("link[rel=canonical]::attr(href), div.copyright a::attr(href)").get()
        if href:
            return href.strip()
    match = _DECLARED_URL.search(decoded)
    return match[1] if match else None


def _index_warc(index: SourceIndex, path: Path) -> None:
    """Index the WARC file's successful responses. A damaged record ends the file's
    reading there: every whole record before it is kept."""
    resolved = str(_resolve(path))
    with open_regular(path) as stream:
        records = ArchiveIterator(stream, check_digests="raise")
        try:
            for record in records:
                if record.rec_type != "response":
                    continue
                url = record.rec_headers.get_header("WARC-Target-URI") or ""
                if urlsplit(url).scheme not in _HTTP or not index.site.is_site_url(url):
                    # Another host, or a file: URL (which passes for a site URL by its host).
                    index.skip("outside_site", path, f"a record of {url or 'no URL'}")
                    continue
                if record.http_headers is None or record.http_headers.get_statuscode() != "200":
                    continue
                offset = records.get_record_offset()
                records.read_to_end(record)
                _check_whole(record, offset)
                index.add(
                    Source(
                        "warc",
                        url,
                        resolved,
                        _warc_date(record.rec_headers.get_header("WARC-Date")),
                        offset=offset,
                        length=records.get_record_length(),
                        record_id=record.rec_headers.get_header("WARC-Record-ID"),
                    )
                )
        except (ArchiveLoadFailed, EOFError, OSError, ValueError) as exc:
            index.skip("damaged_warc_record", path, f"{type(exc).__name__}: {exc}".splitlines()[0])


def _check_whole(record: Any, offset: int) -> None:
    # A record cut short (a crash while writing, a partial copy) ends without error
    # in warcio: only the bytes it still owes tell.
    if getattr(record.raw_stream, "limit", 0):
        raise EOFError(f"the record at offset {offset} is cut short")


def _warc_date(value: str | None) -> datetime:
    if not value:
        raise ValueError("WARC record without WARC-Date")
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class SavedPage:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def read_source(source: Source, max_size: int = 0) -> SavedPage:
    """The page's status, headers and body, decoded of any transfer and content
    encoding, within the crawl's size limits (:mod:`crawler.limits`): a body over
    ``max_size`` bytes (0: no limit), stored or once decompressed, is refused with
    :class:`crawler.limits.BodyTooLarge` or :class:`crawler.limits.DecompressionBomb`.
    Only a regular file is read (:class:`crawler.files.NotRegularFile`)."""
    if source.kind != "warc":
        content_type = b"text/plain" if source.kind == "text" else b"text/html"
        body, _ = read_regular(source.path, max_size)
        return SavedPage(200, [(b"Content-Type", content_type)], body)
    with open_regular(source.path) as stream:
        stream.seek(source.offset or 0)
        record = next(iter(ArchiveIterator(stream, check_digests="raise")))
        if record.http_headers is None:
            raise ArchiveLoadFailed(f"no HTTP response at offset {source.offset} of {source.path}")
        http = record.http_headers
        # The body as sent, only de-chunked: warcio would decompress it too, with no limit.
        payload = record.raw_stream
        if (http.get_header("Transfer-Encoding") or "").lower() == "chunked":
            payload = ChunkedDataReader(record.raw_stream)
        body = _read_at_most(payload, max_size)
        _check_whole(record, source.offset or 0)
        encodings = [v for n, v in http.headers if n.lower() == "content-encoding"]
        body, left = decode_body(body, encodings, max_size)
        headers = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in http.headers
            if name.lower().encode() not in _TRANSFER_HEADERS
        ]
        headers += [(b"Content-Encoding", encoding) for encoding in left]
        return SavedPage(int(http.get_statuscode()), headers, body)


def _read_at_most(stream: Any, max_size: int) -> bytes:
    """The stream's bytes; BodyTooLarge as soon as they pass ``max_size`` (0: no limit)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(_READ_CHUNK):
        size += len(chunk)
        if max_size and size > max_size:
            raise BodyTooLarge(size, max_size, at_least=True)
        chunks.append(chunk)
    return b"".join(chunks)
