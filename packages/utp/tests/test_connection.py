"""The sans-I/O connection core driven by hand: time is a number, the network a function call."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.utp import (
    NEED_DATA,
    Closed,
    Connected,
    ConnectionReset,
    ConnectionTimedOut,
    EndOfData,
    Event,
    Packet,
    PacketType,
    State,
    UtpConfig,
    UtpConnection,
    decode_packet,
    encode_packet,
)

Drop = Callable[[bytes], bool]


def events(conn: UtpConnection) -> list[Event]:
    out = []
    while (ev := conn.next_event()) is not NEED_DATA:
        out.append(ev)
    return out


def deliver(datagrams: list[bytes], to: UtpConnection, now: float) -> None:
    for d in datagrams:
        to.receive_packet(decode_packet(d), now)


def pump(
    a: UtpConnection, b: UtpConnection, now: float, drop: Drop | None = None, rounds: int = 10_000
) -> None:
    """Exchange datagrams (instant link) until neither side has anything to say."""
    for _ in range(rounds):
        out_a = a.datagrams_to_send(now)
        out_b = b.datagrams_to_send(now)
        if not out_a and not out_b:
            return
        deliver([d for d in out_a if not (drop and drop(d))], b, now)
        deliver([d for d in out_b if not (drop and drop(d))], a, now)
    raise AssertionError("the connections never went quiet")


def open_pair(
    now: float = 0.0, config: UtpConfig | None = None, seq_a: int = 100, seq_b: int = 5000
) -> tuple[UtpConnection, UtpConnection]:
    a = UtpConnection.connect(1000, seq_a, now, config)
    (syn,) = a.datagrams_to_send(now)
    b = UtpConnection.accept(decode_packet(syn), seq_b, now, config)
    deliver(b.datagrams_to_send(now), a, now)
    return a, b


def test_handshake_ids_and_sequence_numbers() -> None:
    a = UtpConnection.connect(1000, 100, 0.0)
    (syn,) = a.datagrams_to_send(0.0)
    p = decode_packet(syn)
    assert (p.type, p.connection_id, p.seq_nr) == (PacketType.SYN, 1000, 100)
    b = UtpConnection.accept(p, 5000, 0.0)
    assert (b.recv_id, b.send_id) == (1001, 1000)
    (state,) = b.datagrams_to_send(0.01)
    s = decode_packet(state)
    # the reply acks the SYN and carries the acceptor's next (unused) sequence number
    assert (s.type, s.connection_id, s.ack_nr, s.seq_nr) == (PacketType.STATE, 1000, 100, 5000)
    a.receive_packet(s, 0.02)
    assert events(a) == [Connected()]
    assert a.state is State.CONNECTED and a.ack_nr == 4999
    a.write(b"hi")
    (data,) = a.datagrams_to_send(0.02)
    d = decode_packet(data)
    assert (d.connection_id, d.seq_nr, d.payload) == (1001, 101, b"hi")
    # µs timestamps and the difference the receiver measured
    assert d.timestamp_us == 20_000 and d.timestamp_diff_us == 10_000


def test_duplicate_syn_is_answered_again() -> None:
    a = UtpConnection.connect(7, 1, 0.0)
    (syn,) = a.datagrams_to_send(0.0)
    b = UtpConnection.accept(decode_packet(syn), 9, 0.0)
    assert len(b.datagrams_to_send(0.0)) == 1
    b.receive_packet(decode_packet(syn), 1.0)
    (again,) = b.datagrams_to_send(1.0)
    assert decode_packet(again).type is PacketType.STATE
    assert events(b) == []


def test_transfer_half_close_and_close() -> None:
    a, b = open_pair()
    payload = bytes(range(256)) * 400
    assert a.write(payload) == len(payload)
    a.close()
    pump(a, b, 0.1)
    assert b.read() == payload
    assert events(b) == [EndOfData()]
    assert b.at_eof and a.state is State.FIN_SENT
    # the other direction still works after the half-close
    b.write(b"reply")
    b.close()
    pump(a, b, 0.2)
    assert a.read() == b"reply"
    assert EndOfData() in events(a)
    assert (a.statistics().state, b.statistics().state) == (State.CLOSED, State.CLOSED)
    assert Closed() in events(b)
    # it lingers to answer a retransmitted FIN, then expires
    deadline = a.next_deadline()
    assert deadline is not None
    a.handle_timeout(deadline)
    assert a.expired


def test_reset_ends_the_connection() -> None:
    a, b = open_pair()
    b.abort()
    deliver(b.datagrams_to_send(0.1), a, 0.1)
    assert ConnectionReset() in events(a)
    assert a.state is State.RESET
    assert a.write(b"x") == 0
    a.receive_packet(Packet(PacketType.DATA, a.recv_id, seq_nr=1, payload=b"late"), 0.2)
    assert a.readable == 0


def test_ack_of_unsent_data_is_ignored() -> None:
    a, _b = open_pair()
    a.write(b"x" * 3000)
    a.datagrams_to_send(0.1)
    before = a.statistics()
    bogus = encode_packet(PacketType.STATE, a.recv_id, 0, 0, 1 << 20, 0, (a.seq_nr + 50) & 0xFFFF)
    a.receive_packet(decode_packet(bogus), 0.2)
    after = a.statistics()
    assert after.bytes_in_flight == before.bytes_in_flight > 0
    assert after.cwnd == before.cwnd


def test_huge_sack_mask_is_bounded() -> None:
    a, _b = open_pair(config=UtpConfig(initial_cwnd=20_000))
    a.write(b"x" * 14_000)
    sent = a.datagrams_to_send(0.1)
    assert len(sent) >= 2
    huge = encode_packet(
        PacketType.STATE, a.recv_id, 0, 0, 1 << 20, 0, a.acked_seq, sack=b"\xff" * 252
    )
    a.receive_packet(decode_packet(huge), 0.2)
    st_ = a.statistics()
    assert st_.bytes_in_flight >= 0
    # all but the first packet are sacked, the first is fast-retransmitted
    assert st_.fast_retransmits == 1
    assert len(a.datagrams_to_send(0.2)) >= 1


def test_rto_floor_backoff_and_giving_up() -> None:
    cfg = UtpConfig(max_retransmits=3)
    a, _b = open_pair(config=cfg)
    assert a.rtt.rto == 0.5  # tiny RTT samples, but never below the 500 ms floor
    a.write(b"lost forever")
    a.datagrams_to_send(1.0)
    times = []
    now = 1.0
    for _ in range(3):
        deadline = a.next_deadline()
        assert deadline is not None
        times.append(deadline - now)
        now = deadline
        a.handle_timeout(now)
        assert len(a.datagrams_to_send(now)) == 1  # the retransmission
    assert times == pytest.approx([0.5, 1.0, 2.0])
    deadline = a.next_deadline()
    assert deadline is not None
    a.handle_timeout(deadline)
    assert events(a)[-1] == ConnectionTimedOut("retransmissions exhausted")
    assert a.state is State.RESET
    (reset,) = a.datagrams_to_send(deadline)
    assert decode_packet(reset).type is PacketType.RESET


def test_karn_no_rtt_sample_from_retransmitted_packet() -> None:
    a, b = open_pair()
    srtt = a.rtt.srtt
    a.write(b"x")
    (_first,) = a.datagrams_to_send(1.0)
    deadline = a.next_deadline()
    assert deadline is not None
    a.handle_timeout(deadline)
    (again,) = a.datagrams_to_send(deadline)
    deliver([again], b, deadline + 5.0)
    deliver(b.datagrams_to_send(deadline + 5.0), a, deadline + 5.0)
    assert a.all_sent_acked
    assert a.rtt.srtt == srtt  # a 5 s "sample" from a retransmission would have moved it


def test_fast_retransmit_on_sack_hole_halves_cwnd() -> None:
    a, b = open_pair(config=UtpConfig(initial_cwnd=20_000))
    a.write(b"y" * 1400 * 8)
    out = a.datagrams_to_send(0.1)
    assert len(out) == 8
    cwnd = a.cc.cwnd
    deliver(out[1:], b, 0.1)  # the first is lost
    deliver(b.datagrams_to_send(0.1), a, 0.1)
    assert a.fast_retransmits == 1
    assert a.cc.cwnd == pytest.approx(max(cwnd / 2, a.cc.min_cwnd))
    resent = a.datagrams_to_send(0.1)
    assert [decode_packet(d).seq_nr for d in resent] == [decode_packet(out[0]).seq_nr]
    deliver(resent, b, 0.2)
    pump(a, b, 0.2)
    assert b.read() == b"y" * 1400 * 8


def test_fast_retransmit_on_three_duplicate_acks() -> None:
    a, _b = open_pair(config=UtpConfig(initial_cwnd=20_000))
    a.write(b"z" * 1400 * 5)
    out = a.datagrams_to_send(0.1)
    dup = encode_packet(PacketType.STATE, a.recv_id, 0, 0, 1 << 20, 0, a.acked_seq)
    for _ in range(3):
        a.receive_packet(decode_packet(dup), 0.2)
    assert a.fast_retransmits == 1
    assert decode_packet(a.datagrams_to_send(0.2)[0]).seq_nr == decode_packet(out[0]).seq_nr


def test_out_of_order_buffer_is_bounded() -> None:
    cfg = UtpConfig(max_out_of_order=16)
    _a, b = open_pair(config=cfg)
    for i in range(2, 200):
        seq = (b.ack_nr + i) & 0xFFFF
        b.receive_packet(Packet(PacketType.DATA, b.recv_id, seq_nr=seq, payload=b"p" * 100), 0.1)
    assert len(b._ooo) <= 16
    assert b.dropped_out_of_window > 0
    # the SACK it sends stays small
    (ack,) = b.datagrams_to_send(0.1)
    p = decode_packet(ack)
    assert p.sack is not None and len(p.sack) <= cfg.sack_bytes


def test_receive_window_and_zero_window_probe() -> None:
    cfg = UtpConfig(recv_buffer_size=20_000, send_buffer_size=1 << 20)
    a, b = open_pair(config=cfg)
    payload = bytes(range(251)) * 400  # 100 kB
    a.write(payload)
    pump(a, b, 0.1)
    # the reader read nothing: the sender stops at the advertised window
    assert b.readable <= 20_000
    assert a.peer_window < 1500
    got = b.read()
    # the window update is lost; the sender probes after its timer
    b.datagrams_to_send(0.2)
    now = 0.2
    for _ in range(200):
        deadline = a.next_deadline()
        assert deadline is not None
        now = max(now, deadline)
        a.handle_timeout(now)
        pump(a, b, now)
        got += b.read()
        if len(got) == len(payload):
            break
    assert got == payload


def test_nagle_coalesces_small_writes() -> None:
    a, b = open_pair()
    a.write(b"a" * 10)
    first = a.datagrams_to_send(0.1)
    assert len(first) == 1
    a.write(b"b" * 10)
    a.write(b"c" * 10)
    assert a.datagrams_to_send(0.1) == []  # waits for the ack
    deliver(first, b, 0.1)
    deliver(b.datagrams_to_send(0.1), a, 0.1)
    (both,) = a.datagrams_to_send(0.1)
    assert decode_packet(both).payload == b"b" * 10 + b"c" * 10


def test_keepalive_and_idle_timeout() -> None:
    a, _b = open_pair()
    deadline = a.next_deadline()
    assert deadline is not None
    assert deadline == pytest.approx(29.0)
    a.handle_timeout(deadline)
    (ka,) = a.datagrams_to_send(deadline)
    assert decode_packet(ka).type is PacketType.STATE
    now = deadline
    while not a.finished:
        d = a.next_deadline()
        assert d is not None
        now = d
        a.handle_timeout(now)
        a.datagrams_to_send(now)
    assert now == pytest.approx(120.0)
    assert ConnectionTimedOut("idle timeout") in events(a)


def test_sequence_wraparound_in_the_core() -> None:
    a, b = open_pair(seq_a=65530, seq_b=65534)
    data = bytes(range(256)) * 200
    a.write(data)
    b.write(data)
    pump(a, b, 0.1)
    assert a.read() == data and b.read() == data
    assert a.seq_nr < 100 and b.seq_nr < 100


packet_fields = st.builds(
    Packet,
    type=st.sampled_from(PacketType),
    connection_id=st.integers(0, 0xFFFF),
    timestamp_us=st.integers(0, 0xFFFFFFFF),
    timestamp_diff_us=st.integers(0, 0xFFFFFFFF),
    wnd_size=st.integers(0, 0xFFFFFFFF),
    seq_nr=st.integers(0, 0xFFFF),
    ack_nr=st.integers(0, 0xFFFF),
    sack=st.none() | st.binary(min_size=4, max_size=4) | st.just(b"\xff" * 252),
    payload=st.binary(max_size=64),
)


@given(st.lists(packet_fields, max_size=30), st.booleans())
@settings(max_examples=150, deadline=None)
def test_hostile_packets_never_break_invariants(pkts: list[Packet], initiator: bool) -> None:
    a, b = open_pair()
    a.write(b"q" * 5000)
    b.write(b"r" * 5000)
    pump(a, b, 0.1)
    a.write(b"s" * 10_000)
    a.datagrams_to_send(0.2)
    target = a if initiator else b
    now = 0.3
    for p in pkts:
        now += 0.01
        target.receive_packet(p, now)
        target.datagrams_to_send(now)
        st_ = target.statistics()
        assert st_.bytes_in_flight >= 0
        assert len(target._inflight) <= target.config.max_in_flight
        assert len(target._ooo) <= target.config.max_out_of_order
        assert target.readable <= target.config.recv_buffer_size
    events(target)
