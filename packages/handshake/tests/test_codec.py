"""The 68-byte handshake and the reserved-bit flag set."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.core import PeerId
from torrio.handshake import (
    DEFAULT_RESERVED,
    PROTOCOL_PREFIX,
    Handshake,
    HandshakeError,
    Reserved,
    is_plaintext_start,
    parse_prefix,
)


def test_reserved_bit_positions_follow_the_beps() -> None:
    assert Reserved.DHT.to_bytes() == bytes(7) + b"\x01"
    assert Reserved.FAST.to_bytes() == bytes(7) + b"\x04"
    assert Reserved.V2_UPGRADE.to_bytes() == bytes(7) + b"\x10"
    assert Reserved.NAT_TRAVERSAL.to_bytes() == bytes(7) + b"\x08"
    assert Reserved.EXTENSION_PROTOCOL.to_bytes() == bytes(5) + b"\x10\x00\x00"
    assert Reserved.AZUREUS_MESSAGING.to_bytes() == b"\x80" + bytes(7)


def test_reserved_union_and_intersection() -> None:
    ours = Reserved.DHT | Reserved.FAST | Reserved.EXTENSION_PROTOCOL
    theirs = Reserved.FAST | Reserved.EXTENSION_PROTOCOL | Reserved.V2_UPGRADE
    assert ours & theirs == Reserved.FAST | Reserved.EXTENSION_PROTOCOL
    assert (ours | theirs).to_bytes() == bytes(5) + b"\x10\x00\x15"
    assert ours.supports(Reserved.DHT | Reserved.FAST)
    assert not ours.supports(Reserved.V2_UPGRADE)
    assert (~Reserved.NONE).to_bytes() == b"\xff" * 8
    assert ~ours & ours == Reserved.NONE
    assert DEFAULT_RESERVED.supports(Reserved.EXTENSION_PROTOCOL)


def test_unknown_bits_survive() -> None:
    raw = bytes([0, 0, 0x42, 0, 0, 0x10, 0, 0x05])
    r = Reserved.from_bytes(raw)
    assert r.to_bytes() == raw
    assert r.supports(Reserved.DHT | Reserved.FAST | Reserved.EXTENSION_PROTOCOL)
    assert (r & Reserved.FAST) == Reserved.FAST
    with pytest.raises(HandshakeError):
        Reserved.from_bytes(b"\0" * 7)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=8, max_size=8), st.binary(min_size=8, max_size=8))
def test_hypothesis_reserved_set_algebra(a: bytes, b: bytes) -> None:
    ra, rb = Reserved.from_bytes(a), Reserved.from_bytes(b)
    ia, ib = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    assert (ra | rb).to_bytes() == (ia | ib).to_bytes(8, "big")
    assert (ra & rb).to_bytes() == (ia & ib).to_bytes(8, "big")
    assert ra.to_bytes() == a


def test_handshake_round_trip_and_layout() -> None:
    pid = PeerId(b"-TO0001-abcdefghijkl")
    hs = Handshake(b"\xaa" * 20, pid, Reserved.DHT)
    data = hs.to_bytes()
    assert len(data) == 68 and data[:20] == PROTOCOL_PREFIX
    assert (
        data[20:28] == bytes(7) + b"\x01" and data[28:48] == b"\xaa" * 20 and data[48:] == pid.value
    )
    assert Handshake.from_bytes(data) == hs
    assert parse_prefix(data[:48]) == (Reserved.DHT, b"\xaa" * 20)


def test_handshake_errors() -> None:
    good = Handshake(b"\x01" * 20, PeerId.generate()).to_bytes()
    with pytest.raises(HandshakeError, match="68"):
        Handshake.from_bytes(good[:67])
    with pytest.raises(HandshakeError, match="protocol"):
        Handshake.from_bytes(b"\x13BitTorrent protocoX" + good[20:])
    with pytest.raises(HandshakeError):
        Handshake(b"short", PeerId.generate())


def test_plaintext_detection() -> None:
    assert is_plaintext_start(b"") is None
    assert is_plaintext_start(b"\x13Bit") is None
    assert is_plaintext_start(PROTOCOL_PREFIX) is True
    assert is_plaintext_start(b"\x13Bat") is False
    assert is_plaintext_start(b"\x01") is False


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=68, max_size=68), st.data())
def test_hypothesis_mutated_handshakes_raise_only_handshake_error(
    blob: bytes, data: st.DataObject
) -> None:
    good = bytearray(Handshake(b"\x01" * 20, PeerId.generate()).to_bytes())
    pos = data.draw(st.integers(0, 67))
    good[pos] = data.draw(st.integers(0, 255))
    for candidate in (blob, bytes(good)):
        with contextlib.suppress(HandshakeError):
            hs = Handshake.from_bytes(candidate)
            assert hs.to_bytes() == candidate
