"""Reprints linked to their originals in the database: each kind of reprint, what is
not a reprint, the order of arrival, and two writers at once."""

from __future__ import annotations

import csv
import multiprocessing
import random
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pipelines.dedup import signature
from pipelines.provenance import content_hash
from storage.db import open_database, session_factory
from storage.models import BEIJING, Article
from storage.repository import ArticleRecord, upsert_articles
from tests.support.crawl import MIRROR, replay, scrapy
from tests.support.dedup_set import build
from tests.support.pages import expected_records
from tests.support.records import make_record
from tests.test_crawl import assert_ok

RECORDS = {r["url"]: r for r in expected_records()}
ORIGINAL = RECORDS["http://www.ylwt22.com/gongzuozongjie/2022/1228/305370.html"]
OTHER = RECORDS["http://www.ylwt22.com/gongzuozongjie/2024/0105/319543.html"]
THIRD = RECORDS["http://www.ylwt22.com/dangtuangongzuo/2023/1009/316197.html"]["body"]
BASE_TIME = datetime(2022, 12, 28, 8, 56, 20, tzinfo=BEIJING)


def article(
    aid: int, body: str, *, days: int = 0, category: str = "gongzuozongjie"
) -> ArticleRecord:
    url = f"http://www.ylwt22.com/{category}/2023/0101/{aid}.html"
    return make_record(
        url,
        aid=aid,
        body=body,
        published_at=BASE_TIME + timedelta(days=days),
        content_hash=content_hash(body),
        signature=signature(body),
    )


def store(session: Session, *records: ArticleRecord) -> None:
    upsert_articles(session, records)
    session.commit()


def links(session: Session) -> dict[int, tuple[int | None, float | None]]:
    """aid -> (aid of its original, similarity), for every stored article."""
    by_url = {a.url: a for a in session.scalars(select(Article))}
    return {
        a.aid: (by_url[a.duplicate_of].aid if a.duplicate_of else None, a.similarity)
        for a in by_url.values()
    }


def lines(body: str) -> list[str]:
    return body.split("\n")


BODY = ORIGINAL["body"]
REPRINTS = {
    "exact_copy": BODY,
    "years_moved": re.sub(r"20(\d\d)", lambda m: f"20{int(m[1]) + 1}", BODY),
    "sentence_edited": BODY.replace("坚持以人民为中心的工作导向", "始终坚持以读者为中心的服务导向"),
    "paragraph_added": "\n".join([*lines(BODY), lines(OTHER["body"])[3]]),
    "paragraph_dropped": "\n".join(lines(BODY)[:5] + lines(BODY)[6:]),
    "title_changed": "\n".join(["2023年县级公共图书馆年度工作总结", *lines(BODY)[1:]]),
}


@pytest.mark.parametrize("kind", list(REPRINTS))
def test_each_kind_of_reprint_is_linked_to_its_original(session: Session, kind: str) -> None:
    store(session, article(305370, BODY), article(320001, REPRINTS[kind], days=200))
    original, similarity = links(session)[320001]
    assert original == 305370
    assert similarity is not None
    assert similarity == 1.0 if kind in {"exact_copy", "years_moved"} else 0.6 <= similarity < 1.0
    assert links(session)[305370] == (None, None)


def test_documents_that_only_share_a_template_are_not_linked(session: Session) -> None:
    # A work summary that borrows two paragraphs of another and closes the same way.
    borrowed = [*lines(THIRD)[:6], *lines(BODY)[1:3], *lines(THIRD)[6:], lines(BODY)[-1]]
    store(session, article(305370, BODY), article(319543, OTHER["body"], days=300),
          article(320002, "\n".join(borrowed), days=400))  # fmt: skip
    assert links(session) == {305370: (None, None), 319543: (None, None), 320002: (None, None)}


def test_a_reprint_arriving_first_is_pointed_at_the_original_when_it_comes(
    session: Session,
) -> None:
    store(session, article(320001, REPRINTS["years_moved"], days=365))
    store(session, article(320002, REPRINTS["sentence_edited"], days=400))
    assert links(session) == {320001: (None, None), 320002: (320001, links(session)[320002][1])}
    store(session, article(305370, BODY))  # the original, published first, comes last
    found = links(session)
    assert found[305370] == (None, None)
    assert found[320001] == (305370, 1.0)
    assert found[320002][0] == 305370


def test_on_the_same_date_the_lowest_id_is_the_original(session: Session) -> None:
    store(session, article(320009, BODY), article(320003, REPRINTS["sentence_edited"]))
    assert links(session)[320009][0] == 320003
    assert links(session)[320003] == (None, None)


def test_a_reprint_rewritten_into_another_document_leaves_the_group(session: Session) -> None:
    store(session, article(305370, BODY), article(320001, REPRINTS["years_moved"], days=30),
          article(320002, REPRINTS["paragraph_added"], days=60))  # fmt: skip
    assert links(session)[320001][0] == 305370
    # The original itself is edited into something else: its reprints stay together.
    store(session, article(305370, OTHER["body"]))
    found = links(session)
    assert found[305370] == (None, None)
    assert found[320001] == (None, None)
    assert found[320002][0] == 320001


def test_groups_a_new_article_bridges_become_one(session: Session) -> None:
    # The first two thirds and the last two thirds of a document: each is the same
    # document as the whole, but not as the other (they share a third).
    first, last = "\n".join(lines(BODY)[:12]), "\n".join(lines(BODY)[6:])
    store(session, article(320001, first, days=10), article(320002, last, days=5))
    assert links(session) == {320001: (None, None), 320002: (None, None)}
    store(session, article(305370, BODY))
    found = links(session)
    assert found[305370] == (None, None)
    assert {found[320001][0], found[320002][0]} == {305370}


