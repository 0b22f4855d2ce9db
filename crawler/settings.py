"""Scrapy settings for the ylwt22 archive.

Every value here can be overridden with ``-s NAME=VALUE``. The defaults are polite to
the site: one identifying User-Agent, robots.txt obeyed, two requests at a time per
host, AutoThrottle on, and retries that back off and honour Retry-After.
"""

import os
from importlib.metadata import PackageNotFoundError, version

from crawler.site import DEFAULT_SITE_ROOT

try:
    _VERSION = version("ylwt22-archive")
except PackageNotFoundError:  # running from a source tree that is not installed
    _VERSION = "0+unknown"

BOT_NAME = "ylwt22"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"
COMMANDS_MODULE = "crawler.commands"
# CrawlRate after OfflineMirror: a rate the user asks for holds in offline mode too.
# DistributedCrawl makes the crawl a worker of a shared crawl when REDIS_URL is set.
ADDONS = {
    "crawler.addons.OfflineMirror": 0,
    "crawler.addons.CrawlRate": 10,
    "crawler.distributed.addon.DistributedCrawl": 20,
}

# The site to archive. Its www host and the m. host of its mobile twin are followed.
SITE_ROOT = DEFAULT_SITE_ROOT

# A saved mirror in `wget --mirror` layout (<dir>/<host>/<path>). When set, every
# request is answered from it and no web host is contacted.
OFFLINE_MIRROR = None

# --- Politeness ---------------------------------------------------------------------
USER_AGENT = f"ylwt22-archive/{_VERSION} (archiving crawler; Scrapy)"
ROBOTSTXT_OBEY = True
# A robots.txt Crawl-delay is honoured as the least time between requests to its host,
# up to this many seconds; a longer one is capped, with a warning.
ROBOTSTXT_CRAWL_DELAY_MAX = 60.0
# The most requests per second to any one host; unset, the delays below decide. Setting
# it sets DOWNLOAD_DELAY to 1 / CRAWL_RATE with no jitter (DOWNLOAD_DELAY_JITTER = 0) and
# CONCURRENT_REQUESTS_PER_DOMAIN to 1; AutoThrottle never goes below DOWNLOAD_DELAY, so
# it may slow down but never exceeds the rate. A longer DOWNLOAD_DELAY, or a concurrency
# or jitter given on the command line, still stands. E.g. -s CRAWL_RATE=0.5: one request
# every 2 seconds at most.
CRAWL_RATE = None
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 2
# Scrapy's, keeping CONCURRENT_REQUESTS_PER_DOMAIN when DOWNLOAD_DELAY is 0 (see there).
DOWNLOADER = "crawler.downloader.Downloader"
# A callback yields one article or a list page's few dozen links. Scrapy starts this
# many asyncio tasks for every response's output, used or not: at its default of 100
# they cost about an eighth of the crawl's time (bench/run.py, measure 1).
CONCURRENT_ITEMS = 16
DOWNLOAD_DELAY = 1.0
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
RETRY_BACKOFF_BASE = 2.0
RETRY_BACKOFF_MAX = 120.0
RETRY_AFTER_MAX = 600.0
DOWNLOADER_MIDDLEWARES = {
    # Before anything else: no file:, data:, ftp: or s3: URL is ever fetched.
    "crawler.middlewares.schemes.HttpOnlyMiddleware": 10,
    # Scrapy's robots.txt middleware, plus Crawl-delay.
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.middlewares.robots.CrawlDelayRobotsTxtMiddleware": 100,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.retry.BackoffRetryMiddleware": 550,
    # Scrapy's own, with a logged reason and a count for each response refused or given
    # up (download/*, redirect/*): size limits and decompression, redirects.
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
    "crawler.middlewares.limits.SizeLimitsMiddleware": 590,
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "crawler.middlewares.redirect.GuardedRedirectMiddleware": 600,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "crawler.middlewares.redirect.GuardedMetaRefreshMiddleware": 580,
    # Below decompression: counts pages whose declared charset is wrong.
    "crawler.middlewares.charset.CharsetMismatchMiddleware": 570,
    # Nearest the download handler: archives each response as received, before it is
    # decompressed, retried or redirected.
    "crawler.middlewares.warc.WarcMiddleware": 950,
}

# --- Limits ---------------------------------------------------------------------------
DOWNLOAD_TIMEOUT = 60
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024  # an article page is ~30 KB; anything this big is not one
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024
REDIRECT_MAX_TIMES = 5
# The most articles one category of the site can hold (the whole site's article ids run
# to some 320,000). A list page whose pager (共 N 页 M 条) claims more, or whose N does
# not agree with its M and the articles it lists, is not believed: its category is read
# by its 下一页 links, one page at a time, for at most this many pages.
CATEGORY_MAX_ARTICLES = 500_000
# In a full crawl, the list pages of a category queued ahead of those parsed: each page
# parsed queues the one this many after it, so the queue never holds more.
LIST_PAGES_AHEAD = 4
# Sitemap indexes followed below the sitemaps the site names (sitemap.xml, robots.txt's):
# an index nested deeper is not read. The sitemap protocol allows one level.
SITEMAP_MAX_DEPTH = 3
# The most sitemaps one crawl reads (the protocol's 50,000 URLs each).
SITEMAP_MAX_COUNT = 2000
COOKIES_ENABLED = False
# No listening ports: a scheduled crawl needs no telnet console or remote-control server.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

