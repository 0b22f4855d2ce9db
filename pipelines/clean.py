"""Text hygiene for every text field, so what is stored is what a reader sees."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from itemadapter import ItemAdapter

SINGLE_LINE_FIELDS = ("title", "category", "source", "author", "site_name", "site_copyright", "icp")
MULTI_LINE_FIELDS = ("body", "copyright_notice")

# Zero-width and byte-order marks, and C0 controls other than tab and newline: they are
# invisible on the page, and they break CSV readers and spreadsheets downstream.
_INVISIBLE = re.compile("[\u200b\u2060\ufeff\x00-\x08\x0b-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\r\f\v]+")


def clean_inline(value: str | None) -> str:
    text = _INVISIBLE.sub("", unicodedata.normalize("NFC", value or ""))
    return _SPACES.sub(" ", text.replace("\n", " ")).strip()


def clean_lines(value: str | None) -> str:
    """Each line trimmed (str.strip also takes &nbsp; and U+3000), blank lines dropped.
    A line with tabs is a table row: each cell is trimmed, and an empty cell keeps its
    place."""
    text = unicodedata.normalize("NFC", value or "").replace("\r\n", "\n").replace("\r", "\n")
    lines = (_trim(_INVISIBLE.sub("", line)) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _trim(line: str) -> str:
    if "\t" not in line:
        return line.strip()
    cells = [cell.strip() for cell in line.split("\t")]
    return "\t".join(cells) if any(cells) else ""


class CleanTextPipeline:
    """Normalises to NFC, removes invisible characters, trims every line and drops
    blank ones; tags are trimmed and de-duplicated in order. It never removes words:
    what is boilerplate is decided by the page's structure during extraction."""

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        for name in SINGLE_LINE_FIELDS:
            adapter[name] = clean_inline(adapter.get(name))
        for name in MULTI_LINE_FIELDS:
            adapter[name] = clean_lines(adapter.get(name))
        tags = (clean_inline(tag) for tag in adapter.get("tags") or ())
        adapter["tags"] = list(dict.fromkeys(tag for tag in tags if tag))
        return item
