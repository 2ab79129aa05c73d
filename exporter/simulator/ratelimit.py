"""The upstream's "20 requests per second per user per endpoint", enforced strictly.

A request is admitted when fewer than `limit` admitted requests with the same (token, path)
arrived in the second before it. Refused requests do not count, so a client that backs off
gets through again after one second.
"""

from __future__ import annotations

import threading
from collections import deque

WINDOW_SECONDS = 1.0


class SlidingWindowLimiter:
    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._arrivals: dict[tuple[str, str], deque[float]] = {}

    def admit(self, token: str, path: str, arrival: float) -> bool:
        if not self.limit:
            return True
        with self._lock:
            window = self._arrivals.setdefault((token, path), deque())
            while window and window[0] <= arrival - WINDOW_SECONDS:
                window.popleft()
            if len(window) >= self.limit:
                return False
            window.append(arrival)
            return True
