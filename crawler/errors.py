"""How a command ends: its exit statuses, named once for every command, and the one
error type a command reports."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

EXIT_OK = 0
EXIT_FAILED = 1
"""The command did not do its work: a crawl that did not finish, an export that failed."""
EXIT_USAGE = 2
"""Bad options or settings, as argparse and Scrapy's own UsageError have it."""
EXIT_RUN_IN_PROGRESS = 75
"""Another run holds the archive's run lock (EX_TEMPFAIL): a scheduler can tell a
skipped run from a failed one."""


class CommandError(Exception):
    """What a command reports: one ``error:`` line, and the status it exits with. Every
    command of the project raises this for what it reports, and ReportsErrors turns it
    into the line and the status."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageFailure(CommandError):
    """Bad arguments or settings: the command did not start."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


class ReportsErrors:
    """For a ``scrapy`` command: ``run`` calls ``execute`` and reports a CommandError as
    its one ``error:`` line on standard error, and its exit status."""

    exitcode: int

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        try:
            self.execute(args, opts)
        except CommandError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            self.exitcode = exc.exit_code

    def execute(self, args: list[str], opts: argparse.Namespace) -> None:
        raise NotImplementedError
