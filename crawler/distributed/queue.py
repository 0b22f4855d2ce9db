"""The shared queue: scrapy-redis's priority queue, which also records every request it
is given in the crawl's todo hash.

scrapy-redis pops a request and forgets it: a worker that dies loses what it had
popped. Here each push also writes ``<ns>:todo`` (fingerprint -> the request,
serialized as the queue serializes it), in the same MULTI/EXEC as the push, so a
request is in the queue, or in the hands of a worker and still in todo, until a worker
says it is done (RedisScheduler.forget) or the completeness pass settles it.
"""

from __future__ import annotations

from typing import Any, cast

from redis import Redis
from scrapy import Request, Spider
from scrapy_redis.queue import PriorityQueue

from crawler.distributed.keys import CrawlKeys


class TrackedQueue(PriorityQueue):
    def __init__(self, server: Redis, spider: Spider, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer)
        crawler = spider.crawler
        self.todo_key = CrawlKeys.from_settings(crawler.settings).todo
        self.fingerprinter = crawler.request_fingerprinter

    def fingerprint(self, request: Request) -> str:
        return self.fingerprinter.fingerprint(request).hex()

    def push(self, request: Request) -> None:
        data = self._encode_request(request)
        with self.server.pipeline() as pipe:  # MULTI/EXEC: both or neither
            # As scrapy-redis pushes: ZADD in its argument order, highest priority first.
            pipe.execute_command("ZADD", self.key, -request.priority, data)
            pipe.hset(self.todo_key, self.fingerprint(request), data)
            pipe.execute()

    def decode(self, data: bytes) -> Request:
        """A request from its todo entry."""
        request: Request = self._decode_request(data)
        return request

    def scan_todo(self, cursor: int, count: int) -> tuple[int, list[tuple[str, bytes]]]:
        """A page of the todo hash, as HSCAN gives it: (next cursor, entries)."""
        cursor, page = self.server.hscan(self.todo_key, cursor, count=count)
        entries = cast("dict[bytes, bytes]", page)  # replies are left undecoded
        return cursor, [(fingerprint.decode(), data) for fingerprint, data in entries.items()]
