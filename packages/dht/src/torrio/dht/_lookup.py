"""Iterative Kademlia lookups: ask the ``alpha`` nearest unasked nodes at a time until the ``k``
nearest live nodes have all answered. Pure bookkeeping; the protocol core sends the queries."""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import attrs

from torrio.core import NodeId, NodeInfo, PeerAddr

NEW, PENDING, RESPONDED, FAILED, SLOW = range(5)
_FAR = 1 << 161


@attrs.define
class Candidate:
    """A node a lookup knows of. ``dist`` is XOR distance to the target (unknown id: far)."""

    addr: PeerAddr
    id: NodeId | None
    dist: int
    depth: int
    state: int = NEW
    token: bytes | None = None

    @property
    def node(self) -> NodeInfo | None:
        """The contact, when its id is known."""
        return None if self.id is None else NodeInfo(self.id, self.addr)


class Lookup:
    """The state of one iterative lookup toward ``target``."""

    def __init__(
        self,
        target: NodeId,
        *,
        k: int = 8,
        alpha: int = 3,
        max_candidates: int | None = None,
        exclude: NodeId | None = None,
    ) -> None:
        self.target = target
        self._t = int(target)
        self.k = k
        self.alpha = alpha
        self.max_candidates = max_candidates or 8 * k
        self._sorted: list[tuple[int, int, Candidate]] = []
        self._by_addr: dict[PeerAddr, Candidate] = {}
        # our own id is never a candidate (others' answers may well contain us)
        self._ids: set[bytes] = {exclude.value} if exclude is not None else set()
        self._seq = 0
        self.queries_sent = 0
        self.responses = 0
        self.failures = 0

    def add(self, nodes: Iterable[NodeInfo], depth: int = 1) -> None:
        """Learn of ``nodes`` (seen ``depth`` hops from the start)."""
        for n in nodes:
            if n.addr in self._by_addr or n.id.value in self._ids:
                continue
            dist = int(n.id) ^ self._t
            if len(self._sorted) >= self.max_candidates:
                worst = self._sorted[-1]
                if worst[0] <= dist or worst[2].state == PENDING:
                    continue
                self._drop_last()
            self._insert(Candidate(n.addr, n.id, dist, depth))

    def exclude(self, node_id: NodeId) -> None:
        """Never ask ``node_id`` (our own new id, after a BEP 42 id change)."""
        self._ids.add(node_id.value)

    def add_address(self, addr: PeerAddr) -> None:
        """A bootstrap contact whose id is unknown: asked first, ranked far until it answers."""
        if addr not in self._by_addr:
            self._insert(Candidate(addr, None, _FAR, 1))

    def _insert(self, c: Candidate) -> None:
        self._seq += 1
        bisect.insort(self._sorted, (c.dist, self._seq, c), key=lambda e: (e[0], e[1]))
        self._by_addr[c.addr] = c
        if c.id is not None:
            self._ids.add(c.id.value)

    def _drop_last(self) -> None:
        _, _, c = self._sorted.pop()
        del self._by_addr[c.addr]
        if c.id is not None:
            self._ids.discard(c.id.value)

    def _reposition(self, c: Candidate, new_id: NodeId) -> None:
        for i, (_, _, other) in enumerate(self._sorted):
            if other is c:
                del self._sorted[i]
                break
        c.id = new_id
        c.dist = int(new_id) ^ self._t
        self._ids.add(new_id.value)
        self._seq += 1
        bisect.insort(self._sorted, (c.dist, self._seq, c), key=lambda e: (e[0], e[1]))

    def in_flight(self) -> int:
        """Queries sent and not yet answered or timed out."""
        return sum(1 for _, _, c in self._sorted if c.state == PENDING)

    def next_queries(self) -> list[Candidate]:
        """Candidates to ask now (marked pending): unknown bootstrap ids first, then the nearest."""
        out = []
        pending = self.in_flight()
        for _, _, c in self._sorted:
            if c.id is None and c.state == NEW:
                c.state = PENDING
                out.append(c)
        pending += len(out)
        live = 0
        for _, _, c in self._sorted:
            if c.id is None or c.state in (FAILED, SLOW):
                continue
            live += 1
            if live > self.k or pending >= self.alpha:
                break
            if c.state == NEW:
                c.state = PENDING
                pending += 1
                out.append(c)
        self.queries_sent += len(out)
        return out

    def candidate(self, addr: PeerAddr) -> Candidate | None:
        """The candidate at ``addr``."""
        return self._by_addr.get(addr)

    def on_response(
        self, addr: PeerAddr, sender: NodeId, token: bytes | None, nodes: Iterable[NodeInfo]
    ) -> None:
        """``addr`` answered with ``nodes``; its token is kept for announce/put."""
        c = self._by_addr.get(addr)
        if c is None or c.state not in (PENDING, SLOW):
            return
        self.responses += 1
        if c.id is None:
            if sender.value in self._ids:
                c.state = FAILED  # a duplicate of a node we already know under another address
                return
            self._reposition(c, sender)
        elif c.id != sender:
            c.state = FAILED  # it is not who we were told it is
            return
        c.state = RESPONDED
        c.token = token
        self.add(nodes, c.depth + 1)

    def on_failure(self, addr: PeerAddr) -> None:
        """``addr`` timed out or answered with an error: it leaves the lookup."""
        c = self._by_addr.get(addr)
        if c is not None and c.state in (PENDING, SLOW):
            c.state = FAILED
            self.failures += 1

    def on_slow(self, addr: PeerAddr) -> None:
        """``addr`` missed its first deadline (its query is being resent): it no longer counts
        against ``alpha``, so the lookup asks others meanwhile; the lookup still ends only once
        it has answered or finally failed (one lost datagram must not drop a close node)."""
        c = self._by_addr.get(addr)
        if c is not None and c.state == PENDING:
            c.state = SLOW

    @property
    def done(self) -> bool:
        """True when the ``k`` nearest live candidates have all answered (or there is none left)."""
        live = 0
        for _, _, c in self._sorted:
            if c.state == FAILED:
                continue
            if c.state in (NEW, PENDING, SLOW):
                return False
            live += 1
            if live >= self.k:
                return True
        return True

    def closest(self, count: int | None = None, *, with_token: bool = False) -> list[Candidate]:
        """The nearest candidates that answered (with a token, if asked)."""
        count = self.k if count is None else count
        out = []
        for _, _, c in self._sorted:
            if (
                c.state == RESPONDED
                and c.id is not None
                and (c.token is not None or not with_token)
            ):
                out.append(c)
                if len(out) >= count:
                    break
        return out

    @property
    def rounds(self) -> int:
        """Hops from the start to the deepest of the nearest answering nodes."""
        close = self.closest()
        return max((c.depth for c in close), default=0)
