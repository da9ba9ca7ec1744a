"""BEP 42 after an address change: external-IP votes from responses' ``ip`` key, and a new valid
node id with the routing tables re-keyed around it (libtorrent's ``update_node_id``)."""

from __future__ import annotations

import hashlib
import ipaddress
import random

import trio

from torrio.core import NodeId, NodeInfo, PeerAddr
from torrio.dht import (
    DhtConfig,
    DhtProtocol,
    ExternalIpVoter,
    Node,
    Query,
    Response,
    RoutingTable,
    decode_message,
    encode_message,
    is_valid_node_id,
    node_id_for_ip,
)
from torrio.testing.fakenet import open_fake_network

IP = ipaddress.ip_address


def test_voter_needs_a_majority_of_distinct_voters() -> None:
    v = ExternalIpVoter(window=10, min_votes=3)
    for _ in range(20):  # one voter repeating itself is one vote
        v.vote(IP("10.0.0.1"), IP("198.51.100.1"))
    assert len(v) == 1 and v.winner() is None
    v.vote(IP("10.0.0.2"), IP("198.51.100.1"))
    v.vote(IP("10.0.0.3"), IP("203.0.113.5"))
    v.vote(IP("10.0.0.4"), IP("203.0.113.5"))
    assert v.winner() is None  # 2 against 2
    v.vote(IP("10.0.0.5"), IP("203.0.113.5"))
    assert v.winner() == IP("203.0.113.5") and v.leader() == (IP("203.0.113.5"), 3)
    # voters change their minds: the latest vote of each counts
    for i in (3, 4, 5):
        v.vote(IP(f"10.0.0.{i}"), IP("198.51.100.1"))
    assert v.winner() == IP("198.51.100.1")
    # the window is bounded: old voters fall out
    for i in range(100):
        v.vote(IP(f"10.1.{i}.1"), IP("192.0.2.9"))
    assert len(v) == 10 and v.winner() == IP("192.0.2.9")


def test_routing_table_rekeys_and_keeps_contact_history() -> None:
    rng = random.Random(4)
    old = NodeId(rng.randbytes(20))
    table = RoutingTable(old, restrict_ips=True)
    for i in range(300):
        node = NodeInfo(NodeId(rng.randbytes(20)), PeerAddr(f"11.{i // 200}.{i % 200}.1", 6881))
        table.heard(node, float(i), replied=i % 3 != 0)
    before = {c.node.addr: (c.node.id, c.last_reply) for c in table.contacts()}
    new = node_id_for_ip("203.0.113.5")
    table.change_own_id(new, 400.0)
    assert table.own_id == new
    after = {c.node.addr: (c.node.id, c.last_reply) for c in table.contacts()}
    # every contact kept is one we had, with its history; one is dropped only where its new
    # bucket is full (the contacts near the old id all crowd into one bucket of the new id)
    assert all(before[a] == v for a, v in after.items())
    assert len(after) >= 16
    for addr, (nid, last_reply) in before.items():
        if addr not in after:
            assert len(table._buckets[table._index(int(nid))].contacts) == table.k
            if last_reply is not None:  # those that answered us wait as replacements
                reps = table._buckets[table._index(int(nid))].replacements
                assert addr in {r.node.addr for r in reps} or len(reps) == table.k
    # and each sits in the bucket its distance to the *new* id puts it in
    own = int(new)
    for i, bucket in enumerate(table._buckets):
        for c in bucket.contacts:
            cpl = 160 - (c.id_int ^ own).bit_length()
            assert min(cpl, len(table._buckets) - 1) == i
    target = NodeId(rng.randbytes(20))
    assert (
        table.closest(target)
        == sorted((c.node for c in table.contacts()), key=lambda n: int(n.id) ^ int(target))[:8]
    )


def _answer_pings(node: DhtProtocol, voters: list[PeerAddr], seen_as: str, now: float) -> None:
    for addr in voters:
        node.ping(addr, now)
    for data, dst in node.datagrams_to_send():
        msg = decode_message(data)
        assert isinstance(msg, Query)
        sender = NodeId(hashlib.sha1(dst.ip.packed).digest())
        reply = Response(msg.tid, sender, ip=PeerAddr(seen_as, 6881))
        node.receive(encode_message(reply), dst, now)


