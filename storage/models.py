"""Database schema of the archive, as SQLAlchemy typed declarative models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    LargeBinary,
    MetaData,
    SmallInteger,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

# The site dates its articles in Beijing time; China has had no DST since 1991,
# so a fixed offset is exact and needs no tz database.
BEIJING = timezone(timedelta(hours=8))


class AwareDateTime(TypeDecorator[datetime]):
    """A timestamp that is stored in UTC and read back as an aware datetime in `zone`.

    PostgreSQL keeps it as `timestamp with time zone`; SQLite has no such type,
    so it gets naive UTC. Naive datetimes are refused: their instant is unknown.
    """

    impl = DateTime
    cache_ok = True

    def __init__(self, zone: tzinfo = UTC) -> None:
        super().__init__(timezone=True)
        self.zone = zone

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: give it a timezone")
        value = value.astimezone(UTC)
        # SQLite's DATETIME would silently drop the offset; make "UTC" explicit instead.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(self.zone)


# JSON values; JSONB on PostgreSQL so they can be indexed and queried with @>.
JsonList = JSON().with_variant(JSONB(), "postgresql")

# When two renderings of one article are stored, the higher one's fields stand: the
# desktop page is the fullest, a text rendering of it comes next, the mobile page last.
TEMPLATE_PRECEDENCE = {"desktop": 3, "text": 2, "mobile": 1}


class Base(DeclarativeBase):
    # Deterministic constraint and index names keep migrations reproducible.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    # The site's strings have no natural length limit: Text never truncates.
    type_annotation_map: ClassVar[dict[Any, TypeEngine[Any]]] = {
        str: Text(),
        datetime: AwareDateTime(),
        list[str]: JsonList,
    }


class Article(Base):
    """One archived article: the latest stored version plus when it was seen."""

    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(unique=True, index=True)
    title: Mapped[str]
    category: Mapped[str]
    published_at: Mapped[datetime] = mapped_column(AwareDateTime(BEIJING), index=True)
    source: Mapped[str]
    author: Mapped[str]
    tags: Mapped[list[str]]
    body: Mapped[str]
    copyright_notice: Mapped[str]
    rights_holder: Mapped[str]
    site_name: Mapped[str]
    site_copyright: Mapped[str]
    icp: Mapped[str]
    # When the stored version was fetched; a re-crawl that finds no change keeps it.
    fetched_at: Mapped[datetime]
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    content_hash: Mapped[str] = mapped_column(index=True)
    extractor_version: Mapped[str]
    page_urls: Mapped[list[str]]
    # The rendering the fields were read from, a key of TEMPLATE_PRECEDENCE.
    template: Mapped[str] = mapped_column(server_default="desktop")
    # Where each page's raw bytes are kept: a WARC record, a mirror file, a text page.
    provenance: Mapped[list[dict[str, Any]]] = mapped_column(JsonList, server_default=text("'[]'"))
    # The site's numeric id from the URL: it orders reprints published the same moment.
    aid: Mapped[int | None] = mapped_column(BigInteger)
    # MinHash of the body (storage.dedup); None for a text too short to compare.
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    # For a reprint: the URL of its original (the copy published first) and the
    # estimated Jaccard similarity of the two texts. None for an original.
    duplicate_of: Mapped[str | None] = mapped_column(index=True)
    similarity: Mapped[float | None] = mapped_column(Float)
    # The validators of the stored fetch, sent back as If-None-Match and
    # If-Modified-Since when the article is fetched again.
    etag: Mapped[str | None]
    last_modified: Mapped[str | None]
    # When the site last answered 404 or 410 for the article; it stays archived.
    gone_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"Article(id={self.id!r}, url={self.url!r})"


class ArticleVersion(Base):
    """Every text an article has had, one row per change (the first included)."""

    __tablename__ = "article_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )
    fetched_at: Mapped[datetime]
    content_hash: Mapped[str]
    title: Mapped[str]
    body: Mapped[str]
    extractor_version: Mapped[str]
    provenance: Mapped[list[dict[str, Any]]] = mapped_column(JsonList)


class Run(Base):
    """One crawl, replay or re-extraction, and what it did."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    mode: Mapped[str]
    # running, then finished, failed, or interrupted (found still running, its
    # process gone, by a later run).
    status: Mapped[str]
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    finish_reason: Mapped[str | None]
    host: Mapped[str]
    pid: Mapped[int]
    articles_new: Mapped[int]
    articles_updated: Mapped[int]
    articles_unchanged: Mapped[int]
    articles_duplicate: Mapped[int]
    articles_gone: Mapped[int]
    # Kept as another copy of an archived article (a lesser rendering, an older fetch).
    articles_outranked: Mapped[int] = mapped_column(server_default="0")
    # Not saved in the archive; of them, those kept in DATABASE_SPILL_DIR.
    articles_unsaved: Mapped[int] = mapped_column(server_default="0")
    articles_spilled: Mapped[int] = mapped_column(server_default="0")
    # Every article the run handled: the items its spider produced, and the archived
    # articles the site answered 304, 404 or 410 for. Each is counted under exactly one
    # outcome: new, updated, unchanged, outranked, gone, dropped or unsaved.
    articles_handled: Mapped[int] = mapped_column(server_default="0")
    dropped: Mapped[dict[str, int]] = mapped_column(JsonList)
    errors: Mapped[int]
    requests: Mapped[int]
    bytes: Mapped[int] = mapped_column(BigInteger)
    # Shares of the run's articles with an empty body, no date, no 来源.
    health: Mapped[dict[str, float]] = mapped_column(JsonList)
    # The distributed crawl (CRAWL_ID) this run was a worker of; None for a crawl on its own.
    crawl_id: Mapped[str | None]


class CategoryProgress(Base):
    """Whether the last reading of a category's list pages finished, for incremental
    crawls. ``pending_since`` is the start of the first run since the last one that
    read the list down to known articles and stored everything it found; None when
    that last reading is complete."""

    __tablename__ = "category_progress"

    url: Mapped[str] = mapped_column(primary_key=True)
    pending_since: Mapped[datetime | None]


class LshBucket(Base):
    """The locality-sensitive index of signatures: one row per band of each signature.
    Articles that share a bucket in any band are candidates to be the same document."""

    __tablename__ = "lsh_buckets"

    band: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True, index=True
    )
