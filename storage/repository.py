"""Reading and writing archived articles.

The functions take a session and never commit: the caller owns the session and
decides what a transaction spans.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, RowMapping, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import Article


@dataclass(frozen=True, slots=True, kw_only=True)
class ArticleRecord:
    """One article as extracted from the site, ready to be stored."""

    url: str  # canonical article URL, the unique key
    title: str
    category: str
    published_at: datetime  # aware; the site gives Beijing time
    source: str  # "" when the page names none
    author: str  # "" when the page names none
    tags: tuple[str, ...]
    body: str
    copyright_notice: str
    rights_holder: str
    site_name: str
    site_copyright: str
    icp: str
    fetched_at: datetime  # aware: when this version was fetched
    content_hash: str  # hex sha256 of the normalised body
    extractor_version: str
    page_urls: tuple[str, ...]  # every page the article was assembled from, in order

    def __post_init__(self) -> None:
        for name in ("published_at", "fetched_at"):
            value: datetime = getattr(self, name)
            if value.utcoffset() is None:
                raise ValueError(f"{name} of {self.url} is a naive datetime; give it a timezone")


@dataclass
class UpsertResult:
    """The URLs of an upserted batch, by what happened to them."""

    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


# A new fetch time alone is no change: fetched_at keeps saying when the stored
# version was fetched.
_COMPARED_FIELDS = tuple(f.name for f in fields(ArticleRecord) if f.name != "fetched_at")
_CONTENT_COLUMNS = tuple(f.name for f in fields(ArticleRecord))


def upsert_articles(
    session: Session, records: Sequence[ArticleRecord], *, seen_at: datetime
) -> UpsertResult:
    """Store `records`, one row per URL, and tell which were new, updated or unchanged.

    Within the batch the last record of a URL wins. New URLs are inserted, changed
    articles are overwritten, and unchanged ones only get `last_seen_at = seen_at`.
    The writes are bulk statements: Article objects already loaded in `session`
    are not refreshed.
    """
    if seen_at.utcoffset() is None:
        raise ValueError("seen_at is a naive datetime; give it a timezone")
    latest = {record.url: record for record in records}
    result = UpsertResult()
    if not latest:
        return result

    columns = [getattr(Article, name) for name in ("id", *_COMPARED_FIELDS)]
    stored = {
        row["url"]: row
        for row in session.execute(select(*columns).where(Article.url.in_(latest))).mappings()
    }
    changed: list[dict[str, Any]] = []
    for url, record in latest.items():
        values = _column_values(record)
        row = stored.get(url)
        if row is None:
            result.new.append(url)
        elif any(row[name] != values[name] for name in _COMPARED_FIELDS):
            result.updated.append(url)
        else:
            result.unchanged.append(url)
            continue
        changed.append({**values, "first_seen_at": seen_at, "last_seen_at": seen_at})

    if changed:
        _write_changed(session, changed, stored_ids={url: row["id"] for url, row in stored.items()})
    if result.unchanged:
        session.execute(
            update(Article)
            .where(Article.url.in_(result.unchanged))
            .values(last_seen_at=seen_at)
            .execution_options(synchronize_session=False)
        )
    return result


def count_articles(session: Session) -> int:
    return session.execute(select(func.count()).select_from(Article)).scalar_one()


def get_article(session: Session, url: str) -> Article | None:
    # Upserts bypass the identity map, so refresh an object the session already holds.
    statement = select(Article).where(Article.url == url).execution_options(populate_existing=True)
    return session.execute(statement).scalar_one_or_none()


def iter_article_rows(session: Session, *, batch_size: int = 1000) -> Iterator[RowMapping]:
    """Every stored article as a column-name mapping, in id order, `batch_size` rows at a time.

    Rows are streamed (a server-side cursor where the database has one), so
    memory stays flat however large the archive grows.
    """
    statement = (
        select(Article.__table__).order_by(Article.id).execution_options(yield_per=batch_size)
    )
    yield from session.execute(statement).mappings()


def _column_values(record: ArticleRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in _CONTENT_COLUMNS}
    # JSON columns hold lists; tuples would never compare equal to what is read back.
    values["tags"] = list(record.tags)
    values["page_urls"] = list(record.page_urls)
    return values


def _write_changed(
    session: Session, rows: list[dict[str, Any]], *, stored_ids: dict[str, int]
) -> None:
    """Insert or overwrite `rows`; first_seen_at is only ever written by an insert."""
    overwritten = (*_CONTENT_COLUMNS, "last_seen_at")
    upsert = _upsert_statement(session.get_bind().dialect.name, overwritten)
    if upsert is not None:
        # ON CONFLICT decides per row, not the classification made before: a
        # concurrent writer may have inserted the URL since, and that is harmless.
        session.execute(upsert, rows)
        return

    # Elsewhere, a writer racing on the same new URL gets an IntegrityError and
    # has to retry its batch.
    new = [row for row in rows if row["url"] not in stored_ids]
    updates = [
        {"id": stored_ids[row["url"]], **{name: row[name] for name in overwritten}}
        for row in rows
        if row["url"] in stored_ids
    ]
    if new:
        session.execute(insert(Article), new)
    if updates:
        session.execute(update(Article), updates)


def _upsert_statement(dialect: str, overwritten: Sequence[str]) -> Executable | None:
    """INSERT ... ON CONFLICT (url) DO UPDATE, on the dialects that have it."""
    match dialect:
        case "postgresql":
            pg_insert = postgresql.insert(Article)
            return pg_insert.on_conflict_do_update(
                index_elements=[Article.url],
                set_={name: pg_insert.excluded[name] for name in overwritten},
            )
        case "sqlite":
            sqlite_insert = sqlite.insert(Article)
            return sqlite_insert.on_conflict_do_update(
                index_elements=[Article.url],
                set_={name: sqlite_insert.excluded[name] for name in overwritten},
            )
    return None
