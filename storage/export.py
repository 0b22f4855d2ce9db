"""Export of the archive to CSV (for Excel and pandas) and JSON Lines."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any, Final

from sqlalchemy import RowMapping
from sqlalchemy.orm import Session

from storage.repository import count_articles, iter_article_rows

EXPORT_COLUMNS: Final = (
    "url",
    "aid",
    "title",
    "category",
    "published_at",
    "source",
    "author",
    "tags",
    "body",
    "copyright_notice",
    "rights_holder",
    "site_name",
    "site_copyright",
    "icp",
    "fetched_at",
    "first_seen_at",
    "last_seen_at",
    "content_hash",
    "extractor_version",
    "page_urls",
    "template",
    "provenance",
    "duplicate_of",
    "similarity",
)
FORMATS: Final = ("csv", "jsonl")
LIST_SEPARATOR: Final = "|"

# Cells starting like this are formulas to a spreadsheet (OWASP's CSV injection list).
# So are cells starting with a character that Unicode compatibility folding (NFKC), as
# spreadsheets apply to what is typed or pasted, turns into one: the full-width ＝ ＋ － ＠,
# the small ﹦ ﹢ ﹣ ﹫, superscript and subscript ⁼ ⁺ ₌ ₊, ⩵ (==) and others.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

ProgressCallback = Callable[[int, int], None]
RowWriter = Callable[[RowMapping], None]


def export_articles(
    session: Session,
    out: IO[bytes],
    fmt: str,
    *,
    progress: ProgressCallback | None = None,
    progress_every: int = 1000,
    originals_only: bool = False,
) -> int:
    """Write every article to `out` as `fmt` ("csv" or "jsonl"), in id order; with
    `originals_only`, the reprints of another article left out.

    Rows are streamed, so memory stays flat. `progress(done, total)` is called
    every `progress_every` rows and once at the end; `total` is counted at the
    start, so articles stored meanwhile can make `done` exceed it. Returns the
    number of articles written. `out` is left open.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    total = count_articles(session, originals_only=originals_only)
    # utf-8-sig writes a BOM, without which Excel reads UTF-8 Chinese as mojibake;
    # newline="" leaves line ends to the csv module.
    text = io.TextIOWrapper(
        out, encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="", write_through=True
    )
    try:
        write_row = _csv_writer(text) if fmt == "csv" else _jsonl_writer(text)
        done = 0
        rows = iter_article_rows(session, originals_only=originals_only)
        for done, row in enumerate(rows, start=1):
            write_row(row)
            if progress is not None and done % progress_every == 0:
                progress(done, total)
        if progress is not None and (done == 0 or done % progress_every != 0):
            progress(done, total)  # the final count, unless it was just reported
        text.flush()
    finally:
        # Hand `out` back to the caller open; closing the wrapper would close it.
        text.detach()
    return done


def _csv_writer(text: IO[str]) -> RowWriter:
    # The excel dialect is RFC 4180: CRLF line ends, and fields quoted when they
    # hold a comma, a quote or a line break.
    writer = csv.writer(text, dialect="excel", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(EXPORT_COLUMNS)

    def write_row(row: RowMapping) -> None:
        writer.writerow(_defuse_formula(_csv_cell(row[column])) for column in EXPORT_COLUMNS)

    return write_row


def _jsonl_writer(text: IO[str]) -> RowWriter:
    def write_row(row: RowMapping) -> None:
        record = {column: _json_value(row[column]) for column in EXPORT_COLUMNS}
        text.write(json.dumps(record, ensure_ascii=False) + "\n")

    return write_row


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        if all(isinstance(item, str) for item in value):
            return LIST_SEPARATOR.join(value)
        # Lists of objects (provenance) keep their structure as compact JSON.
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _defuse_formula(cell: str) -> str:
    # A leading apostrophe makes Excel and LibreOffice show the cell as text.
    return "'" + cell if _starts_formula(cell[:1]) else cell


def _starts_formula(first: str) -> bool:
    if first.isascii():
        return first in _FORMULA_PREFIXES
    return unicodedata.normalize("NFKC", first).startswith(_FORMULA_PREFIXES)
