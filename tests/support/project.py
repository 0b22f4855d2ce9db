"""The project's own settings, for components built in a test's own process."""

from __future__ import annotations

from typing import Any

from crawler import settings as project


def project_settings(**overrides: Any) -> dict[str, Any]:
    """Every setting crawler/settings.py defines, with ``overrides``: what a crawl's
    components read, for tests that build them with scrapy.utils.test.get_crawler."""
    values = {name: getattr(project, name) for name in dir(project) if name.isupper()}
    return {**values, **overrides}
