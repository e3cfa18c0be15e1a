"""Per-principal request rates: a token bucket each, refused with 429 and Retry-After."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from trailseal.server.problems import Problem


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """``rate`` requests a second per principal, with bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, principal_id: str) -> None:
        """Spend one request, or raise 429 saying when to come back."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.setdefault(principal_id, _Bucket(self.burst, now))
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return
            wait = math.ceil((1 - bucket.tokens) / self.rate)
        raise Problem(
            429,
            "Too many requests",
            f"this principal may make {self.rate:g} requests a second (bursts of {self.burst}); "
            f"retry in {wait} s",
            headers={
                "Retry-After": str(wait),
                "RateLimit-Limit": str(self.burst),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(wait),
            },
        )
