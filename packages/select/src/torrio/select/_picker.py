"""The piece picker: which blocks to request from which peer.

Data structures (after libtorrent's piece picker, rebuilt for Python):

* Every *free* piece (wanted, not had, no block requested or received) sits in exactly one
  bucket ``buckets[priority][availability]``, a plain list, and knows its index in it
  (``slot``). A HAVE moves a piece to the next bucket by swap-and-pop plus append: O(1), no
  scan. Peers that have everything (HAVE ALL, full bitfields) are counted once in ``seeds``
  instead of touching every piece.
* Pieces with at least one block requested or received are *partial* and live in a dict; the
  ones that still have unrequested blocks are also in ``open`` (a small set), so finishing
  partial pieces never scans the whole torrent.
* Picking walks priority levels high to low and buckets rarest first, testing the peer's bits
  inline, starting each bucket at a random offset (random tie-break). A peer with few pieces
  keeps a set of them and is matched the other way round, so a picker never walks 100k pieces
  for a peer that has ten.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from itertools import islice
from math import isqrt
from typing import Any

import attrs

from torrio.core import Bitfield

from ._errors import SelectError
from ._layout import BLOCK_SIZE, BlockRequest, PieceLayout
from ._queueing import Expired, QueueingStrategy, RequestQueue

DEFAULT_PRIORITY = 4
"""Priority of every piece unless told otherwise (0 = never download, 7 = highest)."""
MAX_PRIORITY = 7

_FREE = 0
_REQUESTED = 1
_RECEIVED = 2

# Bit positions set in each byte value, BEP 3 order (high bit = lowest index).
_BITS_OF = tuple(tuple(j for j in range(8) if b & (0x80 >> j)) for b in range(256))

_MAX_SUGGESTED = 16
# timed-out blocks remembered so another peer is asked first (oldest forgotten beyond this)
_MAX_AVOID = 4096
_NOBODY = object()
_MAX_ALLOWED_FAST = 64


class SpeedClass(enum.IntEnum):
    """How fast a peer delivers; peers prefer partial pieces started by their own class, so a
    slow peer does not hold up a piece fast peers could finish."""

    SLOW = 0
    MEDIUM = 1
    FAST = 2


@attrs.frozen
class BlockResult:
    """What :meth:`Picker.block_received` decided.

    ``accepted``: the block is new and wanted (write it); False for duplicates and pieces we
    no longer want. ``cancel``: other peers that were asked for the same block (endgame) — send
    them a CANCEL. ``piece_complete``: every block of the piece is in; hash it and report
    :meth:`Picker.piece_passed` or :meth:`Picker.piece_failed`.
    """

    accepted: bool
    cancel: tuple[Hashable, ...] = ()
    piece_complete: bool = False


@attrs.frozen
class PickerStatistics:
    """A snapshot of a :class:`Picker`."""

    pieces: int
    have: int
    wanted_remaining: int
    free: int
    partial: int
    open_partial: int
    peers: int
    seeds: int
    requested_blocks: int
    endgame: bool


@attrs.frozen
class PickerSettings:
    """Tuning of :class:`Picker`.

    ``endgame_duplicates``: how many peers may hold a request for one block in endgame.
    ``fast_rate`` / ``slow_rate``: bytes/s boundaries of the speed classes when the client does
    not set them. ``sequential_scan``: how many pieces past the first missing one sequential
    mode looks at before falling back to rarest first.
    """

    endgame_duplicates: int = 2
    fast_rate: float = 256 * 1024
    slow_rate: float = 16 * 1024
    sequential_scan: int = 4096


def _as_list(holders: Any) -> list[Hashable]:
    return holders if isinstance(holders, list) else [holders]


class _Partial:
    __slots__ = ("holders", "nblocks", "nfree", "nreceived", "sources", "speed", "state")

    def __init__(self, nblocks: int, speed: SpeedClass | None) -> None:
        self.nblocks = nblocks
        self.state = bytearray(nblocks)
        # block -> the peer holding its request, or a list of peers (endgame duplicates). Peer
        # keys are hashable, lists are not, so the two never mix up; one peer per block spares
        # an allocation per request.
        self.holders: dict[int, Any] = {}
        self.nfree = nblocks
        self.nreceived = 0
        self.sources: list[Hashable | None] = [None] * nblocks
        self.speed = speed


class _Peer:
    __slots__ = (
        "allowed_fast",
        "bits",
        "choked",
        "count",
        "reqs",
        "seed",
        "sparse",
        "speed",
        "suggested",
    )

    def __init__(self, nbytes: int) -> None:
        self.bits = bytearray(nbytes)
        self.count = 0
        self.seed = False
        self.sparse: set[int] | None = set()
        self.choked = True
        self.reqs: set[BlockRequest] = set()
        self.allowed_fast: set[int] = set()
        self.suggested: deque[int] = deque(maxlen=_MAX_SUGGESTED)
        self.speed: SpeedClass | None = None


class Picker:
    """Per-torrent block picker: availability, priorities, partial pieces, endgame, queueing.

    The client tells it what happens (peers' bitfields and haves, choke state, blocks received,
    rejected or timed out, pieces that passed or failed their hash) and asks
    :meth:`pick` for requests. Peer keys are any hashable values. Time is an input (``now``).

    ``have``: pieces we already have (a Bitfield or indices). ``queueing``: the
    :class:`QueueingStrategy` (default :class:`RequestQueue`). ``seed``: seeds the random
    tie-break between equally rare pieces (None: unpredictable).
    """

    def __init__(
        self,
        layout: PieceLayout,
        *,
        have: Bitfield | Iterable[int] | None = None,
        queueing: QueueingStrategy | None = None,
        settings: PickerSettings | None = None,
        seed: int | None = None,
    ) -> None:
        n = layout.num_pieces
        self.layout = layout
        self.settings = settings or PickerSettings()
        self.queueing: QueueingStrategy = queueing if queueing is not None else RequestQueue()
        self._n = n
        self._nbytes = (n + 7) >> 3
        self._sizes = layout.sizes
        self._nblocks = [(s + BLOCK_SIZE - 1) // BLOCK_SIZE for s in layout.sizes]
        self._rng = random.Random(seed)
        self._have = bytearray(n)
        self._have_count = 0
        self._prio = bytearray([DEFAULT_PRIORITY]) * n
        self._avail = [0] * n
        # availability among peers that are not choking us, and how many free wanted pieces
        # (in a bucket, priority > 0) at least one of them has: endgame starts when that is 0
        self._uavail = [0] * n
        self._useeds = 0
        self._free_unchoked = 0
        # (piece, block) -> the peer whose request for it timed out: others get it first
        self._avoid: dict[tuple[int, int], Hashable] = {}
        self._slot = [-1] * n
        self._buckets: list[list[list[int]]] = [[] for _ in range(MAX_PRIORITY + 1)]
        self._lowest = [0] * (MAX_PRIORITY + 1)
        self._level_count = [0] * (MAX_PRIORITY + 1)
        self._partials: dict[int, _Partial] = {}
        self._open: dict[int, _Partial] = {}
        self._peers: dict[Hashable, _Peer] = {}
        self._seeds = 0
        self._deadlines: dict[int, float] = {}
        self._deadline_order: list[tuple[float, int]] | None = None
        self._sequential = False
        self._seq_cursor = 0
        self._sparse_limit = max(32, isqrt(n) // 2)
        if have is not None:
            for p in have:
                self._check_piece(p)
                if not self._have[p]:
                    self._have[p] = 1
                    self._have_count += 1
        order = [p for p in range(n) if not self._have[p]]
        self._want_bits = bytearray(self._nbytes)
        self._wanted_left = 0
        for p in order:
            self._want_bits[p >> 3] |= 0x80 >> (p & 7)
        self._wanted_left = len(order)
        self._rng.shuffle(order)
        for p in order:
            self._bucket_add(p)

    # ------------------------------------------------------------------ internals

    def _check_piece(self, piece: int, peer: Hashable = None) -> None:
        if not (isinstance(piece, int) and 0 <= piece < self._n):
            raise SelectError(f"piece index {piece!r} out of range", peer=peer, piece=None)

    def _update_want(self, p: int) -> None:
        m = 0x80 >> (p & 7)
        was = bool(self._want_bits[p >> 3] & m)
        now = bool(self._prio[p]) and not self._have[p]
        if now and not was:
            self._want_bits[p >> 3] |= m
            self._wanted_left += 1
        elif was and not now:
            self._want_bits[p >> 3] &= ~m & 0xFF
            self._wanted_left -= 1

    def _peer(self, peer: Hashable) -> _Peer:
        st = self._peers.get(peer)
        if st is None:
            raise SelectError(f"unknown peer {peer!r}", peer=peer)
        return st

    def _bucket_add(self, p: int) -> None:
        pr = self._prio[p]
        a = self._avail[p]
        lvl = self._buckets[pr]
        while len(lvl) <= a:
            lvl.append([])
        lst = lvl[a]
        self._slot[p] = len(lst)
        lst.append(p)
        self._level_count[pr] += 1
        if a < self._lowest[pr]:
            self._lowest[pr] = a
        if pr and self._uavail[p]:
            self._free_unchoked += 1

    def _bucket_remove(self, p: int) -> None:
        pr = self._prio[p]
        lst = self._buckets[pr][self._avail[p]]
        s = self._slot[p]
        last = lst.pop()
        if last != p:
            lst[s] = last
            self._slot[last] = s
        self._slot[p] = -1
        self._level_count[pr] -= 1
        if pr and self._uavail[p]:
            self._free_unchoked -= 1

    def _ubulk(self, data: bytes | bytearray, delta: int) -> None:
        """Add ``delta`` to the unchoked availability of every piece set in ``data``."""
        uavail = self._uavail
        slot = self._slot
        prio = self._prio
        bits_of = _BITS_OF
        crossed = 0
        for byte_index, b in enumerate(data):
            if not b:
                continue
            base = byte_index << 3
            for j in bits_of[b]:
                p = base + j
                u = uavail[p]
                uavail[p] = u + delta
                if (u == 0 or u + delta == 0) and slot[p] >= 0 and prio[p]:
                    crossed += 1
        self._free_unchoked += crossed if delta > 0 else -crossed

    def _count_unchoked(self, st: _Peer, delta: int) -> None:
        """The peer's pieces start (+1) or stop (-1) counting as available from unchoked
        peers."""
        if st.seed:
            self._useeds += delta
        elif st.count:
            self._ubulk(st.bits, delta)

    def _bulk(self, data: bytes | bytearray, delta: int) -> None:
        """Add ``delta`` (+1/-1) to the availability of every piece set in ``data``: the
        inc/dec loop inlined, since a bitfield touches up to every piece."""
        avail = self._avail
        slot = self._slot
        prio = self._prio
        buckets = self._buckets
        lowest = self._lowest
        bits_of = _BITS_OF
        for byte_index, b in enumerate(data):
            if not b:
                continue
            base = byte_index << 3
            for j in bits_of[b]:
                p = base + j
                a = avail[p]
                avail[p] = na = a + delta
                s = slot[p]
                if s < 0:
                    continue
                pr = prio[p]
                lvl = buckets[pr]
                lst = lvl[a]
                last = lst.pop()
                if last != p:
                    lst[s] = last
                    slot[last] = s
                if len(lvl) == na:
                    lvl.append([])
                nxt = lvl[na]
                slot[p] = len(nxt)
                nxt.append(p)
                if na < lowest[pr]:
                    lowest[pr] = na

    def _start(self, p: int, speed: SpeedClass | None) -> _Partial:
        if self._slot[p] >= 0:
            self._bucket_remove(p)
        part = _Partial(self._nblocks[p], speed)
        self._partials[p] = part
        self._open[p] = part
        return part

    def _drop_partial(self, p: int) -> None:
        """Forget a partial piece that has nothing requested or received any more."""
        del self._partials[p]
        self._open.pop(p, None)
        if not self._have[p] and self._prio[p]:
            self._bucket_add(p)

    def _has(self, st: _Peer, p: int) -> bool:
        return st.seed or bool(st.bits[p >> 3] & (0x80 >> (p & 7)))

    def _take(
        self,
        p: int,
        peer: Hashable,
        st: _Peer,
        n: int,
        out: list[BlockRequest],
        speed: SpeedClass,
        honor_avoid: bool = True,
    ) -> int:
        """Request up to ``n`` free blocks of piece ``p`` for ``peer``; returns how many.

        A block whose request from ``peer`` timed out is skipped (left for another peer) unless
        ``honor_avoid`` is False."""
        if self._have[p] or not self._prio[p]:
            return 0
        part = self._partials.get(p)
        if part is None:
            part = self._start(p, speed)
        if not part.nfree:
            return 0
        if part.speed is None:
            part.speed = speed
        state = part.state
        holders = part.holders
        size = self._sizes[p]
        full_until = size - BLOCK_SIZE  # every block starting at or before this is full
        reqs = st.reqs
        new = tuple.__new__
        avoid = self._avoid or None
        got = 0
        i = state.find(_FREE)
        while got < n and i >= 0:
            if avoid is not None:
                who = avoid.get((p, i), _NOBODY)
                if who is not _NOBODY:
                    if honor_avoid and who == peer:
                        i = state.find(_FREE, i + 1)
                        continue
                    del avoid[(p, i)]
            state[i] = _REQUESTED
            holders[i] = peer
            off = i * BLOCK_SIZE
            r = new(BlockRequest, (p, off, BLOCK_SIZE if off <= full_until else size - off))
            reqs.add(r)
            out.append(r)
            got += 1
            i = state.find(_FREE, i + 1)
        part.nfree -= got
        if not part.nfree:
            self._open.pop(p, None)
        return got

    def _duplicate(
        self, p: int, part: _Partial, peer: Hashable, st: _Peer, n: int, out: list[BlockRequest]
    ) -> int:
        """Endgame: ask ``peer`` too for blocks of ``p`` others already hold."""
        limit = self.settings.endgame_duplicates
        size = self._sizes[p]
        got = 0
        holders = part.holders
        for i, hs in holders.items():
            if got >= n:
                break
            if isinstance(hs, list):
                if len(hs) >= limit or peer in hs:
                    continue
                hs.append(peer)
            else:
                if limit < 2 or hs == peer:
                    continue
                holders[i] = [hs, peer]
            off = i * BLOCK_SIZE
            r = BlockRequest(p, off, min(BLOCK_SIZE, size - off))
            st.reqs.add(r)
            out.append(r)
            got += 1
        return got

    def _speed_of(self, peer: Hashable, st: _Peer, now: float) -> SpeedClass:
        if st.speed is not None:
            return st.speed
        rate = self.queueing.rate(peer, now)
        if rate >= self.settings.fast_rate:
            return SpeedClass.FAST
        if rate >= self.settings.slow_rate:
            return SpeedClass.MEDIUM
        return SpeedClass.SLOW

    def _free_available(self) -> int:
        """Free pieces some connected peer has (bucket 0 = only seeds have it)."""
        total = sum(self._level_count[1:])
        if self._seeds:
            return total
        return total - sum(len(lvl[0]) for lvl in self._buckets[1:] if lvl)

    def _in_endgame(self) -> bool:
        """No free block left that a peer not choking us could send: pieces only choking peers
        have do not hold endgame back (they may never be unchoked)."""
        free = sum(self._level_count[1:]) if self._useeds else self._free_unchoked
        if free:
            return False
        useeds = self._useeds
        uavail = self._uavail
        return not any(self._prio[p] and (useeds or uavail[p]) for p in self._open)

    # ------------------------------------------------------------------ peers

    def add_peer(self, peer: Hashable, now: float = 0.0) -> None:
        """A peer connected (it has nothing until told; it is choking us until unchoked)."""
        if peer in self._peers:
            raise SelectError(f"peer {peer!r} already added", peer=peer)
        self._peers[peer] = _Peer(self._nbytes)
        self.queueing.add_peer(peer, now)

    def remove_peer(self, peer: Hashable) -> list[BlockRequest]:
        """A peer left: its pieces stop counting and its requests are released (returned)."""
        st = self._peers.get(peer)
        if st is None:
            return []
        released = self._release_all(peer, st)
        self._forget_pieces(st)
        del self._peers[peer]
        if self._avoid:
            for key in [k for k, who in self._avoid.items() if who == peer]:
                del self._avoid[key]
        self.queueing.remove_peer(peer)
        return released

    def _forget_pieces(self, st: _Peer) -> None:
        if not st.choked:
            self._count_unchoked(st, -1)
        if st.seed:
            self._seeds -= 1
            st.seed = False
        elif st.count:
            self._bulk(st.bits, -1)
            st.bits = bytearray(self._nbytes)
        st.count = 0
        st.sparse = set()

    def peer_has(self, peer: Hashable, piece: int) -> None:
        """HAVE ``piece`` from ``peer``: O(1)."""
        st = self._peers.get(peer)
        if st is None:
            raise SelectError(f"unknown peer {peer!r}", peer=peer)
        if not 0 <= piece < self._n:
            raise SelectError(f"HAVE for piece {piece} out of range", peer=peer, piece=piece)
        if st.seed:
            return
        bits = st.bits
        i = piece >> 3
        m = 0x80 >> (piece & 7)
        b = bits[i]
        if b & m:
            return
        bits[i] = b | m
        st.count += 1
        sp = st.sparse
        if sp is not None:
            if len(sp) >= self._sparse_limit:
                st.sparse = None
            else:
                sp.add(piece)
        # the hottest path of all: inlined bucket move
        avail = self._avail
        a = avail[piece]
        avail[piece] = a + 1
        slot = self._slot
        s = slot[piece]
        if not st.choked:  # counts towards endgame: available from a peer not choking us
            uavail = self._uavail
            u = uavail[piece]
            uavail[piece] = u + 1
            if not u and s >= 0 and self._prio[piece]:
                self._free_unchoked += 1
        if s >= 0:
            lvl = self._buckets[self._prio[piece]]
            lst = lvl[a]
            last = lst.pop()
            if last != piece:
                lst[s] = last
                slot[last] = s
            if len(lvl) == a + 1:
                lvl.append([])
            nxt = lvl[a + 1]
            slot[piece] = len(nxt)
            nxt.append(piece)

    def peer_bitfield(self, peer: Hashable, bitfield: Bitfield | bytes | bytearray) -> None:
        """BITFIELD from ``peer`` (replaces what it had). A full one makes it a seed: O(1)."""
        st = self._peer(peer)
        if isinstance(bitfield, Bitfield):
            if bitfield.length != self._n:
                raise SelectError("bitfield length does not match the torrent", peer=peer)
            data = bitfield.to_bytes()
        else:
            try:
                data = Bitfield.from_bytes(bitfield, self._n).to_bytes()
            except ValueError as e:
                raise SelectError(f"bad bitfield: {e}", peer=peer) from None
        self._forget_pieces(st)
        count = int.from_bytes(data, "big").bit_count()
        if count == self._n and self._n:
            st.seed = True
            st.sparse = None
            st.count = count
            self._seeds += 1
            if not st.choked:
                self._useeds += 1
            return
        st.bits = bytearray(data)
        st.count = count
        st.sparse = set() if count <= self._sparse_limit else None
        if st.sparse is not None:
            st.sparse.update((i << 3) + j for i, b in enumerate(data) if b for j in _BITS_OF[b])
        self._bulk(data, 1)
        if not st.choked:
            self._ubulk(data, 1)

    def peer_has_all(self, peer: Hashable) -> None:
        """HAVE ALL (BEP 6): the peer is a seed."""
        st = self._peer(peer)
        if st.seed:
            return
        self._forget_pieces(st)
        st.seed = True
        st.sparse = None
        st.count = self._n
        self._seeds += 1
        if not st.choked:
            self._useeds += 1

    def peer_has_none(self, peer: Hashable) -> None:
        """HAVE NONE (BEP 6)."""
        self._forget_pieces(self._peer(peer))

    def set_peer_choking(self, peer: Hashable, choking: bool) -> list[BlockRequest]:
        """The peer choked (True) or unchoked (False) us. Choking releases its requests (BEP 3
        peers drop them; BEP 6 peers reject them) except in allowed-fast pieces; they are
        returned."""
        st = self._peer(peer)
        if st.choked != choking:
            self._count_unchoked(st, -1 if choking else 1)
        st.choked = choking
        if not choking:
            return []
        keep = st.allowed_fast
        drop = [r for r in st.reqs if r.piece not in keep]
        for r in drop:
            self._release(peer, st, r)
        return drop

    def set_peer_speed(self, peer: Hashable, speed: SpeedClass | None) -> None:
        """Override the speed class derived from the peer's rate (None = derive)."""
        self._peer(peer).speed = speed

    def suggest(self, peer: Hashable, piece: int) -> None:
        """SUGGEST PIECE (BEP 6): prefer ``piece`` for this peer (the last 16 are kept)."""
        self._check_piece(piece, peer)
        st = self._peer(peer)
        if piece not in st.suggested:
            st.suggested.append(piece)

    def allowed_fast(self, peer: Hashable, piece: int) -> None:
        """ALLOWED FAST (BEP 6): ``piece`` may be requested while the peer chokes us."""
        self._check_piece(piece, peer)
        st = self._peer(peer)
        if len(st.allowed_fast) < _MAX_ALLOWED_FAST:
            st.allowed_fast.add(piece)

    # ------------------------------------------------------------------ our pieces

    @property
    def num_pieces(self) -> int:
        """Pieces in the torrent."""
        return self._n

    def have(self, piece: int) -> bool:
        """True if we have ``piece`` (it passed its hash)."""
        self._check_piece(piece)
        return bool(self._have[piece])

    def have_bitfield(self) -> Bitfield:
        """Our pieces as a :class:`~torrio.core.Bitfield` (a new object)."""
        bits = bytearray(self._nbytes)
        for p, h in enumerate(self._have):
            if h:
                bits[p >> 3] |= 0x80 >> (p & 7)
        return Bitfield.from_bytes(bits, self._n)

    def is_finished(self) -> bool:
        """True when every piece with priority > 0 is had."""
        return self.wanted_remaining() == 0

    def wanted_remaining(self) -> int:
        """Pieces with priority > 0 that we do not have."""
        return self._wanted_left

    def wants_piece(self, piece: int) -> bool:
        """True if we lack ``piece`` and its priority is > 0: a HAVE for it makes the sender
        interesting. O(1)."""
        self._check_piece(piece)
        return bool(self._want_bits[piece >> 3] & (0x80 >> (piece & 7)))

    def availability(self, piece: int) -> int:
        """How many connected peers have ``piece``."""
        self._check_piece(piece)
        return self._avail[piece] + self._seeds

    def is_interesting(self, peer: Hashable) -> bool:
        """True if ``peer`` has a piece we want and lack (send INTERESTED). O(pieces / 8) in C."""
        st = self._peer(peer)
        if not self._wanted_left:
            return False
        if st.seed:
            return True
        if not st.count:
            return False
        return bool(int.from_bytes(st.bits, "big") & int.from_bytes(self._want_bits, "big"))

    def piece_passed(self, piece: int) -> list[tuple[Hashable, BlockRequest]]:
        """``piece`` passed its hash (or we learned we have it): it is ours. Returns requests
        for it still outstanding at peers (send CANCELs)."""
        self._check_piece(piece)
        cancels: list[tuple[Hashable, BlockRequest]] = []
        part = self._partials.pop(piece, None)
        self._open.pop(piece, None)
        if part is not None:
            for i, hs in part.holders.items():
                r = self.layout.block(piece, i)
                for h in _as_list(hs):
                    st = self._peers.get(h)
                    if st is not None:
                        st.reqs.discard(r)
                        self.queueing.request_finished(h, r)
                    cancels.append((h, r))
        if self._slot[piece] >= 0:
            self._bucket_remove(piece)
        if self._avoid:
            for i in range(self._nblocks[piece]):
                self._avoid.pop((piece, i), None)
        if not self._have[piece]:
            self._have[piece] = 1
            self._have_count += 1
            self._update_want(piece)
        self._deadlines.pop(piece, None)
        self._deadline_order = None
        return cancels

    def piece_lost(self, piece: int) -> None:
        """We no longer have ``piece`` (storage lost it; we sent BEP 54 lt_donthave): it is
        wanted again if its priority is above 0, like any piece we never had."""
        self._check_piece(piece)
        if not self._have[piece]:
            return
        self._have[piece] = 0
        self._have_count -= 1
        self._update_want(piece)
        if piece < self._seq_cursor:
            self._seq_cursor = piece
        if self._prio[piece] and piece not in self._partials and self._slot[piece] < 0:
            self._bucket_add(piece)

    def piece_failed(self, piece: int) -> set[Hashable]:
        """``piece`` failed its hash: all its blocks are wanted again. Returns the peers that
        sent blocks of it (to distrust or ban)."""
        self._check_piece(piece)
        part = self._partials.get(piece)
        if part is None:
            return set()
        culprits = {s for s in part.sources if s is not None}
        for i in range(part.nblocks):
            if part.state[i] == _RECEIVED:
                part.state[i] = _FREE
                part.sources[i] = None
                part.nfree += 1
        part.nreceived = 0
        if part.nfree == part.nblocks:
            self._drop_partial(piece)
        else:
            self._open[piece] = part
        return culprits

    # ------------------------------------------------------------------ priorities

    def piece_priority(self, piece: int) -> int:
        """Priority of ``piece`` (0..7)."""
        self._check_piece(piece)
        return self._prio[piece]

    def set_piece_priority(self, piece: int, priority: int) -> None:
        """Set one piece's priority: 0 = never download, 1..7 low to high (default 4)."""
        self._check_piece(piece)
        if not (isinstance(priority, int) and 0 <= priority <= MAX_PRIORITY):
            raise SelectError(f"priority {priority!r} not in 0..7", piece=piece)
        if self._prio[piece] == priority:
            return
        free = self._slot[piece] >= 0
        if free:
            self._bucket_remove(piece)
        self._prio[piece] = priority
        self._update_want(piece)
        if priority and not self._have[piece] and piece not in self._partials:
            self._bucket_add(piece)

    def set_piece_priorities(self, priorities: Sequence[int]) -> None:
        """Set every piece's priority at once."""
        if len(priorities) != self._n:
            raise SelectError("need one priority per piece")
        for p, pr in enumerate(priorities):
            self.set_piece_priority(p, pr)

    def set_file_priorities(self, files: Iterable[tuple[range, int]]) -> None:
        """Priorities per file given as ``(piece_range, priority)``; a piece shared by files gets
        the highest of their priorities (a piece no file covers keeps its priority)."""
        prio: dict[int, int] = {}
        for rng, pr in files:
            if not 0 <= pr <= MAX_PRIORITY:
                raise SelectError(f"priority {pr!r} not in 0..7")
            for p in rng:
                self._check_piece(p)
                if prio.get(p, -1) < pr:
                    prio[p] = pr
        for p, pr in prio.items():
            self.set_piece_priority(p, pr)

    def set_sequential(self, sequential: bool) -> None:
        """Sequential mode: lowest index first instead of rarest first."""
        self._sequential = sequential

    def set_piece_deadline(self, piece: int, deadline: float) -> None:
        """Time-critical piece (streaming): picked before anything else, earliest deadline
        first; once ``now`` passes the deadline its blocks may be requested from two peers."""
        self._check_piece(piece)
        if self._have[piece]:
            return
        self._deadlines[piece] = deadline
        self._deadline_order = None

    def clear_piece_deadline(self, piece: int) -> None:
        """Remove a deadline."""
        self._deadlines.pop(piece, None)
        self._deadline_order = None

    # ------------------------------------------------------------------ picking

    def request_budget(self, peer: Hashable, now: float) -> int:
        """How many more requests ``peer`` should get now (queue depth minus outstanding)."""
        self._peer(peer)
        return max(0, self.queueing.queue_depth(peer, now) - self.queueing.outstanding(peer))

    def pick(self, peer: Hashable, count: int, now: float) -> list[BlockRequest]:
        """Up to ``count`` new block requests for ``peer``; send them and they are recorded as
        outstanding. Order: deadlines, partial pieces of the peer's speed class (unless new
        pieces of a higher priority exist), suggested pieces, then new pieces (sequential or
        rarest first, by priority), then other partial pieces, then endgame duplicates."""
        st = self._peers.get(peer)
        if st is None:
            raise SelectError(f"unknown peer {peer!r}", peer=peer)
        out: list[BlockRequest] = []
        if count <= 0 or (not st.seed and not st.count):
            return out
        speed = self._speed_of(peer, st, now)
        n = count
        if st.choked:
            for p in sorted(st.allowed_fast):
                if n <= 0:
                    break
                if self._has(st, p):
                    n -= self._take(p, peer, st, n, out, speed)
            return self._sent(peer, out, now)
        if self._deadlines:
            n = self._pick_deadlines(peer, st, n, out, speed, now)
        later: list[
            int
        ] = []  # partials of a lower priority than new pieces, or of another speed class
        if n > 0 and self._open:
            prio = self._prio
            # open partials come first, but never ahead of new pieces of a higher priority
            top = next((lv for lv in range(MAX_PRIORITY, 0, -1) if self._level_count[lv]), 0)
            cands = []
            others = []
            for p, part in self._open.items():
                if prio[p] and self._has(st, p):
                    key = (-prio[p], p if self._sequential else self._avail[p], p)
                    if prio[p] >= top and (part.speed is None or part.speed == speed):
                        cands.append(key)
                    else:
                        others.append(key)
            cands.sort()
            for _, _, p in cands:
                if n <= 0:
                    break
                n -= self._take(p, peer, st, n, out, speed)
            others.sort()
            later = [p for _, _, p in others]
        if n > 0 and st.suggested:
            for p in list(st.suggested):
                if n <= 0:
                    break
                if self._has(st, p):
                    n -= self._take(p, peer, st, n, out, speed)
        if n > 0:
            found = self._find_sequential(st, n) if self._sequential else []
            if not found:
                found = self._find_rarest(st, n)
            for p in found:
                if n <= 0:
                    break
                n -= self._take(p, peer, st, n, out, speed)
        if n > 0 and later:
            for p in later:
                if n <= 0:
                    break
                n -= self._take(p, peer, st, n, out, speed)
        if n > 0 and self._avoid:
            n = self._retake_avoided(peer, st, n, out, speed)
        if n > 0 and self._in_endgame():
            for p, part in list(self._partials.items()):
                if n <= 0:
                    break
                if self._prio[p] and part.nreceived < part.nblocks and self._has(st, p):
                    n -= self._duplicate(p, part, peer, st, n, out)
        return self._sent(peer, out, now)

    def _retake_avoided(
        self, peer: Hashable, st: _Peer, n: int, out: list[BlockRequest], speed: SpeedClass
    ) -> int:
        """Blocks that timed out at ``peer`` go back to it only when no other peer that is not
        choking us has the piece (someone has to fetch them)."""
        mine = sorted({p for (p, _), who in self._avoid.items() if who == peer})
        for p in mine:
            if n <= 0:
                break
            if not self._has(st, p) or self._have[p] or not self._prio[p]:
                continue
            others = any(
                o is not st and not o.choked and self._has(o, p) for o in self._peers.values()
            )
            if not others:
                n -= self._take(p, peer, st, n, out, speed, honor_avoid=False)
        return n

    def _sent(self, peer: Hashable, out: list[BlockRequest], now: float) -> list[BlockRequest]:
        if out:
            self.queueing.requests_sent(peer, out, now)
        return out

    def _pick_deadlines(
        self,
        peer: Hashable,
        st: _Peer,
        n: int,
        out: list[BlockRequest],
        speed: SpeedClass,
        now: float,
    ) -> int:
        if self._deadline_order is None:
            self._deadline_order = sorted((d, p) for p, d in self._deadlines.items())
        for d, p in self._deadline_order:
            if n <= 0:
                break
            if self._have[p] or not self._prio[p] or not self._has(st, p):
                continue
            n -= self._take(p, peer, st, n, out, speed)
            if n > 0 and now >= d:
                part = self._partials.get(p)
                if part is not None:
                    n -= self._duplicate(p, part, peer, st, n, out)
        return n

    def _find_sequential(self, st: _Peer, n: int) -> list[int]:
        have = self._have
        c = self._seq_cursor
        end = self._n
        while c < end and have[c]:
            c += 1
        self._seq_cursor = c
        slot = self._slot
        nblocks = self._nblocks
        seed = st.seed
        bits = st.bits
        found: list[int] = []
        acc = 0
        for p in range(c, min(end, c + self.settings.sequential_scan)):
            if slot[p] >= 0 and (seed or bits[p >> 3] & (0x80 >> (p & 7))):
                found.append(p)
                acc += nblocks[p]
                if acc >= n:
                    break
        return found

    def _find_rarest(self, st: _Peer, n: int) -> list[int]:
        found: list[int] = []
        slot = self._slot
        nblocks = self._nblocks
        if st.sparse is not None:
            prio = self._prio
            avail = self._avail
            cands = [(-prio[p], avail[p], p) for p in st.sparse if slot[p] >= 0]
            if not cands:
                return found
            self._rng.shuffle(cands)
            cands.sort(key=lambda c: (c[0], c[1]))
            acc = 0
            for c in cands:
                found.append(c[2])
                acc += nblocks[c[2]]
                if acc >= n:
                    break
            return found
        bits = st.bits
        seed = st.seed
        rnd = self._rng.random
        acc = 0
        for level in range(MAX_PRIORITY, 0, -1):
            if not self._level_count[level]:
                continue
            lvl = self._buckets[level]
            lo = self._lowest[level]
            while lo < len(lvl) and not lvl[lo]:
                lo += 1
            self._lowest[level] = lo
            for a in range(lo if seed else max(lo, 1), len(lvl)):
                lst = lvl[a]
                size = len(lst)
                if not size:
                    continue
                off = int(rnd() * size)
                for part in (islice(lst, off, None), islice(lst, 0, off)):
                    for p in part:
                        if seed or bits[p >> 3] & (0x80 >> (p & 7)):
                            found.append(p)
                            acc += nblocks[p]
                            if acc >= n:
                                return found
        return found

    # ------------------------------------------------------------------ block events

    def _block_index(self, peer: Hashable, request: BlockRequest) -> int:
        p, off, length = request
        if not (isinstance(p, int) and 0 <= p < self._n):
            raise SelectError(f"block for piece {p!r} out of range", peer=peer)
        size = self._sizes[p]
        if off < 0 or off % BLOCK_SIZE or off >= size or length != min(BLOCK_SIZE, size - off):
            raise SelectError(f"not a block of piece {p}: {request}", peer=peer, piece=p)
        return off // BLOCK_SIZE

    def block_received(self, peer: Hashable, request: BlockRequest, now: float) -> BlockResult:
        """``peer`` sent the block ``request`` names (``length`` = bytes received). Malformed
        blocks raise :class:`SelectError`; duplicates and unwanted blocks are not accepted."""
        i = self._block_index(peer, request)
        st = self._peer(peer)
        st.reqs.discard(request)
        self.queueing.block_received(peer, request, now)
        p = request.piece
        if self._have[p]:
            return BlockResult(False)
        part = self._partials.get(p)
        if part is None:
            if not self._prio[p]:
                return BlockResult(False)
            part = self._start(p, self._speed_of(peer, st, now))
        state = part.state
        if state[i] == _RECEIVED:
            return BlockResult(False)
        others: tuple[Hashable, ...] = ()
        hs = part.holders.pop(i, None)
        if hs is not None:
            others = tuple(h for h in _as_list(hs) if h != peer)
            for h in others:
                ost = self._peers.get(h)
                if ost is not None:
                    ost.reqs.discard(request)
                self.queueing.request_finished(h, request)
        if state[i] == _FREE:
            part.nfree -= 1
            if not part.nfree:
                self._open.pop(p, None)
        state[i] = _RECEIVED
        part.sources[i] = peer
        part.nreceived += 1
        if self._avoid:
            self._avoid.pop((p, i), None)
        return BlockResult(True, others, part.nreceived == part.nblocks)

    def block_rejected(self, peer: Hashable, request: BlockRequest) -> None:
        """REJECT REQUEST (BEP 6), or we cancelled the request: the block is free again."""
        self._block_index(peer, request)
        st = self._peer(peer)
        if request in st.reqs:
            self._release(peer, st, request)

    request_cancelled = block_rejected

    def tick(self, now: float) -> list[Expired]:
        """Apply request timeouts and snubbing at ``now``; the returned requests were released
        (send CANCEL for each). Call it when :meth:`next_deadline` is reached."""
        expired = self.queueing.expire(now)
        for e in expired:
            st = self._peers.get(e.peer)
            if st is not None and e.request in st.reqs:
                self._release(e.peer, st, e.request)
                if not self._have[e.request.piece]:  # timed out, or the peer was snubbed
                    self._avoid_block(e.peer, e.request)
        return expired

    def _avoid_block(self, peer: Hashable, r: BlockRequest) -> None:
        """Remember that ``peer`` let ``r`` time out: another peer should get it first."""
        avoid = self._avoid
        if len(avoid) >= _MAX_AVOID:
            del avoid[next(iter(avoid))]  # oldest first
        avoid[(r.piece, r.offset // BLOCK_SIZE)] = peer

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has work, or None."""
        return self.queueing.next_deadline()

    def _release(self, peer: Hashable, st: _Peer, r: BlockRequest) -> None:
        st.reqs.discard(r)
        self.queueing.request_finished(peer, r)
        part = self._partials.get(r.piece)
        if part is None:
            return
        i = r.offset // BLOCK_SIZE
        hs = part.holders.get(i)
        if isinstance(hs, list):
            if peer in hs:
                hs.remove(peer)
                if len(hs) == 1:
                    part.holders[i] = hs[0]
            return
        if hs is None or hs != peer:
            return
        del part.holders[i]
        if part.state[i] == _REQUESTED:
            part.state[i] = _FREE
            part.nfree += 1
            if part.nfree == part.nblocks:
                self._drop_partial(r.piece)
                return
            self._open[r.piece] = part
        if not part.holders:
            # Nobody works on it any more: any speed class may finish it.
            part.speed = None

    def _release_all(self, peer: Hashable, st: _Peer) -> list[BlockRequest]:
        released = list(st.reqs)
        for r in released:
            self._release(peer, st, r)
        return released

    # ------------------------------------------------------------------ inspection

    def outstanding(self, peer: Hashable) -> list[BlockRequest]:
        """Requests ``peer`` currently holds."""
        return sorted(self._peer(peer).reqs)

    def outstanding_count(self, peer: Hashable) -> int:
        """How many requests ``peer`` holds. O(1)."""
        return len(self._peer(peer).reqs)

    def peers(self) -> list[Hashable]:
        """Connected peers."""
        return list(self._peers)

    def partial_pieces(self) -> list[int]:
        """Pieces with blocks requested or received but not yet had."""
        return sorted(self._partials)

    def statistics(self) -> PickerStatistics:
        """A snapshot (O(pieces) for the remaining count; not for hot paths)."""
        return PickerStatistics(
            pieces=self._n,
            have=self._have_count,
            wanted_remaining=self.wanted_remaining(),
            free=sum(self._level_count[1:]),
            partial=len(self._partials),
            open_partial=len(self._open),
            peers=len(self._peers),
            seeds=self._seeds,
            requested_blocks=sum(len(st.reqs) for st in self._peers.values()),
            endgame=self._in_endgame(),
        )
