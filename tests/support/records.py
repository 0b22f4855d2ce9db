"""ArticleRecord values for storage and export tests."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from storage.models import BEIJING
from storage.repository import ArticleRecord

URL = "http://www.ylwt22.com/dangtuangongzuo/2023/1224/320094.html"
FETCHED = datetime(2024, 1, 20, 3, 0, tzinfo=UTC)


def make_record(url: str = URL, **changes: Any) -> ArticleRecord:
    body = "一、提高政治站位\n二、狠抓工作落实，推动“青年大学习”走深走实"
    record = ArticleRecord(
        url=url,
        aid=320094,
        title="2023年团委工作总结",
        category="党团工作",
        published_at=datetime(2023, 12, 24, 18, 32, 2, tzinfo=BEIJING),
        source="",
        author="",
        tags=("工作总结", "团委"),
        body=body,
        copyright_notice="本文来源于网络，版权归原作者所有。",
        rights_holder="原作者",
        site_name="十号范文网",
        site_copyright="Copyright © 十号范文网",
        icp="京ICP备00000000号",
        fetched_at=FETCHED,
        content_hash=hashlib.sha256(body.encode()).hexdigest(),
        extractor_version="1",
        page_urls=(url, url.replace(".html", "_2.html")),
    )
    return replace(record, **changes)
