"""Every CSS selector the extraction uses, in one place.

The live site's class names may drift from what is written here. When they do, this is
the only file to change; extraction reports what it could not find instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ArticleSelectors:
    container: str
    """Present on every article page of this template: tells an article from anything else."""
    title: str
    breadcrumb_links: str
    info: str
    content: str
    pager: str
    tags: str
    copyright_block: str
    copyright_statement: str
    declared_url: str
    footer: str
    footer_site_link: str


# The desktop template (www host).
DESKTOP = ArticleSelectors(
    container="div.article",
    title="div.article h1.title",
    breadcrumb_links="div.place a",
    info="div.article div.info",
    content="div.article div.content",
    pager="div.dede_pages ul.pagelist",
    tags="div.tags a",
    copyright_block="div.copyright",
    copyright_statement="div.copyright p.statement",
    declared_url="div.copyright a[href]",
    footer="div.footer",
    footer_site_link="div.footer a[href='/']",
)

# Inside the body: elements that are the site's furniture, never the document's text.
CONTENT_NOISE = (
    "script, style, noscript, iframe, ins, object, embed, form, "
    "div[class^='ad_'], div[class*=' ad_'], div.dede_pages, ul.pagelist"
)

# List pages: one <li> per article, then the DedeCMS pager.
LIST_ITEM_LINKS = "div.list ul li a[href]"
LIST_PAGER_LINKS = "div.pages ul.pagelist a[href]"
LIST_PAGE_INFO = "div.pages span.pageinfo"

# The home page's navigation bar links to every category.
NAV_LINKS = "div.nav a[href]"
