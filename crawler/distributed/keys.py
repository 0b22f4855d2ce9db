"""Where a distributed crawl keeps its state: the Redis keys of one crawl, and the
connection the workers share."""

from __future__ import annotations

import re
from dataclasses import dataclass

from redis import Redis
from scrapy.settings import BaseSettings
from scrapy_redis.connection import get_redis_from_settings

# The spider whose crawls can be shared; its name is the keys' first part.
SPIDER = "ylwt22"
_CRAWL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True, slots=True)
class CrawlKeys:
    """The keys of the crawl ``CRAWL_ID``, all under ``ylwt22:<CRAWL_ID>:``."""

    crawl_id: str

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> CrawlKeys:
        crawl_id = str(settings.get("CRAWL_ID") or "")
        if not _CRAWL_ID.fullmatch(crawl_id):
            raise ValueError(
                "CRAWL_ID must be 1 to 100 letters, digits, '.', '_' or '-', "
                f"starting with a letter or digit, got {crawl_id!r}"
            )
        return cls(crawl_id)

    @property
    def namespace(self) -> str:
        return f"{SPIDER}:{self.crawl_id}"

    def _key(self, name: str) -> str:
        return f"{self.namespace}:{name}"

    @property
    def requests(self) -> str:
        """The shared queue (a sorted set, scrapy-redis's priority queue)."""
        return self._key("requests")

    @property
    def dupefilter(self) -> str:
        """The fingerprints of every request ever scheduled (a set)."""
        return self._key("dupefilter")

    @property
    def todo(self) -> str:
        """Requests scheduled and not yet done: fingerprint -> serialized request."""
        return self._key("todo")

    @property
    def attempts(self) -> str:
        """How often each request was queued again: fingerprint -> count."""
        return self._key("attempts")

    @property
    def workers(self) -> str:
        """Heartbeats: worker id -> JSON (last seen, busy, run id)."""
        return self._key("workers")

    @property
    def started_at(self) -> str:
        """When the crawl's first worker started (ISO 8601, UTC)."""
        return self._key("started_at")

    @property
    def read(self) -> str:
        """The categories the workers read down to known articles (a set)."""
        return self._key("read")

    @property
    def lock(self) -> str:
        """Held by the worker running the completeness pass, or ending the crawl."""
        return self._key("lock")

    @property
    def ended(self) -> str:
        """When the last worker ended the crawl."""
        return self._key("ended")

    def all(self) -> tuple[str, ...]:
        return (
            self.requests,
            self.dupefilter,
            self.todo,
            self.attempts,
            self.workers,
            self.started_at,
            self.read,
            self.lock,
            self.ended,
        )


def connect(settings: BaseSettings) -> Redis:
    """A client for ``REDIS_URL``, made as scrapy-redis makes its own (REDIS_PARAMS)."""
    server: Redis = get_redis_from_settings(settings)
    return server


def text(reply: bytes | str) -> str:
    """A Redis reply as text: the clients here leave replies undecoded, for the queue's
    entries are pickles."""
    return reply.decode() if isinstance(reply, bytes) else reply
