"""The uTP packet codec: round trips, wrapping arithmetic, and hostile bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.utp import (
    HEADER_SIZE,
    Packet,
    PacketError,
    PacketType,
    decode_packet,
    encode_packet,
    is_utp_datagram,
    seq_diff,
    seq_lt,
)
from torrio.utp._packet import build_sack, sack_bits, ts_diff

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
sacks = st.none() | st.integers(1, 63).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n))
exts = st.lists(st.tuples(st.integers(2, 255), st.binary(max_size=40)), max_size=3).map(tuple)

packets = st.builds(
    Packet,
    type=st.sampled_from(PacketType),
    connection_id=u16,
    timestamp_us=u32,
    timestamp_diff_us=u32,
    wnd_size=u32,
    seq_nr=u16,
    ack_nr=u16,
    sack=sacks,
    payload=st.binary(max_size=200),
    extensions=exts,
)


@given(packets)
@settings(max_examples=200, deadline=None)
def test_round_trip(pkt: Packet) -> None:
    data = pkt.encode()
    assert is_utp_datagram(data)
    assert decode_packet(data) == pkt


def test_header_layout_matches_bep29() -> None:
    data = encode_packet(PacketType.SYN, 0x1234, 0x01020304, 0x05060708, 0x090A0B0C, 1, 0)
    assert data == bytes.fromhex("4100 1234 01020304 05060708 090a0b0c 0001 0000")
    assert len(data) == HEADER_SIZE


def test_selective_ack_extension_layout() -> None:
    data = encode_packet(PacketType.STATE, 7, 0, 0, 0, 1, 100, b"", sack=b"\x05\0\0\0")
    # extension byte names SACK; then [next=0][len=4][mask]
    assert data[1] == 1
    assert data[HEADER_SIZE:] == b"\x00\x04\x05\x00\x00\x00"
    assert sack_bits(decode_packet(data).sack or b"") == [0, 2]  # acks 102 and 104


def test_unknown_extensions_are_skipped() -> None:
    # extension 2 (close reason in libtorrent) before a SACK, then the payload
    data = (
        encode_packet(PacketType.DATA, 1, 0, 0, 0, 5, 4)[:HEADER_SIZE]
        + b"\x01\x02\xab\xcd"  # ext 2: next=SACK, len=2
        + b"\x00\x04\xff\x00\x00\x00"  # SACK: next=none
        + b"payload"
    )
    data = data[:1] + b"\x02" + data[2:]
    pkt = decode_packet(data)
    assert pkt.extensions == ((2, b"\xab\xcd"),)
    assert pkt.sack == b"\xff\0\0\0"
    assert pkt.payload == b"payload"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x41" + b"\0" * 10, "short"),
        (b"\x42" + b"\0" * 19, "version"),
        (b"\x51" + b"\0" * 19, "type"),
        (b"\x01\x01" + b"\0" * 18, "truncated ext"),
        (b"\x01\x01" + b"\0" * 18 + b"\x00\x08\x00", "ext past end"),
        (b"\x01\x01" + b"\0" * 18 + b"\x01\x04\0\0\0\0\x00\x04\0\0\0\0", "two sacks"),
    ],
)
def test_malformed_packets_raise_packet_error(data: bytes, why: str) -> None:
    with pytest.raises(PacketError):
        decode_packet(data)


@pytest.mark.parametrize("mask", [b"\x01", b"\x00\x00\x00\x00\xf8\xff", b"\xff" * 18])
def test_regression_sack_masks_of_any_length_decode(mask: bytes) -> None:
    """libtorrent sends SACK masks of 1, 6 or 18 bytes (BEP 29 says a multiple of 4): rejecting
    them dropped its acks, and a torrio seed stalled uploading to libtorrent over uTP."""
    data = b"\x21\x01" + b"\0" * 18 + bytes([0, len(mask)]) + mask
    pkt = decode_packet(data)
    assert pkt.sack == mask


@given(st.binary(max_size=120))
@settings(max_examples=300, deadline=None)
def test_random_bytes_raise_only_packet_error(data: bytes) -> None:
    try:
        pkt = decode_packet(data)
    except PacketError:
        return
    assert is_utp_datagram(data)
    assert decode_packet(pkt.encode()) == pkt


@given(packets, st.data())
@settings(max_examples=200, deadline=None)
def test_mutated_packets_raise_only_packet_error(pkt: Packet, data: st.DataObject) -> None:
    raw = bytearray(pkt.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    with contextlib.suppress(PacketError):
        decode_packet(bytes(raw[:cut]))


def test_routing_rule() -> None:
    assert not is_utp_datagram(b"d1:ad2:id20:")  # DHT
    assert not is_utp_datagram(b"\x41" * 19)
    assert is_utp_datagram(encode_packet(PacketType.RESET, 1, 0, 0, 0, 0, 0))
    assert not is_utp_datagram(b"\x51" + bytes(19))


@given(u16, st.integers(-30000, 30000))
def test_seq_arithmetic_wraps(a: int, d: int) -> None:
    b = (a + d) & 0xFFFF
    assert seq_diff(b, a) == d
    assert seq_lt(a, b) == (d > 0)


def test_seq_wrap_examples() -> None:
    assert seq_diff(0, 65535) == 1
    assert seq_lt(65535, 0)
    assert seq_diff(5, 65530) == 11
    assert ts_diff(5, 0xFFFFFFFF) == 6


@given(st.lists(st.integers(0, 300), max_size=50))
def test_sack_build_and_parse(offsets: list[int]) -> None:
    mask = build_sack(offsets, 32)
    inside = sorted({i for i in offsets if i < 256})
    if not inside:
        assert mask is None
    else:
        assert mask is not None and len(mask) % 4 == 0
        assert sack_bits(mask) == inside