def test_majority_vote_for_a_new_address_changes_the_id() -> None:
    first = node_id_for_ip("198.51.100.7")
    node = DhtProtocol(first, config=DhtConfig(ip_votes_needed=5))
    voters = [PeerAddr(f"12.0.{i}.1", 6881) for i in range(12)]
    _answer_pings(node, voters[:6], "198.51.100.7", 1.0)
    assert node.node_id == first and node.statistics(1.0).node_id_changes == 0
    table_before = len(node.table())
    assert table_before == 6
    # the NAT gave us a new address: four votes are not a majority of ten yet...
    _answer_pings(node, voters[6:10], "203.0.113.9", 2.0)
    assert node.node_id == first
    # ...seven of twelve are
    _answer_pings(node, voters[10:12] + voters[:1], "203.0.113.9", 3.0)
    assert node.node_id != first and is_valid_node_id(node.node_id, "203.0.113.9")
    s = node.statistics(3.0)
    assert s.node_id_changes == 1 and str(s.external_ip) == "203.0.113.9"
    rt = node.statistics(3.0).routing_table
    assert node.table().own_id == node.node_id and rt.nodes + rt.replacements == table_before + 6
    # a lookup of the new id refills the buckets near it
    sent = [decode_message(d) for d, _ in node.datagrams_to_send()]
    assert any(isinstance(m, Query) and m.target == node.node_id for m in sent)
    # more votes for the same address change nothing
    new = node.node_id
    _answer_pings(node, voters[1:5], "203.0.113.9", 4.0)
    assert node.node_id == new and node.statistics(4.0).node_id_changes == 1


def test_flip_flopping_voters_change_the_id_at_most_once_per_interval() -> None:
    node = DhtProtocol(NodeId(b"\x01" * 20), config=DhtConfig(min_id_change_interval=300.0))
    voters = [PeerAddr(f"12.0.{i}.1", 6881) for i in range(8)]
    _answer_pings(node, voters, "203.0.113.9", 1.0)
    assert is_valid_node_id(node.node_id, "203.0.113.9")
    _answer_pings(node, voters, "198.51.100.7", 100.0)  # everyone now says otherwise
    assert is_valid_node_id(node.node_id, "203.0.113.9")  # too soon: no second re-keying
    assert node.statistics(100.0).node_id_changes == 1
    _answer_pings(node, voters[:1], "198.51.100.7", 301.0)  # the next vote after the pause
    assert is_valid_node_id(node.node_id, "198.51.100.7")
    assert node.statistics(301.0).node_id_changes == 2


def test_local_addresses_and_disabled_updates_keep_the_id() -> None:
    for seen_as, cfg in (
        ("192.168.1.20", DhtConfig()),  # BEP 42 exempts local networks
        ("203.0.113.9", DhtConfig(update_node_id=False)),
    ):
        node = DhtProtocol(NodeId(b"\x01" * 20), config=cfg)
        _answer_pings(node, [PeerAddr(f"12.0.{i}.1", 6881) for i in range(8)], seen_as, 1.0)
        assert node.node_id == NodeId(b"\x01" * 20)
        assert str(node.external_ip) == seen_as


async def test_node_moves_to_a_new_address_on_the_fake_network(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cfg = DhtConfig(rate_limit=1000.0, rate_burst=1000.0)
    rng = random.Random(8)
    async with open_fake_network(delay=(0.01, 0.05), seed=8) as net, trio.open_nursery() as nursery:
        others: list[Node] = []
        for _ in range(40):
            ep = net.endpoint()
            n = Node(DhtProtocol(NodeId(rng.randbytes(20)), config=cfg), ep, ep.addr)
            ep.set_handler(n)
            await nursery.start(n.run)
            if others:
                await n.bootstrap([PeerAddr.from_tuple(rng.choice(others).local_addr)])
            others.append(n)
        ep1 = net.endpoint(("198.51.100.7", 6881))
        me = Node(DhtProtocol(node_id_for_ip("198.51.100.7"), config=cfg), ep1, ep1.addr)
        ep1.set_handler(me)
        await nursery.start(me.run)
        await me.bootstrap([PeerAddr.from_tuple(others[0].local_addr)])
        for _ in range(3):
            await me.find_node(NodeId(rng.randbytes(20)))
        first = me.node_id
        assert me.statistics().node_id_changes == 0 and len(me.protocol.table()) >= 20
        # the NAT moves us: same node, new public address
        ep2 = net.endpoint(("203.0.113.9", 40000))
        ep2.set_handler(me)
        me.endpoint = ep2
        me.local_addr = ep2.addr
        me.protocol.local_addr = PeerAddr.from_tuple(ep2.addr)
        ep1.close()
        size = len(me.protocol.table())
        for _ in range(4):
            await me.find_node(NodeId(rng.randbytes(20)))
        assert me.node_id != first and is_valid_node_id(me.node_id, "203.0.113.9")
        assert me.statistics().node_id_changes == 1
        assert len(me.protocol.table()) >= size * 0.6
        # and the re-keyed node still finds the true closest nodes
        target = NodeId(rng.randbytes(20))
        truth = sorted((n.node_id for n in others), key=lambda i: int(i) ^ int(target))[:8]
        found = {n.id for n in await me.find_node(target)}
        assert len(found & set(truth)) >= 7
        nursery.cancel_scope.cancel()
