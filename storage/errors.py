"""The storage layer's one error, importable without the database libraries."""

from __future__ import annotations


class StorageError(Exception):
    """A database problem, explained in one line that can be shown to the user as is."""
