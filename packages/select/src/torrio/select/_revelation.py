"""Revelation: which of our pieces to tell each peer about, and when.

:class:`StandardRevelation` tells everyone everything; :class:`LazyBitfieldRevelation` sends a
bitfield with a few pieces held back and announces those as HAVEs right after (so naive ISP
filters that match full bitfields see nothing); :class:`SuperSeedingRevelation` implements
BEP 16 super-seeding: a seed pretends to have nothing and reveals one rare piece per peer,
revealing the next only after that piece has been seen at another peer.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Hashable
from typing import Protocol, runtime_checkable

import attrs

from torrio.core import Bitfield

from ._errors import SelectError

# How many never-shown pieces a reveal looks at before falling back to the least-seen piece.
_MAX_ROTATE = 64


@attrs.frozen
class SendBitfield:
    """Send BITFIELD with these bits."""

    bitfield: Bitfield = attrs.field(eq=False)


@attrs.frozen
class SendHave:
    """Send HAVE ``piece``."""

    piece: int


@attrs.frozen
class SendHaveAll:
    """Send HAVE ALL (BEP 6)."""


@attrs.frozen
class SendHaveNone:
    """Send HAVE NONE (BEP 6)."""


RevealMessage = SendBitfield | SendHave | SendHaveAll | SendHaveNone
"""A message a revelation strategy asks the client to send."""


@runtime_checkable
class RevelationStrategy(Protocol):
    """Decides what our peers learn about our pieces.

    Methods returning ``list[tuple[peer, message]]`` name the peers to send each message to.
    """

    def peer_connected(self, peer: Hashable, *, fast: bool) -> list[RevealMessage]:
        """Messages to send ``peer`` right after the handshake (``fast``: it supports BEP 6)."""

    def peer_left(self, peer: Hashable) -> list[tuple[Hashable, RevealMessage]]:
        """``peer`` disconnected."""

    def peer_has(self, peer: Hashable, piece: int) -> list[tuple[Hashable, RevealMessage]]:
        """``peer`` announced ``piece``."""

    def peer_bitfield(
        self, peer: Hashable, bitfield: Bitfield
    ) -> list[tuple[Hashable, RevealMessage]]:
        """``peer`` sent its bitfield (HAVE ALL: a full one)."""

    def piece_completed(self, piece: int) -> list[tuple[Hashable, RevealMessage]]:
        """We now have ``piece``."""

    def may_upload(self, peer: Hashable, piece: int) -> bool:
        """Whether to serve ``peer``'s request for ``piece``."""


class _Base:
    def __init__(self, have: Bitfield) -> None:
        self._have = have.copy()
        self._peers: dict[Hashable, bool] = {}

    def _check(self, piece: int) -> None:
        if not 0 <= piece < self._have.length:
            raise SelectError(f"piece index {piece} out of range", piece=piece)

    def peer_left(self, peer: Hashable) -> list[tuple[Hashable, RevealMessage]]:
        """Forget ``peer``."""
        self._peers.pop(peer, None)
        return []

    def peer_has(self, peer: Hashable, piece: int) -> list[tuple[Hashable, RevealMessage]]:
        """Nothing to do."""
        self._check(piece)
        return []

    def peer_bitfield(
        self, peer: Hashable, bitfield: Bitfield
    ) -> list[tuple[Hashable, RevealMessage]]:
        """Nothing to do."""
        return []

    def piece_completed(self, piece: int) -> list[tuple[Hashable, RevealMessage]]:
        """HAVE to every connected peer."""
        self._check(piece)
        if not self._have.set(piece):
            return []
        msg = SendHave(piece)
        return [(p, msg) for p in self._peers]

    def may_upload(self, peer: Hashable, piece: int) -> bool:
        """Serve any piece we have."""
        self._check(piece)
        return self._have[piece]


