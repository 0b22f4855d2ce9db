"""What a spider tells the storage about articles it fetched but yields no item for.

Sent with ``crawler.signals.send_catch_log(signal, url=..., ...)``; the storage
pipeline records them with its next write.
"""

# The site answered 304 Not Modified: keyword arguments url, seen_at, and the
# response's etag and last_modified (None when it sent none).
article_unchanged = object()

# The site answered 404 or 410 for an article: keyword arguments url, seen_at.
article_gone = object()
