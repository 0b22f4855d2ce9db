"""Reading an article page into an item, over plain data: the work that runs in the
extraction pool's processes (crawler/extensions/readers.py), or in the crawl's own
process when ``EXTRACT_WORKERS`` is 0.

A :class:`PageJob` is what a reader needs, all of it picklable: the page's URL, bytes
and headers, and the article's pages read so far with where and when each was fetched.
The answer, a :class:`PageRead`, is either the next page to fetch (a multi-page article
is one item, its pages fetched in order) or the finished item, assembled from every page
and sent through ``EXTRACT_PIPELINES``: the item pipelines whose work is pure and costs
CPU (cleaning the text, its hash, its signature), so that the crawl's own process does
only Scrapy's work and the writes.
"""

from __future__ import annotations

import importlib
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from crawler.items import ArticleItem
from crawler.pages.article import ArticlePage, assemble_article, parse_page
from crawler.site import Site


class ItemStep(Protocol):
    def process_item(self, item: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Fetch:
    """Where and when one page's bytes were fetched, as the response says."""

    fetched_at: datetime | None = None
    provenance: Mapping[str, Any] | None = None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class PartialArticle:
    """The pages of one article read so far, with where and when each was fetched."""

    pages: tuple[ArticlePage, ...] = ()
    fetched_at: datetime | None = None
    """When its first page was fetched: the article's fetch time."""
    provenance: tuple[Mapping[str, Any], ...] = ()
    etag: str | None = None
    last_modified: str | None = None
    """The first page's validators, for a conditional request next time."""

    def add(self, page: ArticlePage, fetch: Fetch) -> PartialArticle:
        provenance = (*self.provenance, fetch.provenance) if fetch.provenance else self.provenance
        if self.pages:
            return replace(self, pages=(*self.pages, page), provenance=provenance)
        return PartialArticle(
            pages=(page,),
            fetched_at=fetch.fetched_at,
            provenance=provenance,
            etag=fetch.etag,
            last_modified=fetch.last_modified,
        )

    def assemble(self, site: Site, missing_pages: Sequence[str] = ()) -> ArticleItem:
        item = assemble_article(
            self.pages, fetched_at=self.fetched_at, missing_pages=missing_pages, site=site
        )
        item.provenance = [dict(source) for source in self.provenance]
        item.etag = self.etag
        item.last_modified = self.last_modified
        return item


@dataclass(frozen=True, slots=True)
class PageJob:
    url: str
    body: bytes
    headers: Mapping[str, str]
    fetch: Fetch
    partial: PartialArticle = PartialArticle()


@dataclass(frozen=True, slots=True)
class PageRead:
    """The next page of the article to fetch, with what was read so far; or the item."""

    item: ArticleItem | None = None
    next_url: str | None = None
    partial: PartialArticle = field(default_factory=PartialArticle)


@dataclass(frozen=True, slots=True)
class ReaderConfig:
    site_root: str
    pipelines: tuple[str, ...] = ()
    """Import paths of the item pipelines to run on a finished item, in order. Each is
    built with no arguments and has a synchronous, pure ``process_item``."""


class Reader:
    def __init__(self, config: ReaderConfig) -> None:
        self.site = Site.from_root(config.site_root)
        self.steps: list[ItemStep] = [_load(path)() for path in config.pipelines]

    def read(self, job: PageJob) -> PageRead:
        page = parse_page(job.url, job.body, job.headers, site=self.site)
        partial = job.partial.add(page, job.fetch)
        first = partial.pages[0]
        if page.is_article and first.canonical_url and len(partial.pages) < first.page_count:
            next_url = self.site.article_page_url(first.canonical_url, len(partial.pages) + 1)
            return PageRead(next_url=next_url, partial=partial)
        return PageRead(item=self.finish(partial.assemble(self.site)))

    def finish(self, item: ArticleItem) -> ArticleItem:
        """The item through EXTRACT_PIPELINES."""
        for step in self.steps:
            item = step.process_item(item)
        return item


def _load(path: str) -> Any:
    # Not scrapy.utils.misc.load_object: a worker imports no more of Scrapy than it needs.
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


# --- in a worker process of the pool ------------------------------------------------------

_reader: Reader | None = None


def start_worker(config: ReaderConfig) -> None:
    """Each worker's start: its reader, built once. Ctrl-C at a terminal reaches every
    process of the group; the crawl's own process decides how to stop, and stops the
    workers itself."""
    global _reader  # noqa: PLW0603  (one reader per worker process, by design)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _reader = Reader(config)


def read_in_worker(job: PageJob) -> PageRead:
    assert _reader is not None, "start_worker() was not run in this process"
    return _reader.read(job)