class StandardRevelation(_Base):
    """Tell every peer every piece: HAVE ALL / HAVE NONE when the peer speaks BEP 6 and they fit,
    else a BITFIELD (none at all when we have nothing and the peer is BEP 3 only)."""

    def peer_connected(self, peer: Hashable, *, fast: bool) -> list[RevealMessage]:
        """Our full state."""
        self._peers[peer] = fast
        have = self._have
        if fast and have.all() and have.length:
            return [SendHaveAll()]
        if have.none():
            return [SendHaveNone()] if fast else []
        return [SendBitfield(have.copy())]


class LazyBitfieldRevelation(_Base):
    """A bitfield with up to ``withhold`` random pieces cleared, then HAVEs for those."""

    def __init__(self, have: Bitfield, *, withhold: int = 8, seed: int | None = None) -> None:
        super().__init__(have)
        self._withhold = withhold
        self._rng = random.Random(seed)

    def peer_connected(self, peer: Hashable, *, fast: bool) -> list[RevealMessage]:
        """A partial bitfield followed by the held-back HAVEs."""
        self._peers[peer] = fast
        have = self._have
        if have.none():
            return [SendHaveNone()] if fast else []
        pieces = list(have) if have.count() <= 4 * self._withhold else None
        if pieces is not None:
            held = self._rng.sample(pieces, min(self._withhold, max(1, len(pieces) // 2)))
        else:
            held = []
            seen: set[int] = set()
            while len(held) < self._withhold:
                p = self._rng.randrange(have.length)
                if have[p] and p not in seen:
                    seen.add(p)
                    held.append(p)
        bf = have.copy()
        for p in held:
            bf.clear(p)
        return [SendBitfield(bf), *(SendHave(p) for p in sorted(held))]


class SuperSeedingRevelation(_Base):
    """BEP 16 super-seeding. Use it only while we are a seed.

    Each peer is shown one piece: one never shown before if possible (among the next 64 in a
    random rotation), else the one seen at the fewest peers (then shown the fewest times, then
    the lowest index). The next piece is shown to a peer only after its current piece has been
    announced by some *other* peer (it spread). Uploads are refused for pieces not shown.

    The fallback does not scan every piece: a lazily built heap keyed by (seen, shown, piece)
    holds a fresh entry for each change and drops stale ones as they surface, so a reveal costs
    O(log pieces) plus the pieces the peer already has or was shown.
    """

    def __init__(self, have: Bitfield, *, seed: int | None = None) -> None:
        super().__init__(have)
        n = have.length
        self._rng = random.Random(seed)
        self._seen = [0] * n
        self._shown = [0] * n
        order = list(range(n))
        self._rng.shuffle(order)
        self._never_shown: deque[int] = deque(order)
        self._bits: dict[Hashable, Bitfield] = {}
        self._current: dict[Hashable, int] = {}
        self._revealed: dict[Hashable, set[int]] = {}
        self._waiting_on: dict[int, set[Hashable]] = {}
        self._heap: list[tuple[int, int, int]] | None = None  # built at the first fallback

    def _choose(self, peer: Hashable) -> int | None:
        bits = self._bits[peer]
        revealed = self._revealed[peer]
        dq = self._never_shown
        tries = 0
        while dq and tries < _MAX_ROTATE:
            p = dq[0]
            if self._shown[p]:
                dq.popleft()
                continue
            if not bits[p] and self._have[p]:
                dq.popleft()
                return p
            dq.rotate(-1)
            tries += 1
        return self._least_seen(bits, revealed)

    def _least_seen(self, bits: Bitfield, revealed: set[int]) -> int | None:
        heap = self._heap
        if heap is None:
            have = self._have
            heap = [(self._seen[p], self._shown[p], p) for p in range(have.length) if have[p]]
            heapq.heapify(heap)
            self._heap = heap
        seen = self._seen
        shown = self._shown
        skipped: list[tuple[int, int, int]] = []
        best: int | None = None
        while heap:
            entry = heap[0]
            a, b, p = entry
            if a != seen[p] or b != shown[p]:
                heapq.heappop(heap)  # stale: a newer entry for p is in the heap
                continue
            if bits[p] or p in revealed:
                skipped.append(heapq.heappop(heap))
                continue
            best = p
            break
        for entry in skipped:
            heapq.heappush(heap, entry)
        return best

    def _touch(self, p: int) -> None:
        """``p``'s key changed: push its new entry (stale ones are dropped when they surface)."""
        heap = self._heap
        if heap is None or not self._have[p]:
            return
        heapq.heappush(heap, (self._seen[p], self._shown[p], p))
        if len(heap) > 4 * self._have.length + 64:
            self._heap = None  # too many stale entries: rebuild at the next fallback

    def _reveal(self, peer: Hashable) -> list[tuple[Hashable, RevealMessage]]:
        p = self._choose(peer)
        if p is None:
            self._current.pop(peer, None)
            return []
        self._shown[p] += 1
        self._touch(p)
        self._current[peer] = p
        self._revealed[peer].add(p)
        self._waiting_on.setdefault(p, set()).add(peer)
        return [(peer, SendHave(p))]

    def peer_connected(self, peer: Hashable, *, fast: bool) -> list[RevealMessage]:
        """HAVE NONE (or nothing), then one HAVE."""
        self._peers[peer] = fast
        self._bits[peer] = Bitfield(self._have.length)
        self._revealed[peer] = set()
        msgs: list[RevealMessage] = [SendHaveNone()] if fast else []
        msgs.extend(m for _, m in self._reveal(peer))
        return msgs

    def peer_left(self, peer: Hashable) -> list[tuple[Hashable, RevealMessage]]:
        """Forget ``peer``; its pieces no longer count as seen."""
        self._peers.pop(peer, None)
        bits = self._bits.pop(peer, None)
        if bits is not None:
            for p in bits:
                self._seen[p] -= 1
                self._touch(p)
        cur = self._current.pop(peer, None)
        if cur is not None:
            self._waiting_on.get(cur, set()).discard(peer)
        self._revealed.pop(peer, None)
        return []

    def _spread(self, peer: Hashable, piece: int) -> list[tuple[Hashable, RevealMessage]]:
        self._seen[piece] += 1
        self._touch(piece)
        out: list[tuple[Hashable, RevealMessage]] = []
        waiting = self._waiting_on.get(piece)
        if not waiting:
            return out
        for owner in [w for w in waiting if w != peer]:
            waiting.discard(owner)
            if self._current.get(owner) == piece:
                out.extend(self._reveal(owner))
        return out

    def peer_has(self, peer: Hashable, piece: int) -> list[tuple[Hashable, RevealMessage]]:
        """Count it; if ``piece`` was shown to another peer, that peer gets its next piece."""
        self._check(piece)
        bits = self._bits.get(peer)
        if bits is None or not bits.set(piece):
            return []
        out = self._spread(peer, piece)
        if self._current.get(peer) is None:
            # Nothing shown to it yet (we had nothing it lacked): try again.
            out.extend(self._reveal(peer))
        return out

    def peer_bitfield(
        self, peer: Hashable, bitfield: Bitfield
    ) -> list[tuple[Hashable, RevealMessage]]:
        """Count all its pieces; if the piece we showed it is among them, show another."""
        old = self._bits.get(peer)
        if old is None:
            return []
        out: list[tuple[Hashable, RevealMessage]] = []
        for p in bitfield:
            if old.set(p):
                out.extend(self._spread(peer, p))
        cur = self._current.get(peer)
        if cur is not None and old[cur]:
            self._waiting_on.get(cur, set()).discard(peer)
            out.extend(self._reveal(peer))
        return out

    def piece_completed(self, piece: int) -> list[tuple[Hashable, RevealMessage]]:
        """Super-seeding is for seeds: just remember it."""
        self._check(piece)
        if self._have.set(piece):
            self._touch(piece)
        return []

    def may_upload(self, peer: Hashable, piece: int) -> bool:
        """Only pieces shown to ``peer``."""
        self._check(piece)
        return piece in self._revealed.get(peer, ())
