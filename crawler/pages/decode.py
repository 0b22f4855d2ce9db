"""Turn a page's bytes and headers into text, as a browser would, but never lossily
without saying so."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from w3lib.encoding import html_to_unicode

# A page that is not valid UTF-8 but was declared UTF-8 is read as GB18030 (the superset
# of the GBK that the site's older pages use) only when a fifth or more of its non-ASCII
# characters fail as UTF-8; a few bad bytes in a UTF-8 page are damage, not a charset.
_MISDECLARED_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class DecodedPage:
    text: str
    encoding: str
    declared: str
    """The charset the headers or the page declared (or w3lib guessed)."""
    lossy: bool = False
    """True when no charset decoded every byte: the text holds U+FFFD."""

    @property
    def mismatch(self) -> bool:
        """The page declared one charset but is written in another."""
        return not self.lossy and _norm(self.encoding) != _norm(self.declared)


def _norm(name: str) -> str:
    return codecs.lookup(name).name


def header_value(headers: Mapping[Any, Any] | None, name: str) -> str | None:
    """A header's value from Scrapy ``Headers`` (bytes, case-insensitive) or a plain
    mapping of str or bytes."""
    if not headers:
        return None
    value = headers.get(name)
    if value is None and not hasattr(headers, "getlist"):
        lowered = name.lower()
        value = next((v for k, v in headers.items() if _text(k).lower() == lowered), None)
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else _text(value)


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def decode_html(body: bytes, headers: Mapping[Any, Any] | None = None) -> DecodedPage:
    """Decode with w3lib's browser-like detection (BOM, Content-Type, <meta>), which
    maps gb2312 to gb18030 so GBK pages lose nothing. Two checks on top:

    - bytes that are valid UTF-8 are UTF-8, whatever the page declares: GBK text is
      practically never valid UTF-8, while UTF-8 text often "decodes" as GBK mojibake;
    - a page that no charset decodes cleanly is marked lossy, never passed off as text.
    """
    declared, text = html_to_unicode(header_value(headers, "Content-Type"), body)
    if _norm(declared) == "utf-8" or _decodes(body, "utf-8"):
        if _norm(declared) != "utf-8":
            text = body.decode("utf-8-sig")
        elif not _decodes(body, "utf-8"):
            return _misdeclared_utf8(body, text, declared)
        return DecodedPage(text=text, encoding="utf-8", declared=declared)
    if _decodes(body, declared):
        return DecodedPage(text=text, encoding=declared, declared=declared)
    return DecodedPage(text=text, encoding=declared, declared=declared, lossy=True)


def _decodes(body: bytes, encoding: str) -> bool:
    try:
        body.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _misdeclared_utf8(body: bytes, text: str, declared: str) -> DecodedPage:
    non_ascii = sum(1 for char in text if ord(char) > 0x7F)
    if text.count("\ufffd") > _MISDECLARED_SHARE * max(non_ascii, 1) and _decodes(body, "gb18030"):
        return DecodedPage(text=body.decode("gb18030"), encoding="gb18030", declared=declared)
    return DecodedPage(text=text, encoding="utf-8", declared=declared, lossy=True)
