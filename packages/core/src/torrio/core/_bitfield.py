"""A compact bitfield in BEP 3 order: piece 0 is the high bit of byte 0."""

from __future__ import annotations

from collections.abc import Iterator

from ._errors import CoreError


class Bitfield:
    """A fixed-length set of piece indices, stored as BEP 3 bitfield bytes.

    ``count()`` is O(1): the number of set bits is kept as bits change.
    """

    __slots__ = ("_bits", "_count", "length")

    def __init__(self, length: int) -> None:
        if length < 0:
            raise CoreError("bitfield length must be >= 0")
        self.length = length
        self._bits = bytearray((length + 7) >> 3)
        self._count = 0

    @classmethod
    def full(cls, length: int) -> Bitfield:
        """A bitfield with every bit set (a seed's)."""
        bf = cls(length)
        if length:
            bf._bits[:] = b"\xff" * len(bf._bits)
            spare = (-length) & 7
            bf._bits[-1] = (0xFF << spare) & 0xFF
        bf._count = length
        return bf

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, length: int) -> Bitfield:
        """Decode wire bytes for ``length`` pieces; wrong size or set spare bits raise ``CoreError``."""
        want = (length + 7) >> 3
        if len(data) != want:
            raise CoreError(f"bitfield for {length} pieces must be {want} bytes, got {len(data)}")
        spare = (-length) & 7
        if spare and data[-1] & ((1 << spare) - 1):
            raise CoreError("bitfield has spare bits set past the last piece")
        bf = cls(length)
        bf._bits[:] = data
        bf._count = int.from_bytes(data, "big").bit_count()
        return bf

    def to_bytes(self) -> bytes:
        """The wire form (spare bits zero)."""
        return bytes(self._bits)

    def copy(self) -> Bitfield:
        """An independent copy."""
        return Bitfield.from_bytes(self._bits, self.length)

    def _check(self, index: int) -> None:
        if not 0 <= index < self.length:
            raise IndexError(f"piece index {index} out of range 0..{self.length - 1}")

    def __getitem__(self, index: int) -> bool:
        self._check(index)
        return bool(self._bits[index >> 3] & (0x80 >> (index & 7)))

    def set(self, index: int) -> bool:
        """Set bit ``index``; returns True if it was not set before."""
        self._check(index)
        mask = 0x80 >> (index & 7)
        b = self._bits[index >> 3]
        if b & mask:
            return False
        self._bits[index >> 3] = b | mask
        self._count += 1
        return True

    def clear(self, index: int) -> bool:
        """Clear bit ``index``; returns True if it was set before."""
        self._check(index)
        mask = 0x80 >> (index & 7)
        b = self._bits[index >> 3]
        if not b & mask:
            return False
        self._bits[index >> 3] = b & ~mask
        self._count -= 1
        return True

    def __len__(self) -> int:
        return self.length

    def count(self) -> int:
        """How many bits are set."""
        return self._count

    def all(self) -> bool:
        """True when every bit is set (also for length 0)."""
        return self._count == self.length

    def none(self) -> bool:
        """True when no bit is set."""
        return self._count == 0

    def __iter__(self) -> Iterator[int]:
        """The indices of set bits, ascending."""
        bits = self._bits
        for byte_index, b in enumerate(bits):
            if not b:
                continue
            base = byte_index << 3
            for j in range(8):
                if b & (0x80 >> j):
                    yield base + j

    def missing(self) -> Iterator[int]:
        """The indices of clear bits, ascending."""
        bits = self._bits
        n = self.length
        for byte_index, b in enumerate(bits):
            if b == 0xFF:
                continue
            base = byte_index << 3
            for j in range(8):
                i = base + j
                if i >= n:
                    return
                if not b & (0x80 >> j):
                    yield i

    def difference(self, other: Bitfield) -> Bitfield:
        """Bits set here and clear in ``other`` (e.g. pieces a peer has that we lack)."""
        if other.length != self.length:
            raise CoreError("bitfields of different lengths")
        a = int.from_bytes(self._bits, "big")
        b = int.from_bytes(other._bits, "big")
        return Bitfield.from_bytes((a & ~b).to_bytes(len(self._bits), "big"), self.length)

    def intersects_missing_of(self, other: Bitfield) -> bool:
        """True if this bitfield has any bit that ``other`` lacks (are we interested?)."""
        if other.length != self.length:
            raise CoreError("bitfields of different lengths")
        a = int.from_bytes(self._bits, "big")
        b = int.from_bytes(other._bits, "big")
        return bool(a & ~b)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Bitfield):
            return NotImplemented
        return self.length == other.length and self._bits == other._bits

    def __repr__(self) -> str:
        return f"Bitfield({self._count}/{self.length})"
