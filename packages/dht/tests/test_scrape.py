"""BEP 33 DHT scrape: the bloom filter (the BEP's vector, estimate bounds, unions), the KRPC
fields, storage answering ``scrape=1``, and lookups merging filters on pure cores and over the
fake network."""

from __future__ import annotations

import ipaddress
import math
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.bencode import decode, encode
from torrio.core import IPAddress, NodeId, NodeInfo, PeerAddr
from torrio.dht import (
    BLOOM_SIZE,
    BloomFilter,
    DhtConfig,
    DhtProtocol,
    LookupDone,
    PeerStore,
    Query,
    Response,
    ScrapeFound,
    decode_message,
    encode_message,
    key_for,
    merge_scrape,
)
from torrio.testing.dht_sim import build_dht
from torrio.testing.fakenet import open_fake_network

from .test_protocol import PEER, ask, mini_network, pump, q

BEP33_VECTOR = bytes.fromhex(
    "F6C3F5EA A07FFD91 BDE89F77 7F26FB2B FF37BDB8 FB2BBAA2 FD3DDDE7 BACFFF75 EE7CCBAE"
    "FE5EEDB1 FBFAFF67 F6ABFF5E 43DDBCA3 FD9B9FFD F4FFD3E9 DFF12D1B DF59DB53 DBE9FA5B"
    "7FF3B8FD FCDE1AFB 8BEDD7BE 2F3EE71E BBBFE93B CDEEFE14 8246C2BC 5DBFF7E7 EFDCF24F"
    "D8DC7ADF FD8FFFDF DDFFF7A4 BBEEDF5C B95CE81F C7FCFF1F F4FFFFDF E5F7FDCB B7FD79B3"
    "FA1FC77B FE07FFF9 05B7B7FF C7FEFEFF E0B8370B B0CD3F5B 7F2BD93F EB4386CF DD6F7FD5"
    "BFAF2E9E BFFFFEEC D67ADBF7 C67F17EF D5D75EBA 6FFEBA7F FF47A91E B1BFBB53 E8ABFB57"
    "62ABE8FF 237279BF EFBFEEF5 FFC5FEBF DFE5ADFF ADFEE1FB 737FFFFB FD9F6AEF FEEE76B6"
    "FD8F72EF".replace(" ", "")
)


def test_bep33_test_vector() -> None:
    bf = BloomFilter()
    for i in range(256):
        bf.add(ipaddress.IPv4Address(f"192.0.2.{i}"))
    base = int(ipaddress.IPv6Address("2001:db8::"))
    for i in range(0x3E8):
        bf.add(ipaddress.IPv6Address(base + i))
    assert bf.to_bytes() == BEP33_VECTOR
    assert bf.estimate() == pytest.approx(1224.9308, abs=1e-3)


def test_empty_and_wrong_size() -> None:
    bf = BloomFilter()
    assert bf.empty and bf.estimate() == pytest.approx(0.0, abs=1e-3)
    assert len(bf.to_bytes()) == BLOOM_SIZE and bytes(bf) == bytes(BLOOM_SIZE)
    with pytest.raises(ValueError):
        BloomFilter(b"\0" * 255)
    bf.add("10.1.2.3")
    assert "10.1.2.3" in bf and 42 not in bf
    assert round(bf.estimate()) == 1


ips = st.one_of(
    st.integers(0, (1 << 32) - 1).map(ipaddress.IPv4Address),
    st.integers(0, (1 << 128) - 1).map(ipaddress.IPv6Address),
)


@given(st.sets(ips, max_size=600))
@settings(max_examples=40, deadline=None)
def test_inserted_addresses_are_members_and_estimate_is_close(addrs: set[IPAddress]) -> None:
    bf = BloomFilter()
    for a in addrs:
        bf.add(a)
    assert all(a in bf for a in addrs)
    n = len(addrs)
    est = bf.estimate()
    # the estimate never exceeds what the set bits allow and stays within a few standard
    # deviations of the truth at these sizes (collisions only ever lower the bit count)
    assert est >= 0
    assert abs(est - n) <= 3 + 0.1 * n
    assert bf.zero_bits() >= BLOOM_SIZE * 8 - 2 * n


