"""Storage layer of the archive: models, schema migrations, upserts and exports.

Nothing here knows about Scrapy: callers hand in a database URL, an engine or a
session, so the crawler, the pipelines and the commands all share one code path.
"""
