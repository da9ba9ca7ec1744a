"""Answering BEP 52 hash requests from a v2 torrent's piece layers.

A peer downloading a v2 torrent from a magnet link has the info dict (BEP 9) but not the piece
layers, so it asks for them with ``hash request`` messages; BEP 52 says every request MUST be
answered with ``hashes`` or ``hash reject``. :class:`HashServer` is the sans-I/O answerer: built
from a :class:`torrio.metainfo.Torrent` that has its piece layers, it serves any layer at or
above the piece layer (the piece layer itself, and the levels above it up to below the file's
``pieces root``) with the uncle hashes the request asks for. Per-file trees are built on first use
(one SHA-256 per node) and kept in a cache bounded by a number of hashes.

Not served (rejected): layers below the piece layer (``base`` 0, the 16 KiB block hashes: they
would need the piece read from disk and hashed), files of at most one piece (they have no piece
layer), unknown roots, and anything :func:`torrio.metainfo.check_hash_request` refuses. A peer is
limited to ``max_requests_per_second`` requests and ``max_hashes_per_second`` hashes in each
one-second window; beyond that it gets rejects.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, overload

import attrs

from torrio.metainfo import (
    BLOCK_SIZE,
    MAX_HASH_REQUEST_LENGTH,
    merkle_hashes,
    merkle_levels,
    merkle_uncle_count,
    piece_layer_pad,
)
from torrio.wire import Hashes, HashReject, HashRequest

if TYPE_CHECKING:
    from torrio.metainfo import Torrent

#: Requests one peer may make in a one-second window before it is rejected.
DEFAULT_MAX_REQUESTS_PER_SECOND = 64
#: Hashes (base hashes plus uncles) one peer may take in a one-second window.
DEFAULT_MAX_HASHES_PER_SECOND = 32768
#: Tree nodes kept in the cache (32 bytes each, so 2**21 is 64 MiB); the tree in use always fits.
DEFAULT_CACHE_HASHES = 1 << 21

_HASH = 32


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


@attrs.define
class _Budget:
    window: float
    requests: int = 0
    hashes: int = 0


class HashServer:
    """Answers BEP 52 hash requests from ``torrent``'s piece layers (see the module docstring)."""

    def __init__(
        self,
        torrent: Torrent,
        *,
        max_requests_per_second: int = DEFAULT_MAX_REQUESTS_PER_SECOND,
        max_hashes_per_second: int = DEFAULT_MAX_HASHES_PER_SECOND,
        cache_hashes: int = DEFAULT_CACHE_HASHES,
        max_peers: int = 1024,
    ) -> None:
        self.piece_length = torrent.piece_length
        self.piece_base = max(0, (torrent.piece_length // BLOCK_SIZE).bit_length() - 1)
        """``base_layer`` of the piece layer (log2 of 16 KiB blocks per piece)."""
        self.max_requests_per_second = max_requests_per_second
        self.max_hashes_per_second = max_hashes_per_second
        self.cache_hashes = cache_hashes
        self.max_peers = max_peers
        self._layers: dict[bytes, bytes] = {}
        if torrent.has_v2:
            for f in torrent.files:
                root = f.pieces_root
                if root is None or f.length <= torrent.piece_length:
                    continue
                layer = torrent.piece_layers.get(root)
                if layer is not None:
                    self._layers[root] = layer
        self._pad = piece_layer_pad(torrent.piece_length)
        self._trees: OrderedDict[bytes, list[_Row]] = OrderedDict()
        self._cached = 0
        self._budgets: dict[Hashable, _Budget] = {}
        self._served = 0
        self._rejected = 0
        self._rate_limited = 0
        self._built = 0

    @property
    def roots(self) -> frozenset[bytes]:
        """The pieces roots whose layers this server can answer for."""
        return frozenset(self._layers)

    def _tree(self, root: bytes) -> list[_Row]:
        tree = self._trees.get(root)
        if tree is not None:
            self._trees.move_to_end(root)
            return tree
        layer = self._layers[root]
        leaves = [layer[i : i + _HASH] for i in range(0, len(layer), _HASH)]
        tree = [_Row(b"".join(level)) for level in merkle_levels(leaves, self._pad)]
        size = sum(len(r) for r in tree)
        while self._trees and self._cached + size > self.cache_hashes:
            _, old = self._trees.popitem(last=False)
            self._cached -= sum(len(r) for r in old)
        self._trees[root] = tree
        self._cached += size
        self._built += 1
        return tree

    def _over_budget(self, peer: Hashable, cost: int, now: float) -> bool:
        b = self._budgets.pop(peer, None)
        if b is None or now - b.window >= 1.0 or now < b.window:
            b = _Budget(now)
        self._budgets[peer] = b  # re-inserted: least recently active first
        while len(self._budgets) > self.max_peers:
            del self._budgets[next(iter(self._budgets))]
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
        return HashReject(r.pieces_root, r.base_layer, r.index, r.length, r.proof_layers)

    def respond(
        self, request: HashRequest, peer: Hashable | None = None, now: float = 0.0
    ) -> Hashes | HashReject:
        """``hashes`` answering ``request``, or ``hash reject``; never raises for any request.

        Pass ``peer`` (any hashable naming the connection) and ``now`` (seconds) to apply the
        per-peer budget; ``peer=None`` is unlimited.
        """
        r = request
        if r.pieces_root not in self._layers or r.length > MAX_HASH_REQUEST_LENGTH:
            return self._reject(r)
        level = r.base_layer - self.piece_base
        if level < 0:
            return self._reject(r)
        cost = r.length + merkle_uncle_count(r.length, min(r.proof_layers, 64))
        if peer is not None and self._over_budget(peer, cost, now):
            self._rate_limited += 1
            return self._reject(r)
        try:
            hashes = merkle_hashes(
                self._tree(r.pieces_root), level, r.index, r.length, r.proof_layers
            )
        except ValueError:
            return self._reject(r)
        self._served += 1
        return Hashes(
            r.pieces_root, r.base_layer, r.index, r.length, r.proof_layers, b"".join(hashes)
        )

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
        )
