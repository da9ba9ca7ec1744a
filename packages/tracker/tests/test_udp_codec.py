"""UDP tracker codec (BEP 15, BEP 41): round trips, truncation, mutation."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.core import PeerAddr
from torrio.tracker import (
    PROTOCOL_ID,
    AnnounceRequest,
    ConnectRequest,
    ConnectResponse,
    Event,
    ScrapeEntry,
    TrackerError,
    TrackerProtocolError,
    UdpAnnounce,
    UdpAnnounceReply,
    UdpError,
    UdpScrape,
    UdpScrapeReply,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    response_transaction_id,
)

u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, (1 << 64) - 1)
requests = st.builds(
    AnnounceRequest,
    info_hash=st.binary(min_size=20, max_size=20),
    peer_id=st.binary(min_size=20, max_size=20),
    port=st.integers(0, 65535),
    uploaded=u64,
    downloaded=u64,
    left=u64,
    event=st.sampled_from(Event),
    numwant=st.integers(-1, 0x7FFFFFFF),
    key=u32,
    ip=st.none() | st.just("10.1.2.3"),
)
udp_requests = (
    st.builds(ConnectRequest, u32)
    | st.builds(UdpAnnounce, u64, u32, requests, st.binary(max_size=600))
    | st.builds(
        UdpScrape,
        u64,
        u32,
        st.lists(st.binary(min_size=20, max_size=20), min_size=1, max_size=74).map(tuple),
    )
)
v4 = st.builds(lambda a, p: PeerAddr(ipaddress.IPv4Address(a), p), u32, st.integers(1, 65535))
v6 = st.builds(
    lambda a, p: PeerAddr(ipaddress.IPv6Address(a), p),
    st.integers(0, 2**128 - 1),
    st.integers(1, 65535),
)
entries = st.builds(ScrapeEntry, u32, u32, u32)


@settings(max_examples=200, deadline=None)
@given(udp_requests)
def test_request_round_trip(msg: ConnectRequest | UdpAnnounce | UdpScrape) -> None:
    assert decode_request(encode_request(msg)) == msg


@settings(max_examples=200, deadline=None)
@given(
    st.builds(ConnectResponse, u32, u64)
    | st.builds(UdpScrapeReply, u32, st.lists(entries, max_size=10).map(tuple))
    | st.builds(UdpError, u32, st.text(max_size=50))
)
def test_response_round_trip(msg: ConnectResponse | UdpScrapeReply | UdpError) -> None:
    data = encode_response(msg)
    assert decode_response(data) == msg
    assert response_transaction_id(data) == msg.transaction_id


@settings(max_examples=100, deadline=None)
@given(u32, u32, u32, u32, st.lists(v4, max_size=10), st.lists(v6, max_size=10))
def test_announce_reply_round_trip_per_family(
    tid: int, interval: int, leechers: int, seeders: int, p4: list[PeerAddr], p6: list[PeerAddr]
) -> None:
    for family, peers in ((4, p4), (6, p6)):
        msg = UdpAnnounceReply(tid, interval, leechers, seeders, tuple(peers))
        assert decode_response(encode_response(msg), family) == msg


def test_connect_request_layout() -> None:
    data = encode_request(ConnectRequest(0x01020304))
    assert data == PROTOCOL_ID.to_bytes(8, "big") + b"\x00\x00\x00\x00" + b"\x01\x02\x03\x04"


def test_announce_is_98_bytes_plus_bep41_options() -> None:
    req = AnnounceRequest(info_hash=b"i" * 20, peer_id=b"p" * 20, port=6881)
    assert len(encode_request(UdpAnnounce(1, 2, req))) == 98
    long_path = b"/announce?" + b"k" * 400
    data = encode_request(UdpAnnounce(1, 2, req, long_path))
    # two URLData options (255 + 155 bytes) then EndOfOptions
    assert data[98] == 2 and data[99] == 255 and data[98 + 2 + 255] == 2 and data[-1] == 0
    assert decode_request(data).url_data == long_path  # type: ignore[union-attr]


def test_bep41_nop_options_are_skipped() -> None:
    req = AnnounceRequest(info_hash=b"i" * 20, peer_id=b"p" * 20, port=6881)
    data = encode_request(UdpAnnounce(1, 2, req)) + b"\x01\x01\x02\x03/ab\x01\x02\x01c\x00garbage"
    assert decode_request(data).url_data == b"/abc"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 15,
        PROTOCOL_ID.to_bytes(8, "big") + b"\x00\x00\x00\x09" + b"\x00" * 4,  # unknown action
        b"\x00" * 8 + b"\x00\x00\x00\x00" + b"\x00" * 4,  # connect without the magic
        b"\x00" * 8 + b"\x00\x00\x00\x01" + b"\x00" * 50,  # short announce
        b"\x00" * 8 + b"\x00\x00\x00\x02" + b"\x00" * 4 + b"x" * 19,  # scrape not a multiple of 20
        b"\x00" * 8 + b"\x00\x00\x00\x02" + b"\x00" * 4,  # empty scrape
        encode_request(
            UdpAnnounce(1, 2, AnnounceRequest(info_hash=b"i" * 20, peer_id=b"p" * 20, port=1))
        )[:98]
        + b"\x02\x09ab",  # truncated option
    ],
)
def test_hostile_requests(data: bytes) -> None:
    with pytest.raises(TrackerProtocolError):
        decode_request(data)


def test_bad_event_number_is_refused() -> None:
    data = bytearray(
        encode_request(
            UdpAnnounce(1, 2, AnnounceRequest(info_hash=b"i" * 20, peer_id=b"p" * 20, port=1))
        )
    )
    data[80:84] = (7).to_bytes(4, "big")
    with pytest.raises(TrackerProtocolError, match="event"):
        decode_request(bytes(data))


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x00",
        b"\x00\x00\x00\x00\x00\x00\x00\x01\x00",  # short connect
        b"\x00\x00\x00\x01" + b"\x00" * 10,  # short announce
        b"\x00\x00\x00\x01" + b"\x00" * 16 + b"\x01\x02\x03",  # peers not a multiple of 6
        b"\x00\x00\x00\x02" + b"\x00" * 4 + b"\x00" * 11,
        b"\x00\x00\x00\x07" + b"\x00" * 12,
    ],
)
def test_hostile_responses(data: bytes) -> None:
    with pytest.raises(TrackerProtocolError):
        decode_response(data)


@settings(max_examples=300, deadline=None)
@given(udp_requests, st.data())
def test_mutated_packets_raise_only_tracker_errors(
    msg: ConnectRequest | UdpAnnounce | UdpScrape, data: st.DataObject
) -> None:
    raw = bytearray(encode_request(msg))
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    for decode in (decode_request, decode_response):
        with contextlib.suppress(TrackerError):
            decode(bytes(raw))
