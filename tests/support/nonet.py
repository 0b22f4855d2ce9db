"""Run a `scrapy` command and record every network connection and name lookup that
Python code in it makes: `python nonet.py LOG scrapy-args...`, one JSON line per event.
Connections to local (AF_UNIX) sockets, such as the extraction pool's, are no network.

Database drivers written in C (libpq) connect below Python and are not recorded; every
connection Scrapy or Twisted could make is."""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

from scrapy.cmdline import execute


def main() -> None:
    record = open(sys.argv[1], "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.connect" and args[0].family == socket.AF_UNIX:
            return  # a local socket (the extraction pool's own): no network
        if event in {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname"}:
            record.write(json.dumps({"event": event, "args": repr(args)}) + "\n")
            record.flush()

    sys.addaudithook(hook)
    sys.argv = ["scrapy", *sys.argv[2:]]
    execute()


if __name__ == "__main__":
    main()
