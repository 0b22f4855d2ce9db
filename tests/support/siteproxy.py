"""A stand-in for the site on 127.0.0.1: an HTTP proxy that answers from a mirror.

The crawler reaches it as a user's crawl reaches the real site, as
http://www.ylwt22.com/… through the proxy named in ``http_proxy``, so the URLs it stores
are the site's own. Written apart from the project's offline handler on purpose: the
two must agree without sharing code.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

_TYPES = {".html": "text/html", ".xml": "application/xml", ".txt": "text/plain"}


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class SiteProxy:
    """Serves ``mirror/<host>/<path>``. ``replies`` maps a URL to a Reply (or a list of
    Replies, used up one request at a time) that takes the place of the mirror's file;
    ``requests`` records every URL asked for, in order, ``times`` when each was asked
    for (time.monotonic()), and ``user_agents`` who asked."""

    def __init__(self, mirror: Path) -> None:
        self.mirror = mirror
        self.replies: dict[str, Reply | list[Reply]] = {}
        self.requests: list[str] = []
        self.times: list[float] = []
        self.user_agents: set[str] = set()
        self.statuses: list[int] = []
        # A site that sends validators and answers conditional requests with 304.
        self.conditional = False
        # Seconds each answer takes: a slow site, for tests that stop a crawl midway.
        self.delay = 0.0
        # A site that stalls: past this many answers, each answer waits until resume()
        # (0: from the first). A crawl caught midway stays midway, however loaded the
        # machine is; a delay alone only makes that likely.
        self.stall_after: int | None = None
        self._flowing = threading.Event()
        self._flowing.set()
        self._answered = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy.user_agents.add(self.headers.get("User-Agent", ""))
                reply = proxy.answer(self.path, dict(self.headers.items()))
                self.send_response(reply.status)
                headers = {"Content-Length": str(len(reply.body)), **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> SiteProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.resume()
        self.server.shutdown()
        self.server.server_close()

    def resume(self) -> None:
        """A stalled site answers again, and no longer stalls."""
        self.stall_after = None
        self._flowing.set()

    def answer(self, url: str, headers: dict[str, str] | None = None) -> Reply:
        with self._lock:
            self._answered += 1
            if self.stall_after is not None and self._answered > self.stall_after:
                self._flowing.clear()
        self._flowing.wait()
        if self.delay:
            time.sleep(self.delay)
        reply = self._answer(url, headers or {})
        with self._lock:
            self.statuses.append(reply.status)
        return reply

    def _answer(self, url: str, headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(url)
            self.times.append(time.monotonic())
            planned = self.replies.get(url)
            if isinstance(planned, list):
                planned = planned.pop(0) if planned else None
        if planned is not None:
            return planned
        parts = urlsplit(url)
        if not parts.hostname:  # not a proxy request: this server is no web server
            return Reply(400, b"absolute URL expected")
        path = unquote(parts.path)
        if path.endswith("/"):
            path += "index.html"
        file = self.mirror / parts.hostname / path.lstrip("/")
        if ".." in Path(path).parts or not file.is_file():
            missing = self.mirror / parts.hostname / "404.html"
            body = missing.read_bytes() if missing.is_file() else b""
            return Reply(404, body, {"Content-Type": "text/html"})
        # Like the site: no charset in the header, the page's <meta> says it.
        reply = Reply(
            200, file.read_bytes(), {"Content-Type": _TYPES.get(file.suffix, "text/html")}
        )
        if self.conditional:
            etag = f'"{hashlib.sha1(reply.body).hexdigest()}"'
            if headers.get("If-None-Match") == etag:
                return Reply(304, b"", {"ETag": etag})
            reply.headers["ETag"] = etag
            reply.headers["Last-Modified"] = formatdate(file.stat().st_mtime, usegmt=True)
        return reply