@given(st.sets(ips, max_size=200), st.sets(ips, max_size=200))
@settings(max_examples=40, deadline=None)
def test_union_is_the_filter_of_the_union(a: set[IPAddress], b: set[IPAddress]) -> None:
    fa, fb, fab = BloomFilter(), BloomFilter(), BloomFilter()
    for x in a:
        fa.add(x)
    for x in b:
        fb.add(x)
    for x in a | b:
        fab.add(x)
    assert fa | fb == fab == fb | fa
    assert (fa | fb).estimate() >= max(fa.estimate(), fb.estimate()) - 1e-9
    merged = BloomFilter(fa.to_bytes())
    merged |= fb
    assert merged == fab and fa == BloomFilter(fa.to_bytes())  # |= left fa alone
    # the same address announced to two nodes is counted once
    assert (fa | fa).estimate() == pytest.approx(fa.estimate())


def test_regression_full_filter_estimate_does_not_raise() -> None:
    full = BloomFilter(b"\xff" * BLOOM_SIZE)
    assert math.isfinite(full.estimate()) and full.estimate() > 7000


# --------------------------------------------------------------------------- codec


def _dict(x: object) -> dict[bytes, Any]:
    assert isinstance(x, dict)
    return x


def test_krpc_scrape_fields_round_trip_and_bad_filters_are_ignored() -> None:
    ih = NodeId(b"i" * 20)
    gq = Query(b"t1", "get_peers", NodeId(b"q" * 20), info_hash=ih, scrape=True, noseed=True)
    raw = encode_message(gq)
    a = _dict(decode(raw))[b"a"]
    assert a[b"scrape"] == 1 and a[b"noseed"] == 1
    assert decode_message(raw) == gq
    aq = Query(
        b"t2", "announce_peer", NodeId(b"q" * 20), info_hash=ih, port=1, token=b"x", seed=True
    )
    assert (
        _dict(decode(encode_message(aq)))[b"a"][b"seed"] == 1
        and decode_message(encode_message(aq)) == aq
    )
    r = Response(b"t1", NodeId(b"r" * 20), bf_seeds=b"\1" * 256, bf_peers=b"\2" * 256)
    raw = encode_message(r)
    assert _dict(decode(raw))[b"r"][b"BFsd"] == b"\1" * 256 and decode_message(raw) == r
    bad = encode({b"t": b"t1", b"y": b"r", b"r": {b"id": b"r" * 20, b"BFsd": b"short", b"BFpe": 7}})
    got = decode_message(bad)
    assert isinstance(got, Response) and got.bf_seeds is None and got.bf_peers is None


# --------------------------------------------------------------------------- storage


def test_peer_store_filters_count_ips_and_seeds() -> None:
    ps = PeerStore(ttl=10.0)
    k = key_for("swarm")
    assert ps.bloom(k, 0.0) is None
    ps.add(k, PeerAddr("1.0.0.1", 1), 0.0, seed=True)
    ps.add(k, PeerAddr("1.0.0.1", 2), 0.0, seed=True)  # one IP, two ports: one seed
    ps.add(k, PeerAddr("1.0.0.2", 1), 0.0)
    ps.add(k, PeerAddr("1.0.0.3", 1), 0.0)
    ps.add(k, PeerAddr("1.0.0.3", 9), 0.0, seed=True)  # a seed IP is not a peer too
    ps.add(k, PeerAddr("1.0.0.4", 1), 5.0)
    got = ps.bloom(k, 1.0)
    assert got is not None
    seeds, peers = got
    assert (round(seeds.estimate()), round(peers.estimate())) == (2, 2)
    assert "1.0.0.3" in seeds and "1.0.0.2" in peers
    got = ps.bloom(k, 12.0)  # all but the last announce expired
    assert got is not None and round(got[1].estimate()) == 1 and got[0].empty
    assert ps.bloom(k, 20.0) is None


def test_noseed_prefers_non_seeds() -> None:
    ps = PeerStore()
    k = key_for("noseed")
    for i in range(10):
        ps.add(k, PeerAddr(f"2.0.0.{i + 1}", 1), 0.0, seed=i < 7)
    got = ps.get(k, 0.0, limit=5, noseed=True)
    leechers = {PeerAddr(f"2.0.0.{i + 1}", 1) for i in range(7, 10)}
    assert len(got) == 5 and leechers <= set(got)
    assert set(ps.get(k, 0.0, limit=2, noseed=True)) <= leechers


# --------------------------------------------------------------------------- protocol


