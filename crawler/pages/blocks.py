"""Render an HTML subtree as the lines a reader sees: one per paragraph, <br>-joined
point, heading, list item or table row.

:func:`render_body` renders an article's content block as a reader sees it, leaving out
what a reader never sees and the site's furniture (the rules are in
``crawler/pages/selectors.py``) and counting what it left out; :func:`render_blocks`
renders any other part of a page as it is. Both walk the tree without recursion, so a
page nested thousands of elements deep is read like any other, and they build each line
from its parts in one join, so the cost stays linear in the size of the page.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit

from lxml import etree
from lxml.html import HtmlElement

from crawler.pages import selectors as rules

BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "caption", "center", "dd", "details",
        "dir", "div", "dl", "dt", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4",
        "h5", "h6", "header", "hr", "li", "main", "menu", "nav", "ol", "p", "pre", "section",
        "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# Bold text: the copy of the document's title on page 1 is bold. Headings are bold too.
EMPHASIS_TAGS = frozenset({"strong", "b"}) | HEADING_TAGS
_LIST_TAGS = frozenset({"ol", "ul", "menu", "dir"})
_CELL_TAGS = frozenset({"td", "th"})

# HTML collapses runs of ASCII white space; &nbsp; and U+3000 inside a line are content.
_COLLAPSIBLE = re.compile(r"[ \t\n\r\f]+")
# In a body line, a run of spaces and &nbsp; is one gap as a reader sees it: editors
# space with &nbsp; (Word's list numbers are followed by several). U+3000 is typed.
_BODY_SPACES = re.compile(r"[ \t\n\r\f\xa0]+")
# A line break in the source between two CJK characters is no space at all (CSS Text 3's
# segment break rule): Word and other editors wrap long lines of Chinese in their HTML.
_WIDE = (
    "\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uf900-\ufaff"
    "\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\U00020000-\U0003fffd"
)
_WIDE_SEGMENT_BREAK = re.compile(f"(?<=[{_WIDE}])[ \\t]*[\\r\\n][ \\t\\r\\n]*(?=[{_WIDE}])")
_ALIGN_STYLE = re.compile(r"text-align\s*:\s*(\w+)", re.IGNORECASE)
_TEXT_INDENT = re.compile(r"text-indent\s*:\s*[+]?0*[1-9.]", re.IGNORECASE)
_NO_LIST_MARKER = re.compile(r"list-style(?:-type)?\s*:\s*none", re.IGNORECASE)
# Only a style that says one of these can hide its element: the rest are not parsed.
_MAY_HIDE = re.compile(
    r"none|hidden|collapse|clip|opacity|font-size\s*:\s*[-+.01]|transparent|rgba|hsla|scale|-\d{3}",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph-like element's text, split at <br>."""

    lines: tuple[str, ...]
    indented: bool
    """Its text starts with white space (the site indents body paragraphs with &nbsp;),
    or its style indents it."""
    centred: bool
    emphasised: bool
    """All of its text is bold, as the copy of a document's title is."""

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True, slots=True)
class RenderedBody:
    blocks: list[Block]
    removed: dict[str, int] = field(default_factory=dict)
    """How many elements of each kind were left out (see selectors.UNSEEN_TAGS,
    FURNITURE_CLASS, SITE_SCRIPTS, HIDING_STYLES), and comments."""


def clean_line(line: str) -> str:
    # str.strip() also strips &nbsp; (U+00A0) and the ideographic space (U+3000).
    return _COLLAPSIBLE.sub(" ", line).strip()


def clean_body_line(line: str) -> str:
    if "\n" in line or "\r" in line:
        line = _WIDE_SEGMENT_BREAK.sub("", line)
    return _BODY_SPACES.sub(" ", line).strip()


def style_hides(style: str) -> bool:
    """Whether an inline style hides its element (selectors.HIDING_STYLES)."""
    if not _MAY_HIDE.search(style):
        return False
    declared: dict[str, str] = {}
    for declaration in style.split(";"):
        name, _, value = declaration.partition(":")
        declared[name.strip().lower()] = value.lower().replace("!important", "").strip()
    for name, value in declared.items():
        hiding = rules.HIDING_STYLES.get(name)
        if hiding is not None and hiding.fullmatch(value):
            return True
    if rules.CLIPPING_OVERFLOW.fullmatch(declared.get("overflow", "")):
        return any(rules.ZERO_SIZE.fullmatch(declared.get(name, "x")) for name in rules.BOX_SIZES)
    return False


