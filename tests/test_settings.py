"""Every setting has one default, in crawler/settings.py (or Scrapy's own): no component
reads a setting with a fallback of its own, every setting read is defined, and the
defaults the README gives are the ones the code has."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

import pytest
from scrapy.settings import default_settings

from crawler import settings as project
from tests.support.crawl import PROJECT_ROOT

pytestmark = pytest.mark.unit

_READERS = {"get", "getint", "getfloat", "getbool", "getlist", "getdict", "getwithbase"}
_NAME = re.compile(r"[A-Z][A-Z0-9_]+")
# A row of a settings table: | `NAME` | `VALUE` | what it does |
_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]+)` \| `([^`]*)` \|", re.MULTILINE)


def setting_reads() -> Iterator[tuple[str, int, str, ast.Call]]:
    """(file, line, setting, call) for every settings.getX("NAME", ...) in the code."""
    for package in ("crawler", "pipelines", "storage"):
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in _READERS
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                    and _NAME.fullmatch(node.args[0].value)
                ):
                    relative = path.relative_to(PROJECT_ROOT).as_posix()
                    yield relative, node.lineno, node.args[0].value, node


def test_no_component_gives_a_setting_a_default_of_its_own() -> None:
    second = [
        f"{path}:{line} {name}"
        for path, line, name, call in setting_reads()
        if len(call.args) > 1 or any(k.arg == "default" for k in call.keywords)
    ]
    assert second == []


def test_every_setting_read_is_defined_once() -> None:
    defined = {n for n in dir(project) if n.isupper()} | {
        n for n in dir(default_settings) if n.isupper()
    }
    unknown = sorted(
        {f"{name} ({path})" for path, _, name, _ in setting_reads()}
        - {f"{name} ({path})" for path, _, name, _ in setting_reads() if name in defined}
    )
    assert unknown == []


def test_the_readme_gives_the_defaults_the_code_has() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    rows = _ROW.findall(readme)
    assert len(rows) >= 20  # the tables are there, and read
    wrong = []
    for name, shown in rows:
        if not hasattr(project, name) or shown.startswith("$") or "<" in shown:
            continue  # taken from the environment, or with a part said in words
        value = getattr(project, name)
        if shown != str(value) and not _same_number(shown, value):
            wrong.append(f"{name}: README {shown!r}, settings.py {value!r}")
    assert wrong == []


def _same_number(shown: str, value: object) -> bool:
    try:
        return isinstance(value, int | float) and float(shown) == float(value)
    except ValueError:
        return False