def test_get_peers_with_scrape_answers_filters_and_announce_keeps_seed() -> None:
    node = DhtProtocol(NodeId(b"n" * 20))
    ih = key_for("scraped")
    (r,) = ask(node, q("get_peers", info_hash=ih, scrape=True))
    assert isinstance(r, Response) and r.bf_seeds is None and r.token is not None
    (ok,) = ask(node, q("announce_peer", info_hash=ih, port=7, token=r.token, seed=True))
    assert isinstance(ok, Response)
    other = PeerAddr("10.0.9.9", 6881)
    (r2,) = ask(node, q("get_peers", info_hash=ih), src=other)
    assert isinstance(r2, Response) and r2.token is not None
    ask(node, q("announce_peer", info_hash=ih, port=8, token=r2.token), src=other)
    (r3,) = ask(node, q("get_peers", info_hash=ih, scrape=True, want=frozenset({"n4", "n6"})))
    assert isinstance(r3, Response) and r3.bf_seeds is not None and r3.bf_peers is not None
    assert PEER.ip in BloomFilter(r3.bf_seeds) and other.ip in BloomFilter(r3.bf_peers)
    assert PEER.ip not in BloomFilter(r3.bf_peers)
    assert r3.nodes6 == ()  # BEP 33: the filters are big, only the requester's family of nodes
    (r4,) = ask(node, q("get_peers", info_hash=ih))  # no scrape, no filters
    assert isinstance(r4, Response) and r4.bf_seeds is None and len(r4.values) == 2


def test_scrape_reply_stays_one_small_datagram() -> None:
    node = DhtProtocol(NodeId(b"n" * 20))
    ih = key_for("big swarm")
    for i in range(200):
        node._peers.add(
            ih, PeerAddr(f"12.0.{i // 250}.{i % 250 + 1}", 1000 + i), 0.0, seed=i % 2 == 0
        )
    for i in range(40):
        node.table().heard(NodeInfo(NodeId.random(), PeerAddr(f"13.{i}.0.1", 1)), 0.0, replied=True)
    node.receive(encode_message(q("get_peers", info_hash=ih, scrape=True)), PEER, 0.0)
    (data,) = [d for d, _ in node.datagrams_to_send() if isinstance(decode_message(d), Response)]
    r = decode_message(data)
    assert isinstance(r, Response) and len(r.values) == 30 and len(data) < 1500
    assert round(BloomFilter(r.bf_seeds).estimate()) in range(95, 106)


def test_pure_cores_scrape_merges_filters_and_legacy_values() -> None:
    nodes, addrs = mini_network(40, seed=5)
    for i, a in enumerate(addrs[1:], 1):
        nodes[a].start_lookup("find_node", nodes[a].node_id, 0.0, bootstrap=[addrs[0]])
        pump(nodes, float(i))
    for node in nodes.values():
        while node.next_event() is not None:
            pass
    key = key_for("counted")
    for i, a in enumerate(addrs[2:8]):
        nodes[a].start_lookup("get_peers", key, 100.0 + i, announce_port=999, seed=i < 2)
        pump(nodes, 100.0 + i)
        while nodes[a].next_event() is not None:
            pass
    lid = nodes[addrs[30]].start_lookup("get_peers", key, 110.0, scrape=True)
    pump(nodes, 110.0)
    events = []
    while (ev := nodes[addrs[30]].next_event()) is not None:
        events.append(ev)
    found = [e for e in events if isinstance(e, ScrapeFound)]
    assert found and all(e.lookup_id == lid for e in found)
    assert isinstance(events[-1], LookupDone)
    result = merge_scrape(found)
    assert (result.seeds, result.peers) == (2, 4)
    assert len(result.nodes) >= 6
    # a node answering only with values (no BEP 33) counts them as peers, minus known seeds
    seed_ip = addrs[2].ip
    legacy = ScrapeFound(0, None, None, None, (PeerAddr(seed_ip, 1), PeerAddr("99.0.0.1", 1)))
    merged = merge_scrape([*found, legacy])
    assert (merged.seeds, merged.peers) == (2, 5) and merged.local


async def test_node_scrape_on_the_fake_network(autojump_clock: trio.testing.MockClock) -> None:
    cfg = DhtConfig(rate_limit=1000.0, rate_burst=1000.0)
    async with open_fake_network(delay=(0.01, 0.05), seed=6) as net, trio.open_nursery() as nursery:
        sim = await build_dht(net, nursery, 50, config=cfg, seed=6)
        key = key_for("how many seeds?")
        for i, n in enumerate(sim.nodes[:9]):
            assert await n.announce(key, port=5000 + i, seed=i < 3) >= 1
        assert await sim.nodes[-1].scrape(key) == (3, 6)
        detail = await sim.nodes[-2].scrape_filters(key)
        assert detail.seeds_estimate == pytest.approx(3, abs=0.1)
        assert len(detail.nodes) >= 6
        assert await sim.nodes[-1].scrape(key_for("nobody")) == (0, 0)
        nursery.cancel_scope.cancel()
