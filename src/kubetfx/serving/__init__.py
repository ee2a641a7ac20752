"""Serving: the pushed model in a real model server.

- :mod:`.kserve_server`: the script KServe's Python model server runs in the serving
  environment (``.venv-serving``, ``make serving-env``) to serve one SavedModel version over
  the V1 and V2 REST inference protocols.
- :mod:`.modelserver`: finding that environment and starting/stopping the server on loopback.
- :mod:`.loadtest`: a bounded load (requests at a concurrency) and its latency percentiles.
"""

import logging

# httpx logs every request at INFO ("HTTP Request: POST ..."): a serving check's 2,000
# requests would fill the task's log (and cost the load generator time). Warnings still show.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)
