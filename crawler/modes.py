"""The spider's arguments, ``-a mode=…`` and ``-a depth=…``, read in one place: by the
spider, and by the crawl command before anything starts (this module imports nothing
heavy, as every ``scrapy`` command imports the commands)."""

from __future__ import annotations

MODES = ("incremental", "full")
"""incremental (the default) fetches what is new; full fetches everything again."""


def crawl_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"-a mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def list_depth(depth: int | str) -> int:
    """The list pages to read per category (0: as many as the mode reads)."""
    if not (str(depth).isascii() and str(depth).isdigit()):
        raise ValueError(f"-a depth must be a number of list pages, got {depth!r}")
    return int(depth)
