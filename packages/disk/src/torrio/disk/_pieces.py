"""Pure piece geometry and hashing: which file bytes make up a piece, and is a piece correct.

No trio, no files: the manager hands these functions buffers it read or received.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence

import attrs

from ._errors import DiskError
from ._filesystem import Buffer
from ._torrent import TorrentLike

BLOCK_SIZE = 16384
"""Bytes per block (BEP 3 request size, and the v2 merkle leaf size)."""

_ZERO_HASH = bytes(32)


@attrs.frozen
class Span:
    """The part of one file that falls inside a piece."""

    file_index: int
    file_offset: int
    piece_offset: int
    length: int
    is_pad: bool


@attrs.frozen
class V2Target:
    """What a piece's v2 hash covers: ``length`` bytes from piece offset 0, ``leaves`` leaves."""

    expected: bytes
    length: int
    leaves: int


def _next_pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def merkle_root(leaves: Sequence[bytes], leaf_count: int) -> bytes:
    """SHA-256 merkle root of ``leaves`` padded with zero hashes to ``leaf_count`` (a power of 2)."""
    layer = list(leaves)
    layer.extend([_ZERO_HASH] * (leaf_count - len(layer)))
    while len(layer) > 1:
        layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest() for i in range(0, len(layer), 2)]
    return layer[0]


