"""Peer ids (BEP 20 Azureus style) and DHT node ids (160-bit, XOR metric)."""

from __future__ import annotations

import os
from typing import Self

import attrs

from ._errors import CoreError

ID_LEN = 20
DEFAULT_CLIENT_PREFIX = b"-TO0001-"


def _twenty(value: bytes) -> bytes:
    value = bytes(value)
    if len(value) != ID_LEN:
        raise CoreError(f"id must be {ID_LEN} bytes, got {len(value)}")
    return value


@attrs.frozen(order=True)
class PeerId:
    """A 20-byte peer id. ``PeerId.generate()`` gives ``-TO0001-`` followed by 12 random bytes."""

    value: bytes = attrs.field(converter=_twenty)

    @classmethod
    def generate(cls, prefix: bytes = DEFAULT_CLIENT_PREFIX) -> PeerId:
        """A fresh random peer id starting with ``prefix`` (at most 20 bytes)."""
        if len(prefix) > ID_LEN:
            raise CoreError("peer id prefix longer than 20 bytes")
        return cls(prefix + os.urandom(ID_LEN - len(prefix)))

    @property
    def client(self) -> str | None:
        """The Azureus-style client code and version (``"TO0001"``), or None if not in that style."""
        v = self.value
        if v[0:1] == b"-" and v[7:8] == b"-":
            try:
                return v[1:7].decode("ascii")
            except UnicodeDecodeError:
                return None
        return None

    def __bytes__(self) -> bytes:
        return self.value


@attrs.frozen(order=True, repr=False)
class NodeId:
    """A 160-bit DHT node id (or a DHT key: info-hashes and BEP 44 targets live in the same space)."""

    value: bytes = attrs.field(converter=_twenty)

    @classmethod
    def random(cls) -> Self:
        """A uniformly random id."""
        return cls(os.urandom(ID_LEN))

    @classmethod
    def from_int(cls, n: int) -> Self:
        """The id whose big-endian value is ``n`` (0 <= n < 2**160)."""
        if not 0 <= n < 1 << 160:
            raise CoreError("node id integer out of range")
        return cls(n.to_bytes(ID_LEN, "big"))

    def __int__(self) -> int:
        return int.from_bytes(self.value, "big")

    def distance(self, other: NodeId | bytes) -> int:
        """The XOR distance to ``other`` as an integer."""
        o = other.value if isinstance(other, NodeId) else other
        return int.from_bytes(self.value, "big") ^ int.from_bytes(o, "big")

    def common_prefix_bits(self, other: NodeId | bytes) -> int:
        """How many leading bits this id shares with ``other`` (160 when equal)."""
        return 160 - self.distance(other).bit_length()

    def __bytes__(self) -> bytes:
        return self.value

    def hex(self) -> str:
        """The id in lowercase hex."""
        return self.value.hex()

    def __repr__(self) -> str:
        return f"NodeId({self.value.hex()})"
