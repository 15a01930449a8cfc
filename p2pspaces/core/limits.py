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


class Freshness:
    """Replay protection for messages passed on by a relay (a gateway's browser guests).

    A message on its signer's own link is fresh by that link (the handshake proved the key).
    One relayed for someone else proves it is new itself: it names the epoch it was signed in
    and a counter its signer raises with every message (requests, chat lines and reactions
    alike).  The authority keeps, for this epoch, the newest counter of each relayed signer and
    refuses anything not newer, so a gateway can neither replay a guest's old message nor
    reorder two of them; a new epoch starts a new table, and messages of older epochs are
    refused outright.

    The table is capped per relay and in all.  Forgetting a signer would let its old messages
    through, so each relay keeps a floor instead: the newest counter it has had forgotten,
    which every signer first seen through that relay must pass.  Counters start at the
    signer's clock in milliseconds, so an honest newcomer passes any floor."""

    def __init__(self, per_relay: int = 256, total: int = 8192) -> None:
        self._per_relay = per_relay
        self._total = total
        self._epoch: int | None = None
        self._last: dict[bytes, tuple[bytes, int]] = {}
        """Signer -> (the relay that first passed it on, its newest counter); oldest first."""
        self._by_relay: dict[bytes, dict[bytes, None]] = {}
        self._floors: dict[bytes, int] = {}
        self._floor = -1
        """The floor of relays whose own floors were folded together (the floors are capped
        too: past ``total`` relays, the oldest one's joins this common floor)."""

    def __len__(self) -> int:
        return len(self._last)

    def admit(self, epoch: int, signer: bytes, relay: bytes, counter: int) -> str | None:
        """Record ``signer``'s message (``counter``, ``epoch``) passed on by ``relay``; the
        reason it is refused, or None."""
        if epoch != self._epoch:
            self._epoch = epoch
            self._last.clear()
            self._by_relay.clear()
            self._floors.clear()
            self._floor = -1
        known = self._last.get(signer)
        if known is not None:
            if counter <= known[1]:
                return "replayed or out of order: not newer than its signer's last message"
            del self._last[signer]
            self._last[signer] = (known[0], counter)
            return None
        if counter <= max(self._floors.get(relay, -1), self._floor):
            return "replayed or out of order: older than what this relay has passed on"
        kept = self._by_relay.setdefault(relay, {})
        if len(kept) >= self._per_relay:
            self._forget(next(iter(kept)))
        if len(self._last) >= self._total:
            self._forget(next(iter(self._last)))
        self._last[signer] = (relay, counter)
        self._by_relay.setdefault(relay, {})[signer] = None
        return None

    def _forget(self, signer: bytes) -> None:
        relay, counter = self._last.pop(signer)
        kept = self._by_relay[relay]
        del kept[signer]
        if not kept:
            del self._by_relay[relay]
        self._floors[relay] = max(self._floors.pop(relay, -1), counter)
        if len(self._floors) > self._total:
            oldest = next(iter(self._floors))
            self._floor = max(self._floor, self._floors.pop(oldest))
