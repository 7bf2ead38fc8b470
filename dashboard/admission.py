"""At most ``places`` requests of a worker do work at once; the next wait up to ``wait_s`` for
a place and are then refused with 503 and ``Retry-After``. When viewers outrun the server it
answers at once that it is busy (the page tries again) instead of letting every request, the
walls' pulls included, hang behind the queue.

Change streams pass (a stream waits, it does no work), and so do the health and metrics
endpoints (they must answer when the rest cannot) and the static files.
"""
from __future__ import annotations

import threading

from flask import Response, g, jsonify, request

PASSING = ("/stream/", "/assets/", "/_dash-component-suites/", "/healthz", "/metrics", "/_favicon")
RETRY_AFTER_S = 5


class Admission:
    def __init__(self, places: int, wait_s: float) -> None:
        self.places = places
        self.wait_s = wait_s
        self._free = threading.BoundedSemaphore(places)

    def admit(self) -> tuple[Response, int, dict[str, str]] | None:
        """Before a request: a place, or 503 when none came free within ``wait_s``."""
        if request.path.startswith(PASSING):
            return None
        if not self._free.acquire(timeout=self.wait_s):
            return (jsonify(error=f"the server is busy: {self.places} requests at work and none finished within {self.wait_s:g} s; "
                                  f"try again in {RETRY_AFTER_S} s", busy=True), 503, {"Retry-After": str(RETRY_AFTER_S)})
        g.gridops_admitted = True
        return None

    def release(self, _error: BaseException | None = None) -> None:
        """After a request (whatever became of it): its place is free again."""
        if g.pop("gridops_admitted", False):
            self._free.release()
