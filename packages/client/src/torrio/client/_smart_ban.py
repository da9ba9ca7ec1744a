"""Smart ban: find which peer sent the bad block of a piece that failed its hash check.

Sans-I/O bookkeeping. For every block received, the session records who sent it and a cheap digest
of its bytes (CRC-32; it only needs to tell two versions of one block apart, not resist forgery:
the piece hash is the real check). When a piece fails, its records are kept; when the piece later
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
    _inflight: OrderedDict[int, dict[int, tuple[Hashable, int]]] = attrs.field(
        factory=OrderedDict, alias="_inflight"
    )
    _failed: OrderedDict[int, dict[int, dict[int, set[Hashable]]]] = attrs.field(
        factory=OrderedDict, alias="_failed"
    )
    _strikes: dict[Hashable, int] = attrs.field(factory=dict, alias="_strikes")

    def block_received(self, piece: int, offset: int, peer: Hashable, digest: int) -> None:
        """Record that ``peer`` sent the block at ``offset`` of ``piece`` with this digest."""
        blocks = self._inflight.get(piece)
        if blocks is None:
            if len(self._inflight) >= self.max_pieces:
                self._inflight.popitem(last=False)
            blocks = self._inflight[piece] = {}
        blocks[offset] = (peer, digest)

    def piece_failed(self, piece: int) -> set[Hashable]:
        """The piece failed its hash check: returns the peers to ban now."""
        blocks = self._inflight.pop(piece, {})
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
        blocks = self._inflight.pop(piece, {})
        record = self._failed.pop(piece, None)
        if record is None:
            return set()
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
