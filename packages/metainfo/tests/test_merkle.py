from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.metainfo import (
    BLOCK_SIZE,
    block_hashes,
    hash_piece_v2,
    merkle_proof,
    merkle_root,
    pad_hash,
    root_from_piece_layer,
    verify_block,
    verify_piece_layer,
)
from torrio.testing import random_bytes


def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def test_small_trees() -> None:
    a, b, c = _h(b"a"), _h(b"b"), _h(b"c")
    z = bytes(32)
    assert merkle_root([a]) == a
    assert merkle_root([a, b]) == _h(a + b)
    assert merkle_root([a, b, c]) == _h(_h(a + b) + _h(c + z))
    assert merkle_root([a], 4) == _h(_h(a + z) + _h(z + z))
    assert pad_hash(0) == z and pad_hash(2) == _h(_h(z + z) * 2)


def test_piece_layer_matches_block_tree() -> None:
    piece = 4 * BLOCK_SIZE
    data = random_bytes(3 * piece + 5000, 7)
    leaves = block_hashes(data)
    root = merkle_root(leaves)
    layer = [
        hash_piece_v2(data[i : i + piece], piece, len(data)) for i in range(0, len(data), piece)
    ]
    assert root_from_piece_layer(layer, piece) == root
    assert verify_piece_layer(b"".join(layer), piece, len(data), root)
    assert not verify_piece_layer(b"".join(layer[:-1]), piece, len(data), root)
    assert not verify_piece_layer(bytes(32) + b"".join(layer[1:]), piece, len(data), root)
    # a file of at most one piece hashes to its root
    small = data[: BLOCK_SIZE * 2 + 1]
    assert hash_piece_v2(small, piece, len(small)) == merkle_root(block_hashes(small))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.data())
def test_proofs(n: int, data: st.DataObject) -> None:
    leaves = [_h(bytes([i])) for i in range(n)]
    root = merkle_root(leaves)
    i = data.draw(st.integers(0, n - 1))
    proof = merkle_proof(leaves, i)
    assert verify_block(leaves[i], i, proof, root)
    assert not verify_block(_h(b"x"), i, proof, root)
    if len(proof):
        assert not verify_block(leaves[i], i ^ 1, proof, root) or leaves[i] == leaves[i ^ 1]
    assert not verify_block(leaves[i], i + (1 << len(proof)), proof, root)
