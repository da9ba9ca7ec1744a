"""Codec tests: every message round-trips, two sans-I/O peers exchange everything, hostile
input raises only WireError, and lengths are refused before allocation."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.core import PeerAddr
from torrio.wire import (
    NEED_DATA,
    AllowedFast,
    BitfieldMessage,
    Cancel,
    Choke,
    Extended,
    ExtendedHandshake,
    Hashes,
    HashReject,
    HashRequest,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    KeepAlive,
    LtDontHave,
    Message,
    NotInterested,
    PexFlags,
    PexPeer,
    Piece,
    Port,
    Reject,
    Request,
    Suggest,
    Unchoke,
    Unknown,
    UploadOnly,
    UtMetadataData,
    UtMetadataReject,
    UtMetadataRequest,
    UtPex,
    WireConnection,
    WireDecoder,
    WireError,
    encode,
    encode_many,
    uncle_count,
)

N = 100
ROOT = bytes(range(32))

ALL_CORE: list[Message] = [
    KeepAlive(), Choke(), Unchoke(), Interested(), NotInterested(), Have(99),
    BitfieldMessage(b"\xff" * 12 + b"\xf0"), Request(1, 16384, 16384), Piece(2, 0, b"x" * 16384),
    Piece(3, 5, b""), Cancel(1, 16384, 16384), Port(6881), Suggest(7), HaveAll(), HaveNone(),
    Reject(1, 0, 16384), AllowedFast(8), Extended(99, b"opaque"),
    HashRequest(ROOT, 0, 0, 512, 3), Hashes(ROOT, 0, 0, 2, 0, bytes(64)),
    HashReject(ROOT, 1, 4, 4, 4), Unknown(42, b"whatever"),
]  # fmt: skip


def decode_all(data: bytes | bytearray, **kw: object) -> list[Message]:
    d = WireDecoder(**kw)  # type: ignore[arg-type]
    d.receive_data(data)
    out = d.events()
    assert d.buffered == 0
    return out


def test_every_core_message_round_trips() -> None:
    assert decode_all(encode_many(ALL_CORE), num_pieces=N) == ALL_CORE


def test_byte_at_a_time_feeding() -> None:
    data = encode_many(ALL_CORE)
    d = WireDecoder(num_pieces=N)
    out: list[object] = []
    for i in range(len(data)):
        d.receive_data(data[i : i + 1])
        out.extend(d.events())
    assert out == ALL_CORE


def test_wire_sizes_and_known_encodings() -> None:
    assert encode(KeepAlive()) == b"\0\0\0\0"
    assert encode(Interested()) == b"\0\0\0\x01\x02"
    assert encode(Have(1)) == b"\0\0\0\x05\x04\0\0\0\x01"
    assert encode(Request(1, 2, 3)) == struct.pack(">IBIII", 13, 6, 1, 2, 3)
    assert encode(Port(0x1AE1)) == b"\0\0\0\x03\x09\x1a\xe1"
    assert encode(HashRequest(ROOT, 0, 0, 512, 3))[:5] == b"\0\0\0\x31\x15"
    for m in ALL_CORE:
        assert len(encode(m)) == m.wire_size()


def test_two_sans_io_peers_exchange_every_message() -> None:
    a, b = WireConnection(num_pieces=N), WireConnection(num_pieces=N)
    # extended handshakes first, so each knows the other's ids
    b.receive_data(a.send(a.registry.handshake(v="a", reqq=500, metadata_size=40000, p=6881)))
    a.receive_data(b.send(b.registry.handshake(v="b", upload_only=True)))
    hb = b.next_event()
    ha = a.next_event()
    assert isinstance(hb, ExtendedHandshake) and hb.v == "a" and hb.reqq == 500 and hb.p == 6881
    assert isinstance(ha, ExtendedHandshake) and ha.upload_only
    ext = [
        UtMetadataRequest(1), UtMetadataReject(2), UtMetadataData(2, 40000, bytes(40000 - 32768)),
        UtPex((PexPeer(PeerAddr("10.0.0.1", 1), PexFlags.SEED | PexFlags.UTP),
               PexPeer(PeerAddr("::1", 2), PexFlags.REACHABLE)), (PeerAddr("10.0.0.2", 3),)),
        LtDontHave(5), UploadOnly(True),
    ]  # fmt: skip
    for m in [*ALL_CORE, *ext]:
        b.receive_data(a.send(m))  # type: ignore[arg-type]
        assert b.next_event() == m
        assert b.next_event() is NEED_DATA
        a.receive_data(b.send(m))  # type: ignore[arg-type]
        assert a.next_event() == m
    sa, sb = a.statistics(), b.statistics()
    assert sa.bytes_sent == sb.bytes_received and sb.bytes_sent == sa.bytes_received
    assert sa.payload_sent == 16384 and sb.payload_received == 16384


def test_extension_send_needs_peer_support() -> None:
    a = WireConnection()
    with pytest.raises(WireError, match="does not support ut_pex"):
        a.send(UtPex())


def test_extension_disabled_by_id_zero() -> None:
    a, b = WireConnection(), WireConnection()
    a.receive_data(b.send(b.registry.handshake()))
    a.next_event()
    assert a.registry.supports("ut_pex")
    a.receive_data(b.send(ExtendedHandshake(m={"ut_pex": 0})))
    a.next_event()
    assert not a.registry.supports("ut_pex")
    assert a.registry.supports("ut_metadata")


def test_unknown_local_extension_id_is_raw() -> None:
    a = WireConnection()
    a.receive_data(encode(Extended(200, b"xyz")))
    assert a.next_event() == Extended(200, b"xyz")


# -- limits ------------------------------------------------------------------------------------


def test_huge_length_prefix_refused_before_allocation() -> None:
    d = WireDecoder()
    size_before = len(d._buf)
    d.receive_data(struct.pack(">IB", 0xFFFFFFF0, 7))
    with pytest.raises(WireError, match="too long"):
        d.next_event()
    assert len(d._buf) == size_before


def test_huge_length_prefix_refused_with_only_four_bytes() -> None:
    d = WireDecoder(num_pieces=8)
    d.receive_data(struct.pack(">I", 0xFFFFFFFF))
    with pytest.raises(WireError):
        d.next_event()


def test_piece_larger_than_block_refused() -> None:
    with pytest.raises(WireError, match="too long"):
        decode_all(encode(Piece(0, 0, bytes(16385))))
    assert decode_all(encode(Piece(0, 0, bytes(32768))), max_block_size=32768)


def test_request_larger_than_block_refused() -> None:
    with pytest.raises(WireError, match="block length"):
        decode_all(encode(Request(0, 0, 16385)))


def test_bitfield_exact_size_and_spare_bits() -> None:
    with pytest.raises(WireError, match="too long"):
        decode_all(encode(BitfieldMessage(bytes(14))), num_pieces=N)
    with pytest.raises(WireError, match="bad bitfield length"):
        decode_all(encode(BitfieldMessage(bytes(12))), num_pieces=N)
    with pytest.raises(WireError, match="spare bits"):
        decode_all(encode(BitfieldMessage(b"\0" * 12 + b"\x08")), num_pieces=N)
    bf = decode_all(encode(BitfieldMessage(b"\x80" + bytes(12))), num_pieces=N)[0]
    assert isinstance(bf, BitfieldMessage) and list(bf.to_bitfield(N)) == [0]


def test_bitfield_unknown_piece_count_then_set() -> None:
    d = WireDecoder()
    d.receive_data(encode(BitfieldMessage(bytes(1000))))
    assert isinstance(d.next_event(), BitfieldMessage)
    d.set_num_pieces(8)
    d.receive_data(encode(BitfieldMessage(bytes(2))))
    with pytest.raises(WireError):
        d.next_event()


def test_index_out_of_range() -> None:
    for m in (Have(N), Request(N, 0, 1), Piece(N, 0, b"x"), Suggest(N), AllowedFast(N)):
        with pytest.raises(WireError, match="out of range"):
            decode_all(encode(m), num_pieces=N)


def test_fixed_length_messages_with_wrong_length() -> None:
    with pytest.raises(WireError, match="too long"):
        decode_all(b"\0\0\0\x02\x00\x00")  # choke with a payload
    with pytest.raises(WireError, match="bad length"):
        decode_all(b"\0\0\0\x0c\x06" + bytes(11))  # short request
    with pytest.raises(WireError):
        decode_all(b"\0\0\0\x04\x04\0\0\0")  # short have


def test_hashes_not_multiple_of_32() -> None:
    with pytest.raises(WireError):
        decode_all(struct.pack(">IB32sIIII", 49 + 5, 22, ROOT, 0, 0, 0, 0) + bytes(5))


def test_partial_message_then_rest_grows_buffer_once() -> None:
    d = WireDecoder(buffer_size=1 << 16, max_extended_size=1 << 17)
    big = encode(Extended(3, bytes(100_000)))
    d.receive_data(big[:10])
    assert d.next_event() is NEED_DATA
    d.receive_data(big[10:])
    assert d.next_event() == Extended(3, bytes(100_000))


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        ("fast", HaveAll()),
        ("fast", Reject(0, 0, 1)),
        ("fast", AllowedFast(1)),
        ("extension_protocol", Extended(0, b"de")),
        ("dht", Port(1)),
        ("v2", HashRequest(ROOT, 0, 0, 2, 0)),
    ],
)
def test_messages_of_features_not_negotiated_are_refused(feature: str, message: Message) -> None:
    flags = {"fast": True, "extension_protocol": True, "dht": True, "v2": True}
    assert decode_all(encode(message), **flags) == [message]
    flags[feature] = False
    with pytest.raises(WireError, match="not negotiated"):
        decode_all(encode(message), **flags)
    d = WireDecoder()
    d.negotiate(**flags)
    d.receive_data(encode(Have(1)) + encode(message))
    assert d.next_event() == Have(1)
    with pytest.raises(WireError):
        d.next_event()


def test_get_buffer_protocol() -> None:
    d = WireDecoder()
    data = encode_many([Have(1), Piece(1, 0, bytes(16384)), Have(2)])
    view = d.get_buffer(len(data))
    view[: len(data)] = data
    view.release()
    d.buffer_updated(len(data))
    assert [type(e) for e in d.events()] == [Have, Piece, Have]
    with pytest.raises(ValueError):
        d.buffer_updated(1 << 30)


# -- hypothesis --------------------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
idx = st.integers(0, N - 1)
root32 = st.binary(min_size=32, max_size=32)


@st.composite
def hash_msg(draw: st.DrawFn, cls: type) -> Message:
    """A BEP 52 hash message with valid fields (aligned index, power-of-two length)."""
    length = 1 << draw(st.integers(1, 9))
    base = draw(st.integers(0, 10))
    index = length * draw(st.integers(0, 1000))
    proofs = draw(st.integers(0, 20))
    if cls is Hashes:
        uncles = uncle_count(length, proofs)
        n = draw(st.integers(uncles + 1, length + uncles))
        return Hashes(draw(root32), base, index, length, proofs, bytes(32 * n))
    return cls(draw(root32), base, index, length, proofs)  # type: ignore[no-any-return]


core_messages = st.one_of(
    st.just(KeepAlive()), st.just(Choke()), st.just(Unchoke()), st.just(Interested()),
    st.just(NotInterested()), st.just(HaveAll()), st.just(HaveNone()),
    st.builds(Have, idx), st.builds(Suggest, idx), st.builds(AllowedFast, idx),
    st.builds(Request, idx, u32, st.integers(0, 16384)),
    st.builds(Cancel, idx, u32, st.integers(0, 16384)),
    st.builds(Reject, idx, u32, st.integers(0, 16384)),
    st.builds(Piece, idx, u32, st.binary(max_size=300)),
    st.builds(Port, st.integers(0, 65535)),
    st.builds(Extended, st.integers(0, 255), st.binary(max_size=100)),
    hash_msg(HashRequest), hash_msg(HashReject), hash_msg(Hashes),
    st.builds(BitfieldMessage, st.binary(min_size=12, max_size=12).map(lambda b: b + b"\x00")),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(core_messages, max_size=12), st.data())
def test_hypothesis_round_trip_any_chunking(msgs: list[Message], data: st.DataObject) -> None:
    wire = bytes(encode_many(msgs))
    d = WireDecoder(num_pieces=N)
    out: list[Message] = []
    i = 0
    while i < len(wire):
        n = data.draw(st.integers(1, max(1, len(wire) - i)))
        d.receive_data(wire[i : i + n])
        out.extend(d.events())
        i += n
    assert out == msgs


@settings(max_examples=200, deadline=None)
@given(st.lists(core_messages, min_size=1, max_size=6), st.data())
def test_hypothesis_mutated_streams_raise_only_wire_error(
    msgs: list[Message], data: st.DataObject
) -> None:
    wire = bytearray(encode_many(msgs))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(wire) - 1))
        wire[pos] = data.draw(st.integers(0, 255))
    conn = WireConnection(num_pieces=N)
    conn.receive_data(bytes(wire))
    try:
        while conn.next_event() is not NEED_DATA:
            pass
    except WireError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_hypothesis_random_bytes_raise_only_wire_error(blob: bytes) -> None:
    conn = WireConnection(num_pieces=N)
    conn.receive_data(blob)
    try:
        while conn.next_event() is not NEED_DATA:
            pass
    except WireError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 255), st.binary(max_size=200))
def test_hypothesis_extension_payloads_raise_only_wire_error(ext_id: int, payload: bytes) -> None:
    conn = WireConnection()
    conn.receive_data(encode(Extended(ext_id % 8, payload)))
    with contextlib.suppress(WireError):
        conn.next_event()


def test_regression_piece_block_is_an_independent_copy() -> None:
    # blocks are sliced out of a reused receive buffer: later data must not change them
    d = WireDecoder()
    d.receive_data(encode(Piece(0, 0, b"a" * 16384)))
    first = d.next_event()
    for _ in range(40):  # enough to wrap and compact the buffer several times
        d.receive_data(encode(Piece(1, 0, b"b" * 16384)))
        assert d.next_event() == Piece(1, 0, b"b" * 16384)
    assert isinstance(first, Piece) and first.block == b"a" * 16384
    assert type(first.block) is bytes
