"""How a command ends: its exit statuses, named once for every command."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
"""The command did not do its work: a crawl that did not finish, an export that failed."""
EXIT_USAGE = 2
"""Bad options or settings, as argparse and Scrapy's own UsageError have it."""
EXIT_RUN_IN_PROGRESS = 75
"""Another run holds the archive's run lock (EX_TEMPFAIL): a scheduler can tell a
skipped run from a failed one."""
