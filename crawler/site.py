"""The archived site's URL scheme: which URLs are articles, list pages, and what an
article's canonical URL is.

Everything that knows the DedeCMS URL layout lives here, so extraction, the spider,
replay and storage keys all agree on what "the same article" means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urljoin, urlsplit, urlunsplit

from w3lib.url import canonicalize_url, safe_url_string

DEFAULT_SITE_ROOT = "http://www.ylwt22.com/"

# /<dir>/<yyyy>/<mmdd>/<id>.html, and <id>_<N>.html for page N of a multi-page article.
# The numbers are bounded: a link with thousands of digits is no article of the site, and
# int() refuses to read it (ValueError past 4,300 digits). An id too long for the site's
# own column but within this bound is still read, so that the article is dropped with
# its reason (invalid_aid) rather than passed over without a word.
_ARTICLE_PATH = re.compile(
    r"^(?P<dir>/(?:[\w-]+/)+)(?P<year>\d{4})/(?P<mmdd>\d{4})/(?P<id>\d{1,40})"
    r"(?:_(?P<page>\d{1,6}))?\.html$"
)
# /<dir>/list_<typeid>_<N>.html
_LIST_PATH = re.compile(r"^(?P<dir>/(?:[\w-]+/)+)list_(?P<typeid>\d+)_(?P<page>\d+)\.html$")
_CATEGORY_PATH = re.compile(r"^/(?:[\w-]+/)+(?:index\.html?)?$")


@dataclass(frozen=True, slots=True)
class ArticleRef:
    """An article URL taken apart."""

    canonical_url: str
    article_id: int
    page: int


@dataclass(frozen=True)
class Site:
    """One site in this layout: the desktop host and, if any, its mobile twin."""

    root: str

    @classmethod
    def from_root(cls, root: str | None) -> Site:
        root = (root or DEFAULT_SITE_ROOT).strip()
        parts = urlsplit(root)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"SITE_ROOT must be an http(s) URL, got {root!r}")
        return cls(urlunsplit((parts.scheme, parts.netloc.lower(), "/", "", "")))

    @cached_property
    def _parts(self) -> tuple[str, str]:
        parts = urlsplit(self.root)
        return parts.scheme, parts.netloc

    @property
    def scheme(self) -> str:
        return self._parts[0]

    @property
    def netloc(self) -> str:
        """The desktop host, with its port if the root names one."""
        return self._parts[1]

    @cached_property
    def host(self) -> str:
        return urlsplit(self.root).hostname or ""

    @cached_property
    def mobile_host(self) -> str | None:
        """m.<domain> for a www.<domain> root; sites without a www host have no twin."""
        if self.host.startswith("www."):
            return "m." + self.host.removeprefix("www.")
        return None

    @cached_property
    def hosts(self) -> tuple[str, ...]:
        return (self.host, self.mobile_host) if self.mobile_host else (self.host,)

    @property
    def sitemap_url(self) -> str:
        return urljoin(self.root, "/sitemap.xml")

    @property
    def robots_url(self) -> str:
        return urljoin(self.root, "/robots.txt")

    def is_site_url(self, url: str) -> bool:
        return (urlsplit(url).hostname or "") in self.hosts

    def is_mobile_url(self, url: str) -> bool:
        return self.mobile_host is not None and urlsplit(url).hostname == self.mobile_host

    def _on_desktop(self, url: str) -> tuple[str, str] | None:
        """(path, query) of a site URL, or None for another site's URL."""
        if not self.is_site_url(url):
            return None
        parts = urlsplit(safe_url_string(url.strip()))
        return parts.path or "/", parts.query

    def article_ref(self, url: str) -> ArticleRef | None:
        """The article behind ``url`` (any host of the site, any page, http or https,
        with or without query and fragment), or None when it is not an article URL."""
        located = self._on_desktop(url)
        if located is None:
            return None
        match = _ARTICLE_PATH.match(located[0])
        if match is None:
            return None
        path = f"{match['dir']}{match['year']}/{match['mmdd']}/{match['id']}.html"
        return ArticleRef(
            canonical_url=urlunsplit((self.scheme, self.netloc, path, "", "")),
            article_id=int(match["id"]),
            page=int(match["page"] or 1),
        )

    def canonical_article_url(self, url: str) -> str | None:
        ref = self.article_ref(url)
        return ref.canonical_url if ref else None

    def article_page_url(self, canonical_url: str, page: int) -> str:
        """URL of page ``page`` of the article whose first page is ``canonical_url``."""
        if page == 1:
            return canonical_url
        stem = canonical_url.removesuffix(".html")
        return f"{stem}_{page}.html"

    def canonical_list_url(self, url: str) -> str | None:
        """A category list page on the desktop host, with page 1 folded onto the
        category's own URL (DedeCMS serves the same page under both)."""
        located = self._on_desktop(url)
        if located is None:
            return None
        path, query = located
        listing = _LIST_PATH.match(path)
        if listing is not None:
            if int(listing["page"]) == 1:
                path = listing["dir"]
        elif _CATEGORY_PATH.match(path) is None:
            return None
        else:
            path = re.sub(r"index\.html?$", "", path)
        return canonicalize_url(urlunsplit((self.scheme, self.netloc, path, query, "")))

    @staticmethod
    def list_page_url(list_url: str, typeid: int, page: int) -> str:
        return urljoin(list_url, f"list_{typeid}_{page}.html")

    @staticmethod
    def list_page_number(url: str) -> int:
        """N of list_<typeid>_<N>.html; a category's own page is page 1."""
        match = _LIST_PATH.match(urlsplit(url).path)
        return int(match["page"]) if match else 1

    def category_url(self, list_url: str) -> str:
        """The category a list page belongs to, as its page 1 URL."""
        path = urlsplit(list_url).path
        match = _LIST_PATH.match(path)
        folder: str = match["dir"] if match else path.rsplit("/", 1)[0] + "/"
        return urlunsplit((self.scheme, self.netloc, folder, "", ""))

    @staticmethod
    def list_typeid(url: str) -> int | None:
        match = _LIST_PATH.match(urlsplit(url).path)
        return int(match["typeid"]) if match else None


DEFAULT_SITE = Site.from_root(DEFAULT_SITE_ROOT)
