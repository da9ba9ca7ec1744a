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


# -- BEP 52 hash requests ----------------------------------------------------------------------
#
# A hash request names a layer of a file's tree by ``base`` (layers above the 16 KiB leaves), a
# power-of-two run of ``length`` hashes starting at ``index`` (a multiple of ``length``) and
# ``proof_layers``. The answer is the run, then one uncle per layer from the sibling of the run's
# subtree root upward: the first ``log2(length) - 1`` proof layers need no uncle because the run
# itself covers them, so there are ``max(0, proof_layers - log2(length) + 1)`` uncles.

MAX_HASH_REQUEST_LENGTH = 8192
"""Most hashes one request may ask for (libtorrent's cap; BEP 52 says requesters use <= 512)."""


def merkle_levels(leaves: Sequence[bytes], pad: bytes = ZERO_HASH) -> list[list[bytes]]:
    """Every level of the tree over ``leaves``, padded with ``pad`` to a power-of-two width.

    ``levels[0]`` is the padded leaf row and ``levels[-1]`` is ``[root]``; ``levels[h]`` has
    ``width >> h`` hashes. Pass a file's piece layer and :func:`piece_layer_pad` to get the tree
    above its piece layer (its root is the file's ``pieces root``). Costs one SHA-256 per node.
    """
    width = _next_pow2(len(leaves))
    level = list(leaves) + [pad] * (width - len(leaves))
    levels = [level]
    while len(level) > 1:
        level = [_sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
        levels.append(level)
    return levels


def merkle_uncle_count(length: int, proof_layers: int) -> int:
    """How many uncle hashes answer a request for ``length`` hashes with ``proof_layers``."""
    return max(0, proof_layers - (length.bit_length() - 1) + 1)


def check_hash_request(height: int, level: int, index: int, length: int, proof_layers: int) -> None:
    """Raise ValueError unless the request fits a tree ``height`` levels tall above its leaves.

    ``level`` counts from the tree's leaf row (0) and must be below the root; ``length`` is a
    power of two up to :data:`MAX_HASH_REQUEST_LENGTH`, ``index`` a multiple of it, the run lies
    inside the padded level (``2**(height - level)`` wide) and ``proof_layers`` stays below the
    root (``proof_layers < height - level``).
    """
    if height < 0 or not 0 <= level < height:
        raise ValueError(f"level {level} is not below the root of a tree {height} tall")
    if length < 1 or length & (length - 1) or length > MAX_HASH_REQUEST_LENGTH:
        raise ValueError(f"length {length} is not a power of two <= {MAX_HASH_REQUEST_LENGTH}")
    if index < 0 or index % length or index + length > 1 << (height - level):
        raise ValueError(f"hashes {index}..{index + length} do not fit level {level}")
    if not 0 <= proof_layers < height - level:
        raise ValueError(f"proof_layers {proof_layers} reaches past the root")


def merkle_hashes(
    levels: Sequence[Sequence[bytes]], level: int, index: int, length: int, proof_layers: int
) -> list[bytes]:
    """The answer to a hash request, from the tree ``levels`` (see :func:`merkle_levels`).

    ``length`` hashes of ``levels[level]`` from ``index`` (pad hashes included), then the uncle
    hashes from the bottom up. An invalid request raises ValueError (see
    :func:`check_hash_request`).
    """
    height = len(levels) - 1
    check_hash_request(height, level, index, length, proof_layers)
    out = list(levels[level][index : index + length])
    shift = length.bit_length() - 1
    for i in range(merkle_uncle_count(length, proof_layers)):
        pos = index >> (shift + i)
        out.append(levels[level + shift + i][pos ^ 1])
    return out


def verify_hashes(
    hashes: Sequence[bytes], index: int, length: int, proof_layers: int, root: bytes
) -> bool:
    """True if ``hashes`` (a hash-request answer) proves ``length`` hashes at ``index`` up to ``root``.

    The proof must reach exactly ``root``: the run's subtree root combined with the uncles (as
    many as :func:`merkle_uncle_count` says) must equal it. Any malformed answer is False.
    """
    if length < 1 or length & (length - 1) or index < 0 or index % length or proof_layers < 0:
        return False
    if len(hashes) != length + merkle_uncle_count(length, proof_layers):
        return False
    if any(len(h) != HASH_SIZE for h in hashes):
        return False
    level = list(hashes[:length])
    while len(level) > 1:
        level = [_sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return verify_block(level[0], index // length, hashes[length:], root)
