"""The add-on that makes ``scrapy crawl ylwt22`` a worker of a distributed crawl when
``REDIS_URL`` is set (as a setting or in the environment); without it, nothing changes.

It swaps in the Redis scheduler and seen-filter (scrapy-redis, adapted: see
scheduler.py, dupefilter.py, queue.py), keeps the crawl's keys under
``ylwt22:<CRAWL_ID>:``, switches the run lock off (it keeps scheduled crawls on one
machine from overlapping; workers overlap on purpose), and adds the worker's
components. Replays and re-extractions read local files: they stay in one process.
"""

from __future__ import annotations

import redis
from redis.exceptions import RedisError
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.settings import BaseSettings

from crawler.distributed.keys import SPIDER, CrawlKeys
from crawler.distributed.middlewares import FailureAcknowledgement, OutputAcknowledgement
from crawler.distributed.worker import Worker
from crawler.errors import CommandError
from crawler.settings_util import default
from storage.urls import hide_password

# Outermost in both middleware chains: see middlewares.py.
_OUTERMOST = 1
# The preflight gives up on a Redis that does not answer within this many seconds.
_PREFLIGHT_TIMEOUT = 5.0


class SetupError(CommandError):
    """REDIS_URL or CRAWL_ID cannot be used; the message says why, in one line."""


class DistributedCrawl:
    def __init__(self, crawler: Crawler) -> None:
        self.spider_name = getattr(crawler.spidercls, "name", None)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DistributedCrawl:
        return cls(crawler)

    @staticmethod
    def check(settings: BaseSettings) -> None:
        """Fail before the crawl, once, on a CRAWL_ID that cannot name keys or a Redis
        that cannot be reached: not with an error per request."""
        url = settings.get("REDIS_URL")
        if not url:
            return
        shown = repr(hide_password(url))  # for messages
        try:
            CrawlKeys.from_settings(settings)
        except ValueError as exc:
            raise SetupError(str(exc)) from None
        try:
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=_PREFLIGHT_TIMEOUT,
                socket_timeout=_PREFLIGHT_TIMEOUT,
            )
        except ValueError as exc:
            raise SetupError(f"REDIS_URL {shown} is not a Redis URL: {exc}") from None
        try:
            client.ping()
        except RedisError as exc:
            raise SetupError(f"cannot reach Redis at REDIS_URL {shown}: {exc}") from None
        finally:
            client.close()

    def update_settings(self, settings: BaseSettings) -> None:
        if not settings.get("REDIS_URL") or self.spider_name != SPIDER:
            raise NotConfigured  # silently: listed among the enabled add-ons only when on
        keys = CrawlKeys.from_settings(settings)
        default(settings, "SCHEDULER", "crawler.distributed.scheduler.RedisScheduler")
        default(settings, "DUPEFILTER_CLASS", "crawler.distributed.dupefilter.RedisDupeFilter")
        default(settings, "SCHEDULER_QUEUE_KEY", keys.requests)
        default(settings, "SCHEDULER_DUPEFILTER_KEY", keys.dupefilter)
        # The queue outlives each worker; the last one out gives it an expiry instead.
        default(settings, "SCHEDULER_PERSIST", True)
        # Pop without waiting: a blocking pop would stall this worker's reactor.
        default(settings, "SCHEDULER_IDLE_BEFORE_CLOSE", 0)
        default(settings, "RUN_LOCK", False)
        settings.setdefault_in_component_priority_dict("EXTENSIONS", Worker, 100)
        settings.setdefault_in_component_priority_dict(
            "SPIDER_MIDDLEWARES", OutputAcknowledgement, _OUTERMOST
        )
        settings.setdefault_in_component_priority_dict(
            "DOWNLOADER_MIDDLEWARES", FailureAcknowledgement, _OUTERMOST
        )
