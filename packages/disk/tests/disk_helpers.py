"""Test-only torrents for torrio-disk, built here independently of torrio-metainfo."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import attrs

from torrio.disk import FileSystem

BLOCK = 16384


@attrs.frozen
class TFile:
    """A FileEntry look-alike."""

    path: tuple[str, ...]
    length: int
    offset: int
    is_pad: bool = False
    pieces_root: bytes | None = None


@attrs.define
class TTorrent:
    """A TorrentLike built from in-memory contents; ``payload(i)`` is a file's bytes."""

    name: str
    version: str
    piece_length: int
    num_pieces: int
    files: tuple[TFile, ...]
    piece_layers: dict[bytes, bytes]
    v1_hashes: list[bytes]
    contents: list[bytes]

    def piece_hash_v1(self, index: int) -> bytes:
        return self.v1_hashes[index]

    @property
    def linear(self) -> bytes:
        """The whole piece space (pads as zeros)."""
        return b"".join(self.contents)

    def piece(self, index: int) -> bytes:
        pl = self.piece_length
        return self.linear[index * pl : (index + 1) * pl]

    def blocks(self, index: int) -> list[tuple[int, bytes]]:
        data = self.piece(index)
        return [(o, data[o : o + BLOCK]) for o in range(0, len(data), BLOCK)]


def _merkle_layers(data: bytes, piece_length: int) -> tuple[bytes, bytes]:
    """(root, piece layer) of one file, computed the slow obvious way."""
    leaves = [hashlib.sha256(data[i : i + BLOCK]).digest() for i in range(0, len(data), BLOCK)]
    per_piece = piece_length // BLOCK
    n = 1
    while n < len(leaves):
        n *= 2
    if len(data) > piece_length:
        while n % per_piece:
            n *= 2
    layer = leaves + [bytes(32)] * (n - len(leaves))
    layers = [layer]
    while len(layer) > 1:
        layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest() for i in range(0, len(layer), 2)]
        layers.append(layer)
    root = layer[0]
    if len(data) <= piece_length:
        return root, b""
    height = per_piece.bit_length() - 1
    npieces = -(-len(data) // piece_length)
    return root, b"".join(layers[height][:npieces])


def build_torrent(
    files: Mapping[str, bytes] | list[tuple[str, bytes]],
    piece_length: int = 4 * BLOCK,
    version: str = "v1",
    name: str = "t",
) -> TTorrent:
    """A torrent of ``files`` (relative paths under ``name/``); v2/hybrid get aligning pads."""
    items = list(files.items()) if isinstance(files, Mapping) else list(files)
    entries: list[TFile] = []
    contents: list[bytes] = []
    layers: dict[bytes, bytes] = {}
    pos = 0
    for k, (rel, data) in enumerate(items):
        root = None
        if version != "v1" and data:
            root, layer = _merkle_layers(data, piece_length)
            if layer:
                layers[root] = layer
        entries.append(TFile((name, *rel.split("/")), len(data), pos, False, root))
        contents.append(data)
        pos += len(data)
        if version != "v1" and pos % piece_length and k != len(items) - 1:
            pad = piece_length - pos % piece_length
            entries.append(TFile((name, ".pad", str(pad)), pad, pos, True))
            contents.append(bytes(pad))
            pos += pad
    linear = b"".join(contents)
    num = -(-pos // piece_length)
    v1 = [
        hashlib.sha1(linear[i * piece_length : (i + 1) * piece_length]).digest() for i in range(num)
    ]
    return TTorrent(name, version, piece_length, num, tuple(entries), layers, v1, contents)


def rand(n: int, seed: int) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def read_file(fs: FileSystem, path: str) -> bytes:
    """The whole file."""
    size = fs.stat(path).size
    buf = bytearray(size)
    assert fs.read(path, 0, buf) == size
    return bytes(buf)