_BRACES = re.compile(r"[{}]")
# One class or id, maybe after a tag name; a pseudo-class (:hover) or pseudo-element
# (::before) hides only a state or a part of the element, so it does not count.
_SIMPLE_SELECTOR = re.compile(r"[a-z0-9]*([.#][-\w]+)", re.IGNORECASE)


def hidden_by_stylesheets(root: HtmlElement) -> frozenset[str]:
    """The classes (".x") and ids ("#x") that a <style> element of the page hides with a
    rule of selectors.HIDING_STYLES: the watermark trick of a hidden class. Only rules
    outside @media and other at-rules are read (a print-only rule hides nothing on
    screen), and only selectors whose last part is one class or id (".content .wm" is
    taken as ".wm": inside the content block, that is what it hides)."""
    found: set[str] = set()
    for sheet in root.iter("style"):
        text = _without_css_comments(sheet.text or "")
        depth, start, prelude = 0, 0, ""
        for brace in _BRACES.finditer(text):
            if brace[0] == "{":
                if depth == 0:
                    prelude = text[start : brace.start()]
                depth += 1
            else:
                rule = depth == 1 and not prelude.lstrip().startswith("@")
                if rule and style_hides(text[start : brace.start()]):
                    found.update(_last_class_or_id(prelude))
                depth = max(depth - 1, 0)
            start = brace.end()
    return frozenset(found)


def _without_css_comments(text: str) -> str:
    if "/*" not in text:
        return text
    head, *rest = text.split("/*")
    return head + "".join(part.partition("*/")[2] for part in rest)


def _last_class_or_id(selectors: str) -> Iterable[str]:
    for selector in selectors.split(","):
        compounds = selector.split()
        if compounds and (match := _SIMPLE_SELECTOR.fullmatch(compounds[-1])):
            yield match[1]


# What a start tag pushes, to undo at its end tag.
_SKIPPED, _BLOCK, _BOLD, _LIST, _ROW, _CELL, _IN_CELL, _PRE = (1 << n for n in range(8))


