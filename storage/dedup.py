"""Reprints linked to their originals, through a locality-sensitive index kept in the
database.

Each article's MinHash signature is cut into bands; every band is hashed to a bucket
and stored in ``lsh_buckets``. Articles sharing a bucket are candidates; a candidate
whose estimated Jaccard similarity reaches THRESHOLD is the same document, and so is an
article with the same normalised body (``content_hash``). Linked articles form a group
whose original is the one published first (on a tie, the lowest id in its URL); every
other member points at it. Finding candidates is an indexed lookup per band, so the
cost per article stays flat as the archive grows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import numpy as np
from datasketch import MinHashLSH
from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from storage.models import Article, LshBucket

# A reprint shares at least 80% of its text with its original; for two texts of
# about the same length that is a Jaccard similarity of 0.8/1.2 ≈ 0.67. The threshold
# sits below that, so that MinHash's estimation error misses such a reprint only 0.3%
# of the time, and far above documents that only share a template or a few paragraphs
# (at most 0.37 in the labelled set): see bench/dedup_quality.py.
THRESHOLD = 0.55
# Missing a reprint costs more than checking one candidate too many.
_LSH_WEIGHTS = (0.3, 0.7)


def estimate(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of two signatures: the share of equal slots."""
    return float(np.mean(np.frombuffer(a, "<u4") == np.frombuffer(b, "<u4")))


