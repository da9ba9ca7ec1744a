"""Small fixture torrents built by hand (no dependency on torrio-metainfo)."""

from __future__ import annotations

import hashlib

import attrs

from torrio.bencode import encode

TINY_PAYLOAD = b"torrio\x00fixture\x00payload\n" * 3
"""A payload with NUL bytes in it: readers that stop at NUL or treat data as text fail on it."""


@attrs.frozen
class FixtureTorrent:
    """A torrent file's bytes together with what it describes."""

    data: bytes
    info: bytes
    name: str
    payload: bytes
    piece_length: int

    @property
    def info_hash_v1(self) -> bytes:
        """SHA-1 of the raw info dict."""
        return hashlib.sha1(self.info).digest()


def tiny_torrent(
    payload: bytes = TINY_PAYLOAD,
    name: str = "tiny.bin",
    piece_length: int = 16,
    announce: str | None = None,
) -> FixtureTorrent:
    """A v1 single-file torrent of ``payload`` (default: 75 bytes containing NULs, 16-byte pieces)."""
    pieces = b"".join(
        hashlib.sha1(payload[i : i + piece_length]).digest()
        for i in range(0, len(payload), piece_length)
    )
    info_d = {
        b"length": len(payload),
        b"name": name,
        b"piece length": piece_length,
        b"pieces": pieces,
    }
    info = encode(info_d)
    top: dict[bytes, object] = {b"info": info_d}
    if announce:
        top[b"announce"] = announce
    return FixtureTorrent(encode(top), info, name, payload, piece_length)
