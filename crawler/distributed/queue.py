"""The shared queue: scrapy-redis's priority queue, whose every push also writes the
request's todo entry (acknowledgements.py), in the same MULTI/EXEC: a request is in the
queue, or in the hands of a worker and still in todo, until it is done or settled."""

from __future__ import annotations

from typing import Any

from redis import Redis
from scrapy import Request, Spider
from scrapy_redis.queue import PriorityQueue

from crawler.distributed.acknowledgements import Acknowledgements


class TrackedQueue(PriorityQueue):
    def __init__(
        self,
        server: Redis,
        spider: Spider,
        key: str,
        serializer: Any = None,
        *,
        acknowledgements: Acknowledgements,
    ) -> None:
        super().__init__(server, spider, key, serializer)
        self.acknowledgements = acknowledgements

    def push(self, request: Request) -> None:
        data = self._encode_request(request)
        with self.server.pipeline() as pipe:  # MULTI/EXEC: both or neither
            # As scrapy-redis pushes: ZADD in its argument order, highest priority first.
            pipe.execute_command("ZADD", self.key, -request.priority, data)
            self.acknowledgements.queued(pipe, request, data)
            pipe.execute()

    def decode(self, data: bytes) -> Request:
        """A request from its queue entry (a todo entry is one too)."""
        request: Request = self._decode_request(data)
        return request
