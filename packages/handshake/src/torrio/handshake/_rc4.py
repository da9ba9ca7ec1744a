"""RC4 from ``cryptography`` (moved to ``hazmat.decrepit`` in recent versions; both are handled)."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher

try:
    from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4 as _ARC4
except ImportError:  # pragma: no cover - cryptography < 43
    from cryptography.hazmat.primitives.ciphers.algorithms import (  # type: ignore[attr-defined,no-redef,unused-ignore]
        ARC4 as _ARC4,
    )

#: MSE discards this much keystream before use (both directions).
RC4_DISCARD = 1024


class RC4:
    """One direction of an MSE RC4 stream (encrypt and decrypt are the same operation)."""

    __slots__ = ("_ctx",)

    def __init__(self, key: bytes, discard: int = RC4_DISCARD) -> None:
        ctx: Any = Cipher(_ARC4(key), mode=None).encryptor()
        if discard:
            ctx.update(bytes(discard))
        self._ctx = ctx

    def process(self, data: bytes | bytearray | memoryview) -> bytes:
        """XOR ``data`` with the next keystream bytes."""
        if not len(data):
            return b""
        return self._ctx.update(data)  # type: ignore[no-any-return]

    def process_into(
        self, data: bytes | bytearray | memoryview, out: bytearray | memoryview
    ) -> int:
        """XOR ``data`` into ``out`` (which must be at least as long); returns the byte count."""
        if not len(data):
            return 0
        return self._ctx.update_into(data, out)  # type: ignore[no-any-return]
