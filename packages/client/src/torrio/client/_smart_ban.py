"""Smart ban: find which peer sent the bad block of a piece that failed its hash check.

Sans-I/O bookkeeping. For every block received, the session records who sent it and the block's
bytes (the same object storage caches, so no copy) up to ``max_retained`` bytes, a CRC-32 beyond
that. Digests (CRC-32: it only tells two versions of one block apart; the piece hash is the real
check) are computed only on the rare path, when a piece fails or a failed piece passes, so the
common path costs no hashing at all. When a piece fails, its records are kept; when the piece later
passes, every peer whose recorded digest for some block differs from the good one sent a bad block and
is banned. A peer that alone sent every block of a failed piece is banned at once, and a peer that
took part in ``strike_limit`` failed pieces is banned too (it cannot be cleared by a pass that never
comes). Memory is bounded: at most ``max_pieces`` pieces are remembered.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Hashable

import attrs


def block_digest(data: bytes | bytearray | memoryview) -> int:
    """The digest recorded per block (CRC-32)."""
    return zlib.crc32(data)


@attrs.define
class SmartBan:
    """Per-torrent record of block senders and digests, and the peers proven to lie."""

    max_pieces: int = 512
    strike_limit: int = 3
    max_retained: int = 16 << 20
    _inflight: OrderedDict[int, dict[int, tuple[Hashable, bytes | int]]] = attrs.field(
        factory=OrderedDict, alias="_inflight"
    )
    _retained: int = attrs.field(default=0, alias="_retained")
    _failed: OrderedDict[int, dict[int, dict[int, set[Hashable]]]] = attrs.field(
        factory=OrderedDict, alias="_failed"
    )
    _strikes: dict[Hashable, int] = attrs.field(factory=dict, alias="_strikes")

    def block_received(
        self, piece: int, offset: int, peer: Hashable, data: bytes | memoryview | int
    ) -> None:
        """Record that ``peer`` sent the block at ``offset`` of ``piece`` (its bytes or digest)."""
        blocks = self._inflight.get(piece)
        if blocks is None:
            if len(self._inflight) >= self.max_pieces:
                self._release(self._inflight.popitem(last=False)[1])
            blocks = self._inflight[piece] = {}
        old = blocks.get(offset)
        if old is not None and isinstance(old[1], bytes):
            self._retained -= len(old[1])
        if isinstance(data, bytes | bytearray | memoryview):
            if self._retained + len(data) > self.max_retained:
                data = block_digest(data)
            else:
                data = bytes(data)
                self._retained += len(data)
        blocks[offset] = (peer, data)

    def _release(self, blocks: dict[int, tuple[Hashable, bytes | int]]) -> None:
        for _, data in blocks.values():
            if isinstance(data, bytes):
                self._retained -= len(data)

    def _take(self, piece: int) -> dict[int, tuple[Hashable, int]]:
        blocks = self._inflight.pop(piece, {})
        self._release(blocks)
        return {
            off: (peer, block_digest(d) if isinstance(d, bytes) else d)
            for off, (peer, d) in blocks.items()
        }

    def piece_failed(self, piece: int) -> set[Hashable]:
        """The piece failed its hash check: returns the peers to ban now."""
        blocks = self._take(piece)
        senders = {peer for peer, _ in blocks.values()}
        ban: set[Hashable] = set()
        if len(senders) == 1:
            ban |= senders
        record = self._failed.get(piece)
        if record is None:
            if len(self._failed) >= self.max_pieces:
                self._failed.popitem(last=False)
            record = self._failed[piece] = {}
        for offset, (peer, digest) in blocks.items():
            record.setdefault(offset, {}).setdefault(digest, set()).add(peer)
        for peer in senders:
            n = self._strikes[peer] = self._strikes.get(peer, 0) + 1
            if n >= self.strike_limit:
                ban.add(peer)
        return ban

    def piece_passed(self, piece: int) -> set[Hashable]:
        """The piece passed: returns peers that had sent a different (so bad) version of a block."""
        record = self._failed.pop(piece, None)
        if record is None:
            self._release(self._inflight.pop(piece, {}))
            return set()
        blocks = self._take(piece)
        ban: set[Hashable] = set()
        for offset, versions in record.items():
            good = blocks.get(offset)
            if good is None:
                continue
            for digest, peers in versions.items():
                if digest != good[1]:
                    ban |= peers
        return ban

    def forget_peer(self, peer: Hashable) -> None:
        """Drop strikes of a peer that was banned (its records age out with the pieces)."""
        self._strikes.pop(peer, None)
