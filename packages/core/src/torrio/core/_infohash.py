"""Info-hashes: v1 (SHA-1, 20 bytes), v2 (SHA-256, 32 bytes) or both (a hybrid torrent)."""

from __future__ import annotations

import base64
import binascii

import attrs

from ._errors import CoreError

V1_LEN = 20
V2_LEN = 32


def _check(value: bytes | None, length: int, what: str) -> bytes | None:
    if value is None:
        return None
    value = bytes(value)
    if len(value) != length:
        raise CoreError(f"{what} info-hash must be {length} bytes, got {len(value)}")
    return value


def _v1(value: bytes | None) -> bytes | None:
    return _check(value, V1_LEN, "v1")


def _v2(value: bytes | None) -> bytes | None:
    return _check(value, V2_LEN, "v2")


@attrs.frozen(repr=False)
class InfoHash:
    """The identity of a torrent: a v1 SHA-1 digest, a v2 SHA-256 digest, or both (hybrid).

    >>> ih = InfoHash.parse("c12fe1c06bba254a9dc9f519b335aa7c1367a88a")
    >>> ih.v1.hex()
    'c12fe1c06bba254a9dc9f519b335aa7c1367a88a'
    """

    v1: bytes | None = attrs.field(default=None, converter=_v1)
    v2: bytes | None = attrs.field(default=None, converter=_v2)

    def __attrs_post_init__(self) -> None:
        if self.v1 is None and self.v2 is None:
            raise CoreError("an info-hash needs a v1 or a v2 digest")

    @classmethod
    def parse(cls, text: str) -> InfoHash:
        """Parse 40 hex or 32 base32 characters (v1), or 64 hex characters (v2)."""
        text = text.strip()
        try:
            if len(text) == 40:
                return cls(v1=bytes.fromhex(text))
            if len(text) == 32:
                return cls(v1=base64.b32decode(text.upper()))
            if len(text) == 64:
                return cls(v2=bytes.fromhex(text))
        except (ValueError, binascii.Error) as exc:
            raise CoreError(f"not an info-hash: {text!r}") from exc
        raise CoreError(f"not an info-hash (want 40 hex, 32 base32 or 64 hex chars): {text!r}")

    @property
    def is_hybrid(self) -> bool:
        """True when both the v1 and the v2 digest are known."""
        return self.v1 is not None and self.v2 is not None

    @property
    def v2_truncated(self) -> bytes | None:
        """The first 20 bytes of the v2 digest: the form v2 torrents use in handshakes and the DHT."""
        return None if self.v2 is None else self.v2[:V1_LEN]

    @property
    def wire(self) -> bytes:
        """The 20-byte id to put in a handshake or a tracker announce (v1 preferred)."""
        if self.v1 is not None:
            return self.v1
        assert self.v2 is not None
        return self.v2[:V1_LEN]

    def wire_ids(self) -> tuple[bytes, ...]:
        """Every 20-byte id a peer may use for this torrent (v1 and truncated v2)."""
        ids: list[bytes] = []
        if self.v1 is not None:
            ids.append(self.v1)
        if self.v2 is not None:
            ids.append(self.v2[:V1_LEN])
        return tuple(ids)

    def matches(self, wire_id: bytes) -> bool:
        """True if ``wire_id`` (20 bytes, from a handshake) names this torrent."""
        return wire_id in self.wire_ids()

    def hex(self) -> str:
        """The v1 digest in hex if there is one, else the v2 digest in hex."""
        if self.v1 is not None:
            return self.v1.hex()
        assert self.v2 is not None
        return self.v2.hex()

    def __repr__(self) -> str:
        parts = []
        if self.v1 is not None:
            parts.append(f"v1={self.v1.hex()}")
        if self.v2 is not None:
            parts.append(f"v2={self.v2.hex()}")
        return f"InfoHash({', '.join(parts)})"
