"""The storage layer on SQLite and PostgreSQL: upserts, time zones, migrations, errors."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, update
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

import storage
from storage.db import (
    StorageError,
    check_connection,
    make_engine,
    migrate,
    open_database,
    session_factory,
)
from storage.models import BEIJING, Article, Base
from storage.repository import (
    ArticleRecord,
    UpsertResult,
    count_articles,
    get_article,
    iter_article_rows,
    upsert_articles,
)
from storage.runs import begin_reading, finish_reading
from storage.urls import hide_password
from tests.support.records import FETCHED, URL, make_record

SEEN = datetime(2024, 1, 20, 3, 5, tzinfo=UTC)
LATER = SEEN + timedelta(days=7)
UNREACHABLE_URL = "postgresql+psycopg://nobody:s3cret@127.0.0.1:1/x"


def stored_record(session: Session, url: str = URL) -> ArticleRecord:
    article = get_article(session, url)
    assert article is not None
    return ArticleRecord.from_values(
        {field.name: getattr(article, field.name) for field in fields(ArticleRecord)}
    )


def store(session: Session, *records: ArticleRecord, seen_at: datetime = SEEN) -> UpsertResult:
    result = upsert_articles(session, records, seen_at=seen_at)
    session.commit()
    return result


def test_a_new_article_is_stored_whole(session: Session) -> None:
    assert store(session, make_record()) == UpsertResult(new=[URL], updated=[], unchanged=[])

    assert stored_record(session) == make_record()
    article = get_article(session, URL)
    assert article is not None
    assert article.first_seen_at == article.last_seen_at == SEEN
    assert count_articles(session) == 1


def test_upsert_tells_new_updated_and_unchanged_apart(session: Session) -> None:
    kept, edited, added = (make_record(url=f"{URL[:-5]}{n}.html") for n in (1, 2, 3))
    store(session, kept, edited)

    result = store(session, kept, replace(edited, body="修改后的正文"), added, seen_at=LATER)

    assert (result.new, result.updated, result.unchanged) == ([added.url], [edited.url], [kept.url])
    assert result.changes == {edited.url: {"body": (edited.body, "修改后的正文")}}
    # Three URLs with one normalised body (content_hash): exact copies of the first.
    assert sorted(result.duplicates) == sorted([added.url, edited.url])
    assert count_articles(session) == 3


def test_crawling_again_stores_no_second_row(session: Session) -> None:
    store(session, make_record())

    refetched = make_record(fetched_at=FETCHED + timedelta(days=7))
    assert store(session, refetched, seen_at=LATER).unchanged == [URL]

    assert count_articles(session) == 1
    article = get_article(session, URL)
    assert article is not None
    assert article.first_seen_at == SEEN
    assert article.last_seen_at == LATER
    # Still the fetch of the version that is stored.
    assert article.fetched_at == FETCHED


def test_a_changed_article_is_overwritten(session: Session) -> None:
    store(session, make_record())
    body = "全文重写后的正文"
    changed = make_record(
        body=body,
        content_hash=hashlib.sha256(body.encode()).hexdigest(),
        tags=("新标签",),
        fetched_at=FETCHED + timedelta(days=7),
    )

    assert store(session, changed, seen_at=LATER).updated == [URL]

    assert stored_record(session) == changed
    article = get_article(session, URL)
    assert article is not None
    assert article.first_seen_at == SEEN
    assert article.last_seen_at == LATER
    assert count_articles(session) == 1


def _different(value: Any) -> Any:
    if value is None:  # the signature: the record's body is too short to have one
        return bytes(range(256)) * 2
    if isinstance(value, int):
        return value + 1
    if isinstance(value, datetime):
        return value + timedelta(seconds=1)
    if isinstance(value, tuple):
        return (*value, "另一个")
    return value + "（修订）"


# url is the key; fetched_at and provenance describe the bytes, not the article; a
# change of template is a matter of precedence (tested below).
NOT_CONTENT = {"url", "fetched_at", "provenance", "template", "etag", "last_modified"}


@pytest.mark.parametrize(
    "name", [f.name for f in fields(ArticleRecord) if f.name not in NOT_CONTENT]
)
def test_a_change_in_any_field_is_an_update(session: Session, name: str) -> None:
    record = make_record()
    store(session, record)

    changed = replace(record, **{name: _different(getattr(record, name))})

    assert store(session, changed, seen_at=LATER).updated == [URL]
    assert getattr(stored_record(session), name) == getattr(changed, name)


WARC = {
    "kind": "warc",
    "url": URL,
    "file": "/a.warc.gz",
    "offset": 0,
    "length": 9,
    "record_id": "1",
}


def test_new_bytes_with_the_same_article_keep_the_stored_provenance(session: Session) -> None:
    store(session, make_record(provenance=(WARC,)))
    again = make_record(provenance=({**WARC, "offset": 99},), fetched_at=FETCHED + timedelta(1))

    assert store(session, again, seen_at=LATER).unchanged == [URL]
    assert stored_record(session).provenance == (WARC,)
    assert stored_record(session).fetched_at == FETCHED

    edited = replace(again, body="修改后的正文")
    assert store(session, edited, seen_at=LATER).updated == [URL]
    assert stored_record(session).provenance == edited.provenance


@pytest.mark.parametrize("mobile_first", [True, False], ids=["mobile-first", "desktop-first"])
def test_the_desktop_rendering_wins_whichever_arrives_first(
    session: Session, mobile_first: bool
) -> None:
    desktop = make_record(template="desktop")
    mobile = make_record(template="mobile", tags=(), icp="", body="手机版正文")
    first, second = (mobile, desktop) if mobile_first else (desktop, mobile)
    store(session, first)
    result = store(session, second, seen_at=LATER)

    assert stored_record(session) == desktop
    assert (result.updated if mobile_first else result.outranked) == [URL]
    article = get_article(session, URL)
    assert article is not None
    assert article.last_seen_at == LATER


def test_a_text_rendering_ranks_between_desktop_and_mobile(session: Session) -> None:
    store(session, make_record(template="mobile", body="手机版正文"))
    assert store(session, make_record(template="text"), seen_at=LATER).updated == [URL]
    assert store(session, make_record(template="mobile"), seen_at=LATER).outranked == [URL]
    assert store(session, make_record(template="desktop", title="新"), seen_at=LATER).updated == [
        URL
    ]
    assert stored_record(session).template == "desktop"


def test_datetimes_come_back_aware_in_their_zones(session: Session) -> None:
    # Given in other zones, to show the instant is kept and the zone is the column's.
    store(
        session,
        make_record(
            published_at=datetime(2023, 12, 24, 10, 32, 2, tzinfo=UTC),
            fetched_at=datetime(2024, 1, 20, 11, 0, tzinfo=BEIJING),
        ),
    )

    article = get_article(session, URL)
    assert article is not None
    assert article.published_at.isoformat() == "2023-12-24T18:32:02+08:00"
    assert article.fetched_at.isoformat() == "2024-01-20T03:00:00+00:00"
    assert article.first_seen_at.isoformat() == "2024-01-20T03:05:00+00:00"


def test_naive_datetimes_are_refused(session: Session) -> None:
    naive = datetime(2023, 12, 24, 18, 32, 2)
    with pytest.raises(ValueError, match="naive"):
        make_record(published_at=naive)
    with pytest.raises(ValueError, match="naive"):
        upsert_articles(session, [make_record()], seen_at=naive)

    # The column type refuses them too, whatever the way in.
    store(session, make_record())
    with pytest.raises(StatementError) as raised:
        session.execute(update(Article).values(last_seen_at=naive))
    assert isinstance(raised.value.orig, ValueError)


def test_the_last_record_of_a_repeated_url_wins(session: Session) -> None:
    other = f"{URL[:-5]}9.html"
    result = store(session, make_record(), make_record(url=other), make_record(title="后来的标题"))

    assert (result.new, result.updated, result.unchanged) == ([URL, other], [], [])
    assert count_articles(session) == 2
    assert stored_record(session).title == "后来的标题"


def test_writers_racing_on_one_url_store_one_row(engine: Engine) -> None:
    sessions = session_factory(engine)
    rival = make_record(title="另一个版本")

    def rival_writer() -> UpsertResult:
        with sessions() as session:
            return store(session, rival, seen_at=LATER)

    with sessions() as first, ThreadPoolExecutor(max_workers=1) as pool:
        upsert_articles(first, [make_record()], seen_at=SEEN)  # inserted, not yet committed
        rival_result = pool.submit(rival_writer)
        # The rival waits for our write lock, then finds the URL stored.
        time.sleep(0.5)
        first.commit()
        assert rival_result.result(timeout=60).updated == [URL]

    with sessions() as session:
        assert count_articles(session) == 1
        assert stored_record(session) == rival
        article = get_article(session, URL)
        assert article is not None
        assert article.first_seen_at == SEEN
        assert article.last_seen_at == LATER


def test_iter_article_rows_streams_everything_in_id_order(session: Session) -> None:
    urls = [f"{URL[:-5]}{n}.html" for n in (3, 1, 2)]
    for url in urls:
        store(session, make_record(url=url))

    rows = list(iter_article_rows(session, batch_size=2))

    assert [row["url"] for row in rows] == urls
    assert [row["id"] for row in rows] == sorted(row["id"] for row in rows)
    assert rows[0]["tags"] == ["工作总结", "团委"]


def test_get_article_of_an_unknown_url_is_none(session: Session) -> None:
    assert get_article(session, URL) is None
    assert count_articles(session) == 0


def test_migrations_create_exactly_the_models_schema(engine: Engine) -> None:
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


HEAD = ScriptDirectory(str(Path(storage.__file__).parent / "migrations")).get_current_head()


def test_migrating_again_changes_nothing(db_url: str) -> None:
    engine = open_database(db_url)
    with session_factory(engine)() as session:
        store(session, make_record())

    migrate(engine)
    open_database(db_url).dispose()

    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == HEAD
    with session_factory(engine)() as session:
        assert stored_record(session) == make_record()
    engine.dispose()


def test_processes_starting_together_create_the_schema_once(db_url: str) -> None:
    engines = [make_engine(db_url) for _ in range(4)]
    start = threading.Barrier(len(engines))

    def start_up(engine: Engine) -> None:
        start.wait()
        migrate(engine)

    try:
        with ThreadPoolExecutor(max_workers=len(engines)) as pool:
            list(pool.map(start_up, engines))
        assert inspect(engines[0]).has_table("articles")
    finally:
        for engine in engines:
            engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "nosuchdatabase://host/archive",
        "postgresql+nosuchdriver://host/archive",
        "postgresql+psycopg://user:s3cret@host:port/archive",
    ],
)
def test_a_malformed_url_is_a_storage_error(url: str) -> None:
    with pytest.raises(StorageError, match=r"^malformed DATABASE_URL '") as raised:
        make_engine(url)
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),
        (
            "postgresql+psycopg://user:s3/c@ret@host:port/x",
            "postgresql+psycopg://user:***@host:port/x",
        ),
        ("redis://user@127.0.0.1:6379/0", "redis://user@127.0.0.1:6379/0"),
        ("not a url", "not a url"),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    """Any text: the URLs of messages may not parse."""
    assert hide_password(url) == shown


def test_an_unreachable_database_is_a_one_line_storage_error() -> None:
    engine = make_engine(UNREACHABLE_URL)
    with pytest.raises(StorageError) as raised:
        check_connection(engine)

    message = str(raised.value)
    assert message.startswith("cannot connect to postgresql+psycopg://nobody:***@127.0.0.1:1/x: ")
    assert "s3cret" not in message
    assert "\n" not in message
    with pytest.raises(StorageError, match=r"^cannot connect to"):
        open_database(UNREACHABLE_URL)


def test_the_sqlite_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "data" / "archive.sqlite3"

    open_database(f"sqlite:///{path}").dispose()

    assert path.is_file()


def test_sqlite_connections_wait_for_each_other(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_in_one_batch_too_the_desktop_rendering_wins(session: Session) -> None:
    desktop = make_record(template="desktop")
    mobile = make_record(template="mobile", tags=(), body="手机版正文")
    result = store(session, mobile, desktop)
    assert result.new == [URL]
    assert result.outranked == [URL]  # the mobile copy, set aside within the batch
    assert stored_record(session) == desktop


def test_replayed_old_pages_widen_the_seen_times_but_never_move_them_forward(
    session: Session,
) -> None:
    store(session, make_record(), seen_at=SEEN)
    older = make_record(fetched_at=SEEN - timedelta(days=400))
    assert upsert_articles(session, [older]).unchanged == [URL]  # seen when it was fetched
    session.commit()
    article = get_article(session, URL)
    assert article is not None
    assert article.first_seen_at == SEEN - timedelta(days=400)
    assert article.last_seen_at == SEEN
    assert article.fetched_at == FETCHED


def test_an_older_fetch_never_replaces_a_newer_one(session: Session) -> None:
    store(session, make_record(body="新版正文", fetched_at=FETCHED))
    older = make_record(body="旧版正文", fetched_at=FETCHED - timedelta(days=30))
    assert store(session, older, seen_at=LATER).outranked == [URL]
    assert stored_record(session).body == "新版正文"
    # The same fetch extracted again (an improved extraction) does replace it.
    again = make_record(body="新版正文，提取改进", fetched_at=FETCHED)
    assert store(session, again, seen_at=LATER).updated == [URL]


def test_an_article_fetched_in_a_reading_s_first_second_is_not_taken_for_an_older_one(
    session: Session,
) -> None:
    # The interrupted run starts at .7 s and archives an article within that second: its
    # first sighting is the WARC-Date, to the second.
    started = datetime(2026, 1, 5, 12, 0, 0, 700_000, tzinfo=UTC)
    assert begin_reading(session, "http://www.ylwt22.com/zongjie/", started) is None
    first_seen = started.replace(microsecond=0)
    # The next run sees the reading unfinished; the article is not older than it, so the
    # pages below it are read again.
    pending = begin_reading(session, "http://www.ylwt22.com/zongjie/", started + timedelta(hours=1))
    assert pending is not None
    assert not first_seen < pending
    # Once the reading is complete, the next one starts afresh.
    finish_reading(session, ["http://www.ylwt22.com/zongjie/"])
    assert (
        begin_reading(session, "http://www.ylwt22.com/zongjie/", started + timedelta(hours=2))
        is None
    )
