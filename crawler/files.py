"""Reading saved pages from disk without ever blocking on something that is not a file.

A FIFO, a socket or a device can carry any name (``page.txt``, ``x.warc.gz``): opening a
FIFO for reading waits for a writer, and reading a device may never end. Only regular
files are read. The check is made on the open descriptor (``fstat``), and the open
itself does not block (``O_NONBLOCK``), so a file swapped for a FIFO between a check
and the open is refused as well.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from crawler.limits import BodyTooLarge, check_size

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotRegularFile(OSError):
    """The path names something other than a regular file; nothing was read."""

    def __init__(self, path: str | os.PathLike[str], kind: str) -> None:
        super().__init__(f"{os.fspath(path)} is {kind}, not a regular file")
        self.kind = kind


def describe(mode: int) -> str:
    """What a file of ``mode`` is, for a message: "a FIFO", "a directory", …"""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def check_regular(path: str | os.PathLike[str], mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise NotRegularFile(path, describe(mode))


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` open for reading in binary mode; :class:`NotRegularFile` if it is not
    a regular file. Never blocks."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        check_regular(path, os.fstat(fd).st_mode)
        os.set_blocking(fd, True)  # reads of a regular file never wait anyway
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], max_size: int = 0) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file ``path`` and its status. A file over ``max_size``
    bytes (0: no limit) is refused with :class:`crawler.limits.BodyTooLarge` before
    it is read, or as soon as it grows past the limit while being read."""
    with open_regular(path) as stream:
        status = os.fstat(stream.fileno())
        check_size(status.st_size, max_size)
        body = stream.read(max_size + 1) if max_size else stream.read()
        if max_size and len(body) > max_size:  # it grew since
            raise BodyTooLarge(len(body), max_size, at_least=True)
        return body, status


def regular_status(path: Path) -> os.stat_result:
    """``path``'s status (links followed); :class:`NotRegularFile` if it is not a
    regular file, OSError if it cannot be reached (a loop of links, a dangling one)."""
    status = path.stat()
    check_regular(path, status.st_mode)
    return status
