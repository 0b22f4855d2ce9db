"""Reading and writing archived articles.

The functions take a session and never commit: the caller owns the session and
decides what a transaction spans.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Executable,
    RowMapping,
    Text,
    Update,
    bindparam,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.dedup import index_signatures, relink
from storage.models import TEMPLATE_PRECEDENCE, Article, ArticleVersion


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
    template: str = "desktop"  # the rendering read: a key of TEMPLATE_PRECEDENCE
    # Where each page's raw bytes are kept (JSON objects: WARC record, mirror file, ...).
    provenance: tuple[Mapping[str, Any], ...] = ()
    aid: int | None = None  # the site's numeric id, from the URL
    signature: bytes | None = None  # MinHash of the body, to find reprints (storage.dedup)
    # The fetch's validators (ETag, Last-Modified), for conditional requests next time.
    etag: str | None = None
    last_modified: str | None = None

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ArticleRecord:
        """A record from a mapping with every field (an item, a row); lists become
        the tuples a frozen record holds, and other keys are ignored."""
        kwargs = {f.name: values[f.name] for f in fields(cls) if f.name in values}
        for name in ("tags", "page_urls", "provenance"):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name] or ())
        return cls(**kwargs)

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
    outranked: list[str] = field(default_factory=list)
    """Kept as another copy: the stored row came from a better copy, a higher
    rendering (the desktop page of an article now met as its mobile page) or a later
    fetch of the same one (when older saved pages are replayed), or another copy of
    the URL in the same batch stands. Only the seen times moved. A URL is listed once
    per such copy, so that the four lists together hold one entry per record."""
    changes: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)
    """For each updated URL, the fields that changed: name -> (stored, new)."""
    duplicates: list[str] = field(default_factory=list)
    """The new and updated URLs that are reprints of another article."""


@dataclass(frozen=True, slots=True)
class Sighting:
    """An article seen again without its text: the site answered 304 Not Modified."""

    url: str
    seen_at: datetime
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class KnownArticle:
    first_seen_at: datetime
    etag: str | None
    last_modified: str | None
    gone_at: datetime | None


# Where the bytes came from, when and with which validators they were fetched say
# nothing about the article: new ones alone are no change, and the stored ones keep
# describing the stored version.
_FETCH_FIELDS = frozenset({"fetched_at", "provenance", "etag", "last_modified"})
_COMPARED_FIELDS = tuple(f.name for f in fields(ArticleRecord) if f.name not in _FETCH_FIELDS)
_CONTENT_COLUMNS = tuple(f.name for f in fields(ArticleRecord))


def upsert_articles(
    session: Session, records: Sequence[ArticleRecord], *, seen_at: datetime | None = None
) -> UpsertResult:
    """Store `records`, one row per URL, and tell which were new, updated, unchanged
    or outranked (see TEMPLATE_PRECEDENCE).

    Within the batch the last record of a URL wins, unless an earlier one was read
    from a higher rendering. New URLs are inserted, changed
    articles are overwritten, and the others only have their sighting recorded.
    Each record is a sighting of its article at `seen_at`, or when that is None at
    its own `fetched_at`: first_seen_at and last_seen_at widen to take it in, so that
    replaying pages saved long ago never moves last_seen_at forward.
    The writes are bulk statements: Article objects already loaded in `session`
    are not refreshed.
    """
    if seen_at is not None and seen_at.utcoffset() is None:
        raise ValueError("seen_at is a naive datetime; give it a timezone")
    _one_writer_at_a_time(session)
    result = UpsertResult()
    latest: dict[str, ArticleRecord] = {}
    for record in records:
        # In one batch as across batches: the higher rendering stands, else the later.
        # The copy that does not stand is outranked, so every record has one outcome.
        held = latest.get(record.url)
        if held is None or _rank(record.template) >= _rank(held.template):
            latest[record.url] = record
        if held is not None:
            result.outranked.append(record.url)
    if not latest:
        return result

    columns = [getattr(Article, name) for name in ("id", "fetched_at", *_COMPARED_FIELDS)]
    stored = {
        row["url"]: row
        for row in session.execute(select(*columns).where(Article.url.in_(latest))).mappings()
    }
    changed: list[dict[str, Any]] = []
    sightings: list[dict[str, Any]] = []
    for url, record in latest.items():
        values = _column_values(record)
        sighting = seen_at or record.fetched_at
        row = stored.get(url)
        if row is None:
            result.new.append(url)
        else:
            diff = {
                name: (row[name], values[name])
                for name in _COMPARED_FIELDS
                if row[name] != values[name]
            }
            if not diff or not _may_replace(record, row):
                (result.outranked if diff else result.unchanged).append(url)
                # A lesser copy's validators are not the stored version's.
                seen = Sighting(url, sighting, record.etag, record.last_modified)
                sightings.append(_sighting_values(seen if not diff else Sighting(url, sighting)))
                continue
            result.updated.append(url)
            result.changes[url] = diff
        # Stored now, so not gone (any more).
        changed.append(
            {**values, "first_seen_at": sighting, "last_seen_at": sighting, "gone_at": None}
        )

    if changed:
        _write_changed(session, changed, stored_ids={url: row["id"] for url, row in stored.items()})
        stored_now = select(Article.url, Article.id).where(
            Article.url.in_(result.new + result.updated)
        )
        ids: dict[str, int] = dict(session.execute(stored_now).all())
        _keep_versions(session, result, latest, ids)
        _link_duplicates(session, result, ids)
    if sightings:
        session.execute(_record_sighting(), sightings)
    return result


def record_unchanged(session: Session, sightings: Sequence[Sighting]) -> list[str]:
    """Record articles seen again unchanged (a 304): their seen times and validators.
    Returns the URLs that are stored; a sighting of an unknown URL changes nothing."""
    if not sightings:
        return []
    _one_writer_at_a_time(session)
    urls = {s.url for s in sightings}
    known = set(session.scalars(select(Article.url).where(Article.url.in_(urls))))
    found = [s for s in sightings if s.url in known]
    if found:
        session.execute(_record_sighting(), [_sighting_values(s) for s in found])
    return [s.url for s in found]


def mark_gone(session: Session, urls: Sequence[str], *, at: datetime) -> list[str]:
    """Mark stored articles whose pages the site no longer has (404, 410). They stay
    archived, with everything they held; only ``gone_at`` says so."""
    if not urls:
        return []
    _one_writer_at_a_time(session)
    marked = session.scalars(
        update(Article)
        .where(Article.url.in_(urls), Article.gone_at.is_(None))
        .values(gone_at=at)
        .returning(Article.url)
        .execution_options(synchronize_session=False)
    ).all()
    return list(marked)


def known_articles(session: Session, urls: Iterable[str]) -> dict[str, KnownArticle]:
    """What the archive already holds about the articles at ``urls``."""
    rows = session.execute(
        select(
            Article.url, Article.first_seen_at, Article.etag, Article.last_modified, Article.gone_at
        ).where(Article.url.in_(list(urls)))
    )
    return {row.url: KnownArticle(*row[1:]) for row in rows}


def known_after(
    session: Session, after_id: int, *, limit: int
) -> list[tuple[int, str, KnownArticle]]:
    """(row id, url, what is known) of up to ``limit`` articles stored after row
    ``after_id``, in id order: the archive, a page at a time."""
    rows = session.execute(
        select(
            Article.id,
            Article.url,
            Article.first_seen_at,
            Article.etag,
            Article.last_modified,
            Article.gone_at,
        )
        .where(Article.id > after_id)
        .order_by(Article.id)
        .limit(limit)
    )
    return [(row.id, row.url, KnownArticle(*row[2:])) for row in rows]


def _keep_versions(
    session: Session,
    result: UpsertResult,
    records: Mapping[str, ArticleRecord],
    ids: Mapping[str, int],
) -> None:
    """A version row for every new text: each new article's, and each changed one's."""
    new_texts = result.new + [
        url for url in result.updated if "content_hash" in result.changes[url]
    ]
    versions = [
        {
            "article_id": ids[url],
            "fetched_at": records[url].fetched_at,
            "content_hash": records[url].content_hash,
            "title": records[url].title,
            "body": records[url].body,
            "extractor_version": records[url].extractor_version,
            "provenance": [dict(source) for source in records[url].provenance],
        }
        for url in new_texts
    ]
    if versions:
        session.execute(insert(ArticleVersion), versions)


def _link_duplicates(session: Session, result: UpsertResult, ids: Mapping[str, int]) -> None:
    """Index the new signatures and relink the groups the stored articles touch."""
    reindex = result.new + [url for url in result.updated if "signature" in result.changes[url]]
    if reindex:
        index_signatures(session, [ids[url] for url in reindex])
    relink(session, result.new + result.updated)
    result.duplicates = list(
        session.scalars(
            select(Article.url).where(
                Article.url.in_(result.new + result.updated), Article.duplicate_of.is_not(None)
            )
        )
    )


def _sighting_values(sighting: Sighting) -> dict[str, Any]:
    return {
        "b_url": sighting.url,
        "b_seen": sighting.seen_at,
        "b_etag": sighting.etag,
        "b_last_modified": sighting.last_modified,
    }


def _record_sighting() -> Update:
    """For the row at :b_url, seen at :b_seen: widen first_seen_at and last_seen_at to
    take it in, keep the newer validators, and it is no longer gone."""
    table = Article.metadata.tables[Article.__tablename__]
    seen = bindparam("b_seen", type_=table.c.last_seen_at.type)
    return (
        update(table)
        .where(table.c.url == bindparam("b_url"))
        .values(
            first_seen_at=_earlier(seen, table.c.first_seen_at),
            last_seen_at=_later(seen, table.c.last_seen_at),
            etag=func.coalesce(bindparam("b_etag", type_=Text()), table.c.etag),
            last_modified=func.coalesce(
                bindparam("b_last_modified", type_=Text()), table.c.last_modified
            ),
            gone_at=None,
        )
    )


def _earlier(a: Any, b: Any) -> Any:
    # CASE rather than LEAST/MIN: the one spelling every SQL database reads alike.
    return case((a < b, a), else_=b)


def _later(a: Any, b: Any) -> Any:
    return case((a > b, a), else_=b)


def count_articles(session: Session, *, originals_only: bool = False) -> int:
    statement = select(func.count()).select_from(Article)
    if originals_only:
        statement = statement.where(Article.duplicate_of.is_(None))
    return session.execute(statement).scalar_one()


def get_article(session: Session, url: str) -> Article | None:
    # Upserts bypass the identity map, so refresh an object the session already holds.
    statement = select(Article).where(Article.url == url).execution_options(populate_existing=True)
    return session.execute(statement).scalar_one_or_none()


def iter_article_rows(
    session: Session, *, batch_size: int = 1000, originals_only: bool = False
) -> Iterator[RowMapping]:
    """Every stored article as a column-name mapping, in id order, `batch_size` rows at a time;
    with `originals_only`, the reprints left out.

    Rows are streamed (a server-side cursor where the database has one), so
    memory stays flat however large the archive grows.
    """
    statement = select(Article.__table__).order_by(Article.id)
    if originals_only:
        statement = statement.where(Article.duplicate_of.is_(None))
    yield from session.execute(statement.execution_options(yield_per=batch_size)).mappings()


# Shared by every process that writes to this archive; the value itself is arbitrary.
_WRITE_LOCK_KEY = 0x796C777432325F32


def _one_writer_at_a_time(session: Session) -> None:
    """Writers take turns, so that two crawls storing reprints of one document at once
    agree on its original: each sees what the other stored before it. PostgreSQL: a
    lock held until the transaction ends. SQLite: the transaction began with the
    database's write lock (storage.db._begin_sqlite)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_WRITE_LOCK_KEY)))


