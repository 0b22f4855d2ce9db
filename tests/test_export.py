"""CSV and JSON Lines export, and the `scrapy export` command run as users run it."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from storage.db import open_database, session_factory
from storage.export import EXPORT_COLUMNS, export_articles
from storage.models import BEIJING
from storage.repository import ArticleRecord, upsert_articles
from tests.support.records import make_record

PROJECT_ROOT = Path(__file__).parents[1]
URL = "http://www.ylwt22.com/xindetihui/2023/0825/314577.html"
SEEN = datetime(2024, 1, 20, 3, 5, tzinfo=UTC)
# A body that CSV must quote: line breaks, a comma and double quotes.
TRICKY_BODY = '第一段：学习“二十大”精神。\n第二段, 含逗号与"引号"。\r\n第三段'
UNREACHABLE_URL = "postgresql+psycopg://nobody@127.0.0.1:1/x"
CSV_HEADER = ",".join(EXPORT_COLUMNS).encode() + b"\r\n"


def article(n: int = 1, **changes: Any) -> ArticleRecord:
    """Article ``n`` of the export tests, with a body that CSV must quote."""
    url = URL.replace(".html", f"{n}.html")
    return make_record(
        url,
        **{
            "title": "学习心得体会范文",
            "category": "心得体会",
            "source": "人民网",
            "author": "张三",
            "tags": ("心得体会", "学习"),
            "body": TRICKY_BODY,
            "content_hash": "0" * 64,
            **changes,
        },
    )


def store(session: Session, *records: ArticleRecord) -> None:
    upsert_articles(session, records, seen_at=SEEN)
    session.commit()


def export(session: Session, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    export_articles(session, out, fmt, **options)
    assert not out.closed
    return out.getvalue()


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(codecs.BOM_UTF8)
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def read_jsonl(data: bytes) -> list[dict[str, Any]]:
    # Split on "\n" only: str.splitlines would also split at U+2028 and friends.
    lines = data.decode("utf-8").split("\n")
    assert lines.pop() == ""
    return [json.loads(line) for line in lines]


def test_csv_reads_back_intact(session: Session) -> None:
    store(session, article(1), article(2, title="第二篇"))

    data = export(session, "csv")

    header, *rows = read_csv(data)
    assert header == list(EXPORT_COLUMNS)
    assert len(rows) == 2
    first = dict(zip(header, rows[0], strict=True))
    assert first["body"] == TRICKY_BODY
    assert first["title"] == "学习心得体会范文"
    assert first["site_name"] == "十号范文网"
    assert rows[1][header.index("title")] == "第二篇"
    assert data.startswith(codecs.BOM_UTF8 + CSV_HEADER)


def test_csv_joins_lists_and_writes_iso_datetimes(session: Session) -> None:
    store(session, article(fetched_at=datetime(2024, 1, 20, 11, 0, tzinfo=BEIJING)))

    header, row = read_csv(export(session, "csv"))

    cells = dict(zip(header, row, strict=True))
    assert cells["tags"] == "心得体会|学习"
    assert cells["page_urls"] == f"{article().url}|{article().url.replace('.html', '_2.html')}"
    assert cells["published_at"] == "2023-12-24T18:32:02+08:00"
    assert cells["fetched_at"] == "2024-01-20T03:00:00+00:00"
    assert cells["first_seen_at"] == cells["last_seen_at"] == "2024-01-20T03:05:00+00:00"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_cells_a_spreadsheet_would_run_as_formulas_are_defused_in_csv_only(
    session: Session, start: str
) -> None:
    formula = f'{start}HYPERLINK("http://example.invalid","点击")'
    store(session, article(title=formula, tags=(formula, "学习")))

    header, row = read_csv(export(session, "csv"))
    cells = dict(zip(header, row, strict=True))
    assert cells["title"] == "'" + formula
    assert cells["tags"] == f"'{formula}|学习"
    assert cells["author"] == "张三"
    assert cells["source"] == "人民网"

    (record,) = read_jsonl(export(session, "jsonl"))
    assert record["title"] == formula
    assert record["tags"] == [formula, "学习"]


# What NFKC, as spreadsheets apply it, folds into = + - @: full-width, small, superscript
# and subscript forms, and the like. Each begins a formula as its ASCII twin does.
LOOKALIKES = "＝＋－＠﹦﹢﹣﹫⁼⁺₌₊⩵⩶﬩"


@pytest.mark.parametrize("start", list(LOOKALIKES), ids=lambda c: f"U+{ord(c):04X}")
def test_look_alikes_of_formula_characters_are_defused_like_their_ascii_twins(
    session: Session, start: str
) -> None:
    formula = f'{start}HYPERLINK("http://example.invalid","点击")'
    store(session, article(title=formula, source=formula, tags=(formula, "学习"), body=formula))

    header, row = read_csv(export(session, "csv"))
    cells = dict(zip(header, row, strict=True))
    for name in ("title", "source", "body"):
        assert cells[name] == "'" + formula, name
    assert cells["tags"] == f"'{formula}|学习"
    (record,) = read_jsonl(export(session, "jsonl"))
    assert (record["title"], record["tags"][0]) == (formula, formula)  # JSON: as stored


@pytest.mark.parametrize("text", ["＃标题", "（一）标题", "−1 表示", "中文标题", " =1", "ａ"])
def test_other_characters_are_left_alone(session: Session, text: str) -> None:
    store(session, article(title=text))
    header, row = read_csv(export(session, "csv"))
    assert dict(zip(header, row, strict=True))["title"] == text


def test_jsonl_has_one_object_per_line_with_values_as_stored(session: Session) -> None:
    store(session, article(1), article(2))

    data = export(session, "jsonl")

    assert not data.startswith(codecs.BOM_UTF8)
    assert "十号范文网".encode() in data  # not \u escapes
    records = read_jsonl(data)
    assert len(records) == 2
    assert list(records[0]) == list(EXPORT_COLUMNS)
    assert records[0]["tags"] == ["心得体会", "学习"]
    assert records[0]["page_urls"] == list(article(1).page_urls)
    assert records[0]["body"] == TRICKY_BODY
    assert records[0]["published_at"] == "2023-12-24T18:32:02+08:00"
    assert records[0]["last_seen_at"] == "2024-01-20T03:05:00+00:00"
    assert records[1]["url"] == article(2).url


def test_articles_are_exported_in_the_order_they_were_stored(session: Session) -> None:
    for n in (3, 1, 2):
        store(session, article(n))

    urls = [record["url"] for record in read_jsonl(export(session, "jsonl"))]

    assert urls == [article(n).url for n in (3, 1, 2)]


def test_an_empty_archive_exports_just_the_header(session: Session) -> None:
    assert export(session, "csv") == codecs.BOM_UTF8 + CSV_HEADER
    assert export(session, "jsonl") == b""


@pytest.mark.parametrize(
    ("stored", "expected"),
    [(5, [(2, 5), (4, 5), (5, 5)]), (4, [(2, 4), (4, 4)]), (0, [(0, 0)])],
)
def test_progress_is_reported_every_n_rows_and_at_the_end(
    session: Session, stored: int, expected: list[tuple[int, int]]
) -> None:
    store(session, *(article(n) for n in range(stored)))
    calls: list[tuple[int, int]] = []

    count = export_articles(
        session,
        io.BytesIO(),
        "csv",
        progress=lambda done, total: calls.append((done, total)),
        progress_every=2,
    )

    assert count == stored
    assert calls == expected


def test_an_unknown_format_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="unknown export format 'xml'"):
        export(session, "xml")


# --- the `scrapy export` command ---------------------------------------------------------


def fill_database(url: str, *records: ArticleRecord) -> None:
    engine = open_database(url)
    with session_factory(engine)() as session:
        store(session, *records)
    engine.dispose()


def scrapy_export(*args: str, database_url: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "export", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_export_command_writes_csv(db_url: str, tmp_path: Path) -> None:
    fill_database(db_url, article(1), article(2))
    target = tmp_path / "out" / "articles.csv"
    target.parent.mkdir()

    run = scrapy_export("-o", str(target), database_url=db_url)

    assert run.returncode == 0, run.stderr.decode()
    assert run.stderr.decode().splitlines()[-1] == f"exported 2 articles to {target}"
    header, *rows = read_csv(target.read_bytes())
    assert header == list(EXPORT_COLUMNS)
    assert [row[0] for row in rows] == [article(1).url, article(2).url]
    assert os.listdir(target.parent) == ["articles.csv"]  # no temporary file left


@pytest.mark.parametrize("name", ["articles.jsonl", "articles.jl", "articles.txt"])
def test_export_command_writes_json_lines(sqlite_url: str, tmp_path: Path, name: str) -> None:
    fill_database(sqlite_url, article(1))
    target = tmp_path / name
    # The extension names the format, unless -t does.
    format_option = ["-t", "jsonl"] if name.endswith(".txt") else []

    run = scrapy_export("-o", str(target), *format_option, database_url=sqlite_url)

    assert run.returncode == 0, run.stderr.decode()
    (record,) = read_jsonl(target.read_bytes())
    assert record["url"] == article(1).url


def test_export_command_writes_to_stdout(sqlite_url: str) -> None:
    fill_database(sqlite_url, article(1), article(2))

    run = scrapy_export("-o", "-", "-t", "csv", database_url=sqlite_url)

    assert run.returncode == 0, run.stderr.decode()
    assert len(read_csv(run.stdout)) == 3
    assert run.stderr.decode().splitlines()[-1] == "exported 2 articles to standard output"


def test_export_command_takes_the_database_from_scrapy_settings(
    sqlite_url: str, tmp_path: Path
) -> None:
    fill_database(sqlite_url, article(1))
    target = tmp_path / "articles.csv"

    run = scrapy_export(
        "-o", str(target), "-s", f"DATABASE_URL={sqlite_url}", database_url="not a url"
    )

    assert run.returncode == 0, run.stderr.decode()
    assert len(read_csv(target.read_bytes())) == 2


def test_export_command_on_an_empty_database_writes_the_header(tmp_path: Path) -> None:
    target = tmp_path / "articles.csv"

    run = scrapy_export("-o", str(target), database_url=f"sqlite:///{tmp_path / 'new.sqlite3'}")

    assert run.returncode == 0, run.stderr.decode()
    assert target.read_bytes() == codecs.BOM_UTF8 + CSV_HEADER


@pytest.mark.parametrize(
    ("args", "database", "message"),
    [
        (["-o", "{out}/afile/articles.csv"], "good", "cannot write"),
        (["-o", "{out}/articles.csv", "-t", "xlsx"], "good", "unknown format 'xlsx'"),
        (["-o", "{out}/articles.xlsx"], "good", "cannot tell the format"),
        (["-o", "-"], "good", "needs the format"),
        ([], "good", "missing -o"),
        (["-o", "{out}/articles.csv"], "not a url", "malformed DATABASE_URL"),
        (["-o", "{out}/articles.csv"], "nosuchdatabase://x/y", "malformed DATABASE_URL"),
        (["-o", "{out}/articles.csv"], UNREACHABLE_URL, "cannot connect to"),
    ],
    ids=[
        "unwritable-path",
        "unknown-format",
        "unknown-extension",
        "stdout-without-format",
        "no-output",
        "malformed-url",
        "unknown-dialect",
        "unreachable-database",
    ],
)
def test_export_command_reports_bad_input_in_one_line(
    tmp_path: Path, args: list[str], database: str, message: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "afile").write_text("a regular file, so nothing can be created inside it")
    database_url = f"sqlite:///{tmp_path / 'archive.sqlite3'}" if database == "good" else database

    run = scrapy_export(*(arg.format(out=out) for arg in args), database_url=database_url)

    assert run.returncode != 0
    stderr = run.stderr.decode()
    assert "Traceback" not in stderr
    (line,) = stderr.splitlines()
    assert line.startswith("error: ")
    assert message in line
    assert os.listdir(out) == ["afile"]  # neither the export nor a temporary file


def test_a_failed_export_leaves_the_previous_file_alone(tmp_path: Path) -> None:
    target = tmp_path / "articles.csv"
    target.write_bytes(b"the previous export")

    run = scrapy_export("-o", str(target), database_url=UNREACHABLE_URL)

    assert run.returncode != 0
    assert target.read_bytes() == b"the previous export"
    assert os.listdir(tmp_path) == ["articles.csv"]


# --- standard output that cannot be written ------------------------------------------------


def test_export_to_a_full_disk_is_one_error_line(sqlite_url: str) -> None:
    fill_database(sqlite_url, *(article(n) for n in range(1, 40)))
    with open("/dev/full", "wb") as full:
        run = subprocess.run(
            [sys.executable, "-m", "scrapy", "export", "-o", "-", "-t", "csv"],
            cwd=PROJECT_ROOT, env={**os.environ, "DATABASE_URL": sqlite_url},
            stdout=full, stderr=subprocess.PIPE, timeout=120, check=False,
        )  # fmt: skip
    stderr = run.stderr.decode()
    assert run.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert "Exception ignored" not in stderr
    assert [line for line in stderr.splitlines() if not line.startswith("exporting: ")] == [
        "error: cannot write to standard output: No space left on device"
    ]


def test_export_into_a_pipe_closed_early_ends_quietly_with_success(sqlite_url: str) -> None:
    # More than a pipe holds (64 KiB), so the export is still writing when `head` leaves.
    fill_database(sqlite_url, *(article(n, body=TRICKY_BODY * 100) for n in range(1, 60)))
    export = subprocess.Popen(
        [sys.executable, "-m", "scrapy", "export", "-o", "-", "-t", "csv"],
        cwd=PROJECT_ROOT, env={**os.environ, "DATABASE_URL": sqlite_url},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert export.stdout is not None
    head = subprocess.run(["head", "-1"], stdin=export.stdout, capture_output=True, check=False)
    export.stdout.close()
    _, stderr = export.communicate(timeout=120)
    assert head.stdout.decode("utf-8-sig").startswith("url,aid,title,")
    assert export.returncode == 0, stderr.decode()
    assert [line for line in stderr.decode().splitlines() if not line.startswith("exporting")] == []