@cache
def _bands(num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) that best separate pairs above and below THRESHOLD."""
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=num_perm, weights=_LSH_WEIGHTS)
    return lsh.b, lsh.r


def buckets(signature: bytes) -> list[tuple[int, int]]:
    """(band, bucket) of each band of a signature; the bucket is a signed 64-bit hash
    of the band's values, to fit a BIGINT column."""
    values = np.frombuffer(signature, "<u4")
    bands, rows = _bands(len(values))
    return [
        (
            band,
            int.from_bytes(
                hashlib.blake2b(values[band * rows : (band + 1) * rows].tobytes(), digest_size=8)
                .digest(),
                "little",
                signed=True,
            ),
        )
        for band in range(bands)
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Member:
    id: int
    url: str
    published_at: datetime
    aid: int | None
    signature: bytes | None
    content_hash: str
    duplicate_of: str | None
    similarity: float | None

    @property
    def seniority(self) -> tuple[datetime, float, str]:
        # Published first; on a tie, the lowest id in the URL; the URL settles the rest.
        return self.published_at, float("inf") if self.aid is None else self.aid, self.url

    def same_document(self, other: _Member) -> bool:
        if self.content_hash == other.content_hash:
            return True
        if self.signature is None or other.signature is None:
            return False
        return estimate(self.signature, other.signature) >= THRESHOLD


def index_signatures(session: Session, ids: Sequence[int]) -> None:
    """(Re)write the LSH buckets of the articles ``ids`` from their signatures."""
    session.execute(delete(LshBucket).where(LshBucket.article_id.in_(ids)))
    rows = session.execute(
        select(Article.id, Article.signature).where(
            Article.id.in_(ids), Article.signature.is_not(None)
        )
    )
    entries = [
        {"band": band, "bucket": bucket, "article_id": article_id}
        for article_id, signature in rows
        if signature is not None
        for band, bucket in buckets(signature)
    ]
    if entries:
        session.execute(insert(LshBucket), entries)


def relink(session: Session, urls: Iterable[str]) -> None:
    """Bring the duplicate links around the articles at ``urls`` up to date: each
    joins the group of every article it is the same document as, groups it joins
    become one, a group it has left is split where nothing holds it together, and
    every group's original is the member published first.

    Call it in the transaction that stored the articles, after index_signatures."""
    seeds = _members(session, Article.url.in_(list(urls)))
    if not seeds:
        return
    # What a candidate shares with a seed: an LSH bucket, or the normalised body.
    by_bucket: dict[tuple[int, int], list[int]] = {}
    by_body: dict[str, list[int]] = {}
    for seed in seeds.values():
        by_body.setdefault(seed.content_hash, []).append(seed.id)
        for key in buckets(seed.signature) if seed.signature else ():
            by_bucket.setdefault(key, []).append(seed.id)
    nodes = dict(seeds)
    pairs: set[tuple[int, int]] = set()
    for ids in (*by_bucket.values(), *by_body.values()):
        pairs |= {(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]}
    nodes |= _members(session, Article.content_hash.in_(by_body))
    pairs |= {
        (seed_id, member.id)
        for member in nodes.values()
        for seed_id in by_body.get(member.content_hash, ())
    }
    if by_bucket:
        shared = session.execute(
            select(LshBucket.band, LshBucket.bucket, LshBucket.article_id).where(
                _in_buckets(by_bucket)
            )
        ).all()
        nodes |= _members(session, Article.id.in_({row.article_id for row in shared}))
        pairs |= {
            (seed_id, row.article_id)
            for row in shared
            for seed_id in by_bucket[(row.band, row.bucket)]
        }
    edges = {(a, b) for a, b in pairs if a != b and nodes[a].same_document(nodes[b])}
    # The groups the seeds and the articles they match belong to, re-examined whole.
    linked = set(seeds) | {id_ for edge in edges for id_ in edge}
    roots = {nodes[id_].duplicate_of or nodes[id_].url for id_ in linked}
    grouped = _members(session, or_(Article.url.in_(roots), Article.duplicate_of.in_(roots)))
    nodes |= grouped
    by_root: dict[str, list[int]] = {}
    for member in grouped.values():
        by_root.setdefault(member.duplicate_of or member.url, []).append(member.id)
    for ids in by_root.values():
        edges |= _confirmed(nodes, ids)
    for component in _components(nodes, edges):
        original = min(component, key=lambda m: m.seniority)
        for member in component:
            link, similarity = _link(member, original)
            if (member.duplicate_of, member.similarity) != (link, similarity):
                session.execute(
                    update(Article)
                    .where(Article.id == member.id)
                    .values(duplicate_of=link, similarity=similarity)
                )


def _in_buckets(keys: Iterable[tuple[int, int]]) -> ColumnElement[bool]:
    """band = b AND bucket IN (…), one per band. Spelled this way rather than as
    (band, bucket) IN (…), the primary key's index serves every term: PostgreSQL
    plans a long row-value IN list as a scan of the whole table."""
    by_band: dict[int, list[int]] = {}
    for band, bucket in keys:
        by_band.setdefault(band, []).append(bucket)
    return or_(
        *(
            and_(LshBucket.band == band, LshBucket.bucket.in_(buckets))
            for band, buckets in sorted(by_band.items())
        )
    )


_COLUMNS = (
    Article.id,
    Article.url,
    Article.published_at,
    Article.aid,
    Article.signature,
    Article.content_hash,
    Article.duplicate_of,
    Article.similarity,
)


def _members(session: Session, condition: ColumnElement[bool]) -> dict[int, _Member]:
    return {row.id: _Member(*row) for row in session.execute(select(*_COLUMNS).where(condition))}


def _confirmed(nodes: dict[int, _Member], ids: Sequence[int]) -> set[tuple[int, int]]:
    """Pairs among ``ids`` that are the same document."""
    return {
        (a, b)
        for i, a in enumerate(ids)
        for b in ids[i + 1 :]
        if a != b and nodes[a].same_document(nodes[b])
    }


def _components(nodes: dict[int, _Member], edges: set[tuple[int, int]]) -> list[list[_Member]]:
    """Groups of articles connected by being the same document (union-find)."""
    parent = {id_: id_ for id_ in nodes}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in edges:
        parent[root(a)] = root(b)
    groups: dict[int, list[_Member]] = {}
    for id_, member in nodes.items():
        groups.setdefault(root(id_), []).append(member)
    return list(groups.values())


def _link(member: _Member, original: _Member) -> tuple[str | None, float | None]:
    if member.id == original.id:
        return None, None
    if member.content_hash == original.content_hash:
        return original.url, 1.0
    if member.signature is None or original.signature is None:
        return original.url, None
    return original.url, round(estimate(member.signature, original.signature), 4)
