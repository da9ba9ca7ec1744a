"""Answering BEP 52 hash requests from a v2 torrent's piece layers and the pieces we have.

A peer downloading a v2 torrent from a magnet link has the info dict (BEP 9) but not the piece
layers, so it asks for them with ``hash request`` messages; BEP 52 says every request MUST be
answered with ``hashes`` or ``hash reject``. :class:`HashServer` is the sans-I/O answerer, built
from a :class:`torrio.metainfo.Torrent` that has its piece layers:

* the piece layer and the levels above it (below the file's ``pieces root``) come from the
  layer alone: the file's tree above it is built on first use (one SHA-256 per node) and kept in
  a cache bounded by a number of hashes;
* levels below the piece layer (``base`` 0 is the 16 KiB block hashes) need the data:
  :meth:`HashServer.pieces_needed` names the pieces, and :meth:`HashServer.respond` hashes them
  (each must hash to its piece-layer entry, else the request is rejected). The async
  :meth:`HashServer.answer` reads them through a callback (the session passes its piece reader,
  which only returns pieces we have). Files of at most one piece have no piece layer; their
  whole tree is inside one piece and is served the same way.

Unknown roots and anything :func:`torrio.metainfo.check_hash_request` refuses are rejected. A
peer is limited per one-second window to ``max_requests_per_second`` requests,
``max_hashes_per_second`` hashes and ``max_read_per_second`` bytes read; beyond that it gets
rejects. One request may read at most ``max_read_per_request`` bytes (at least one piece).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, overload

import attrs

from torrio.metainfo import (
    BLOCK_SIZE,
    block_hashes,
    check_hash_request,
    merkle_hashes,
    merkle_levels,
    merkle_uncle_count,
    pad_hash,
    piece_layer_pad,
)
from torrio.wire import Hashes, HashReject, HashRequest

if TYPE_CHECKING:
    from torrio.metainfo import Torrent

#: Requests one peer may make in a one-second window before it is rejected.
DEFAULT_MAX_REQUESTS_PER_SECOND = 64
#: Hashes (base hashes plus uncles) one peer may take in a one-second window.
DEFAULT_MAX_HASHES_PER_SECOND = 32768
#: Bytes of piece data one peer may make us read (to hash blocks) in a one-second window.
DEFAULT_MAX_READ_PER_SECOND = 8 << 20
#: Bytes one block-layer request may make us read (at least one piece is always allowed).
DEFAULT_MAX_READ_PER_REQUEST = 1 << 20
#: Tree nodes kept in the cache (32 bytes each, so 2**21 is 64 MiB); the tree in use always fits.
DEFAULT_CACHE_HASHES = 1 << 21

_HASH = 32
ZERO_HASH = bytes(_HASH)


class _Row(Sequence[bytes]):
    """One level of a tree stored as concatenated digests (a list of bytes costs 2x the memory)."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __len__(self) -> int:
        return len(self._data) // _HASH

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...
    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step != 1:
                raise ValueError("step slices are not supported")
            d = self._data
            return [d[k * _HASH : (k + 1) * _HASH] for k in range(start, stop)]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self._data[i * _HASH : (i + 1) * _HASH]

    def __iter__(self) -> Iterator[bytes]:
        d = self._data
        return (d[k : k + _HASH] for k in range(0, len(d), _HASH))


@attrs.frozen
class HashServerStatistics:
    """A snapshot of a :class:`HashServer`."""

    served: int
    """Requests answered with ``hashes``."""
    rejected: int
    """Requests answered with ``hash reject`` (all reasons)."""
    rate_limited: int
    """Of ``rejected``: refused because the peer was over its budget."""
    trees_built: int
    cached_hashes: int
    pieces_hashed: int
    """Pieces read and hashed to answer block-layer requests."""


@attrs.define
class _Budget:
    window: float
    requests: int = 0
    hashes: int = 0
    read: int = 0


@attrs.frozen
class _File:
    root: bytes
    first_piece: int
    """The torrent piece index where the file starts (v2 files are piece-aligned)."""
    pieces: int
    length: int
    height: int
    """Levels of the file's block tree above its 16 KiB leaves (the root is at this level)."""
    sub: int
    """Levels inside one piece: the piece layer's ``base`` (a file of one piece: ``height``)."""
    layer: bytes | None
    """The piece layer (None for a file of at most one piece)."""


