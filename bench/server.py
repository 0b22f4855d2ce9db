"""A fast stand-in for the site: an HTTP proxy on 127.0.0.1 that answers from a mirror.

    python bench/server.py MIRROR      # prints "listening on http://127.0.0.1:PORT"

As tests/support/siteproxy.py does, it takes proxy requests (`GET http://host/path`)
and answers them from MIRROR/<host>/<path>, so a crawl given `http_proxy` reaches the
site under its own URLs. Unlike that one it is a single Twisted process without threads
or logging, with the whole mirror read into memory before it listens, so that it can serve a crawl
faster than the crawl can take the pages: bench/run.py records its CPU time to show it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from twisted.internet import reactor
from twisted.web import http

_TYPES = {".html": b"text/html", ".xml": b"application/xml", ".txt": b"text/plain"}


class MirrorRequest(http.Request):
    mirror: Path
    cache: ClassVar[dict[str, tuple[int, bytes, bytes]]] = {}

    def process(self) -> None:
        status, kind, body = self.lookup(self.uri.decode("latin-1"))
        self.setResponseCode(status)
        # Like the site: no charset in the header, the page's <meta> says it.
        self.setHeader(b"Content-Type", kind)
        self.setHeader(b"Content-Length", str(len(body)).encode())
        self.write(body)
        self.finish()

    def lookup(self, uri: str) -> tuple[int, bytes, bytes]:
        found = self.cache.get(uri)
        if found is None:
            parts = urlsplit(uri)
            path = unquote(parts.path)
            if path.endswith("/"):
                path += "index.html"
            file = self.mirror / (parts.hostname or "-") / path.lstrip("/")
            if not parts.hostname or ".." in Path(path).parts or not file.is_file():
                found = (404, b"text/html", b"<html><body>404</body></html>")
            else:
                found = (200, _TYPES.get(file.suffix, b"text/html"), file.read_bytes())
            self.cache[uri] = found
        return found


class Channel(http.HTTPChannel):
    requestFactory = MirrorRequest


def preload(mirror: Path) -> None:
    """Read the whole mirror before the first request, so no crawl pays for the disk."""
    for file in mirror.rglob("*"):
        if file.is_file():
            uri = "http://" + file.relative_to(mirror).as_posix()
            answer = (200, _TYPES.get(file.suffix, b"text/html"), file.read_bytes())
            MirrorRequest.cache[uri] = answer
            if file.name == "index.html":
                MirrorRequest.cache[uri.removesuffix("index.html")] = answer


def main() -> None:
    MirrorRequest.mirror = Path(sys.argv[1]).resolve()
    preload(MirrorRequest.mirror)
    factory = http.HTTPFactory()
    factory.protocol = Channel
    port = reactor.listenTCP(0, factory, backlog=256, interface="127.0.0.1")
    print(f"listening on http://127.0.0.1:{port.getHost().port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