# --- Runs -------------------------------------------------------------------------------
# Every crawl is recorded in the database's runs table; crawls of the site take the
# archive's run lock, so two never overlap on one database (RUN_LOCK=False lifts it).
EXTENSIONS = {
    "crawler.extensions.runs.RunRecorder": 500,
    "crawler.extensions.readers.ArticleReaders": 510,
    "crawler.extensions.progress.Progress": 520,
    "crawler.extensions.shutdown.ShutdownTimeout": 510,
}
RUN_LOCK = True
# Seconds a crawl may take to end after SIGINT or SIGTERM asked it to stop. Scrapy's
# graceful close waits for every request in flight and every component; past this, the
# crawl is stopped anyway (finish reason shutdown_timeout, exit status 1).
SHUTDOWN_TIMEOUT = 30.0

# --- Distributed crawling ---------------------------------------------------------------
# With REDIS_URL (here, on the command line or in the environment), `scrapy crawl ylwt22`
# is one worker of a crawl shared through Redis: any number of workers, on any machines,
# share its request queue and seen-filter and write to one archive (crawler/distributed).
# Unset, the crawl runs in this process alone.
REDIS_URL = os.environ.get("REDIS_URL") or None
# The crawl the workers share; its keys are ylwt22:<CRAWL_ID>:*. A new id starts a new crawl.
CRAWL_ID = "ylwt22"
# A worker stops once the crawl has been quiet this many seconds: nothing queued, no
# worker busy, nothing left to queue again.
DISTRIBUTED_IDLE_TIMEOUT = 30.0
# Seconds between a worker's heartbeats; a worker silent for 5 of them is taken for dead.
DISTRIBUTED_HEARTBEAT = 2.0
# Times a request a dead worker held is queued again before it is given up (an ERROR).
DISTRIBUTED_MAX_REQUEUES = 3
# Seconds a finished crawl's keys stay in Redis.
DISTRIBUTED_KEYS_TTL = 86400

# --- Items and storage ----------------------------------------------------------------
# An article's pipelines, in order: clean → provenance → dedup where its pages are read
# (EXTRACT_PIPELINES, below), then validate → copyright → store in the crawl's process.
ITEM_PIPELINES = {
    "pipelines.validate.ValidateArticlePipeline": 200,
    "pipelines.copyright.CopyrightPipeline": 300,
    "pipelines.store.DatabasePipeline": 900,
}
# Any SQLAlchemy URL; the environment's DATABASE_URL is the default, then a SQLite file.
DATABASE_URL = os.environ.get("DATABASE_URL") or "sqlite:///data/archive.sqlite3"
DATABASE_BATCH_SIZE = 100
DATABASE_FLUSH_INTERVAL = 5.0
DATABASE_WRITE_RETRIES = 3
DATABASE_RETRY_BACKOFF = 1.0
DATABASE_SPILL_DIR = "data/unsaved"

# --- Reading articles -------------------------------------------------------------------
# Article pages are read into items by a pool of EXTRACT_WORKERS processes (0: in the
# crawl's own process), each page at most EXTRACT_TIMEOUT seconds; at most EXTRACT_QUEUE
# pages wait for a reader, and past that Scrapy stops downloading until there is room.
EXTRACT_WORKERS = os.cpu_count() or 1
EXTRACT_QUEUE = 16
EXTRACT_TIMEOUT = 60.0
# The item pipelines that run where pages are read, in order, on each finished item:
# pure work that costs CPU. Each is built with no arguments.
EXTRACT_PIPELINES = [
    "pipelines.clean.CleanTextPipeline",
    "pipelines.provenance.ProvenancePipeline",
    "pipelines.dedup.DedupPipeline",
]

# --- Raw web archive ------------------------------------------------------------------
# Every response fetched, with its request, in WARC/1.0 files (one gzip member per record)
# named {WARC_PREFIX}-{UTC time}-{serial}-{host}.warc.gz; a new file is started once the
# current one reaches WARC_MAX_SIZE bytes. Off by default in offline mode.
WARC_ENABLED = True
WARC_DIR = "data/warc"
WARC_PREFIX = "ylwt22"
WARC_MAX_SIZE = 100 * 1024 * 1024

# --- The console ------------------------------------------------------------------------
# Warnings and errors on the console, with a live progress line and the report at the
# end; Scrapy's full log (RUN_LOG_LEVEL) is kept in a file per run under RUN_LOG_DIR
# (empty: none), which the report names. -L INFO or LOG_FILE bring the full log back.
LOG_LEVEL = "WARNING"
RUN_LOG_DIR = "data/logs"
RUN_LOG_LEVEL = "INFO"
# The live line: in place on a terminal; elsewhere (cron, systemd, a pipe) a plain line
# every PROGRESS_INTERVAL seconds.
PROGRESS_ENABLED = True
PROGRESS_INTERVAL = 60.0
FEED_EXPORT_ENCODING = "utf-8"
