"""Render an HTML subtree as the lines a reader sees: one per paragraph or <br>-joined
point, furniture (ads, scripts, pagers) left out."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from lxml.html import HtmlElement

BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt",
        "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "td",
        "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
EMPHASIS_TAGS = frozenset({"strong", "b"})

# HTML collapses runs of ASCII white space; &nbsp; and U+3000 inside a line are content.
_COLLAPSIBLE = re.compile(r"[ \t\n\r\f]+")
_CENTRED_STYLE = re.compile(r"text-align\s*:\s*center", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph-like element's text, split at <br>."""

    lines: tuple[str, ...]
    indented: bool
    """Its text starts with white space (the site indents body paragraphs with &nbsp;)."""
    centred: bool
    emphasised: bool
    """All of its text is bold, as the copy of a document's title is."""

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def clean_line(line: str) -> str:
    # str.strip() also strips &nbsp; (U+00A0) and the ideographic space (U+3000).
    return _COLLAPSIBLE.sub(" ", line).strip()


def _is_centred(el: HtmlElement) -> bool:
    return (
        el.tag in HEADING_TAGS
        or el.tag == "center"
        or (el.get("align") or "").lower() == "center"
        or bool(_CENTRED_STYLE.search(el.get("style") or ""))
    )


def _is_emphasised(el: HtmlElement) -> bool:
    bold = "".join("".join(node.itertext()) for node in el.iter(*EMPHASIS_TAGS) if node is not el)
    return bool(bold.strip()) and clean_line(bold) == clean_line("".join(el.itertext()))


class _Renderer:
    def __init__(self, skip: set[HtmlElement]) -> None:
        self.skip = skip
        self.blocks: list[Block] = []
        self._lines: list[str] = [""]

    def _flush(self, owner: HtmlElement) -> None:
        lines = tuple(filter(None, map(clean_line, self._lines)))
        if lines:
            raw = "".join(self._lines).lstrip("\n\r\t ")
            self.blocks.append(
                Block(
                    lines=lines,
                    indented=raw[:1].isspace(),
                    centred=_is_centred(owner),
                    emphasised=_is_emphasised(owner),
                )
            )
        self._lines = [""]

    def render(self, el: HtmlElement, owner: HtmlElement) -> None:
        if el in self.skip or not isinstance(el.tag, str):
            return  # furniture, comments and processing instructions
        if el.tag == "br":
            self._lines.append("")
            return
        if el.tag in BLOCK_TAGS:
            self._flush(owner)  # text so far belongs to the enclosing block
            owner = el
        if el.text:
            self._lines[-1] += el.text
        for child in el:
            self.render(child, owner)
            if child.tail:
                self._lines[-1] += child.tail
        if el is owner:
            self._flush(el)


def render_blocks(root: HtmlElement, skip: Iterable[HtmlElement] = ()) -> list[Block]:
    """The blocks under ``root`` in document order, leaving out the ``skip`` subtrees."""
    renderer = _Renderer(set(skip))
    renderer.render(root, root)
    renderer._flush(root)
    return renderer.blocks
