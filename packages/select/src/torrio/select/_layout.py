"""Piece and block geometry of a torrent: v1 (uniform, last piece short) and v2 (file-aligned)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import attrs

from ._errors import SelectError

BLOCK_SIZE = 16 * 1024
"""Bytes per block request (the last block of a piece may be shorter)."""


class BlockRequest(NamedTuple):
    """One block request: ``length`` bytes at ``offset`` inside ``piece``.

    A named tuple rather than an attrs class: pickers make thousands per second, and tuples are
    immutable, hashable and cheapest to build.
    """

    piece: int
    offset: int
    length: int


@attrs.frozen
class PieceLayout:
    """Sizes of every piece of a torrent.

    Build one with :meth:`uniform` (v1: every piece ``piece_length`` bytes but the last),
    :meth:`from_sizes` (any sizes) or :meth:`for_files` (v2: each file starts a new piece, so
    each file's last piece may be short). ``file_ranges[i]`` is the range of pieces file ``i``
    touches (empty for an empty file) when the layout was built from files.
    """

    piece_length: int
    sizes: tuple[int, ...]
    file_ranges: tuple[range, ...] = ()

    @classmethod
    def uniform(cls, piece_length: int, total_length: int) -> PieceLayout:
        """A v1 layout: ``ceil(total/piece_length)`` pieces, the last one short."""
        if piece_length <= 0 or total_length < 0:
            raise SelectError("piece_length must be > 0 and total_length >= 0")
        full, rest = divmod(total_length, piece_length)
        sizes = (piece_length,) * full + ((rest,) if rest else ())
        return cls(piece_length, sizes)

    @classmethod
    def from_sizes(cls, sizes: Iterable[int]) -> PieceLayout:
        """Any layout: one size per piece, each > 0."""
        t = tuple(sizes)
        if any(s <= 0 for s in t):
            raise SelectError("every piece size must be > 0")
        return cls(max(t, default=BLOCK_SIZE), t)

    @classmethod
    def for_files(
        cls, piece_length: int, file_lengths: Sequence[int], *, aligned: bool
    ) -> PieceLayout:
        """The layout of files laid end to end.

        With ``aligned=True`` (BitTorrent v2) every non-empty file starts at a piece boundary,
        so each file's last piece is short; with ``aligned=False`` (v1; include pad files as
        files) pieces run across file boundaries.
        """
        if piece_length <= 0 or any(n < 0 for n in file_lengths):
            raise SelectError("piece_length must be > 0 and file lengths >= 0")
        sizes: list[int] = []
        ranges: list[range] = []
        if aligned:
            for n in file_lengths:
                first = len(sizes)
                full, rest = divmod(n, piece_length)
                sizes.extend([piece_length] * full)
                if rest:
                    sizes.append(rest)
                ranges.append(range(first, len(sizes)))
        else:
            offset = 0
            for n in file_lengths:
                if n == 0:
                    ranges.append(range(offset // piece_length, offset // piece_length))
                else:
                    ranges.append(
                        range(offset // piece_length, (offset + n - 1) // piece_length + 1)
                    )
                offset += n
            full, rest = divmod(offset, piece_length)
            sizes = [piece_length] * full + ([rest] if rest else [])
        return cls(piece_length, tuple(sizes), tuple(ranges))

    @property
    def num_pieces(self) -> int:
        """How many pieces."""
        return len(self.sizes)

    @property
    def total_length(self) -> int:
        """Sum of all piece sizes."""
        return sum(self.sizes)

    def piece_size(self, piece: int) -> int:
        """Bytes in ``piece``."""
        return self.sizes[piece]

    def blocks_in_piece(self, piece: int) -> int:
        """Number of 16 KiB blocks in ``piece`` (the last may be short)."""
        return (self.sizes[piece] + BLOCK_SIZE - 1) // BLOCK_SIZE

    def block(self, piece: int, index: int) -> BlockRequest:
        """The request for block ``index`` of ``piece``."""
        size = self.sizes[piece]
        offset = index * BLOCK_SIZE
        return BlockRequest(piece, offset, min(BLOCK_SIZE, size - offset))
