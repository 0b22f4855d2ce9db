"""Distributed crawling: any number of ``scrapy crawl ylwt22`` workers, on any machines,
share one crawl through Redis and write to one archive.

Set ``REDIS_URL`` and the add-on (addon.py) turns a crawl into a worker: the request
queue and the seen-filter live in Redis (scrapy-redis 0.9.1, pinned), under
``ylwt22:<CRAWL_ID>:``. scrapy-redis forgets a request once a worker pops it; here
each request stays in the crawl's todo hash until it is done, so the requests of a
worker that dies are queued again by the completeness pass.

- addon.py: the settings of a worker, and the preflight check of REDIS_URL
- keys.py: the crawl's Redis keys and connection
- acknowledgements.py: the todo hash, owned by one class: what is recorded when a
  request is queued, popped and done, and what becomes of those a dead worker held
  (queued again, attempts counted, given up)
- scheduler.py, queue.py, dupefilter.py: scrapy-redis's classes, adapted to Scrapy 2.19
  (each module says what it changes and why); the scheduler and the queue tell the
  acknowledgements what they queue and pop
- middlewares.py: tell the acknowledgements what a callback gave, which items were
  dropped and which downloads failed for good
- heartbeats.py: who is alive and busy
- completeness.py: settling todo once no worker is busy, one worker at a time
- worker.py: the extension that runs a worker: heartbeat, shared start, when to stop,
  and the last worker out, which ends the crawl
- crawler/archive.py, outside this package: the archive queries the workers make
"""
