"""What a DHT node stores for others: announced peers, BEP 44 items, write tokens; all bounded."""

from __future__ import annotations

import hashlib
import os
import random
from collections import OrderedDict
from collections.abc import Callable

import attrs

from torrio.core import IPAddress, NodeId, PeerAddr

from ._bloom import BloomFilter
from ._errors import ItemError
from ._items import Item, check_value, verify_signature

PEER_TTL = 30 * 60.0
ITEM_TTL = 2 * 60 * 60.0
TOKEN_ROTATION = 5 * 60.0


class TokenManager:
    """Write tokens: a hash of a secret and the requester's IP. The secret rotates every five
    minutes and the previous one is still accepted, so a token lives five to ten minutes."""

    def __init__(
        self,
        now: float,
        rotation: float = TOKEN_ROTATION,
        urandom: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._urandom = urandom
        self.rotation = rotation
        self._secret = urandom(16)
        self._previous = self._secret
        self._rotated_at = now

    def next_deadline(self) -> float:
        """When the secret next rotates."""
        return self._rotated_at + self.rotation

    def tick(self, now: float) -> None:
        """Rotate the secret if it is due."""
        if now >= self._rotated_at + self.rotation:
            self._previous = self._secret
            self._secret = self._urandom(16)
            self._rotated_at = now

    @staticmethod
    def _token(secret: bytes, ip: IPAddress) -> bytes:
        return hashlib.sha1(secret + ip.packed).digest()[:8]

    def make(self, ip: IPAddress) -> bytes:
        """The token for ``ip``."""
        return self._token(self._secret, ip)

    def check(self, token: bytes, ip: IPAddress) -> bool:
        """True if ``token`` was issued to ``ip`` under the current or the previous secret."""
        return token in (self._token(self._secret, ip), self._token(self._previous, ip))


class PeerStore:
    """Peers announced per key, each expiring ``ttl`` after its last announce, with its BEP 33
    seed flag.

    At most ``max_keys`` keys (the least recently announced key goes first) and ``max_peers``
    peers per key (the oldest announce goes first).
    """

    def __init__(
        self, *, max_keys: int = 5000, max_peers: int = 200, ttl: float = PEER_TTL
    ) -> None:
        self.max_keys = max_keys
        self.max_peers = max_peers
        self.ttl = ttl
        # per key: peer -> (expiry, seed)
        self._keys: OrderedDict[bytes, OrderedDict[PeerAddr, tuple[float, bool]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: NodeId, peer: PeerAddr, now: float, *, seed: bool = False) -> None:
        """Record an announce of ``peer`` for ``key`` (``seed``: BEP 33, it has the whole torrent)."""
        peers = self._keys.get(key.value)
        if peers is None:
            if len(self._keys) >= self.max_keys:
                self._keys.popitem(last=False)
            peers = self._keys[key.value] = OrderedDict()
        else:
            self._keys.move_to_end(key.value)
        peers.pop(peer, None)
        peers[peer] = (now + self.ttl, seed)
        while len(peers) > self.max_peers:
            peers.popitem(last=False)

    def get(
        self,
        key: NodeId,
        now: float,
        limit: int = 50,
        family: int | None = None,
        *,
        noseed: bool = False,
    ) -> list[PeerAddr]:
        """Up to ``limit`` live peers for ``key`` (a random choice when there are more).

        With ``noseed`` (BEP 33) non-seeds are preferred; seeds only fill what is left."""
        peers = self._keys.get(key.value)
        if not peers:
            return []
        live = [
            (p, seed)
            for p, (exp, seed) in peers.items()
            if exp > now and (family is None or p.family == family)
        ]
        if noseed:
            leechers = [p for p, seed in live if not seed]
            seeds = [p for p, seed in live if seed]
            if len(leechers) >= limit:
                return random.sample(leechers, limit)
            return leechers + random.sample(seeds, min(len(seeds), limit - len(leechers)))
        out = [p for p, _ in live]
        if len(out) > limit:
            out = random.sample(out, limit)
        return out

    def bloom(self, key: NodeId, now: float) -> tuple[BloomFilter, BloomFilter] | None:
        """BEP 33 filters ``(seeds, peers)`` over the IPs of the live peers of ``key``, or None
        when we store nothing for it. An IP that is a seed is not counted as a peer too."""
        peers = self._keys.get(key.value)
        if not peers:
            return None
        seed_ips = {p.ip for p, (exp, seed) in peers.items() if exp > now and seed}
        other_ips = {p.ip for p, (exp, seed) in peers.items() if exp > now and not seed}
        if not seed_ips and not other_ips:
            return None
        seeds, others = BloomFilter(), BloomFilter()
        for ip in seed_ips:
            seeds.add(ip)
        for ip in other_ips - seed_ips:
            others.add(ip)
        return seeds, others

    def keys(self) -> list[bytes]:
        """Every key with peers."""
        return list(self._keys)

    def expire(self, now: float) -> None:
        """Drop expired peers and empty keys."""
        for key in list(self._keys):
            peers = self._keys[key]
            for p in [p for p, (exp, _) in peers.items() if exp <= now]:
                del peers[p]
            if not peers:
                del self._keys[key]

    def count_peers(self) -> int:
        """How many peers are stored over all keys."""
        return sum(len(p) for p in self._keys.values())


@attrs.define
class _Stored:
    item: Item
    expires: float


class ItemStore:
    """BEP 44 items, at most ``max_items`` (least recently stored dropped first), each expiring."""

    def __init__(self, *, max_items: int = 2000, ttl: float = ITEM_TTL) -> None:
        self.max_items = max_items
        self.ttl = ttl
        self._items: OrderedDict[bytes, _Stored] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, target: NodeId, now: float) -> Item | None:
        """The live item stored at ``target``."""
        s = self._items.get(target.value)
        if s is None or s.expires <= now:
            return None
        return s.item

    def put(self, item: Item, now: float, cas: int | None = None) -> None:
        """Store ``item`` after the BEP 44 checks; raises :class:`ItemError` with the KRPC code."""
        check_value(item.raw)
        target = item.target.value
        if item.public_key is not None:
            if item.seq is None or item.signature is None:
                raise ItemError("mutable item without seq or signature")
            if len(item.salt) > 64:
                raise ItemError("salt too big", 207)
            if not verify_signature(item.public_key, item.signature, item.raw, item.seq, item.salt):
                raise ItemError("invalid signature", 206)
            old = self._items.get(target)
            if old is not None and old.expires > now:
                old_seq = old.item.seq or 0
                if cas is not None and cas != old_seq:
                    raise ItemError("cas mismatch", 301)
                if item.seq < old_seq:
                    raise ItemError("sequence number less than current", 302)
                if item.seq == old_seq and item.raw != old.item.raw:
                    raise ItemError("same sequence number with a different value", 302)
        if target in self._items:
            self._items.move_to_end(target)
        elif len(self._items) >= self.max_items:
            self._items.popitem(last=False)
        self._items[target] = _Stored(item, now + self.ttl)

    def expire(self, now: float) -> None:
        """Drop expired items."""
        for t in [t for t, s in self._items.items() if s.expires <= now]:
            del self._items[t]


class RateLimiter:
    """A token bucket per source IP (``rate`` per second, ``burst`` deep) for at most
    ``max_sources`` IPs at once (the least recently seen is forgotten first)."""

    def __init__(self, rate: float = 50.0, burst: float = 200.0, max_sources: int = 4096) -> None:
        self.rate = rate
        self.burst = burst
        self.max_sources = max_sources
        self._buckets: OrderedDict[IPAddress, tuple[float, float]] = OrderedDict()

    def allow(self, ip: IPAddress, now: float) -> bool:
        """Spend one token for ``ip``; False when its bucket is empty."""
        level, at = self._buckets.pop(ip, (self.burst, now))
        level = min(self.burst, level + (now - at) * self.rate)
        ok = level >= 1.0
        if ok:
            level -= 1.0
        self._buckets[ip] = (level, now)
        if len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)
        return ok

    def __len__(self) -> int:
        return len(self._buckets)
