"""Run the project's own `scrapy` commands as a user would: a real process, in the
project root, with the politeness delays that protect the site switched off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEEDS = PROJECT_ROOT / "seeds"
MIRROR = SEEDS / "mirror"

FAST = (
    "-s", "LOG_LEVEL=INFO", "-s", "RUN_LOG_DIR=",
    "-s", "AUTOTHROTTLE_ENABLED=False",
    "-s", "DOWNLOAD_DELAY=0",
    "-s", "RETRY_BACKOFF_BASE=0",
    "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8",
)  # fmt: skip


# What the tests read besides the report: Scrapy's log, its stats dump included, on the
# console (which by default shows warnings only); and no log file per run, which by
# default a run keeps under data/logs.
FULL_LOG = ("-s", "LOG_LEVEL=INFO", "-s", "RUN_LOG_DIR=")
_RUNS = frozenset({"crawl", "replay", "reextract"})


def scrapy(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    wrapper: tuple[str, ...] = (),
    full_log: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``scrapy ARGS``; ``wrapper`` is a command that runs it (``unshare …``). A crawl,
    replay or re-extraction logs in full on the console (``full_log``)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if full_log and args and args[0] in _RUNS:
        args = (args[0], *FULL_LOG, *args[1:])
    return subprocess.run(
        [*wrapper, sys.executable, "-m", "scrapy", *args],
        cwd=PROJECT_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def crawl(
    database_url: str,
    *settings: str,
    proxy: str | None = None,
    env: dict[str, str] | None = None,
    data_dir: Path | None = None,
    wrapper: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """`scrapy crawl ylwt22` into ``database_url``; through ``proxy`` when given."""
    extra = {"DATABASE_URL": database_url, **(env or {})}
    if proxy is not None:
        extra |= {"http_proxy": proxy, "https_proxy": proxy, "no_proxy": "", "NO_PROXY": ""}
    args = ["crawl", "ylwt22", *FAST, *settings]
    if data_dir is not None:
        args += ["-s", f"DATABASE_SPILL_DIR={data_dir / 'unsaved'}"]
        if not any(s.startswith("WARC_DIR=") for s in settings):
            args += ["-s", f"WARC_DIR={data_dir / 'warc'}"]
    else:  # the run writes nothing but to the database
        args += ["-s", "WARC_ENABLED=False"]
    return scrapy(*args, env=extra, wrapper=wrapper)


def replay(
    database_url: str, *paths: str | Path, settings: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`scrapy replay PATH...` into ``database_url``."""
    return scrapy("replay", *settings, *map(str, paths), env={"DATABASE_URL": database_url})


def reextract(database_url: str, *settings: str) -> subprocess.CompletedProcess[str]:
    return scrapy("reextract", *settings, env={"DATABASE_URL": database_url})