class _Renderer:
    def __init__(
        self,
        *,
        body: bool,
        page_url: str = "",
        site_hosts: Collection[str] = (),
        hidden: Collection[str] = (),
    ) -> None:
        self.body = body
        self.page_url = page_url
        self.site_hosts = tuple(site_hosts)
        self.hidden = hidden
        self.clean = clean_body_line if body else clean_line
        self.blocks: list[Block] = []
        self.removed: dict[str, int] = {}
        # The block being read: its lines, each a list of text parts.
        self.lines: list[list[str]] = [[]]
        self.furniture_lines: set[int] = set()
        self.has_bold = self.has_plain = False
        self.bold = 0
        self.pre = 0
        # (centred, indented by its style) of each open block; the innermost owns the text.
        self.owners: list[tuple[bool, bool]] = []
        # Each open list: the next item's number, and its marker type ("" for none).
        self.lists: list[list[int | str]] = []
        self.marker = ""
        # A table row of several cells is one line: its cells so far, and the cell's parts.
        self.row: list[str] | None = None
        self.row_is_furniture = False
        self.cell: list[str] | None = None

    # -- text --------------------------------------------------------------------------

    def text(self, text: str | None) -> None:
        if not text:
            return
        if self.cell is not None:
            self.cell.append(text)
        elif self.row is not None:
            if text.strip():  # text a broken table leaves between its cells
                self.row.append(self.clean(text))
        elif self.pre and "\n" in text:
            first, *others = text.split("\n")
            self.text(first)
            for part in others:
                self.lines.append([])
                self.text(part)
        else:
            if self.marker and text.strip():
                text, self.marker = self.marker + text, ""
            self.lines[-1].append(text)
            if not (self.has_bold and self.has_plain) and text.strip():
                if self.bold:
                    self.has_bold = True
                else:
                    self.has_plain = True

    def line_break(self) -> None:
        if self.cell is not None:
            self.cell.append(" ")
        elif self.row is None:
            self.lines.append([])

    def flush(self) -> None:
        """The text read so far is a block of its own."""
        lines = self.lines
        if len(lines) > 1 or lines[0]:
            kept = [
                "".join(parts)
                for number, parts in enumerate(lines)
                if number not in self.furniture_lines
            ]
            cleaned = tuple(filter(None, map(self.clean, kept)))
            if cleaned:
                centred, indented_by_style = self.owners[-1] if self.owners else (False, False)
                raw = "".join(kept).lstrip("\n\r\t ")
                self.blocks.append(
                    Block(
                        lines=cleaned,
                        indented=indented_by_style or raw[:1].isspace(),
                        centred=centred,
                        emphasised=self.has_bold and not self.has_plain,
                    )
                )
            self.lines = [[]]
        if self.furniture_lines:
            self.furniture_lines = set()
        self.has_bold = self.has_plain = False

    # -- what is left out --------------------------------------------------------------

    def left_out(self, el: HtmlElement, tag: str) -> str | None:
        """The kind of furniture or unseen text ``el`` is, or None for the document's."""
        kind = rules.UNSEEN_TAGS.get(tag)
        if kind is not None:
            return kind
        attributes = el.attrib
        if not attributes:
            return None
        if self._hides(attributes):
            return "hidden"
        return self._furniture(attributes, tag)

    def _hides(self, attributes: etree._Attrib) -> bool:
        if "hidden" in attributes:
            return True
        style = attributes.get("style")
        if style and style_hides(style):
            return True
        if not self.hidden:
            return False
        classes = (attributes.get("class") or "").split()
        ident = (attributes.get("id") or "").strip()
        return any(f".{name}" in self.hidden for name in classes) or f"#{ident}" in self.hidden

    def _furniture(self, attributes: etree._Attrib, tag: str) -> str | None:
        tokens = (attributes.get("class") or "").split()
        if ident := (attributes.get("id") or "").strip():
            tokens.append(ident)
        for token in tokens:
            if furniture := rules.FURNITURE_CLASS.fullmatch(token):
                return furniture.lastgroup
        if tag == "a" and self._is_action_link(attributes):
            return "chrome"
        return None

    def _is_action_link(self, attributes: etree._Attrib) -> bool:
        href = (attributes.get("href") or "").strip()
        if href.lower().startswith("javascript:"):
            return True
        if href in {"", "#"}:
            return "onclick" in attributes
        try:
            url = urlsplit(urljoin(self.page_url, href) if self.page_url else href)
            host = (url.hostname or "").lower()
        except ValueError:  # not a URL (http://[x): a link to nowhere, not an action
            return False
        if host and host not in self.site_hosts:
            # A share button: another site, handed this page's address.
            query = unquote(url.query).lower()
            return any(site_host in query for site_host in self.site_hosts)
        path = url.path.lower()
        return path.startswith(rules.SITE_SCRIPTS) and not path.startswith(
            rules.KEYWORD_LINK_SCRIPTS
        )

    def leave_out(self, kind: str, tag: str) -> None:
        self.removed[kind] = self.removed.get(kind, 0) + 1
        if kind == "chrome" and tag == "a":
            # A site action's link goes with the line it sits on: its prompt.
            if self.cell is not None or self.row is not None:
                self.row_is_furniture = True
            else:
                self.furniture_lines.add(len(self.lines) - 1)

    # -- elements ----------------------------------------------------------------------

    def start(self, el: HtmlElement, tag: str) -> int:
        """Open ``el``; what it opened, for :meth:`end`."""
        opened = 0
        if tag == "br":
            self.line_break()
            return 0
        if tag in BLOCK_TAGS:
            if self.cell is not None:
                self.cell.append(" ")
                opened |= _IN_CELL
            elif tag == "tr" and sum(1 for child in el if child.tag in _CELL_TAGS) > 1:
                self.flush()
                self.row, self.row_is_furniture = [], False
                opened |= _ROW
            elif tag in _CELL_TAGS and self.row is not None:
                self.cell = []
                opened |= _CELL
            else:
                self.flush()  # the text so far belongs to the enclosing block
                self.owners.append(self._owner(el))
                opened |= _BLOCK
                if tag == "li":
                    self.marker = self._list_marker(el)
                elif tag in _LIST_TAGS:
                    self.lists.append(self._list(el, tag))
                    opened |= _LIST
        if tag in EMPHASIS_TAGS:
            self.bold += 1
            opened |= _BOLD
        if tag == "pre":
            self.pre += 1
            opened |= _PRE
        self.text(el.text)
        return opened

    def end(self, opened: int) -> None:
        if opened & _BOLD:
            self.bold -= 1
        if opened & _PRE:
            self.pre -= 1
        if opened & _LIST:
            self.lists.pop()
        if opened & _IN_CELL and self.cell is not None:
            self.cell.append(" ")
        if opened & _CELL and self.cell is not None and self.row is not None:
            self.row.append(self.clean("".join(self.cell)))
            self.cell = None
        if opened & _ROW and self.row is not None:
            if any(self.row) and not self.row_is_furniture:
                # Cells in order, split by a tab; an empty cell keeps its place.
                self.blocks.append(Block(("\t".join(self.row),), False, False, False))
            self.row = None
        if opened & _BLOCK:
            self.flush()
            self.owners.pop()
            self.marker = ""

    def _owner(self, el: HtmlElement) -> tuple[bool, bool]:
        """(centred, indented by its style): alignment is inherited, as in CSS."""
        centred = self.owners[-1][0] if self.owners else False
        align = (el.get("align") or "").lower()
        style = el.get("style") or ""
        if el.tag == "center":
            centred = True
        elif align:
            centred = align == "center"
        if style and (found := _ALIGN_STYLE.search(style)):
            centred = found[1].lower() == "center"
        return centred, bool(style) and bool(_TEXT_INDENT.search(style))

    @staticmethod
    def _list(el: HtmlElement, tag: str) -> list[int | str]:
        if tag != "ol" or _NO_LIST_MARKER.search(el.get("style") or ""):
            return [0, ""]
        start = (el.get("start") or "").strip()
        number = int(start) if start.isascii() and start.isdigit() and len(start) < 7 else 1
        return [number, el.get("type") or "1"]

    def _list_marker(self, el: HtmlElement) -> str:
        """An ordered list's item starts with its number as a reader sees it: "1. "."""
        if not self.lists or not self.lists[-1][1]:
            return ""
        current = self.lists[-1]
        value = (el.get("value") or "").strip()
        if value.isascii() and value.isdigit() and len(value) < 7:
            current[0] = int(value)
        number = int(current[0])
        current[0] = number + 1
        if _NO_LIST_MARKER.search(el.get("style") or ""):
            return ""
        return f"{_ordinal(number, str(current[1]))}. "

    def render(self, root: HtmlElement) -> None:
        walk = etree.iterwalk(root, events=("start", "end", "comment", "pi"))
        opened: list[int] = []
        for event, el in walk:
            if event == "start":
                if el is root:
                    self.owners.append(self._owner(el))
                    opened.append(0)
                    self.text(el.text)
                    continue
                tag = el.tag
                if self.body and (kind := self.left_out(el, tag)) is not None:
                    self.leave_out(kind, tag)
                    walk.skip_subtree()
                    opened.append(_SKIPPED)
                    continue
                opened.append(self.start(el, tag))
            elif event == "end":
                self.end(opened.pop())
                if el is not root:
                    self.text(el.tail)
            else:  # comments (Word's conditional ones too) and processing instructions
                if self.body:
                    self.removed["comment"] = self.removed.get("comment", 0) + 1
                self.text(el.tail)
        self.flush()


