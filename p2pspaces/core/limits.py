"""Token buckets: the rate caps per peer, per member and per address (time comes in as ``now``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    """Allows ``rate`` events a second with bursts of ``burst``; time comes in as ``now``."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    stamp: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.tokens = self.burst

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if there are enough; False means over the cap."""
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


class BucketsByKey:
    """One bucket per key (a peer, an address), with a bound on how many keys are kept."""

    def __init__(self, rate: float, burst: float, max_keys: int = 4096) -> None:
        self._rate = rate
        self._burst = burst
        self._max_keys = max_keys
        self._buckets: dict[object, TokenBucket] = {}

    def take(self, key: object, now: float) -> bool:
        """Spend one token of ``key``'s bucket."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                # Forget the oldest key: a flood of fresh addresses cannot grow memory.
                self._buckets.pop(next(iter(self._buckets)))
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst)
        return bucket.take(now)
