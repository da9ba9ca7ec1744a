"""The Kademlia routing table of BEP 5: k-buckets that split around our own id.

One table per address family. Contacts are good (replied within 15 minutes), questionable, or bad
(failed ``max_fails`` queries in a row). A full bucket that cannot split keeps a bounded replacement
cache, and bad contacts give way to replacements. With ``restrict_ips`` there is at most one
contact per IP address and at most ``max_per_subnet`` per /24 (IPv4) or /64 (IPv6) in a bucket
(loopback addresses are exempt: many local nodes share 127.0.0.1 and none of them is remote).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator

import attrs

from torrio.core import IPAddress, NodeId, NodeInfo, PeerAddr

GOOD_INTERVAL = 15 * 60.0
"""A contact that replied within this many seconds is good; a bucket untouched for it is stale."""


class NodeState(enum.Enum):
    """BEP 5 contact states."""

    GOOD = "good"
    QUESTIONABLE = "questionable"
    BAD = "bad"


@attrs.define
class Contact:
    """A routing-table entry."""

    node: NodeInfo
    id_int: int
    last_seen: float
    last_reply: float | None = None
    fails: int = 0
    verified: bool = False

    def state(self, now: float, max_fails: int) -> NodeState:
        """The BEP 5 state of this contact at ``now``."""
        if self.fails >= max_fails:
            return NodeState.BAD
        if self.last_reply is not None and now - self.last_reply < GOOD_INTERVAL:
            return NodeState.GOOD
        return NodeState.QUESTIONABLE


@attrs.define
class _Bucket:
    contacts: list[Contact] = attrs.Factory(list)
    replacements: list[Contact] = attrs.Factory(list)
    last_changed: float = 0.0


def _subnet(ip: IPAddress) -> int:
    return int(ip) >> 8 if ip.version == 4 else int(ip) >> 64


@attrs.frozen
class RoutingTableStatistics:
    """A snapshot of a routing table."""

    nodes: int
    good: int
    questionable: int
    bad: int
    buckets: int
    replacements: int


class RoutingTable:
    """k-buckets for one address family (``family`` 4 or 6) around ``own_id``."""

    def __init__(
        self,
        own_id: NodeId,
        family: int = 4,
        *,
        k: int = 8,
        max_fails: int = 2,
        restrict_ips: bool = True,
        max_per_subnet: int = 2,
        now: float = 0.0,
    ) -> None:
        self.own_id = own_id
        self.family = family
        self.k = k
        self.max_fails = max_fails
        self.restrict_ips = restrict_ips
        self.max_per_subnet = max_per_subnet
        self._own = int(own_id)
        self._buckets: list[_Bucket] = [_Bucket(last_changed=now)]
        self._by_addr: dict[PeerAddr, Contact] = {}
        self._by_ip: dict[IPAddress, Contact] = {}

    def __len__(self) -> int:
        return len(self._by_addr)

    def _index(self, id_int: int) -> int:
        cpl = 160 - (id_int ^ self._own).bit_length()
        return min(cpl, len(self._buckets) - 1)

    def contacts(self) -> Iterator[Contact]:
        """Every contact, bucket by bucket."""
        for b in self._buckets:
            yield from b.contacts

    def get(self, addr: PeerAddr) -> Contact | None:
        """The contact at ``addr``, if any."""
        return self._by_addr.get(addr)

    def _subnet_full(self, bucket: _Bucket, ip: IPAddress) -> bool:
        sn = _subnet(ip)
        n = sum(1 for c in bucket.contacts if _subnet(c.node.addr.ip) == sn)
        return n >= self.max_per_subnet

    def _add(self, bucket: _Bucket, c: Contact, now: float) -> None:
        bucket.contacts.append(c)
        bucket.last_changed = now
        self._by_addr[c.node.addr] = c
        self._by_ip[c.node.addr.ip] = c

    def _remove(self, bucket: _Bucket, c: Contact) -> None:
        bucket.contacts.remove(c)
        self._by_addr.pop(c.node.addr, None)
        if self._by_ip.get(c.node.addr.ip) is c:
            del self._by_ip[c.node.addr.ip]

    def heard(
        self, node: NodeInfo, now: float, *, replied: bool, verified: bool = False
    ) -> NodeInfo | None:
        """Record that ``node`` queried us (``replied`` False) or answered us (``replied`` True).

        Returns a questionable contact the caller should ping when ``node`` waits in a full
        bucket's replacement cache, else None.
        """
        if node.addr.family != self.family or node.id == self.own_id or node.addr.port == 0:
            return None
        existing = self._by_addr.get(node.addr)
        if existing is not None:
            if existing.node.id != node.id:
                # same address, new id: believe it only once the old contact has gone bad
                if existing.state(now, self.max_fails) is not NodeState.BAD:
                    return None
                self._remove(self._buckets[self._index(existing.id_int)], existing)
            else:
                existing.last_seen = now
                if replied:
                    existing.last_reply = now
                    existing.fails = 0
                    self._buckets[self._index(existing.id_int)].last_changed = now
                return None
        restrict = self.restrict_ips and not node.addr.ip.is_loopback
        if restrict:
            other = self._by_ip.get(node.addr.ip)
            if other is not None:
                if other.state(now, self.max_fails) is not NodeState.BAD:
                    return None
                self._remove(self._buckets[self._index(other.id_int)], other)
        id_int = int(node.id)
        contact = Contact(node, id_int, now, now if replied else None, 0, verified)
        while True:
            idx = self._index(id_int)
            bucket = self._buckets[idx]
            if any(c.id_int == id_int for c in bucket.contacts):
                return None  # same id from another address: keep the one we know
            if restrict and self._subnet_full(bucket, node.addr.ip):
                return None
            if len(bucket.contacts) < self.k:
                self._add(bucket, contact, now)
                # a node that only queried us is unconfirmed: ask the caller to ping it
                return None if replied else node
            if idx == len(self._buckets) - 1 and idx < 159:
                self._split(now)
                continue
            break
        for c in bucket.contacts:
            if c.state(now, self.max_fails) is NodeState.BAD:
                self._remove(bucket, c)
                self._add(bucket, contact, now)
                return None
        if not replied:
            return None  # only nodes that answered us wait as replacements
        if verified:
            # BEP 42: an answering node whose id matches its IP displaces an unverified one
            # that has not answered lately
            for c in bucket.contacts:
                if not c.verified and c.state(now, self.max_fails) is not NodeState.GOOD:
                    self._remove(bucket, c)
                    self._add(bucket, contact, now)
                    return None
        bucket.replacements = [r for r in bucket.replacements if r.node.addr != node.addr]
        bucket.replacements.append(contact)
        del bucket.replacements[: -self.k]
        questionable = [
            c for c in bucket.contacts if c.state(now, self.max_fails) is NodeState.QUESTIONABLE
        ]
        if questionable:
            return min(questionable, key=lambda c: c.last_seen).node
        return None

    def change_own_id(self, own_id: NodeId, now: float) -> None:
        """Re-key the table around a new own id (BEP 42: our external IP changed). Every contact
        and replacement is reinserted with its history; contacts that no longer fit a bucket wait
        as replacements (if they ever answered) or are dropped."""
        if own_id == self.own_id:
            return
        contacts = list(self.contacts())
        replacements = [r for b in self._buckets for r in b.replacements]
        self.own_id = own_id
        self._own = int(own_id)
        self._buckets = [_Bucket(last_changed=now)]
        self._by_addr = {}
        self._by_ip = {}
        # best first: contacts that answered most recently get the slots
        contacts.sort(key=lambda c: -(c.last_reply if c.last_reply is not None else -1e18))
        for c in contacts:
            if c.id_int == self._own:
                continue
            if not self._place(c, now) and c.last_reply is not None:
                replacements.append(c)
        for r in replacements:
            if r.id_int == self._own or r.node.addr in self._by_addr:
                continue
            bucket = self._buckets[self._index(r.id_int)]
            bucket.replacements = [x for x in bucket.replacements if x.node.addr != r.node.addr]
            bucket.replacements.append(r)
            del bucket.replacements[: -self.k]

    def _place(self, c: Contact, now: float) -> bool:
        """Insert an existing contact (splitting as needed); False if its bucket is full."""
        restrict = self.restrict_ips and not c.node.addr.ip.is_loopback
        if c.node.addr in self._by_addr or (restrict and c.node.addr.ip in self._by_ip):
            return False
        while True:
            idx = self._index(c.id_int)
            bucket = self._buckets[idx]
            if any(x.id_int == c.id_int for x in bucket.contacts):
                return False
            if restrict and self._subnet_full(bucket, c.node.addr.ip):
                return False
            if len(bucket.contacts) < self.k:
                self._add(bucket, c, now)
                return True
            if idx == len(self._buckets) - 1 and idx < 159:
                self._split(now)
                continue
            return False

    def _split(self, now: float) -> None:
        last = self._buckets[-1]
        depth = len(self._buckets) - 1
        near = _Bucket(last_changed=last.last_changed)
        keep: list[Contact] = []
        for c in last.contacts:
            (near.contacts if 160 - (c.id_int ^ self._own).bit_length() > depth else keep).append(c)
        reps_near = [
            c for c in last.replacements if 160 - (c.id_int ^ self._own).bit_length() > depth
        ]
        last.replacements = [c for c in last.replacements if c not in reps_near]
        near.replacements = reps_near
        last.contacts = keep
        self._buckets.append(near)

    def failed(self, addr: PeerAddr, now: float) -> None:
        """A query to ``addr`` timed out: count it; a bad contact gives way to a replacement."""
        c = self._by_addr.get(addr)
        if c is None:
            return
        c.fails += 1
        if c.state(now, self.max_fails) is not NodeState.BAD:
            return
        bucket = self._buckets[self._index(c.id_int)]
        while bucket.replacements:
            rep = bucket.replacements.pop()
            if rep.node.addr in self._by_addr or (
                self.restrict_ips
                and rep.node.addr.ip in self._by_ip
                and rep.node.addr.ip != addr.ip
            ):
                continue
            self._remove(bucket, c)
            self._add(bucket, rep, now)
            return
        if c.last_reply is None:
            self._remove(bucket, c)  # never answered and now failing: not worth a slot

    def remove(self, addr: PeerAddr) -> None:
        """Forget the contact at ``addr``."""
        c = self._by_addr.get(addr)
        if c is not None:
            self._remove(self._buckets[self._index(c.id_int)], c)

    def closest(
        self, target: NodeId | int, count: int | None = None, *, confirmed: bool = False
    ) -> list[NodeInfo]:
        """Up to ``count`` (default k) non-bad contacts nearest ``target``, nearest first.

        With ``confirmed``, only contacts that have answered us at least once (what we tell
        others about: a node that merely queried us may be gone, or may not be who it says)."""
        t = target if isinstance(target, int) else int(target)
        count = self.k if count is None else count
        mf = self.max_fails
        live = [
            c
            for c in self._by_addr.values()
            if c.fails < mf and (not confirmed or c.last_reply is not None)
        ]
        live.sort(key=lambda c: c.id_int ^ t)
        return [c.node for c in live[:count]]

    def stale_targets(self, now: float, interval: float = GOOD_INTERVAL) -> list[NodeId]:
        """Random ids inside each bucket untouched for ``interval`` seconds (marks them refreshed)."""
        out = []
        n = len(self._buckets)
        for i, b in enumerate(self._buckets):
            if now - b.last_changed < interval:
                continue
            b.last_changed = now
            rnd = int.from_bytes(os.urandom(20), "big")
            if i < n - 1:
                # ids sharing exactly i leading bits with ours: flip bit i, randomize the rest
                high_mask = ((1 << 160) - 1) ^ ((1 << (160 - i)) - 1)
                flip = 1 << (159 - i)
                low = rnd & (flip - 1)
                out.append(NodeId.from_int(((self._own & high_mask) | (~self._own & flip)) | low))
            else:
                high_mask = ((1 << 160) - 1) ^ ((1 << (160 - i)) - 1) if i else 0
                out.append(
                    NodeId.from_int((self._own & high_mask) | (rnd & ~high_mask & ((1 << 160) - 1)))
                )
        return out

    def next_refresh(self, interval: float = GOOD_INTERVAL) -> float:
        """When the next bucket becomes stale."""
        return min(b.last_changed for b in self._buckets) + interval

    def statistics(self, now: float) -> RoutingTableStatistics:
        """Counts by state."""
        states = [c.state(now, self.max_fails) for c in self._by_addr.values()]
        return RoutingTableStatistics(
            nodes=len(states),
            good=states.count(NodeState.GOOD),
            questionable=states.count(NodeState.QUESTIONABLE),
            bad=states.count(NodeState.BAD),
            buckets=len(self._buckets),
            replacements=sum(len(b.replacements) for b in self._buckets),
        )