def _rank(template: str) -> int:
    return TEMPLATE_PRECEDENCE.get(template, 0)


def _may_replace(record: ArticleRecord, row: RowMapping) -> bool:
    """A record replaces a stored row read from a lower rendering, or from the same
    rendering fetched no later (the same bytes re-extracted, or a newer fetch)."""
    new, old = _rank(record.template), _rank(row["template"])
    return new > old or (new == old and record.fetched_at >= row["fetched_at"])


def _column_values(record: ArticleRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in _CONTENT_COLUMNS}
    # JSON columns hold lists; tuples would never compare equal to what is read back.
    values["tags"] = list(record.tags)
    values["page_urls"] = list(record.page_urls)
    values["provenance"] = [dict(source) for source in record.provenance]
    return values


def _write_changed(
    session: Session, rows: list[dict[str, Any]], *, stored_ids: dict[str, int]
) -> None:
    """Insert or overwrite `rows`, widening the seen times of those already stored."""
    overwritten = (*_CONTENT_COLUMNS, "gone_at")
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
        session.execute(
            _record_sighting(),
            [{"b_url": row["url"], "b_seen": row["last_seen_at"]} for row in rows
             if row["url"] in stored_ids],
        )  # fmt: skip


def _upsert_statement(dialect: str, overwritten: Sequence[str]) -> Executable | None:
    """INSERT ... ON CONFLICT (url) DO UPDATE, on the dialects that have it. The
    update only happens where _may_replace allows it."""
    match dialect:
        case "postgresql":
            # The two dialects' Insert classes share this API but no common type.
            statement: Any = postgresql.insert(Article)
        case "sqlite":
            statement = sqlite.insert(Article)
        case _:
            return None
    new = case(TEMPLATE_PRECEDENCE, value=statement.excluded.template, else_=0)
    old = case(TEMPLATE_PRECEDENCE, value=Article.template, else_=0)
    excluded = statement.excluded
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[Article.url],
        set_={
            **{name: excluded[name] for name in overwritten},
            "first_seen_at": _earlier(excluded.first_seen_at, Article.first_seen_at),
            "last_seen_at": _later(excluded.last_seen_at, Article.last_seen_at),
        },
        # _may_replace, in SQL, so that it holds against a concurrent writer too.
        where=(new > old) | ((new == old) & (excluded.fetched_at >= Article.fetched_at)),
    )
    return upsert


def iter_provenance(
    session: Session, *, batch_size: int = 1000
) -> Iterator[tuple[str, datetime, list[dict[str, Any]]]]:
    """(url, fetched_at, provenance) of every stored article, in id order: where the
    raw bytes behind each stored version are kept."""
    statement = (
        select(Article.url, Article.fetched_at, Article.provenance)
        .order_by(Article.id)
        .execution_options(yield_per=batch_size)
    )
    yield from session.execute(statement)