def test_the_snapshots_reprint_is_linked_in_a_crawl(sqlite_url: str) -> None:
    assert_ok(replay(sqlite_url, MIRROR))
    engine = open_database(sqlite_url)
    with session_factory(engine)() as session:
        rows = {a.url: a for a in session.scalars(select(Article))}
    engine.dispose()
    groups: dict[str, list[str]] = {}
    for record in expected_records():
        if record["dup_group"]:
            groups.setdefault(record["dup_group"], []).append(record["url"])
    for urls in groups.values():
        original = min(urls, key=lambda u: (rows[u].published_at, rows[u].aid))
        for url in urls:
            expected_link = None if url == original else original
            assert rows[url].duplicate_of == expected_link
    # Everything else stands alone.
    grouped = {u for urls in groups.values() for u in urls}
    assert all(a.duplicate_of is None for u, a in rows.items() if u not in grouped)


def test_export_carries_the_links_and_can_leave_reprints_out(
    sqlite_url: str, tmp_path: Path
) -> None:
    assert_ok(replay(sqlite_url, MIRROR))
    everything, originals = tmp_path / "all.csv", tmp_path / "originals.csv"
    env = {"DATABASE_URL": sqlite_url}
    assert_ok(scrapy("export", "-o", str(everything), env=env))
    assert_ok(scrapy("export", "-o", str(originals), "--no-duplicates", env=env))
    with everything.open(encoding="utf-8-sig") as f:
        rows = {row["url"]: row for row in csv.DictReader(f)}
    with originals.open(encoding="utf-8-sig") as f:
        kept = [row["url"] for row in csv.DictReader(f)]
    reprint = rows["http://www.ylwt22.com/xindetihui/2023/0825/314577.html"]
    assert reprint["duplicate_of"] == "http://www.ylwt22.com/xindetihui/2022/0825/300622.html"
    assert reprint["similarity"] == "1.0"
    assert rows[reprint["duplicate_of"]]["duplicate_of"] == ""
    assert sorted(kept) == sorted(url for url, row in rows.items() if not row["duplicate_of"])
    assert len(kept) == len(rows) - 1


# --- two writers at once ----------------------------------------------------------------


def _writer(database_url: str, rounds: list[ArticleRecord], start: object) -> None:
    engine = open_database(database_url)
    with session_factory(engine)() as session:
        for record in rounds:
            # Both writers store at the same moment; a writer that died fails the test.
            start.wait(timeout=60)  # type: ignore[attr-defined]
            upsert_articles(session, [record])
            session.commit()
    engine.dispose()


def test_two_processes_storing_reprints_at_once_agree_on_the_original(db_url: str) -> None:
    open_database(db_url).dispose()
    # Each round, the two writers store a copy of one document at the same moment:
    # whichever commits second must see the first and link to it.
    bases = [r["body"] for r in expected_records() if r["dup_group"] is None]
    moved = [re.sub(r"\d", "9", body) for body in bases]
    first = [article(400000 + 10 * n, body, days=n) for n, body in enumerate(bases)]
    second = [article(400001 + 10 * n, body, days=n) for n, body in enumerate(moved)]
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    writers = [
        context.Process(target=_writer, args=(db_url, rounds, start)) for rounds in (first, second)
    ]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
        assert process.exitcode == 0
    engine: Engine = open_database(db_url)
    with session_factory(engine)() as session:
        found = links(session)
    engine.dispose()
    assert len(found) == 2 * len(bases)
    # Published the same day: the lower id, the first writer's, is always the original.
    for original in first:
        assert found[original.aid] == (None, None)
        assert found[original.aid + 1] == (original.aid, 1.0)


# --- the labelled set, end to end --------------------------------------------------------


def test_the_archive_links_the_labelled_set_in_any_order_of_arrival(db_url: str) -> None:
    docs, pairs = build()
    arrivals = list(docs)
    random.Random(7).shuffle(arrivals)  # originals often after their reprints
    engine = open_database(db_url)
    with session_factory(engine)() as session:
        for start in range(0, len(arrivals), 40):
            batch = [
                make_record(
                    doc.url,
                    aid=int(doc.url.rsplit("/", 1)[1].removesuffix(".html")),
                    title=doc.title,
                    category=doc.category,
                    published_at=doc.published_at,
                    body=doc.body,
                    content_hash=content_hash(doc.body),
                    signature=signature(doc.body),
                )
                for doc in arrivals[start : start + 40]
            ]
            store(session, *batch)
        rows = {a.url: a for a in session.scalars(select(Article))}
    engine.dispose()
    root = {url: row.duplicate_of or url for url, row in rows.items()}
    linked = [root[p.a] == root[p.b] for p in pairs]
    true_positive = sum(1 for p, got in zip(pairs, linked, strict=True) if got and p.duplicate)
    positives = sum(p.duplicate for p in pairs)
    recall = true_positive / positives
    precision = true_positive / max(1, sum(linked))
    assert recall >= 0.95, recall
    assert precision >= 0.99, precision
    # Every group's original is its member published first, and all point straight at it.
    for row in rows.values():
        if row.duplicate_of is not None:
            original = rows[row.duplicate_of]
            assert original.duplicate_of is None
            assert (original.published_at, original.aid) <= (row.published_at, row.aid)
