"""What the add-ons share to decide settings from others."""

from __future__ import annotations

from typing import Any

from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings


def default(settings: BaseSettings, name: str, value: Any) -> None:
    """Set ``name`` to ``value``, as an add-on's default. Addon priority ranks below the
    project's settings.py, whose values an add-on's mode replaces: this sets the value
    at project priority, unless it was given with a higher one (on the command line),
    which still wins."""
    if (settings.getpriority(name) or 0) <= SETTINGS_PRIORITIES["project"]:
        settings.set(name, value, "project")
