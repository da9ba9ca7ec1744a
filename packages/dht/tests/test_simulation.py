"""A simulated DHT of our own nodes on the fake network (small and fast; the 1,000-node run is
benchmarks/bench_dht_sim.py)."""

from __future__ import annotations

import trio

from torrio.dht import DhtConfig, key_for
from torrio.testing.dht_sim import build_dht, measure_lookups
from torrio.testing.fakenet import open_fake_network

FAST = DhtConfig(rate_limit=1000.0, rate_burst=1000.0)


async def test_lookups_find_the_true_closest_nodes(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_network(delay=(0.01, 0.1), seed=1) as net, trio.open_nursery() as nursery:
        sim = await build_dht(net, nursery, 120, config=FAST, seed=1)
        report = await measure_lookups(sim, 40)
        print(report)
        assert report.recall >= 0.97
        nursery.cancel_scope.cancel()


async def test_lookups_survive_twenty_percent_loss(autojump_clock: trio.testing.MockClock) -> None:
    cfg = DhtConfig(rate_limit=1000.0, rate_burst=1000.0, query_retries=3)
    async with (
        open_fake_network(loss=0.2, delay=(0.01, 0.1), seed=2) as net,
        trio.open_nursery() as nursery,
    ):
        sim = await build_dht(net, nursery, 80, config=cfg, seed=2)
        report = await measure_lookups(sim, 30)
        print(report)
        assert report.recall >= 0.90
        nursery.cancel_scope.cancel()


async def test_announce_then_get_peers_from_a_far_node(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with (
        open_fake_network(delay=(0.01, 0.05), duplicate=0.05, seed=3) as net,
        trio.open_nursery() as nursery,
    ):
        sim = await build_dht(net, nursery, 80, config=FAST, seed=3)
        key = key_for("a chat room")
        # announcer and seeker: the two nodes whose ids are farthest from the key and each other
        by_distance = sorted(sim.nodes, key=lambda n: int(n.node_id) ^ int(key))
        announcer, seeker = by_distance[-1], by_distance[-2]
        assert await announcer.announce(key, port=4242) >= 6
        found = [p async for p in seeker.get_peers(key)]
        assert [(str(p.ip), p.port) for p in found] == [(announcer.local_addr[0], 4242)]
        # implied port: the address the DHT saw
        other = key_for("another room")
        assert await by_distance[-3].announce(other) >= 6
        found = [p async for p in seeker.get_peers(other)]
        assert [(str(p.ip), p.port) for p in found] == [by_distance[-3].local_addr]
        nursery.cancel_scope.cancel()


async def test_items_across_the_network(autojump_clock: trio.testing.MockClock) -> None:
    from torrio.dht import SigningKey

    async with open_fake_network(delay=(0.01, 0.05), seed=4) as net, trio.open_nursery() as nursery:
        sim = await build_dht(net, nursery, 60, config=FAST, seed=4)
        a, b = sim.nodes[3], sim.nodes[-3]
        put = await a.put_immutable({"hello": b"world"})
        assert put.stored >= 6
        item = await b.get_immutable(put.target)
        assert item is not None and item.value == {b"hello": b"world"}
        key = SigningKey.generate()
        r1 = await a.put_mutable(key, b"first", salt=b"room")
        r2 = await a.put_mutable(key, b"second", salt=b"room")
        assert (r1.item.seq, r2.item.seq) == (0, 1) and r2.stored >= 6
        got = await b.get_mutable(key.public_key, b"room")
        assert got is not None and got.value == b"second" and got.seq == 1
        assert await b.get_immutable(key_for("nothing here")) is None
        nursery.cancel_scope.cancel()
