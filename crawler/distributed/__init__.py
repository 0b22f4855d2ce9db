"""Distributed crawling: any number of ``scrapy crawl ylwt22`` workers, on any machines,
share one crawl through Redis and write to one archive.

Set ``REDIS_URL`` and the add-on (addon.py) turns a crawl into a worker: the request
queue and the seen-filter live in Redis (scrapy-redis 0.9.1, pinned), under
``ylwt22:<CRAWL_ID>:``. scrapy-redis forgets a request once a worker pops it; here
each request stays in the crawl's todo hash until it is done, so the requests of a
worker that dies are queued again by the completeness pass.

- addon.py: the settings of a worker, and the preflight check of REDIS_URL
- keys.py: the crawl's Redis keys and connection
- scheduler.py, queue.py, dupefilter.py: scrapy-redis's classes, adapted to Scrapy 2.19
  and to the todo hash (each module says what it changes and why)
- outputs.py, failures.py: middlewares that take done requests out of todo
- heartbeats.py: who is alive and busy
- completeness.py: settling todo once no worker is busy
- worker.py: the extension that runs a worker: heartbeat, shared start, when to stop,
  and the last worker out, which ends the crawl
- archive.py: the archive queries the workers make
"""
