"""Every run the test suite leaves in an archive must add up: each article it handled
is counted under exactly one outcome, and a run whose counts do not add up is never
``finished``. conftest.py checks every archive a test wrote, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

_COLUMNS = (
    "id", "status", "articles_handled", "articles_new", "articles_updated",
    "articles_unchanged", "articles_outranked", "articles_gone", "articles_unsaved",
    "dropped",
)  # fmt: skip
QUERY = f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE status IN ('finished', 'failed')"


def unreconciled(rows: Iterable[Sequence[Any]]) -> list[str]:
    """The runs among ``rows`` (QUERY's columns) that say ``finished`` and do not add up."""
    problems = []
    for row in rows:
        run = dict(zip(_COLUMNS, row, strict=True))
        dropped = run["dropped"]
        dropped = json.loads(dropped) if isinstance(dropped, str) else dropped or {}
        total = sum(run[name] for name in _COLUMNS[3:-1]) + sum(dropped.values())
        if run["status"] == "finished" and total != run["articles_handled"]:
            problems.append(f"run {run['id']}: {total} outcomes for {run['articles_handled']}")
    return problems


def unreconciled_in_sqlite(path: Path) -> list[str]:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return []
    try:
        rows = connection.execute(QUERY).fetchall()
    except sqlite3.Error:  # not an archive, or one from before runs were accounted
        return []
    finally:
        connection.close()
    return [f"{path}: {problem}" for problem in unreconciled(rows)]
