"""A token bucket per API key: bursts are absorbed, a flood gets 429 with ``Retry-After``.

Buckets live in the web worker's memory, so the limit applies per worker process (a per-instance budget,
chosen over a database round trip per batch; README, Running N instances); with N workers
behind a load balancer a key gets at most N times the rate. ``BPO_INGEST_RATE`` (batches per second,
default 50, i.e. 50,000 contacts/s per key) and ``BPO_INGEST_BURST`` (default 100) tune it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class KeyRateLimiter:
    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> KeyRateLimiter:
        env = dict(os.environ if env is None else env)
        return cls(rate=float(env.get("BPO_INGEST_RATE", "50")), burst=float(env.get("BPO_INGEST_BURST", "100")))

    def take(self, key: str) -> float:
        """Spend one token of ``key``'s bucket: 0 when allowed, else the seconds until one is free."""
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate if self.rate > 0 else math.inf
