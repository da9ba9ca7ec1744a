"""An in-memory maker of v1, v2 and hybrid torrents, written independently of torrio-metainfo so
it can serve as a test oracle for it (and for anything else that reads torrents).

Only hashlib and torrio.bencode are used: the BEP 52 merkle tree is rebuilt here from scratch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from torrio.bencode import encode

_BLOCK = 16384


def _sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def _root(leaves: list[bytes], width: int, pad: bytes) -> bytes:
    n = 1
    while n < max(width, len(leaves)):
        n *= 2
    level = leaves + [pad] * (n - len(leaves))
    while len(level) > 1:
        level = [_sha256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def _v2_file(data: bytes, piece_length: int) -> tuple[bytes, bytes]:
    """(pieces root, piece layer) of one non-empty file."""
    leaves = [_sha256(data[i : i + _BLOCK]) for i in range(0, len(data), _BLOCK)]
    per_piece = piece_length // _BLOCK
    zero = bytes(32)
    if len(data) <= piece_length:
        return _root(leaves, len(leaves), zero), b""
    layer = [
        _root(leaves[i : i + per_piece], per_piece, zero) for i in range(0, len(leaves), per_piece)
    ]
    piece_pad = _root([], per_piece, zero)
    return _root(layer, len(layer), piece_pad), b"".join(layer)


def make_torrent(
    files: Mapping[tuple[str, ...], bytes],
    *,
    name: str = "root",
    piece_length: int = 16384,
    version: str = "hybrid",
    single: bool = False,
    extra_top: Mapping[bytes, Any] | None = None,
    extra_info: Mapping[bytes, Any] | None = None,
) -> tuple[bytes, dict[bytes, Any]]:
    """Build a torrent of in-memory ``files`` (paths under the root -> contents).

    ``version`` is ``"v1"``, ``"v2"`` or ``"hybrid"`` (pad files after every unaligned non-empty
    file, as libtorrent makes them); ``single`` makes a single-file torrent of the only file,
    named ``name``. Returns the torrent's bytes and the top-level dict (to mutate in tests).
    """
    order = sorted(files, key=lambda p: [c.encode() for c in p])
    info: dict[bytes, Any] = {b"name": name, b"piece length": piece_length}
    top: dict[bytes, Any] = {b"info": info}
    if version != "v1":
        info[b"meta version"] = 2
        tree: dict[bytes, Any] = {}
        layers: dict[bytes, bytes] = {}
        for p in order:
            data = files[p]
            node = tree
            for c in (name,) if single else p:
                node = node.setdefault(c.encode(), {})
            leaf: dict[bytes, Any] = {b"length": len(data)}
            if data:
                root, layer = _v2_file(data, piece_length)
                leaf[b"pieces root"] = root
                if layer:
                    layers[root] = layer
            node[b""] = leaf
        info[b"file tree"] = tree
        top[b"piece layers"] = layers
    if version != "v2":
        linear = bytearray()
        if single:
            (data,) = files.values()
            info[b"length"] = len(data)
            linear += data
        else:
            flist: list[dict[bytes, Any]] = []
            for p in order:
                data = files[p]
                flist.append({b"length": len(data), b"path": list(p)})
                linear += data
                tail = len(linear) % piece_length
                if version == "hybrid" and data and tail:
                    pad = piece_length - tail
                    flist.append({b"attr": b"p", b"length": pad, b"path": [".pad", str(pad)]})
                    linear += bytes(pad)
            info[b"files"] = flist
        info[b"pieces"] = b"".join(
            hashlib.sha1(linear[i : i + piece_length]).digest()
            for i in range(0, len(linear), piece_length)
        )
    info.update(extra_info or {})
    top.update(extra_top or {})
    return encode(top), top
