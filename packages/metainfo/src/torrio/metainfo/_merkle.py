"""BEP 52 merkle trees: 16 KiB leaves hashed with SHA-256, padded to a power of two.

Pure functions used to check piece layers against a file's ``pieces root``, hash v2 pieces and
verify single blocks with their uncle hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

BLOCK_SIZE = 16384
"""Size of a v2 merkle leaf (the last leaf of a file may be shorter)."""

HASH_SIZE = 32
ZERO_HASH = bytes(HASH_SIZE)

_sha256 = hashlib.sha256


def _next_pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


@lru_cache(maxsize=64)
def pad_hash(depth: int) -> bytes:
    """Root of a subtree of ``2**depth`` zero leaves (``depth`` 0 is the zero hash itself)."""
    h = ZERO_HASH
    for _ in range(depth):
        h = _sha256(h + h).digest()
    return h


def merkle_root(
    leaves: Sequence[bytes], leaf_count: int | None = None, *, pad: bytes = ZERO_HASH
) -> bytes:
    """Root of the tree over ``leaves``, padded with ``pad`` hashes to a power of two leaves.

    ``leaf_count`` widens the tree (rounded up to a power of two); the default is the number of
    leaves. ``pad`` is the hash standing for a missing leaf: zero for block leaves, the root of a
    zero piece subtree when the leaves are a piece layer.
    """
    width = _next_pow2(max(len(leaves), leaf_count or 1))
    level = list(leaves)
    if not level:
        level = [pad]
    while width > 1:
        if len(level) % 2:
            level.append(pad)
        level = [_sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
        pad = _sha256(pad + pad).digest()
        width //= 2
    return level[0]


def block_hashes(data: bytes | memoryview) -> list[bytes]:
    """SHA-256 of each 16 KiB block of ``data`` (the last block may be short)."""
    mv = memoryview(data)
    return [_sha256(mv[i : i + BLOCK_SIZE]).digest() for i in range(0, len(mv), BLOCK_SIZE)]


def blocks_per_piece(piece_length: int) -> int:
    """Number of 16 KiB leaves under one piece-layer hash."""
    return max(1, piece_length // BLOCK_SIZE)


def piece_layer_pad(piece_length: int) -> bytes:
    """The hash of a piece made only of padding (used to widen a piece layer)."""
    return pad_hash(blocks_per_piece(piece_length).bit_length() - 1)


def hash_piece_v2(data: bytes | memoryview, piece_length: int, file_length: int) -> bytes:
    """The v2 hash of one piece of a file: the subtree root of its 16 KiB leaves.

    For a file larger than one piece the subtree is one piece wide (missing leaves are zero);
    for a file of at most one piece the result is the file's ``pieces root``.
    """
    leaves = block_hashes(data)
    if file_length <= piece_length:
        return merkle_root(leaves, -(-file_length // BLOCK_SIZE))
    return merkle_root(leaves, blocks_per_piece(piece_length))


def root_from_piece_layer(layer: Sequence[bytes], piece_length: int) -> bytes:
    """The file's ``pieces root`` computed from its piece layer hashes."""
    return merkle_root(layer, pad=piece_layer_pad(piece_length))


def split_layer(layer: bytes) -> list[bytes]:
    """Cut concatenated 32-byte hashes into a list (``len(layer)`` must be a multiple of 32)."""
    return [layer[i : i + HASH_SIZE] for i in range(0, len(layer), HASH_SIZE)]


def verify_piece_layer(layer: bytes, piece_length: int, file_length: int, root: bytes) -> bool:
    """True if ``layer`` is the right size for the file and hashes up to ``root``."""
    n = -(-file_length // piece_length)
    if file_length <= piece_length or len(layer) != n * HASH_SIZE:
        return False
    return root_from_piece_layer(split_layer(layer), piece_length) == root


def merkle_proof(leaves: Sequence[bytes], index: int, leaf_count: int | None = None) -> list[bytes]:
    """The uncle hashes proving ``leaves[index]``, from the bottom of the tree up."""
    width = _next_pow2(max(len(leaves), leaf_count or 1))
    if not 0 <= index < width:
        raise IndexError(index)
    level = list(leaves) + [ZERO_HASH] * (width - len(leaves))
    proof: list[bytes] = []
    while len(level) > 1:
        proof.append(level[index ^ 1])
        level = [_sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
        index //= 2
    return proof


def verify_block(leaf_hash: bytes, index: int, proof: Sequence[bytes], root: bytes) -> bool:
    """True if ``leaf_hash`` at position ``index`` hashes up to ``root`` with the uncle ``proof``."""
    if index < 0 or index >> len(proof):
        return False
    h = leaf_hash
    for uncle in proof:
        h = _sha256(uncle + h).digest() if index & 1 else _sha256(h + uncle).digest()
        index >>= 1
    return h == root
