"""Every CSS selector the extraction uses, in one place.

The live site's class names may drift from what is written here. When they do, this is
the only file to change; extraction reports what it could not find instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ArticleSelectors:
    name: str
    """The template's name, stored with each article read from it."""
    container: str
    """Present on every article page of this template: tells an article from anything else."""
    title: str
    category_links: str
    """The last of these that is not the home page names the category."""
    info: str
    """Labelled parts (发布时间:…, 来源:…): "|"-separated inside one element, or one per element."""
    content: str
    pager: str
    tags: str | None
    """None: the template shows no tags."""
    copyright_statement: str
    declared_url: str
    """An element whose href is the URL the page gives for itself."""
    footer: str
    site_name: str


# The desktop template (www host).
DESKTOP = ArticleSelectors(
    name="desktop",
    container="div.article",
    title="div.article h1.title",
    category_links="div.place a",
    info="div.article div.info",
    content="div.article div.content",
    pager="div.dede_pages ul.pagelist",
    tags="div.tags a",
    copyright_statement="div.copyright p.statement",
    declared_url="div.copyright a[href]",
    footer="div.footer",
    site_name="div.footer a[href='/']",
)

# The mobile template (m. host). It shows less than the desktop one: the date without a
# time of day, no tags, no ICP number, and only line 2 of the 版权声明, in one box with
# the 本文链接 line. DedeCMS writes the pager's <li> items itself; the snapshot has no
# multi-page mobile article, so only the list is matched, not its wrapper.
MOBILE = ArticleSelectors(
    name="mobile",
    container="article.m-article",
    title="article.m-article h1",
    category_links="header.m-top a.m-back",
    info="article.m-article div.m-info span",
    content="article.m-article div.m-content",
    pager="article.m-article ul.pagelist",
    tags=None,
    copyright_statement="article.m-article div.m-copyright",
    declared_url="link[rel=canonical]",
    footer="footer.m-foot",
    site_name="header.m-top a.m-logo",
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
