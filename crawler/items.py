"""The item the spider yields and the pipelines clean, check and store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class ArticleItem:
    url: str
    """Canonical article URL: desktop host, page 1, no query or fragment."""
    aid: int | None = None
    """The site's numeric article id, from the URL (DedeCMS calls it aid)."""
    title: str = ""
    category: str = ""
    published_at: datetime | None = None
    """Timezone-aware, Beijing time, as the page gives it."""
    source: str = ""
    """来源; empty when the page has none."""
    author: str = ""
    tags: list[str] = field(default_factory=list)
    body: str = ""
    """The document's text: its title line, then one line per paragraph or point."""
    copyright_notice: str = ""
    """The 版权声明 lines."""
    rights_holder: str = ""
    """Whom the notice names as the holder of the copyright."""
    site_name: str = ""
    site_copyright: str = ""
    icp: str = ""
    fetched_at: datetime | None = None
    """UTC: when the bytes behind this item were fetched."""
    content_hash: str = ""
    extractor_version: str = ""
    page_urls: list[str] = field(default_factory=list)
    """Every page the article was assembled from, in order."""
    template: str = ""
    """Which rendering the fields were read from: "desktop", "mobile" or "text"."""
    provenance: list[dict[str, Any]] = field(default_factory=list)
    """Where each page's bytes came from (a WARC record, a mirror file, a text page)."""
    signature: bytes | None = None
    """MinHash of the body's text, to find reprints (None for a text too short)."""
    etag: str | None = None
    last_modified: str | None = None
    """The first page's validators, for a conditional request when fetched again."""
    problems: list[str] = field(default_factory=list)
    """Why the item must not be stored ("reason: detail"); never stored itself."""
    removed: dict[str, int] = field(default_factory=dict)
    """What extraction left out of the body, by kind (hidden text, ads, the site's
    download and share links, …): counted in the crawl stats, never stored itself."""
