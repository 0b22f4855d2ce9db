"""Redirects that are given up, each with a logged reason and a count.

Scrapy's redirect middlewares follow a redirect by scheduling a new request. Left to
themselves, a loop (A -> B -> A) ends in the scheduler's duplicate filter and a
redirect to another site in the offsite filter, both silently (DEBUG), and a chain
longer than ``REDIRECT_MAX_TIMES`` ends with a DEBUG line. Here each is given up where it
is seen, logged at WARNING and counted, and the request's errback is told why:

- ``redirect/loop``: the redirect leads back to a URL of its own chain;
- ``redirect/too_many``: more than ``REDIRECT_MAX_TIMES`` redirects;
- ``redirect/offsite``: the redirect leads off the site's hosts (the spider's
  ``allowed_domains``); no request is sent there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import NoReturn

from scrapy import Request
from scrapy.downloadermiddlewares.redirect import (
    BaseRedirectMiddleware,
    MetaRefreshMiddleware,
    RedirectMiddleware,
)
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.url import url_is_from_any_domain

logger = logging.getLogger(__name__)


def _guarded(
    middleware: BaseRedirectMiddleware,
    request: Request,
    follow: Callable[[], Request | Response],
) -> Request | Response:
    """What ``follow`` (Scrapy's own handling of the response) decides, unless the
    redirect it returns must be given up."""
    chain = [*request.meta.get("redirect_urls", ()), request.url]
    try:
        result = follow()
    except IgnoreRequest:
        # Scrapy's redirect middlewares refuse a redirect only past REDIRECT_MAX_TIMES.
        limit = middleware.max_redirect_times
        _give_up(middleware, "too_many", f"more than {limit} redirects", chain)
    if not isinstance(result, Request):
        return result  # not a redirect, or one Scrapy does not follow (a file: URL)
    if result.url in chain:
        _give_up(middleware, "loop", "redirect loop", [*chain, result.url])
    domains = getattr(middleware.crawler.spider, "allowed_domains", None)
    if domains and not url_is_from_any_domain(result.url, domains):
        _give_up(middleware, "offsite", "redirect to another site", [*chain, result.url])
    return result


def _give_up(
    middleware: BaseRedirectMiddleware, reason: str, description: str, chain: list[str]
) -> NoReturn:
    assert middleware.crawler.stats is not None
    middleware.crawler.stats.inc_value(f"redirect/{reason}")
    message = f"{description}: {' -> '.join(chain)}"
    logger.warning("Gave up on %s: %s", chain[0], message)
    raise IgnoreRequest(message)


class GuardedRedirectMiddleware(RedirectMiddleware):
    """Scrapy's RedirectMiddleware (3xx with Location), replaced at the same place."""

    def process_response(  # type: ignore[override]
        self, request: Request, response: Response
    ) -> Request | Response:
        return _guarded(self, request, partial(super().process_response, request, response))


class GuardedMetaRefreshMiddleware(MetaRefreshMiddleware):
    """Scrapy's MetaRefreshMiddleware (<meta http-equiv=refresh>), replaced likewise."""

    def process_response(  # type: ignore[override]
        self, request: Request, response: Response
    ) -> Request | Response:
        return _guarded(self, request, partial(super().process_response, request, response))
