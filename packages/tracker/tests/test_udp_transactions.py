"""The pure UDP transaction machine: time passed in, packets taken out, replies fed in."""

from __future__ import annotations

import math
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.tracker import (
    ConnectRequest,
    ConnectResponse,
    TrackerFailure,
    TrackerProtocolError,
    TrackerTimeout,
    UdpAnnounceReply,
    UdpError,
    UdpTrackerProtocol,
    decode_request,
    encode_response,
)

T = ("127.0.0.1", 6969)


def counter() -> Iterator[int]:
    n = 100
    while True:
        n += 1
        yield n


def proto(**kw: float) -> UdpTrackerProtocol:
    ids = counter()
    return UdpTrackerProtocol(randbits=lambda _bits: next(ids), **kw)  # type: ignore[arg-type]


def build(conn: int, tid: int) -> bytes:
    return b"REQ" + conn.to_bytes(8, "big") + tid.to_bytes(4, "big")


def test_connect_then_request_then_cached_connection_id() -> None:
    p = proto()
    tx = p.start(T, "u", build, now=0.0)
    packet = tx.take_outgoing()
    assert packet is not None and tx.take_outgoing() is None
    connect = decode_request(packet)
    assert isinstance(connect, ConnectRequest) and tx.deadline == 15.0
    assert p.receive(encode_response(ConnectResponse(connect.transaction_id, 77)), T, now=1.0) is tx
    req = tx.take_outgoing()
    assert req == build(77, tx.transaction_id) and not tx.connecting
    assert tx.deadline == 16.0
    reply = UdpAnnounceReply(tx.transaction_id, 1800, 1, 2, ())
    p.receive(encode_response(reply), T, now=2.0)
    assert tx.done and tx.result == reply and tx.deadline == math.inf
    # within 60 s the id is reused: no connect
    tx2 = p.start(T, "u", build, now=30.0)
    assert tx2.take_outgoing() == build(77, tx2.transaction_id)
    # after 60 s, connect again
    tx3 = p.start(("127.0.0.1", 6969), "u", build, now=61.1)
    assert isinstance(decode_request(tx3.take_outgoing() or b""), ConnectRequest)


def test_schedule_is_15_times_2_to_the_n_then_timeout() -> None:
    p = proto(max_retransmits=3)
    tx = p.start(T, "u", build, now=0.0)
    deadlines = []
    while not tx.done:
        tx.take_outgoing()
        deadlines.append(tx.deadline)
        p.timeout(tx, tx.deadline)
    assert deadlines == [15.0, 45.0, 105.0, 225.0]
    assert isinstance(tx.error, TrackerTimeout)
    assert p.statistics().retransmits == 3 and p.statistics().pending == 0


def test_early_timeout_call_is_ignored() -> None:
    p = proto()
    tx = p.start(T, "u", build, now=0.0)
    tx.take_outgoing()
    p.timeout(tx, 14.9)
    assert tx.take_outgoing() is None and tx.attempt == 0


def test_retransmission_uses_a_new_transaction_id_and_old_replies_are_unmatched() -> None:
    p = proto()
    tx = p.start(T, "u", build, now=0.0)
    first = tx.transaction_id
    p.timeout(tx, 15.0)
    assert tx.transaction_id != first
    assert p.receive(encode_response(ConnectResponse(first, 5)), T, now=16.0) is None
    assert p.statistics().unmatched == 1


def test_reply_from_another_address_is_unmatched() -> None:
    p = proto()
    tx = p.start(T, "u", build, now=0.0)
    assert not p.is_reply(
        encode_response(ConnectResponse(tx.transaction_id, 5)), ("127.0.0.2", 6969)
    )
    assert (
        p.receive(encode_response(ConnectResponse(tx.transaction_id, 5)), ("127.0.0.2", 6969), 1.0)
        is None
    )
    assert p.is_reply(
        encode_response(ConnectResponse(tx.transaction_id, 5)), ("::ffff:127.0.0.1", 6969)
    )


def test_error_reply_fails_and_drops_the_connection_id() -> None:
    p = proto()
    tx = p.start(T, "u", build, now=0.0)
    p.receive(encode_response(ConnectResponse(tx.transaction_id, 9)), T, 0.0)
    p.receive(encode_response(UdpError(tx.transaction_id, "banned")), T, 0.0)
    assert isinstance(tx.error, TrackerFailure) and "banned" in str(tx.error)
    assert p.statistics().cached_connection_ids == 0


def test_wrong_reply_kind_while_connecting() -> None:
    p = proto()
    tx = p.start(T, "u", build, now=0.0)
    p.receive(encode_response(UdpAnnounceReply(tx.transaction_id, 1, 1, 1, ())), T, 0.0)
    assert isinstance(tx.error, TrackerProtocolError)


def test_abandon_forgets_the_transaction() -> None:
    p = proto()
    tx = p.start(T, "u", build, now=0.0)
    p.abandon(tx)
    assert tx.done and p.statistics().pending == 0


def test_connection_cache_is_bounded() -> None:
    p = proto(max_cached_connections=2)
    for port in range(5):
        tx = p.start(("10.0.0.1", port + 1), "u", build, now=0.0)
        p.receive(
            encode_response(ConnectResponse(tx.transaction_id, port)), ("10.0.0.1", port + 1), 0.0
        )
    assert p.statistics().cached_connection_ids == 2


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_random_datagrams_never_raise(data: bytes) -> None:
    p = proto()
    tx = p.start(T, "u", build, now=0.0)
    p.receive(data, T, 0.0)
    p.receive(tx.transaction_id.to_bytes(4, "big") + data, T, 0.0)
    assert p.statistics().pending in (0, 1)  # settled or still waiting; nothing raised


def test_bad_connect_reply_is_a_protocol_error() -> None:
    p = proto()
    tx = p.start(T, "u", build, now=0.0)
    p.receive(b"\x00\x00\x00\x00" + tx.transaction_id.to_bytes(4, "big") + b"\x01", T, 0.0)
    assert isinstance(tx.error, TrackerProtocolError)