class PieceMap:
    """Piece geometry of a :class:`TorrentLike`, validated once; raises :class:`DiskError`."""

    def __init__(self, torrent: TorrentLike) -> None:
        self.piece_length = pl = torrent.piece_length
        self.num_pieces = torrent.num_pieces
        files = list(torrent.files)
        if pl <= 0 or (torrent.version != "v1" and pl % BLOCK_SIZE):
            raise DiskError(f"bad piece length {pl}")
        self.paths = ["/".join(f.path) for f in files]
        self.lengths = [f.length for f in files]
        self.offsets = [f.offset for f in files]
        self.is_pad = [f.is_pad for f in files]
        self.roots = [f.pieces_root for f in files]
        pos = 0
        for i, f in enumerate(files):
            if f.offset != pos or f.length < 0:
                raise DiskError(f"file {i} ({self.paths[i]!r}) is not contiguous in piece space")
            pos += f.length
        self.total_length = pos
        if self.num_pieces != -(-pos // pl):
            raise DiskError(f"{self.num_pieces} pieces do not cover {pos} bytes")
        self.v1 = torrent.version in ("v1", "hybrid")
        self.v2 = torrent.version in ("v2", "hybrid")
        self._layers = torrent.piece_layers if self.v2 else {}
        self._spans: dict[int, tuple[Span, ...]] = {}
        if self.v2:
            self._check_v2()

    def _check_v2(self) -> None:
        """Every v2 piece must be verifiable: roots, full piece layers, file-aligned pieces."""
        pl = self.piece_length
        for fi, length in enumerate(self.lengths):
            if self.is_pad[fi] or length == 0:
                continue
            root = self.roots[fi]
            if root is None or len(root) != 32:
                raise DiskError(f"file {fi} ({self.paths[fi]!r}) has no v2 pieces root")
            if self.offsets[fi] % pl:
                raise DiskError(f"file {fi} ({self.paths[fi]!r}) does not start on a piece")
            if length > pl:
                layer = self._layers.get(root)
                if layer is None or len(layer) != 32 * -(-length // pl):
                    raise DiskError(f"no (or a short) piece layer for file {fi}")

    def piece_size(self, index: int) -> int:
        """Bytes in piece ``index``."""
        if not 0 <= index < self.num_pieces:
            raise DiskError(f"piece {index} out of range")
        return min(self.piece_length, self.total_length - index * self.piece_length)

    def num_blocks(self, index: int) -> int:
        """Blocks in piece ``index``."""
        return -(-self.piece_size(index) // BLOCK_SIZE)

    def spans(self, index: int) -> tuple[Span, ...]:
        """The file parts making up piece ``index``, in order (pad parts included)."""
        cached = self._spans.get(index)
        if cached is not None:
            return cached
        start = index * self.piece_length
        end = start + self.piece_size(index)
        fi = bisect.bisect_right(self.offsets, start) - 1
        out: list[Span] = []
        while fi < len(self.offsets) and self.offsets[fi] < end:
            f_start = self.offsets[fi]
            f_end = f_start + self.lengths[fi]
            lo, hi = max(start, f_start), min(end, f_end)
            if hi > lo:
                out.append(Span(fi, lo - f_start, lo - start, hi - lo, self.is_pad[fi]))
            fi += 1
        result = tuple(out)
        if len(self._spans) < 65536:
            self._spans[index] = result
        return result

    def file_pieces(self, file_index: int) -> range:
        """The pieces that hold bytes of file ``file_index`` (empty for empty files)."""
        length = self.lengths[file_index]
        if length == 0:
            return range(0)
        start = self.offsets[file_index]
        return range(start // self.piece_length, (start + length - 1) // self.piece_length + 1)

    def v2_target(self, index: int) -> V2Target | None:
        """What piece ``index`` must hash to under v2 (``None`` if v1 only or nothing to check)."""
        if not self.v2:
            return None
        data = [s for s in self.spans(index) if not s.is_pad]
        if not data:
            return None
        if len(data) != 1 or data[0].piece_offset != 0:
            raise DiskError(f"piece {index} is not aligned to one file (bad v2 layout)")
        span = data[0]
        root = self.roots[span.file_index]
        if root is None:
            raise DiskError(f"file {span.file_index} has no pieces root")
        length = self.lengths[span.file_index]
        if length <= self.piece_length:
            return V2Target(root, span.length, _next_pow2(-(-length // BLOCK_SIZE)))
        layer = self._layers.get(root)
        if layer is None:
            raise DiskError(f"no piece layer for file {span.file_index}")
        j = span.file_offset // self.piece_length
        expected = layer[32 * j : 32 * j + 32]
        if len(expected) != 32:
            raise DiskError(f"piece layer of file {span.file_index} too short")
        return V2Target(expected, span.length, self.piece_length // BLOCK_SIZE)


def _leaf_hashes(buffers: Sequence[Buffer], length: int) -> list[bytes]:
    """SHA-256 of each 16 KiB leaf of the first ``length`` bytes of ``buffers`` (back to back)."""
    leaves: list[bytes] = []
    pending: list[memoryview] = []
    pending_len = 0
    left = length
    for buf in buffers:
        view = memoryview(buf).cast("B")
        pos = 0
        while pos < len(view) and left > 0:
            take = min(len(view) - pos, BLOCK_SIZE - pending_len, left)
            if pending_len == 0 and take == BLOCK_SIZE:
                leaves.append(hashlib.sha256(view[pos : pos + take]).digest())
            else:
                pending.append(view[pos : pos + take])
                pending_len += take
                if pending_len == BLOCK_SIZE:
                    leaves.append(hashlib.sha256(b"".join(pending)).digest())
                    pending, pending_len = [], 0
            pos += take
            left -= take
    if pending_len:
        leaves.append(hashlib.sha256(b"".join(pending)).digest())
    return leaves


def piece_ok(pieces: PieceMap, torrent: TorrentLike, index: int, buffers: Sequence[Buffer]) -> bool:
    """True if ``buffers`` (the whole piece, back to back, pads as zeros) hash as expected."""
    if pieces.v1:
        h = hashlib.sha1()
        for buf in buffers:
            h.update(buf)
        if h.digest() != torrent.piece_hash_v1(index):
            return False
    target = pieces.v2_target(index)
    if target is not None:
        leaves = _leaf_hashes(buffers, target.length)
        if merkle_root(leaves, target.leaves) != target.expected:
            return False
    return True