class HashServer:
    """Answers BEP 52 hash requests from ``torrent``'s piece layers (see the module docstring)."""

    def __init__(
        self,
        torrent: Torrent,
        *,
        max_requests_per_second: int = DEFAULT_MAX_REQUESTS_PER_SECOND,
        max_hashes_per_second: int = DEFAULT_MAX_HASHES_PER_SECOND,
        max_read_per_second: int = DEFAULT_MAX_READ_PER_SECOND,
        max_read_per_request: int = DEFAULT_MAX_READ_PER_REQUEST,
        cache_hashes: int = DEFAULT_CACHE_HASHES,
        max_peers: int = 1024,
    ) -> None:
        pl = torrent.piece_length
        self.piece_length = pl
        self.piece_base = max(0, (pl // BLOCK_SIZE).bit_length() - 1)
        """``base_layer`` of the piece layer (log2 of 16 KiB blocks per piece)."""
        self.max_requests_per_second = max_requests_per_second
        self.max_hashes_per_second = max_hashes_per_second
        self.max_read_per_second = max_read_per_second
        self.max_read_per_request = max(max_read_per_request, pl)
        self.cache_hashes = cache_hashes
        self.max_peers = max_peers
        self._files: dict[bytes, _File] = {}
        if torrent.has_v2:
            for f in torrent.files:
                root = f.pieces_root
                if root is None or f.length <= 0 or root in self._files:
                    continue
                blocks = -(-f.length // BLOCK_SIZE)
                height = (blocks - 1).bit_length()
                if f.length <= pl:
                    self._files[root] = _File(
                        root, f.offset // pl, 1, f.length, height, height, None
                    )
                    continue
                layer = torrent.piece_layers.get(root)
                if layer is None:
                    continue  # cannot prove anything for this file
                pieces = -(-f.length // pl)
                self._files[root] = _File(
                    root, f.offset // pl, pieces, f.length, height, self.piece_base, layer
                )
        self._pad = piece_layer_pad(pl)
        self._trees: OrderedDict[bytes, list[_Row]] = OrderedDict()
        self._cached = 0
        self._budgets: dict[Hashable, _Budget] = {}
        self._served = 0
        self._rejected = 0
        self._rate_limited = 0
        self._built = 0
        self._pieces_hashed = 0

    @property
    def roots(self) -> frozenset[bytes]:
        """The pieces roots this server can answer for (files with a piece layer, small files)."""
        return frozenset(self._files)

    def _tree(self, f: _File) -> list[_Row]:
        """The levels from the piece layer up to the root (a small file: just the root)."""
        if f.layer is None:
            return [_Row(f.root)]
        tree = self._trees.get(f.root)
        if tree is not None:
            self._trees.move_to_end(f.root)
            return tree
        layer = f.layer
        leaves = [layer[i : i + _HASH] for i in range(0, len(layer), _HASH)]
        tree = [_Row(b"".join(level)) for level in merkle_levels(leaves, self._pad)]
        size = sum(len(r) for r in tree)
        while self._trees and self._cached + size > self.cache_hashes:
            _, old = self._trees.popitem(last=False)
            self._cached -= sum(len(r) for r in old)
        self._trees[f.root] = tree
        self._cached += size
        self._built += 1
        return tree

    def _budget(self, peer: Hashable, now: float) -> _Budget:
        b = self._budgets.pop(peer, None)
        if b is None or now - b.window >= 1.0 or now < b.window:
            b = _Budget(now)
        self._budgets[peer] = b  # re-inserted: least recently active first
        while len(self._budgets) > self.max_peers:
            del self._budgets[next(iter(self._budgets))]
        return b

    def _over_budget(self, peer: Hashable, cost: int, now: float) -> bool:
        b = self._budget(peer, now)
        b.requests += 1
        if (
            b.requests > self.max_requests_per_second
            or b.hashes + cost > self.max_hashes_per_second
        ):
            return True
        b.hashes += cost
        return False

    def _reject(self, r: HashRequest) -> HashReject:
        self._rejected += 1
        return r.rejected()

    def _valid(self, r: HashRequest) -> _File | None:
        f = self._files.get(r.pieces_root)
        if f is None:
            return None
        try:
            check_hash_request(f.height, r.base_layer, r.index, r.length, r.proof_layers)
        except ValueError:
            return None
        return f

    def pieces_needed(self, request: HashRequest) -> tuple[int, ...]:
        """Torrent pieces whose data answers ``request`` (a layer below the piece layer).

        Empty when no data is needed (the piece layer and above, a run wholly in the padding
        past the file's end) or when the request is invalid or would read more than
        ``max_read_per_request`` bytes (:meth:`respond` rejects it then).
        """
        f = self._valid(request)
        if f is None or request.base_layer >= f.sub:
            return ()
        d = f.sub - request.base_layer
        lo = request.index >> d
        hi = min((request.index + request.length - 1) >> d, f.pieces - 1)
        if (hi - lo + 1) * self.piece_length > self.max_read_per_request:
            return ()
        return tuple(f.first_piece + p for p in range(lo, hi + 1))

    def respond(
        self,
        request: HashRequest,
        peer: Hashable | None = None,
        now: float = 0.0,
        pieces: Mapping[int, bytes] | None = None,
    ) -> Hashes | HashReject:
        """``hashes`` answering ``request``, or ``hash reject``; never raises for any request.

        Pass ``peer`` (any hashable naming the connection) and ``now`` (seconds) to apply the
        per-peer budget; ``peer=None`` is unlimited. Layers below the piece layer need the data
        of :meth:`pieces_needed` in ``pieces`` (torrent piece index -> bytes); pieces missing,
        or whose hashes do not match the piece layer, get a reject. :meth:`answer` does the
        reading through a callback.
        """
        r = request
        f = self._valid(r)
        if f is None:
            return self._reject(r)
        cost = r.length + merkle_uncle_count(r.length, r.proof_layers)
        if peer is not None and self._over_budget(peer, cost, now):
            self._rate_limited += 1
            return self._reject(r)
        if r.base_layer >= f.sub:
            tree = self._tree(f)
            hashes = merkle_hashes(tree, r.base_layer - f.sub, r.index, r.length, r.proof_layers)
        else:
            found = self._block_hashes(f, r, pieces or {})
            if found is None:
                return self._reject(r)
            hashes = found
        self._served += 1
        return Hashes(
            r.pieces_root, r.base_layer, r.index, r.length, r.proof_layers, b"".join(hashes)
        )

    def _block_hashes(
        self, f: _File, r: HashRequest, pieces: Mapping[int, bytes]
    ) -> list[bytes] | None:
        """The answer below the piece layer, from the pieces' data (None: data missing/bad)."""
        need = self.pieces_needed(r)
        d = f.sub - r.base_layer
        if not need and (r.index >> d) < f.pieces:
            return None  # over the read cap
        tree = self._tree(f)
        sub: dict[int, list[list[bytes]]] = {}
        for tp in need:
            p = tp - f.first_piece
            data = pieces.get(tp)
            size = min(self.piece_length, f.length - p * self.piece_length)
            if data is None or len(data) < size:
                return None
            leaves = block_hashes(memoryview(data)[:size])
            levels = merkle_levels(leaves + [ZERO_HASH] * ((1 << f.sub) - len(leaves)))
            self._pieces_hashed += 1
            if levels[-1][0] != tree[0][p]:
                return None  # the data on disk no longer matches the piece layer
            sub[p] = levels

        def node(level: int, pos: int) -> bytes:
            if level >= f.sub:
                return tree[level - f.sub][pos]
            p = pos >> (f.sub - level)
            if p >= f.pieces:
                return pad_hash(level)
            return sub[p][level][pos & ((1 << (f.sub - level)) - 1)]

        out = [node(r.base_layer, i) for i in range(r.index, r.index + r.length)]
        shift = r.length.bit_length() - 1
        out.extend(
            node(r.base_layer + shift + i, (r.index >> (shift + i)) ^ 1)
            for i in range(merkle_uncle_count(r.length, r.proof_layers))
        )
        return out

    async def answer(
        self,
        request: HashRequest,
        peer: Hashable | None,
        now: float,
        read_piece: Callable[[int], Awaitable[bytes | None]],
    ) -> Hashes | HashReject:
        """:meth:`respond`, reading the pieces a block-layer request needs with ``read_piece``.

        ``read_piece(index)`` returns the torrent piece's bytes, or None if we do not have it.
        Reads count against the peer's ``max_read_per_second`` budget.
        """
        need = self.pieces_needed(request)
        pieces: dict[int, bytes] = {}
        if need:
            if peer is not None:
                b = self._budget(peer, now)
                cost = len(need) * self.piece_length
                if b.read + cost > self.max_read_per_second:
                    self._rate_limited += 1
                    return self._reject(request)
                b.read += cost
            for p in need:
                data = await read_piece(p)
                if data is None:
                    return self._reject(request)
                pieces[p] = data
        return self.respond(request, peer, now, pieces)

    def forget(self, peer: Hashable) -> None:
        """Drop ``peer``'s budget (it disconnected)."""
        self._budgets.pop(peer, None)

    def statistics(self) -> HashServerStatistics:
        """Counters and the cache size."""
        return HashServerStatistics(
            served=self._served,
            rejected=self._rejected,
            rate_limited=self._rate_limited,
            trees_built=self._built,
            cached_hashes=self._cached,
            pieces_hashed=self._pieces_hashed,
        )
