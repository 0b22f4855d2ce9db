"""A download handler that answers every request from a saved mirror of the site.

The mirror is in ``wget --mirror`` layout: ``<dir>/<host>/<path>``, a directory's page
saved as ``index.html``, a query string kept in the file name after ``?`` (or ``@``, as
``--restrict-file-names=windows`` saves it). Nothing is sent over the network.
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from scrapy import Request
from scrapy.core.downloader.handlers.base import BaseDownloadHandler
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes
from scrapy.utils.asyncio import run_in_thread

from crawler.files import read_regular

# Served without a charset, as the site does: the page's own <meta> decides.
_TYPES = {".html": "text/html", ".htm": "text/html", ".xml": "application/xml",
          ".txt": "text/plain"}  # fmt: skip


def mirror_path(root: Path, url: str) -> Path | None:
    """The saved file for ``url`` under ``root``, or None when there is none or the URL
    would lead outside ``root`` (``..``, or a link pointing out of the mirror)."""
    parts = urlsplit(url)
    if not parts.netloc:
        return None
    path = unquote(parts.path or "/")
    if path.endswith("/"):
        path += "index.html"
    names = [path]
    if parts.query:
        names = [f"{path}?{parts.query}", f"{path}@{parts.query}"]
    base = root.resolve()
    for name in names:
        candidate = (root / parts.netloc.lower() / name.lstrip("/")).resolve()
        if not candidate.is_relative_to(base):
            return None
        if candidate.is_dir():
            candidate /= "index.html"
        if candidate.is_file():
            return candidate
    return None


class MirrorDownloadHandler(BaseDownloadHandler):
    """Serves http and https requests from the directory in the ``OFFLINE_MIRROR``
    setting; a URL with no saved file answers 404. Only regular files are read, within
    ``DOWNLOAD_MAXSIZE`` (see :mod:`crawler.files`)."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        root = crawler.settings.get("OFFLINE_MIRROR")
        if not root:
            raise NotConfigured("OFFLINE_MIRROR is not set")
        self.root = Path(root)
        if not self.root.is_dir():
            raise NotConfigured(f"OFFLINE_MIRROR {root!r} is not a directory")
        self._max_size = crawler.settings.getint("DOWNLOAD_MAXSIZE")

    async def download_request(self, request: Request) -> Response:
        found = await run_in_thread(mirror_path, self.root, request.url)
        if found is None:
            return self._response(request, 404, b"", "text/html")
        max_size = request.meta.get("download_maxsize", self._max_size)
        body, status = await run_in_thread(read_regular, found, max_size)
        mtime = status.st_mtime
        # The mirror's copy was fetched when it was saved.
        request.meta["fetched_at"] = datetime.fromtimestamp(mtime, UTC)
        content_type = _TYPES.get(found.suffix.lower()) or (
            mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        )
        return self._response(request, 200, body, content_type)

    def _response(self, request: Request, status: int, body: bytes, ctype: str) -> Response:
        headers = Headers({"Content-Type": ctype, "Content-Length": str(len(body))})
        cls = responsetypes.from_args(headers=headers, url=request.url, body=body)
        return cls(
            url=request.url,
            status=status,
            headers=headers,
            body=body,
            request=request,
            flags=["mirror"],
        )
