"""The workers of a crawl and their heartbeats, in the hash ``<ns>:workers``.

Each worker writes, every heartbeat, when it was last seen, whether it is busy, how
many requests it has in flight and its run's id. Times are the Redis server's clock, so
workers on machines whose clocks disagree still agree on who is alive: one not seen for
``dead_after`` seconds is dead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis import Redis

from crawler.distributed.keys import text


@dataclass(frozen=True, slots=True)
class Heartbeat:
    worker: str
    seen: float
    busy: bool
    run_id: int | None = None


class Heartbeats:
    def __init__(self, server: Redis, key: str, *, dead_after: float) -> None:
        self.server = server
        self.key = key
        self.dead_after = dead_after

    def now(self) -> float:
        seconds, microseconds = self.server.time()
        return float(seconds) + microseconds / 1e6

    def beat(self, worker: str, *, busy: bool, requests: int, run_id: int | None) -> None:
        """``requests``: in flight, or waiting in the worker's downloader."""
        value = {"seen": self.now(), "busy": busy, "requests": requests, "run": run_id}
        self.server.hset(self.key, worker, json.dumps(value))

    def others(self, worker: str) -> tuple[list[Heartbeat], list[Heartbeat]]:
        """The other workers: (alive, dead)."""
        now = self.now()
        alive: list[Heartbeat] = []
        dead: list[Heartbeat] = []
        for name, value in self.server.hgetall(self.key).items():
            if (who := text(name)) == worker:
                continue
            fields = json.loads(value)
            beat = Heartbeat(who, fields["seen"], fields["busy"], fields.get("run"))
            (dead if now - beat.seen > self.dead_after else alive).append(beat)
        return alive, dead

    def remove(self, *workers: str) -> None:
        if workers:
            self.server.hdel(self.key, *workers)
