"""KRPC codec: round trips, strict validation, hostile bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.bencode import encode
from torrio.core import NodeId, NodeInfo, PeerAddr
from torrio.dht import ErrorReply, KrpcError, Query, Response, decode_message, encode_message
from torrio.dht._krpc import MAX_DATAGRAM, MAX_NODES

ids = st.binary(min_size=20, max_size=20).map(NodeId)
tids = st.binary(min_size=1, max_size=8)
v4 = st.tuples(st.integers(1, 0xFFFFFFFE), st.integers(1, 0xFFFF)).map(
    lambda t: PeerAddr(__import__("ipaddress").IPv4Address(t[0]), t[1])
)
v6 = st.tuples(st.integers(1, (1 << 128) - 1), st.integers(1, 0xFFFF)).map(
    lambda t: PeerAddr(__import__("ipaddress").IPv6Address(t[0]), t[1])
)
values = st.one_of(
    st.binary(max_size=50), st.integers(-1000, 1000), st.lists(st.binary(max_size=5), max_size=3)
)


@st.composite
def queries(draw: st.DrawFn) -> Query:
    method = draw(
        st.sampled_from(
            ["ping", "find_node", "get_peers", "announce_peer", "get", "put", "sample_infohashes"]
        )
    )
    kw: dict[str, object] = {
        "want": draw(st.sets(st.sampled_from(["n4", "n6"])).map(frozenset)),
        "read_only": draw(st.booleans()),
        "version": draw(st.none() | st.binary(max_size=4)),
    }
    if method in ("find_node", "sample_infohashes", "get"):
        kw["target"] = draw(ids)
    if method == "get":
        kw["seq"] = draw(st.none() | st.integers(0, 1 << 40))
    if method in ("get_peers", "announce_peer"):
        kw["info_hash"] = draw(ids)
    if method == "get_peers":
        kw["scrape"] = draw(st.booleans())
        kw["noseed"] = draw(st.booleans())
    if method == "announce_peer":
        kw["port"] = draw(st.integers(1, 0xFFFF))
        kw["implied_port"] = draw(st.booleans())
        kw["seed"] = draw(st.booleans())
    if method in ("announce_peer", "put"):
        kw["token"] = draw(st.binary(min_size=1, max_size=20))
    if method == "put":
        kw["value"] = encode(draw(values))
        if draw(st.booleans()):
            kw.update(
                key=draw(st.binary(min_size=32, max_size=32)),
                signature=draw(st.binary(min_size=64, max_size=64)),
                seq=draw(st.integers(0, 1 << 40)),
                salt=draw(st.binary(max_size=10)),
                cas=draw(st.none() | st.integers(0, 100)),
            )
    return Query(draw(tids), method, draw(ids), **kw)  # type: ignore[arg-type]


@st.composite
def responses(draw: st.DrawFn) -> Response:
    return Response(
        draw(tids),
        draw(ids),
        nodes=tuple(draw(st.lists(st.builds(NodeInfo, ids, v4), max_size=8))),
        nodes6=tuple(draw(st.lists(st.builds(NodeInfo, ids, v6), max_size=8))),
        values=tuple(draw(st.lists(v4 | v6, max_size=8, unique=True))),
        token=draw(st.none() | st.binary(min_size=1, max_size=20)),
        value=draw(st.none() | values.map(encode)),
        seq=draw(st.none() | st.integers(0, 1 << 40)),
        samples=tuple(draw(st.lists(st.binary(min_size=20, max_size=20), max_size=5))),
        interval=draw(st.none() | st.integers(0, 3600)),
        num=draw(st.none() | st.integers(0, 1000)),
        ip=draw(st.none() | v4 | v6),
        bf_seeds=draw(st.none() | st.binary(min_size=256, max_size=256)),
        bf_peers=draw(st.none() | st.binary(min_size=256, max_size=256)),
    )


@given(queries())
@settings(max_examples=150, deadline=None)
def test_query_round_trip(q: Query) -> None:
    assert decode_message(encode_message(q)) == q


@given(responses())
@settings(max_examples=150, deadline=None)
def test_response_round_trip(r: Response) -> None:
    assert decode_message(encode_message(r)) == r


def test_error_round_trip() -> None:
    e = ErrorReply(b"aa", 203, "bad token", ip=PeerAddr("1.2.3.4", 5))
    assert decode_message(encode_message(e)) == e


def test_bep5_example_ping() -> None:
    msg = decode_message(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe")
    assert (
        isinstance(msg, Query)
        and msg.method == "ping"
        and msg.sender.value == b"abcdefghij0123456789"
    )


def test_bep5_example_announce_implied_port() -> None:
    data = (
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz123456"
        b"4:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe"
    )
    msg = decode_message(data)
    assert (
        isinstance(msg, Query)
        and msg.implied_port
        and msg.port == 6881
        and msg.token == b"aoeusnth"
    )


def test_read_only_flag() -> None:
    msg = decode_message(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping2:roi1e1:t2:aa1:y1:qe")
    assert isinstance(msg, Query) and msg.read_only


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"d1:ad2:id20:abcdefghij0123456789e1:q4:nope1:t2:aa1:y1:qe", 204),
        (b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe", 203),
        (b"d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe", 203),
        (b"le", 203),
        (b"d1:t0:1:y1:qe", 203),
    ],
)
def test_invalid_messages_raise_krpc_error(data: bytes, code: int) -> None:
    with pytest.raises(KrpcError) as info:
        decode_message(data)
    assert info.value.code == code


def test_oversized_datagram_refused_unread() -> None:
    with pytest.raises(KrpcError):
        decode_message(b"d" + b"x" * MAX_DATAGRAM + b"e")


def test_oversized_item_value_refused() -> None:
    big = encode(
        {"a": {"id": b"a" * 20, "token": b"t", "v": b"x" * 1000}, "q": "put", "t": b"aa", "y": "q"}
    )
    with pytest.raises(KrpcError) as info:
        decode_message(big)
    assert info.value.code == 205 and info.value.query


def test_node_lists_are_capped() -> None:
    n = NodeInfo(NodeId(b"n" * 20), PeerAddr("1.2.3.4", 5))
    raw = encode(
        {"r": {"id": b"a" * 20, "nodes": n.to_compact() * (MAX_NODES + 50)}, "t": b"aa", "y": "r"}
    )
    if len(raw) <= MAX_DATAGRAM:
        msg = decode_message(raw)
        assert isinstance(msg, Response) and len(msg.nodes) <= MAX_NODES


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_random_bytes_raise_only_krpc_error(data: bytes) -> None:
    with contextlib.suppress(KrpcError):
        decode_message(data)


@given(queries() | responses(), st.data())
@settings(max_examples=300, deadline=None)
def test_mutated_messages_raise_only_krpc_error(msg: Query | Response, data: st.DataObject) -> None:
    raw = bytearray(encode_message(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    for candidate in (bytes(raw), bytes(raw[:cut])):
        with contextlib.suppress(KrpcError):
            decode_message(candidate)
