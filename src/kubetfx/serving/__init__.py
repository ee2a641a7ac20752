"""Serving: the pushed model in a real model server.

- :mod:`.kserve_server`: the script KServe's Python model server runs in the serving
  environment (``.venv-serving``, ``make serving-env``) to serve one SavedModel version over
  the V1 and V2 REST inference protocols.
- :mod:`.modelserver`: finding that environment and starting/stopping the server on loopback.
- :mod:`.loadtest`: a bounded load (requests at a concurrency) and its latency percentiles.
"""
