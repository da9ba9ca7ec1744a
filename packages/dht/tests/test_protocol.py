"""The sans-I/O protocol core: queries answered, tokens, storage, hostile input, bounds."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.bencode import encode
from torrio.core import NodeId, NodeInfo, PeerAddr
from torrio.dht import (
    DhtConfig,
    DhtProtocol,
    ErrorReply,
    LookupDone,
    PeersFound,
    Query,
    Response,
    SigningKey,
    decode_message,
    encode_message,
    key_for,
)

ME = PeerAddr("10.0.0.1", 6881)
PEER = PeerAddr("10.0.1.1", 6881)


def ask(node: DhtProtocol, q: Query, src: PeerAddr = PEER, now: float = 0.0) -> list[object]:
    node.receive(encode_message(q), src, now)
    # our own pings of new contacts are not answers
    return [m for d, _ in node.datagrams_to_send() if not isinstance(m := decode_message(d), Query)]


def q(method: str, **kw: object) -> Query:
    return Query(b"tt", method, NodeId(b"q" * 20), **kw)  # type: ignore[arg-type]


def test_ping_reply_carries_our_id_and_their_ip() -> None:
    node = DhtProtocol(NodeId(b"n" * 20))
    (r,) = ask(node, q("ping"))
    assert isinstance(r, Response) and r.sender == node.node_id and r.ip == PEER and r.tid == b"tt"
    assert len(node.table()) == 1  # the querier went into the table (questionable)


def test_announce_needs_a_valid_token_bound_to_the_ip() -> None:
    node = DhtProtocol()
    ih = key_for("x")
    (r,) = ask(node, q("get_peers", info_hash=ih))
    assert isinstance(r, Response) and r.token is not None
    (bad,) = ask(node, q("announce_peer", info_hash=ih, port=1, token=b"bogus"))
    assert isinstance(bad, ErrorReply) and bad.code == 203
    (other_ip,) = ask(
        node, q("announce_peer", info_hash=ih, port=1, token=r.token), src=PeerAddr("10.0.2.1", 1)
    )
    assert isinstance(other_ip, ErrorReply)
    (ok,) = ask(node, q("announce_peer", info_hash=ih, port=4000, token=r.token))
    assert isinstance(ok, Response)
    (_ok2,) = ask(node, q("announce_peer", info_hash=ih, port=1, implied_port=True, token=r.token))
    (r2,) = ask(node, q("get_peers", info_hash=ih))
    assert isinstance(r2, Response) and set(r2.values) == {PeerAddr(PEER.ip, 4000), PEER}


def test_put_and_get_items_with_bep44_errors() -> None:
    node = DhtProtocol()
    key = SigningKey.generate()
    item = key.sign(b"v", 5)
    (g,) = ask(node, q("get", target=item.target))
    assert isinstance(g, Response) and g.token is not None and g.value is None
    fields = {
        "value": item.raw,
        "key": item.public_key,
        "signature": item.signature,
        "seq": 5,
        "token": g.token,
    }
    (ok,) = ask(node, q("put", **fields))
    assert isinstance(ok, Response)
    (old,) = ask(node, q("put", **{**fields, "seq": 4}))
    assert isinstance(old, ErrorReply) and old.code in (206, 302)
    (badsig,) = ask(node, q("put", **{**fields, "value": b"1:w"}))
    assert isinstance(badsig, ErrorReply) and badsig.code == 206
    (g2,) = ask(node, q("get", target=item.target))
    assert (
        isinstance(g2, Response)
        and g2.value == b"1:v"
        and g2.seq == 5
        and g2.signature == item.signature
    )
    # a requester that already has seq 5 gets no value back
    (g3,) = ask(node, q("get", target=item.target, seq=5))
    assert isinstance(g3, Response) and g3.value is None and g3.seq == 5


def test_oversized_put_is_answered_with_205_and_not_stored() -> None:
    node = DhtProtocol()
    raw = encode(
        {"a": {"id": b"q" * 20, "token": b"t", "v": b"x" * 1200}, "q": "put", "t": b"tt", "y": "q"}
    )
    node.receive(raw, PEER, 0.0)
    (reply,) = [decode_message(d) for d, _ in node.datagrams_to_send()]
    assert isinstance(reply, ErrorReply) and reply.code == 205
    assert node.statistics(0.0).stored_items == 0


def test_unknown_method_gets_204() -> None:
    node = DhtProtocol()
    node.receive(b"d1:ad2:id20:abcdefghij0123456789e1:q4:vote1:t2:aa1:y1:qe", PEER, 0.0)
    (reply,) = [decode_message(d) for d, _ in node.datagrams_to_send()]
    assert isinstance(reply, ErrorReply) and reply.code == 204


def test_want_n4_n6_and_separate_tables() -> None:
    node = DhtProtocol(NodeId(b"\0" * 20))
    v4 = NodeInfo(NodeId(b"4" * 20), PeerAddr("10.5.5.5", 1))
    v6 = NodeInfo(NodeId(b"6" * 20), PeerAddr("2001:db8::1", 1))
    node.table(4).heard(v4, 0.0, replied=True)
    node.table(6).heard(v6, 0.0, replied=True)
    assert len(node.table(4)) == 1 and len(node.table(6)) == 1
    (r,) = ask(node, q("find_node", target=NodeId(b"x" * 20), want=frozenset({"n4", "n6"})))
    assert isinstance(r, Response) and v4 in r.nodes and r.nodes6 == (v6,)
    (r,) = ask(node, q("find_node", target=NodeId(b"x" * 20)))
    assert isinstance(r, Response) and v4 in r.nodes and r.nodes6 == ()


def test_regression_contacts_that_never_answered_are_not_handed_out() -> None:
    # a CLI node that queried us and exited stalled every later lookup on timeouts
    node = DhtProtocol()
    ask(node, q("ping"))
    assert len(node.table()) == 1
    (r,) = ask(
        node,
        Query(b"t2", "find_node", NodeId(b"r" * 20), target=NodeId(b"q" * 20)),
        src=PeerAddr("10.0.3.1", 1),
    )
    assert isinstance(r, Response) and r.nodes == ()
    # we pinged it when it arrived; once it answers it is confirmed and handed out
    node.receive(encode_message(q("ping")), PEER, 0.0)
    pings = [(d, a) for d, a in node.datagrams_to_send()]
    assert pings == [] or all(a == PEER for _, a in pings)


def test_new_queriers_are_pinged_once() -> None:
    node = DhtProtocol()
    node.receive(encode_message(q("ping")), PEER, 0.0)
    sent = [decode_message(d) for d, _ in node.datagrams_to_send()]
    assert sorted(type(m).__name__ for m in sent) == ["Query", "Response"]
    ping = next(m for m in sent if isinstance(m, Query))
    assert isinstance(ping, Query) and ping.method == "ping"
    node.receive(encode_message(Response(ping.tid, NodeId(b"q" * 20))), PEER, 0.1)
    (r,) = ask(
        node,
        Query(b"t2", "find_node", NodeId(b"r" * 20), target=NodeId(b"q" * 20)),
        src=PeerAddr("10.0.3.1", 1),
    )
    assert isinstance(r, Response) and [n.addr for n in r.nodes] == [PEER]


def test_read_only_node_does_not_answer_and_flags_its_queries() -> None:
    node = DhtProtocol(config=DhtConfig(read_only=True))
    assert ask(node, q("ping")) == []
    node.start_lookup("find_node", NodeId.random(), 0.0, bootstrap=[PEER])
    (sent,) = [decode_message(d) for d, _ in node.datagrams_to_send()]
    assert isinstance(sent, Query) and sent.read_only


def test_read_only_queriers_stay_out_of_the_table() -> None:
    node = DhtProtocol()
    ask(node, q("ping", read_only=True))
    assert len(node.table()) == 0


def test_responses_from_the_wrong_address_are_ignored() -> None:
    node = DhtProtocol()
    node.ping(PEER, 0.0)
    ((data, _),) = node.datagrams_to_send()
    tid = decode_message(data).tid
    spoof = encode_message(Response(tid, NodeId(b"s" * 20)))
    node.receive(spoof, PeerAddr("10.9.9.9", 6881), 0.1)
    assert node.statistics(0.1).dropped_unexpected == 1 and len(node.table()) == 0
    node.receive(spoof, PEER, 0.2)
    assert len(node.table()) == 1


def test_query_timeouts_retry_then_fail() -> None:
    node = DhtProtocol(config=DhtConfig(query_timeout=1.0, query_retries=1))
    lid = node.start_lookup("find_node", NodeId.random(), 0.0, bootstrap=[PEER])
    assert len(node.datagrams_to_send()) == 1
    node.tick(node.next_deadline())
    assert len(node.datagrams_to_send()) == 1  # the retry
    node.tick(node.next_deadline())
    ev = node.next_event()
    assert isinstance(ev, LookupDone) and ev.lookup_id == lid and ev.nodes == ()
    assert node.statistics(5.0).timeouts == 1


def mini_network(n: int, seed: int = 0) -> tuple[dict[PeerAddr, DhtProtocol], list[PeerAddr]]:
    rng = random.Random(seed)
    nodes: dict[PeerAddr, DhtProtocol] = {}
    addrs = []
    for i in range(n):
        addr = PeerAddr(f"10.{i // 250}.{i % 250}.1", 6881)
        nodes[addr] = DhtProtocol(NodeId(rng.randbytes(20)))
        addrs.append(addr)
    return nodes, addrs


def pump(nodes: dict[PeerAddr, DhtProtocol], now: float) -> None:
    """Deliver every queued datagram instantly until the network is quiet."""
    moved = True
    while moved:
        moved = False
        for src, node in nodes.items():
            for data, dst in node.datagrams_to_send():
                moved = True
                if dst in nodes:
                    nodes[dst].receive(data, src, now)


def test_pure_cores_wired_together_find_announced_peers() -> None:
    nodes, addrs = mini_network(40)
    for i, a in enumerate(addrs[1:], 1):
        nodes[a].start_lookup("find_node", nodes[a].node_id, 0.0, bootstrap=[addrs[0]])
        pump(nodes, float(i))
    for node in nodes.values():
        while node.next_event() is not None:
            pass
    key = key_for("room")
    nodes[addrs[5]].start_lookup("get_peers", key, 100.0, announce_port=999)
    pump(nodes, 100.0)
    done = nodes[addrs[5]].next_event()
    assert isinstance(done, LookupDone) and done.stored >= 6
    lid = nodes[addrs[30]].start_lookup("get_peers", key, 101.0)
    pump(nodes, 101.0)
    found = nodes[addrs[30]].next_event()
    assert isinstance(found, PeersFound) and found.lookup_id == lid
    assert found.peers == (PeerAddr(addrs[5].ip, 999),)


# --------------------------------------------------------------------------- hostile input


@given(st.lists(st.binary(max_size=200), max_size=30))
@settings(max_examples=60, deadline=None)
def test_random_datagrams_never_raise(packets: list[bytes]) -> None:
    node = DhtProtocol()
    for p in packets:
        node.receive(p, PEER, 0.0)
        node.datagrams_to_send()
    s = node.statistics(0.0)
    assert s.packets_in == len(packets)


@given(st.data())
@settings(max_examples=100, deadline=None)
def test_mutated_valid_queries_never_raise(data: st.DataObject) -> None:
    node = DhtProtocol()
    ih = key_for("m")
    base = [
        q("ping"),
        q("find_node", target=ih),
        q("get_peers", info_hash=ih),
        q("announce_peer", info_hash=ih, port=5, token=b"tok"),
        q("get", target=ih),
        q("put", token=b"tok", value=b"3:abc"),
        q("sample_infohashes", target=ih),
    ]
    raw = bytearray(encode_message(data.draw(st.sampled_from(base))))
    for _ in range(data.draw(st.integers(1, 5))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    node.receive(bytes(raw), PEER, 0.0)
    for out, _ in node.datagrams_to_send():
        decode_message(out)  # whatever we answer is itself well-formed


def test_flood_from_one_ip_is_rate_limited_and_memory_stays_bounded() -> None:
    cfg = DhtConfig(rate_limit=20.0, rate_burst=50.0)
    node = DhtProtocol(config=cfg)
    replies = 0
    for i in range(20_000):
        node.receive(encode_message(q("get_peers", info_hash=NodeId.random())), PEER, i / 10_000)
        replies += len(node.datagrams_to_send())
    # two simulated seconds: at most the burst plus the refill
    assert replies <= 50 + 2 * 20 + 1
    assert node.statistics(2.0).dropped_rate_limited >= 19_900


def test_flood_from_many_ips_keeps_every_table_bounded() -> None:
    node = DhtProtocol(config=DhtConfig(max_keys=100))
    rng = random.Random(5)
    ih = key_for("flood")
    for i in range(8_000):
        src = PeerAddr(
            f"11.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}", 1 + i % 60000
        )
        sender = NodeId(rng.randbytes(20))
        node.receive(encode_message(Query(b"t", "get_peers", sender, info_hash=ih)), src, 0.0)
        (reply,) = [
            m for d, _ in node.datagrams_to_send() if isinstance(m := decode_message(d), Response)
        ]
        token = reply.token
        node.receive(
            encode_message(
                Query(
                    b"t",
                    "announce_peer",
                    sender,
                    info_hash=NodeId(rng.randbytes(20)),
                    port=1,
                    token=token,
                )
            ),
            src,
            0.0,
        )
        node.datagrams_to_send()
    s = node.statistics(0.0)
    assert s.stored_keys <= 100
    assert s.routing_table.nodes <= 160 * 8
    assert node.memory_footprint() < 12_000


def test_reply_sizes_are_bounded() -> None:
    node = DhtProtocol()
    ih = key_for("popular")
    for i in range(500):
        node._peers.add(ih, PeerAddr(f"12.0.{i // 250}.{i % 250}", 1000 + i), 0.0)
    node.receive(encode_message(q("get_peers", info_hash=ih)), PEER, 0.0)
    (data,) = [d for d, _ in node.datagrams_to_send() if not isinstance(decode_message(d), Query)]
    assert len(data) < 1500
    r = decode_message(data)
    assert isinstance(r, Response) and len(r.values) == 50


# --------------------------------------------------------------------------- layering

SANS_IO = [
    "_errors",
    "_krpc",
    "_node_id",
    "_routing_table",
    "_lookup",
    "_storage",
    "_items",
    "_keys",
    "_protocol",
    "_bloom",
    "_ip_votes",
    "_scrape",
]


@pytest.mark.parametrize("module", SANS_IO)
def test_core_imports_without_trio(module: str) -> None:
    code = f"import sys; sys.modules['trio'] = None; import torrio.dht.{module}; import torrio.dht"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_stale_buckets_are_refreshed_by_lookups() -> None:
    node = DhtProtocol(NodeId(b"\0" * 20))
    node.table().heard(NodeInfo(NodeId(b"\xff" * 20), PEER), 0.0, replied=True)
    node.datagrams_to_send()
    t = 16 * 60.0
    node.tick(t)
    sent = [decode_message(d) for d, _ in node.datagrams_to_send()]
    assert sent and all(isinstance(m, Query) and m.method == "find_node" for m in sent)
    assert node.statistics(t).lookups_active >= 1


def test_sample_infohashes_reports_stored_keys() -> None:
    node = DhtProtocol()
    keys = [key_for(str(i)) for i in range(30)]
    for k in keys:
        node._peers.add(k, PeerAddr("13.0.0.1", 1), 0.0)
    (r,) = ask(node, q("sample_infohashes", target=NodeId(b"z" * 20)))
    assert isinstance(r, Response) and r.num == 30 and len(r.samples) == 20
    assert {NodeId(s) for s in r.samples} <= set(keys) and r.interval is not None


def test_external_ip_votes() -> None:
    node = DhtProtocol()
    node.ping(PEER, 0.0)
    ((data, _),) = node.datagrams_to_send()
    node.receive(
        encode_message(
            Response(decode_message(data).tid, NodeId(b"r" * 20), ip=PeerAddr("8.8.4.4", 1))
        ),
        PEER,
        0.1,
    )
    assert str(node.external_ip) == "8.8.4.4"
