"""BEP 52 hash requests: answering (index, length, proof_layers) from a tree and verifying it."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.metainfo import (
    MAX_HASH_REQUEST_LENGTH,
    check_hash_request,
    merkle_hashes,
    merkle_levels,
    merkle_root,
    merkle_uncle_count,
    pad_hash,
    piece_layer_pad,
    root_from_piece_layer,
    verify_hashes,
)


def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def _layer(n: int, seed: int = 0) -> list[bytes]:
    return [_h(b"%d/%d" % (seed, i)) for i in range(n)]


@st.composite
def requests(draw: st.DrawFn) -> tuple[list[bytes], bytes, int, int, int, int]:
    """A random layer with its pad, and a valid request (level, index, length, proof_layers)."""
    n = draw(st.integers(2, 300))
    pad = pad_hash(draw(st.integers(0, 3)))
    height = (n - 1).bit_length()
    level = draw(st.integers(0, height - 1))
    width = 1 << (height - level)
    length = 1 << draw(st.integers(0, width.bit_length() - 1))
    index = length * draw(st.integers(0, width // length - 1))
    proof = draw(st.integers(0, height - level - 1))
    return _layer(n, draw(st.integers(0, 9))), pad, level, index, length, proof


def test_levels_match_merkle_root() -> None:
    for n in (1, 2, 3, 5, 8, 9, 100):
        leaves = _layer(n)
        pad = piece_layer_pad(4 * 16384)
        levels = merkle_levels(leaves, pad)
        assert levels[-1] == [merkle_root(leaves, pad=pad)]
        assert levels[-1] == [root_from_piece_layer(leaves, 4 * 16384)]
        assert [len(lv) for lv in levels] == [1 << i for i in range(len(levels) - 1, -1, -1)]
        assert levels[0][n:] == [pad] * (len(levels[0]) - n)


def test_uncle_counts() -> None:
    # BEP 52: the first log2(length) - 1 proof layers are covered by the run itself
    assert merkle_uncle_count(512, 9) == 1
    assert merkle_uncle_count(512, 8) == 0
    assert merkle_uncle_count(512, 12) == 4
    assert merkle_uncle_count(2, 0) == 0
    assert merkle_uncle_count(2, 3) == 3
    assert merkle_uncle_count(1, 0) == 1


def test_libtorrent_shaped_chunks_reach_the_root() -> None:
    # 700 pieces: height 10; libtorrent asks 512 then 256 (the padded rest) with proof H - 1
    leaves = _layer(700)
    pad = pad_hash(2)
    levels = merkle_levels(leaves, pad)
    root = levels[-1][0]
    first = merkle_hashes(levels, 0, 0, 512, 9)
    assert len(first) == 513 and first[:512] == leaves[:512]
    assert verify_hashes(first, 0, 512, 9, root)
    last = merkle_hashes(levels, 0, 512, 256, 9)
    assert len(last) == 256 + 2
    assert last[:188] == leaves[512:] and last[188:256] == [pad] * 68
    assert verify_hashes(last, 512, 256, 9, root)
    # a proof that stops below the root does not verify against it
    assert not verify_hashes(merkle_hashes(levels, 0, 512, 256, 8), 512, 256, 8, root)


@settings(max_examples=80, deadline=None)
@given(requests(), st.data())
def test_every_answer_verifies_and_any_flip_fails(
    req: tuple[list[bytes], bytes, int, int, int, int], data: st.DataObject
) -> None:
    leaves, pad, level, index, length, proof = req
    levels = merkle_levels(leaves, pad)
    root = levels[-1][0]
    answer = merkle_hashes(levels, level, index, length, proof)
    assert len(answer) == length + merkle_uncle_count(length, proof)
    assert answer[:length] == levels[level][index : index + length]
    if level + (length.bit_length() - 1) + merkle_uncle_count(length, proof) == len(levels) - 1:
        assert verify_hashes(answer, index, length, proof, root)
        k = data.draw(st.integers(0, len(answer) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = list(answer)
        flipped = bytearray(bad[k])
        flipped[bit // 8] ^= 1 << (bit % 8)
        bad[k] = bytes(flipped)
        assert not verify_hashes(bad, index, length, proof, root)
        assert not verify_hashes(answer[:-1], index, length, proof, root)
        assert not verify_hashes([*answer, answer[0]], index, length, proof, root)
    else:
        # the proof stops below the root: it cannot be checked against it
        assert not verify_hashes(answer, index, length, proof, root)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 200),
    st.integers(-3, 12),
    st.integers(-5, 1 << 12),
    st.integers(-2, MAX_HASH_REQUEST_LENGTH * 2),
    st.integers(-2, 14),
)
def test_garbage_requests_raise_value_error_only(
    n: int, level: int, index: int, length: int, proof: int
) -> None:
    levels = merkle_levels(_layer(n))
    try:
        answer = merkle_hashes(levels, level, index, length, proof)
    except ValueError:
        return
    # accepted: it really was a valid request
    check_hash_request(len(levels) - 1, level, index, length, proof)
    assert len(answer) == length + merkle_uncle_count(length, proof)


@pytest.mark.parametrize(
    ("level", "index", "length", "proof"),
    [
        (0, 0, 3, 0),  # not a power of two
        (0, 2, 4, 0),  # index not a multiple of length
        (0, 8, 8, 0),  # past the padded width (8)
        (0, 0, 8, 3),  # proof reaches past the root
        (3, 0, 1, 0),  # the root level itself
        (0, 0, 0, 0),
        (-1, 0, 2, 0),
    ],
)
def test_invalid_requests(level: int, index: int, length: int, proof: int) -> None:
    levels = merkle_levels(_layer(5))
    with pytest.raises(ValueError):
        merkle_hashes(levels, level, index, length, proof)


def test_verify_rejects_malformed_answers() -> None:
    levels = merkle_levels(_layer(8))
    root = levels[-1][0]
    ans = merkle_hashes(levels, 0, 4, 4, 2)
    assert verify_hashes(ans, 4, 4, 2, root)
    assert not verify_hashes(ans, 0, 4, 2, root)  # the run is the right half
    assert not verify_hashes(ans, 4, 3, 2, root)
    assert not verify_hashes(ans, 4, 4, -1, root)
    assert not verify_hashes([*ans[:-1], b"short"], 4, 4, 2, root)
