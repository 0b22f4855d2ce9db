"""The numeric and true/false settings, checked once before a crawl, replay or
re-extraction starts.

A value that cannot be read (``DOWNLOAD_MAXSIZE=abc``) would fail deep inside Scrapy
with a traceback, and one out of range (``CONCURRENT_REQUESTS=0``) can hang the crawl
for ever. Each setting the project and the Scrapy components it enables read as a
number or a boolean is listed in :data:`RULES` with what it must be; the command
reports the first bad one as ``error: bad setting NAME=VALUE: …``.

Only the standard library and Scrapy's settings are imported: every ``scrapy``
command imports this module as it starts.
"""

from __future__ import annotations

import importlib
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from scrapy.settings import BaseSettings


class BadSetting(ValueError):
    """A setting's value is not what its rule asks; the message names both."""


@dataclass(frozen=True, slots=True)
class Rule:
    kind: Literal["int", "float", "bool"]
    minimum: float | None = None
    above: bool = False
    """The value must be above ``minimum`` rather than at least ``minimum``."""
    maximum: float | None = None
    optional: bool = False
    """Unset is a value of its own (None, or empty on the command line)."""

    def describe(self) -> str:
        if self.kind == "bool":
            return "must be True or False (or 1, 0, true, false)"
        what = "a whole number" if self.kind == "int" else "a number"
        bounds = []
        if self.minimum is not None:
            bounds.append(f"{'above' if self.above else 'at least'} {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"at most {self.maximum:g}")
        unset = ", or unset" if self.optional else ""
        return f"must be {what}{' ' if bounds else ''}{' and '.join(bounds)}{unset}"

    def check(self, settings: BaseSettings, name: str) -> None:
        raw = settings.get(name)
        if raw is None or (self.optional and raw == ""):
            return  # not set at all: whoever reads it has nothing to misread
        try:
            if self.kind == "bool":
                settings.getbool(name)
                return
            value = float(settings.getint(name) if self.kind == "int" else settings.getfloat(name))
        except (TypeError, ValueError):
            raise BadSetting(f"bad setting {name}={raw}: {self.describe()}") from None
        if (
            not math.isfinite(value)
            or (self.minimum is not None and value < self.minimum)
            or (self.minimum is not None and self.above and value == self.minimum)
            or (self.maximum is not None and value > self.maximum)
        ):
            raise BadSetting(f"bad setting {name}={raw}: {self.describe()}")


def _count(minimum: int) -> Rule:
    return Rule("int", minimum)


def _seconds(*, above_zero: bool = False) -> Rule:
    return Rule("float", 0, above=above_zero)


_SIZE = Rule("int", 0)
_SWITCH = Rule("bool")

# What each setting must be. Sizes and counts of retries may be 0 (for sizes: no limit);
# a concurrency, a batch or a timeout may not.
RULES: Mapping[str, Rule] = {
    # Concurrency: 0 would never send a request, and never end.
    "CONCURRENT_REQUESTS": _count(1),
    "CONCURRENT_REQUESTS_PER_DOMAIN": _count(1),
    "CONCURRENT_ITEMS": _count(1),
    "REACTOR_THREADPOOL_MAXSIZE": _count(1),
    # Politeness
    "DOWNLOAD_DELAY": _seconds(),
    "DOWNLOAD_DELAY_JITTER": Rule("float", 0, maximum=1),
    "RANDOMIZE_DOWNLOAD_DELAY": _SWITCH,
    "CRAWL_RATE": Rule("float", 0, above=True, optional=True),
    "AUTOTHROTTLE_ENABLED": _SWITCH,
    "AUTOTHROTTLE_START_DELAY": _seconds(),
    "AUTOTHROTTLE_MAX_DELAY": _seconds(),
    "AUTOTHROTTLE_TARGET_CONCURRENCY": Rule("float", 0, above=True),
    "ROBOTSTXT_OBEY": _SWITCH,
    "ROBOTSTXT_CRAWL_DELAY_MAX": _seconds(),
    # Retries and redirects
    "RETRY_ENABLED": _SWITCH,
    "RETRY_TIMES": _count(0),
    "RETRY_BACKOFF_BASE": _seconds(),
    "RETRY_BACKOFF_MAX": _seconds(),
    "RETRY_AFTER_MAX": _seconds(),
    "REDIRECT_ENABLED": _SWITCH,
    "REDIRECT_MAX_TIMES": _count(0),
    "METAREFRESH_ENABLED": _SWITCH,
    "METAREFRESH_MAXDELAY": _seconds(),
    # Limits
    "DOWNLOAD_TIMEOUT": _seconds(above_zero=True),
    "DNS_TIMEOUT": _seconds(above_zero=True),
    "DOWNLOAD_MAXSIZE": _SIZE,
    "DOWNLOAD_WARNSIZE": _SIZE,
    "DOWNLOAD_FAIL_ON_DATALOSS": _SWITCH,
    "COMPRESSION_ENABLED": _SWITCH,
    "COOKIES_ENABLED": _SWITCH,
    "HTTPPROXY_ENABLED": _SWITCH,
    "URLLENGTH_LIMIT": _SIZE,
    "DEPTH_LIMIT": _count(0),
    "SHUTDOWN_TIMEOUT": _seconds(above_zero=True),
    "CLOSESPIDER_TIMEOUT": _seconds(),
    "CLOSESPIDER_ITEMCOUNT": _count(0),
    "CLOSESPIDER_PAGECOUNT": _count(0),
    "CLOSESPIDER_ERRORCOUNT": _count(0),
    "MEMUSAGE_ENABLED": _SWITCH,
    "MEMUSAGE_LIMIT_MB": _SIZE,
    "MEMUSAGE_WARNING_MB": _SIZE,
    "LOGSTATS_INTERVAL": _seconds(),
    "TELNETCONSOLE_ENABLED": _SWITCH,
    "REMOTE_CONTROL_ENABLED": _SWITCH,
    # Storage and runs
    "DATABASE_BATCH_SIZE": _count(1),
    "DATABASE_FLUSH_INTERVAL": _seconds(),
    "DATABASE_WRITE_RETRIES": _count(0),
    "DATABASE_RETRY_BACKOFF": _seconds(),
    "RUN_LOCK": _SWITCH,
    "WARC_ENABLED": _SWITCH,
    "WARC_MAX_SIZE": _count(1),
    # Discovery: what a pager or a sitemap may claim
    "CATEGORY_MAX_ARTICLES": _count(1),
    "LIST_PAGES_AHEAD": _count(1),
    "SITEMAP_MAX_DEPTH": _count(0),
    "SITEMAP_MAX_COUNT": _count(0),
    # The console
    "PROGRESS_ENABLED": _SWITCH,
    "PROGRESS_INTERVAL": _seconds(above_zero=True),
    # Reading articles
    "EXTRACT_WORKERS": _count(0),
    "EXTRACT_QUEUE": _count(1),
    "EXTRACT_TIMEOUT": _seconds(above_zero=True),
    # Distributed crawling
    "DISTRIBUTED_IDLE_TIMEOUT": _seconds(above_zero=True),
    "DISTRIBUTED_HEARTBEAT": _seconds(above_zero=True),
    "DISTRIBUTED_MAX_REQUEUES": _count(0),
    "DISTRIBUTED_KEYS_TTL": _count(1),
}


def check_values(settings: BaseSettings) -> None:
    """Raises :class:`BadSetting` for the first setting in :data:`RULES` whose value
    is not what its rule asks."""
    for name, rule in RULES.items():
        rule.check(settings, name)


def check_objects(name: str, paths: list[str]) -> None:
    """Every import path the list setting ``name`` holds names an object. Raises
    :class:`BadSetting` for the first that does not."""
    for path in paths:
        module, _, attribute = path.rpartition(".")
        try:
            found = hasattr(importlib.import_module(module), attribute) if module else False
        except ImportError as exc:
            raise BadSetting(f"bad setting {name}: cannot import {path}: {exc}") from None
        if not found:
            raise BadSetting(f"bad setting {name}: {path} names nothing")


def check_writable_directory(name: str, value: object) -> None:
    """The folder that setting ``name`` names can be written in: created if missing.
    Raises :class:`BadSetting` for a file, or a folder that cannot be created or
    written in (no permission, a read-only file system)."""
    path = Path(str(value))
    problem = None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        problem = "not a directory"
    except OSError as exc:
        problem = f"cannot create it: {exc.strerror or exc}"
    if problem is None and not path.is_dir():
        problem = "not a directory"
    if problem is None:
        try:
            fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            problem = f"cannot write in it: {exc.strerror or exc}"
    if problem is not None:
        raise BadSetting(f"bad setting {name}={value}: {problem}")
