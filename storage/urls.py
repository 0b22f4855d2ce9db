"""URLs as they may be shown: in messages and logs, never with their password.
Importable without the database libraries."""

from __future__ import annotations

import re

# From "//user:" to the last "@": a password may hold any character, "@" and "/" too.
_PASSWORD = re.compile(r"(//[^/:@]*:).*@")


def hide_password(url: str) -> str:
    """``url`` with its password, if it has one, replaced by ``***``. Works on any text,
    a URL that cannot be parsed included."""
    return _PASSWORD.sub(r"\1***@", url)
