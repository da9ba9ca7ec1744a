"""BEP 52 hash request / hashes / hash reject: hostile field values are refused by the decoder."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.wire import (
    MAX_HASH_REQUEST_LENGTH,
    MAX_MERKLE_LAYERS,
    NEED_DATA,
    Hashes,
    HashReject,
    HashRequest,
    WireDecoder,
    WireError,
    check_hash_fields,
    encode,
    uncle_count,
)

ROOT = bytes(range(32))
_HDR = struct.Struct(">IB32sIIII")
IDS = {"request": 21, "hashes": 22, "reject": 23}


def _raw(msg_id: int, base: int, index: int, length: int, proofs: int, nhashes: int = 0) -> bytes:
    return _HDR.pack(49 + 32 * nhashes, msg_id, ROOT, base, index, length, proofs) + bytes(
        32 * nhashes
    )


def _decode(data: bytes, **kw: bool) -> object:
    d = WireDecoder(**kw)
    d.receive_data(data)
    ev = d.next_event()
    assert ev is not NEED_DATA
    return ev


def test_valid_requests_pass() -> None:
    assert _decode(_raw(21, 0, 0, 2, 0)) == HashRequest(ROOT, 0, 0, 2, 0)
    assert _decode(_raw(21, 6, 512, 512, 10)) == HashRequest(ROOT, 6, 512, 512, 10)
    assert _decode(_raw(23, 0, 8192, MAX_HASH_REQUEST_LENGTH, 0)) == HashReject(
        ROOT, 0, 8192, 8192, 0
    )
    # 4 base hashes, 3 proof layers: the first log2(4)-1 = 1 is implied, 2 uncles follow
    assert uncle_count(4, 3) == 2
    assert isinstance(_decode(_raw(22, 0, 4, 4, 3, nhashes=6)), Hashes)


@pytest.mark.parametrize("kind", sorted(IDS))
@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ((0, 0, 0, 0), "power of two"),  # zero length
        ((0, 0, 1, 0), "power of two"),  # BEP 52: at least two
        ((0, 0, 3, 0), "power of two"),
        ((0, 0, 0xFFFFFFFF, 0), "power of two"),
        ((0, 0, 2 * MAX_HASH_REQUEST_LENGTH, 0), "above"),
        ((0, 2, 4, 0), "multiple of length"),  # misaligned index
        ((0, 6, 4, 0), "multiple of length"),
        ((MAX_MERKLE_LAYERS - 1, 0, 2, 0), "base layer"),
        ((0xFFFFFFFF, 0, 2, 0), "base layer"),
        ((40, 0xFFFFFFFE, 2, 0), "beyond the largest"),  # index far past any real layer
        ((0, 0, 2, MAX_MERKLE_LAYERS), "proof layers"),
        ((10, 0, 2, 0xFFFFFFFF), "proof layers"),
    ],
)
def test_hostile_fields_refused(kind: str, fields: tuple[int, int, int, int], reason: str) -> None:
    """Regression: any u32 was accepted in every hash field, so a peer could make us compute or
    allocate for absurd merkle ranges (length 2**32-1, proof layers 2**32-1, misaligned ranges)."""
    with pytest.raises(WireError, match=reason) as info:
        _decode(_raw(IDS[kind], *fields))
    assert info.value.message_id == IDS[kind]


def test_hashes_count_bounded() -> None:
    """A hashes answer can carry at most length + uncles digests, and at least one base hash."""
    with pytest.raises(WireError, match="at most"):
        _decode(_raw(22, 0, 0, 2, 0, nhashes=3))
    with pytest.raises(WireError, match="at most"):
        _decode(_raw(22, 0, 0, 4, 3, nhashes=7))
    with pytest.raises(WireError, match="without base-layer"):
        _decode(_raw(22, 0, 0, 4, 3, nhashes=2))
    with pytest.raises(WireError, match="without base-layer"):
        _decode(_raw(22, 0, 0, 2, 0, nhashes=0))


def test_checks_can_be_turned_off() -> None:
    assert _decode(_raw(21, 0, 1, 3, 99), check_hash_fields=False) == HashRequest(ROOT, 0, 1, 3, 99)


def test_encoder_side_check_for_senders() -> None:
    check_hash_fields(21, 0, 0, 2, 0)
    with pytest.raises(WireError):
        check_hash_fields(21, 0, 1, 2, 0)


u32 = st.integers(0, 2**32 - 1)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([21, 22, 23]), u32, u32, u32, u32, st.integers(0, 40))
def test_hypothesis_any_fields_raise_only_wire_error(
    msg_id: int, base: int, index: int, length: int, proofs: int, n: int
) -> None:
    """Any field values: either a message that obeys every rule, or WireError — nothing else."""
    try:
        ev = _decode(_raw(msg_id, base, index, length, proofs, nhashes=n if msg_id == 22 else 0))
    except WireError:
        return
    assert isinstance(ev, HashRequest | Hashes | HashReject)
    assert length >= 2 and length & (length - 1) == 0 and index % length == 0
    assert base + proofs < MAX_MERKLE_LAYERS
    assert encode(ev) == _raw(msg_id, base, index, length, proofs, n if msg_id == 22 else 0)
