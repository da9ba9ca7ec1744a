"""BEP 6 allowed-fast, BEP 9 ut_metadata, BEP 10 handshake, BEP 11 ut_pex, BEP 54, upload_only."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.bencode import encode as bencode
from torrio.core import PeerAddr
from torrio.wire import (
    ExtendedHandshake,
    ExtensionRegistry,
    LtDontHave,
    MetadataAssembler,
    PexFlags,
    PexPeer,
    PexState,
    UploadOnly,
    UtMetadataData,
    UtMetadataReject,
    UtMetadataRequest,
    UtPex,
    WireError,
    allowed_fast_set,
    decode_ut_metadata,
    metadata_piece_count,
)


def test_allowed_fast_bep6_vectors() -> None:
    ih = b"\xaa" * 20
    assert allowed_fast_set("80.4.4.200", ih, 1313, 7) == [1059, 431, 808, 1217, 287, 376, 1188]
    assert allowed_fast_set("80.4.4.200", ih, 1313, 9) == [
        1059, 431, 808, 1217, 287, 376, 1188, 353, 508,
    ]  # fmt: skip


def test_allowed_fast_masks_to_slash24_and_small_torrents() -> None:
    ih = b"\x01" * 20
    assert allowed_fast_set("80.4.4.1", ih, 500) == allowed_fast_set("80.4.4.254", ih, 500)
    assert sorted(allowed_fast_set("1.2.3.4", ih, 3, 10)) == [0, 1, 2]
    assert allowed_fast_set("1.2.3.4", ih, 0) == []
    v6 = allowed_fast_set(ipaddress.ip_address("2001:db8::1"), ih, 1000)
    assert len(set(v6)) == 10 and all(0 <= i < 1000 for i in v6)


def test_extended_handshake_round_trip_and_extra_keys() -> None:
    hs = ExtendedHandshake(
        m={"ut_metadata": 3}, p=6881, v="torrio 0.1", yourip=ipaddress.ip_address("1.2.3.4"),
        ipv6=ipaddress.IPv6Address("::1"), reqq=250, metadata_size=1234, upload_only=True,
        extra={b"complete_ago": 5},
    )  # fmt: skip
    assert ExtendedHandshake.from_payload(hs.to_payload()) == hs


def test_extended_handshake_tolerates_odd_values() -> None:
    payload = bencode({b"m": {b"a": 1, b"b": b"x", b"c": 999}, b"yourip": b"abc", b"p": 70000})
    hs = ExtendedHandshake.from_payload(payload)
    assert hs.m == {"a": 1} and hs.yourip is None and hs.p is None
    with pytest.raises(WireError):
        ExtendedHandshake.from_payload(b"le")
    with pytest.raises(WireError):
        ExtendedHandshake.from_payload(bencode({b"reqq": b"many"}))


def test_ut_metadata_codec_and_limits() -> None:
    for m in (UtMetadataRequest(0), UtMetadataReject(3)):
        assert decode_ut_metadata(m.to_payload()) == m
    d = UtMetadataData(1, 20000, bytes(20000 - 16384))
    assert decode_ut_metadata(d.to_payload()) == d
    with pytest.raises(WireError, match="want"):
        decode_ut_metadata(UtMetadataData(0, 20000, bytes(100)).to_payload())
    with pytest.raises(WireError, match="total_size"):
        decode_ut_metadata(UtMetadataData(0, 1 << 30, bytes(16384)).to_payload())
    with pytest.raises(WireError, match="beyond"):
        decode_ut_metadata(UtMetadataData(5, 20000, b"").to_payload())
    with pytest.raises(WireError):
        decode_ut_metadata(bencode({b"msg_type": 9, b"piece": 0}))


def test_metadata_assembler_verifies_hash() -> None:
    info = bytes(range(256)) * 100
    ok = MetadataAssembler(len(info), hashlib.sha1(info).digest())
    n = metadata_piece_count(len(info))
    assert n == 2 and ok.missing() == [0, 1]
    assert ok.add(UtMetadataData(1, len(info), info[16384:])) is None
    assert ok.add(UtMetadataData(0, len(info), info[:16384])) == info
    bad = MetadataAssembler(len(info), b"\0" * 20)
    bad.add(UtMetadataData(0, len(info), info[:16384]))
    with pytest.raises(WireError, match="hash"):
        bad.add(UtMetadataData(1, len(info), info[16384:]))
    assert bad.missing() == [0, 1]


def test_pex_v4_v6_flags_round_trip() -> None:
    pex = UtPex(
        added=(PexPeer(PeerAddr("1.2.3.4", 1000), PexFlags.SEED | PexFlags.PREFERS_ENCRYPTION),
               PexPeer(PeerAddr("2001:db8::1", 2000), PexFlags.UTP | PexFlags.HOLEPUNCH)),
        dropped=(PeerAddr("5.6.7.8", 3), PeerAddr("::2", 4)),
    )  # fmt: skip
    assert UtPex.from_payload(pex.to_payload()) == pex


def test_pex_count_limit_and_bad_lengths() -> None:
    many = b"".join(PeerAddr(f"10.0.{i // 256}.{i % 256}", 1).to_compact() for i in range(201))
    with pytest.raises(WireError, match="more than"):
        UtPex.from_payload(bencode({b"added": many}))
    with pytest.raises(WireError, match="multiple"):
        UtPex.from_payload(bencode({b"added": b"12345"}))
    with pytest.raises(WireError):
        UtPex.from_payload(bencode({b"dropped6": 5}))
    # missing flags default to none
    one = UtPex.from_payload(bencode({b"added": PeerAddr("1.1.1.1", 1).to_compact()}))
    assert one.added[0].flags == PexFlags.NONE


def test_pex_state_rate_and_count_limits() -> None:
    state = PexState(min_interval=60.0, send_limit=2)
    peers = {PeerAddr(f"10.0.0.{i}", 1): PexFlags.NONE for i in range(1, 6)}
    first = state.build(peers, now=0.0)
    assert first is not None and len(first.added) == 2
    assert state.build(peers, now=30.0) is None  # too soon
    second = state.build(peers, now=60.0)
    assert second is not None and len(second.added) == 2
    assert not {p.addr for p in first.added} & {p.addr for p in second.added}
    del peers[first.added[0].addr]
    third = state.build(peers, now=120.0)
    assert third is not None and third.dropped == (first.added[0].addr,)
    assert state.next_deadline() == 180.0
    assert state.accept(0.0) and not state.accept(10.0) and state.accept(60.0)


def test_dont_have_and_upload_only() -> None:
    assert LtDontHave.from_payload(LtDontHave(7).to_payload()) == LtDontHave(7)
    assert UploadOnly.from_payload(UploadOnly(True).to_payload()) == UploadOnly(True)
    assert UploadOnly.from_payload(b"\0") == UploadOnly(False)
    with pytest.raises(WireError):
        LtDontHave.from_payload(b"123")
    with pytest.raises(WireError):
        UploadOnly.from_payload(b"")


def test_registry_validation() -> None:
    with pytest.raises(ValueError):
        ExtensionRegistry(local={"a": 1, "b": 1})
    with pytest.raises(ValueError):
        ExtensionRegistry(local={"a": 0})
    r = ExtensionRegistry()
    assert r.local_name(2) == "ut_metadata" and r.local_name(99) is None
    r.update_remote({"ut_pex": 5, "x": 300})
    assert r.remote_id("ut_pex") == 5 and r.remote_id("x") is None


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_hypothesis_pex_and_metadata_raise_only_wire_error(blob: bytes) -> None:
    for fn in (UtPex.from_payload, decode_ut_metadata, ExtendedHandshake.from_payload):
        with contextlib.suppress(WireError):
            fn(blob)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.ip_addresses(), st.integers(0, 65535), st.integers(0, 31)), max_size=20)
)
def test_hypothesis_pex_round_trip(peers: list[tuple[object, int, int]]) -> None:
    added = tuple(PexPeer(PeerAddr(ip, port), PexFlags(f)) for ip, port, f in peers)  # type: ignore[arg-type]
    v4 = tuple(p for p in added if p.addr.family == 4)
    v6 = tuple(p for p in added if p.addr.family == 6)
    assert UtPex.from_payload(UtPex(added).to_payload()).added == v4 + v6
