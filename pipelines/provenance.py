"""Where and when each stored version came from, and a fingerprint of its text."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

from itemadapter import ItemAdapter

_WHITESPACE = re.compile(r"\s+")


def normalise_for_hash(text: str) -> str:
    """NFKC folds full-width and half-width forms together, and all white space goes,
    so a change of markup (line breaks, indentation, &nbsp;) is not a change of text."""
    return _WHITESPACE.sub("", unicodedata.normalize("NFKC", text))


def content_hash(text: str) -> str:
    return hashlib.sha256(normalise_for_hash(text).encode("utf-8")).hexdigest()


class ProvenancePipeline:
    """Sets ``content_hash`` and makes ``fetched_at`` an aware UTC time (now, when the
    response did not say). The extractor version is set by the extraction itself."""

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        fetched = adapter.get("fetched_at") or datetime.now(UTC)
        if fetched.tzinfo is None:
            raise ValueError(f"fetched_at must be timezone-aware, got {fetched!r}")
        adapter["fetched_at"] = fetched.astimezone(UTC)
        adapter["content_hash"] = content_hash(adapter.get("body") or "")
        if not adapter.get("extractor_version"):
            raise ValueError(f"item for {adapter.get('url')} has no extractor_version")
        return item
