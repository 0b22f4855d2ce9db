"""python -m tests.golden regenerate CASE [CASE …] | --all
python -m tests.golden new CASE --content FILE [--title T] [--mobile] [--gb2312] [--aid N]

See tests/golden/__init__.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.golden import case_names, new_case, regenerate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.golden", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    again = commands.add_parser("regenerate", help="write the cases' output.json for review")
    again.add_argument("cases", nargs="*", metavar="CASE")
    again.add_argument("--all", action="store_true", help="every case")
    new = commands.add_parser("new", help="a case from a content block in the snapshot's page")
    new.add_argument("case", metavar="CASE")
    new.add_argument("--content", type=Path, required=True, help="the content block's HTML")
    new.add_argument("--title", help="the page's title, wherever the page names it")
    new.add_argument("--mobile", action="store_true", help="the mobile page's template")
    new.add_argument("--gb2312", action="store_true", help="a GB2312 page (the GBK template)")
    new.add_argument("--aid", type=int, help="the article's id in its URL")
    args = parser.parse_args(argv)

    if args.command == "new":
        folder = new_case(
            args.case,
            args.content.read_text(encoding="utf-8"),
            title=args.title,
            mobile=args.mobile,
            gb2312=args.gb2312,
            aid=args.aid,
        )
        print(f"wrote {folder}/body.html and info.json; now regenerate {args.case}")
        return 0
    known = case_names()
    names = known if args.all else args.cases
    if not names:
        parser.error("name the cases to regenerate, or give --all")
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"no such case: {', '.join(unknown)}")
    for name in names:
        print(f"wrote {regenerate(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
