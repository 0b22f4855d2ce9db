"""`scrapy export -o FILE [-t csv|jsonl]`: write the archive to a CSV or JSON Lines file."""

from __future__ import annotations

import os
import sys
import uuid
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand

from crawler.errors import CommandError, ReportsErrors, UsageFailure
from storage.errors import StorageError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator

_SUFFIX_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".jl": "jsonl"}


class Command(ReportsErrors, ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    # Progress and errors are this command's own stderr output; no Scrapy log.
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "-o FILE [-t csv|jsonl] [--no-duplicates]"

    def short_desc(self) -> str:
        return "Export the archived articles to CSV or JSON Lines"

    def long_desc(self) -> str:
        return (
            "Export every article stored in DATABASE_URL, in the order they were first "
            "stored. CSV is UTF-8 with a BOM, so that Excel shows the Chinese text, and "
            "joins tags and page URLs with '|'. FILE is replaced only once the export "
            "has succeeded."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "-o", "--output", metavar="FILE", help="file to write, or - for standard output"
        )
        parser.add_argument(
            "-t",
            "--format",
            metavar="FORMAT",
            help="csv or jsonl; by default taken from FILE's extension (.csv, .jsonl, .jl)",
        )
        parser.add_argument(
            "--no-duplicates",
            action="store_true",
            help="only the originals: leave out the articles that are reprints of another",
        )

    def execute(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        database_url = self.settings["DATABASE_URL"]
        if args:
            raise UsageFailure(f"unexpected arguments: {' '.join(args)}")
        fmt = _choose_format(opts.output, opts.format)
        try:
            export = partial(_export, database_url, fmt=fmt, originals_only=opts.no_duplicates)
            if opts.output == "-":
                count = _export_to_stdout(export)
            else:
                count = _export_to_file(export, Path(opts.output))
        except StorageError as exc:
            raise CommandError(str(exc)) from None
        except BrokenPipeError:
            # The reader went away (`... | head -1`): it has what it wanted. Stop quietly
            # and successfully, as Unix tools do in a pipeline.
            _silence_stdout()
        else:
            where = "standard output" if opts.output == "-" else opts.output
            print(f"exported {count} articles to {where}", file=sys.stderr)


def _choose_format(output: str | None, requested: str | None) -> str:
    from storage.export import FORMATS  # noqa: PLC0415  (every command imports this module)

    if output is None:
        raise UsageFailure("missing -o FILE (use -o - for standard output)")
    if requested is not None:
        if requested.lower() not in FORMATS:
            raise UsageFailure(f"unknown format {requested!r}: use -t csv or -t jsonl")
        return requested.lower()
    if output == "-":
        raise UsageFailure("-o - needs the format: add -t csv or -t jsonl")
    fmt = _SUFFIX_FORMATS.get(Path(output).suffix.lower())
    if fmt is None:
        raise UsageFailure(
            f"cannot tell the format of {output}: name it .csv, .jsonl or .jl, or add -t"
        )
    return fmt


def _export_to_file(export: Callable[[IO[bytes]], int], target: Path) -> int:
    with _replace_on_success(target) as out:
        return export(out)


def _export_to_stdout(export: Callable[[IO[bytes]], int]) -> int:
    try:
        count = export(sys.stdout.buffer)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:  # a full disk, a closed descriptor
        _silence_stdout()
        raise CommandError(f"cannot write to standard output: {exc.strerror or exc}") from exc
    return count


def _silence_stdout() -> None:
    """Keep Python from failing again, with a traceback, when it flushes what is left
    for standard output as it exits."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _export(database_url: str, out: IO[bytes], *, fmt: str, originals_only: bool) -> int:
    from storage.db import open_database, session_factory  # noqa: PLC0415
    from storage.export import export_articles  # noqa: PLC0415

    engine = open_database(database_url)
    try:
        with session_factory(engine, readonly=True)() as session:
            return export_articles(
                session, out, fmt, progress=_report_progress, originals_only=originals_only
            )
    finally:
        engine.dispose()


def _report_progress(done: int, total: int) -> None:
    print(f"exporting: {done}/{total} articles", file=sys.stderr, flush=True)


@contextmanager
def _replace_on_success(target: Path) -> Iterator[IO[bytes]]:
    """Write to a temporary file next to `target`, renamed over it only on success.

    A failed or interrupted export thus never leaves a half-written file, and the
    rename is atomic because both names are on the same file system.
    """
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        out = partial.open("xb")
    except OSError as exc:
        raise _cannot_write(target, exc) from exc
    try:
        with out:
            yield out
        partial.replace(target)
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _cannot_write(target, exc) from exc
        raise


def _cannot_write(target: Path, exc: OSError) -> CommandError:
    return CommandError(f"cannot write {target}: {exc.strerror or exc}")