def _ordinal(number: int, kind: str) -> str:
    if kind in {"a", "A"} and number > 0:
        letters = ""
        while number:
            number, rest = divmod(number - 1, 26)
            letters = chr(ord("a") + rest) + letters
        return letters.upper() if kind == "A" else letters
    if kind in {"i", "I"} and 0 < number < 4000:
        roman = _roman(number)
        return roman.upper() if kind == "I" else roman
    return str(number)


def _roman(number: int) -> str:
    numerals = (
        (1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"),
        (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"),
    )  # fmt: skip
    out = []
    for value, numeral in numerals:
        count, number = divmod(number, value)
        out.append(numeral * count)
    return "".join(out)


def render_blocks(root: HtmlElement) -> list[Block]:
    """The blocks under ``root`` in document order, every element's text included."""
    renderer = _Renderer(body=False)
    renderer.render(root)
    return renderer.blocks


def render_body(
    root: HtmlElement,
    *,
    page_url: str = "",
    site_hosts: Collection[str] = (),
    hidden: Collection[str] = (),
) -> RenderedBody:
    """The blocks of an article's content block as a reader sees them: without the text
    a reader never sees (selectors.UNSEEN_TAGS, the ``hidden`` attribute, a style of
    selectors.HIDING_STYLES, a class or id in ``hidden``: see
    :func:`hidden_by_stylesheets`), without the site's furniture (selectors.
    FURNITURE_CLASS; links to the site's scripts with the line they sit on) and without
    comments. ``site_hosts`` are the site's own hosts, to tell its links from others'."""
    renderer = _Renderer(body=True, page_url=page_url, site_hosts=site_hosts, hidden=hidden)
    renderer.render(root)
    return RenderedBody(blocks=renderer.blocks, removed=renderer.removed)
