"""Every CSS selector the extraction uses, in one place.

The live site's class names may drift from what is written here. When they do, this is
the only file to change; extraction reports what it could not find instead of guessing.
"""

from __future__ import annotations

import re
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

# --- Inside the body -------------------------------------------------------------------
# What in the content block is not the document, decided by the markup alone (never by
# the words): crawler/pages/blocks.py applies these while it renders the body, and
# counts what each rule removed (the crawl stats' extract/removed/<kind>).

# Elements a reader never sees the text of, by tag, with the kind they are counted as.
# Comments (Word's conditional ones included) are left out too, counted as "comment".
UNSEEN_TAGS: dict[str, str] = {
    "script": "script",
    "style": "style",
    "noscript": "noscript",  # shown only with scripts off
    "template": "template",
    # A pasted document brings its <head> along; browsers never render it.
    **dict.fromkeys(("head", "title", "meta", "link", "base", "xml"), "metadata"),
    # Ad slots (AdSense's <ins class="adsbygoogle">) and embedded frames and players,
    # whose fallback text shows only where they cannot play.
    "ins": "ad",
    **dict.fromkeys(
        ("iframe", "frame", "object", "embed", "applet", "video", "audio", "canvas", "svg"),
        "embed",
    ),
    # Search boxes, comment and vote forms.
    **dict.fromkeys(("form", "input", "button", "select", "textarea"), "form"),
}

# Containers of the site's furniture, by a token of their class or id: ad slots (the
# site's own are div.ad_top and div.ad_content), share bars (Baidu's bdsharebuttonbox,
# JiaThis, bShare), download, "save as Word" and print boxes, and pagers. Whole tokens
# are matched, so "header", "read-more" or "MsoNormal" never count as an ad.
FURNITURE_CLASS = re.compile(
    r"(?P<ad>(?:ad|ads|adv|advert|advertisement|adsbygoogle|adsense|guanggao|gg)(?:[-_][-\w]*|\d+)?"
    r"|[-\w]+[-_](?:ad|ads|adv|gg)\d*)"
    r"|(?P<chrome>(?:bd|b)?share[-\w]*|jiathis[-\w]*|fenxiang[-\w]*|download[-\w]*"
    r"|down(?:file|word|doc)?|xiazai[-\w]*|wordxz|dayin[-\w]*|print[-\w]*)"
    r"|(?P<pager>dede_pages|pagelist|pages|pagination|pager|pagebar|page-?nav)",
    re.IGNORECASE,
)

# Links that are the site's actions, not the document's text: the site's own scripts
# (DedeCMS's /plus/download.php, view.php?…&print, recommend.php, stow.php, …). Such a
# link is left out with the line it sits on, which is its prompt ("点击下载：", "本文
# Word版"). javascript: links and onclick-only links (print, add to favourites) are
# actions too, and so are links to another site that hand it this page's address (share
# buttons). DedeCMS's keyword links may point at its search script: those are a word of
# a sentence, and stay.
SITE_SCRIPTS = "/plus/"
KEYWORD_LINK_SCRIPTS = ("/plus/search.php",)

# Inline styles that hide an element: property -> the values that hide it. Values are
# matched whole, lower-cased, without spaces at the ends or !important.
_ZERO = r"[-+]?(?:0+\.?0*|\.0+)(?:[a-z]+|%)?"
_FAR_OFF = r"-\d{4,}(?:\.\d*)?(?:px|pt)?|-\d{3,}(?:\.\d*)?(?:em|rem|vw|vh|%)"
HIDING_STYLES: dict[str, re.Pattern[str]] = {
    "display": re.compile(r"none"),
    "visibility": re.compile(r"hidden|collapse"),
    "opacity": re.compile(_ZERO),
    # Zero, or a size below 2px no one can read.
    "font-size": re.compile(_ZERO + r"|(?:[01](?:\.\d*)?|\.\d+)(?:px|pt)"),
    "color": re.compile(r"transparent|(?:rgba|hsla)\([^)]*,\s*(?:0+\.?0*|\.0+)%?\s*\)"),
    "clip": re.compile(r"rect\((?:\s*0(?:px)?\s*,?){4}\)"),
    "transform": re.compile(r"scale\(\s*0(?:\.0*)?\s*(?:,\s*0(?:\.0*)?\s*)?\)"),
    # Pushed far out of the page (the -9999px trick).
    **dict.fromkeys(
        ("text-indent", "left", "top", "right", "margin-left", "margin-top"), re.compile(_FAR_OFF)
    ),
}
# A box of no height or no width that cuts off what overflows it.
CLIPPING_OVERFLOW = re.compile(r"hidden|clip")
ZERO_SIZE = re.compile(_ZERO)
BOX_SIZES = ("height", "max-height", "width", "max-width")

# List pages: one <li> per article, then the DedeCMS pager.
LIST_ITEM_LINKS = "div.list ul li a[href]"
LIST_PAGER_LINKS = "div.pages ul.pagelist a[href]"
LIST_PAGE_INFO = "div.pages span.pageinfo"

# The home page's navigation bar links to every category.
NAV_LINKS = "div.nav a[href]"
