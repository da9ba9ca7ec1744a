"""DHT peers and announces per torrent, on a simulated DHT (fakenet, MockClock) and on loopback."""

from __future__ import annotations

import functools
import math

import trio
import trio.testing

from torrio.client._dht_source import (
    ANNOUNCE_INTERVAL,
    FAST_INTERVAL,
    RETRY_INTERVAL,
    DhtPeerSource,
    DhtRound,
    next_round_in,
)
from torrio.client._udp_mux import open_udp_mux, open_udp_stack
from torrio.core import InfoHash, PeerAddr
from torrio.dht import DhtConfig, DhtProtocol, Node, open_node
from torrio.testing.dht_sim import build_dht
from torrio.testing.fakenet import open_fake_network

HYBRID = InfoHash(v1=b"\x01" * 20, v2=b"\x02" * 32)
V1 = InfoHash(v1=b"\x03" * 20)


async def _lone_node(nursery: trio.Nursery) -> Node:
    """A node on a fake network with nobody else: every lookup ends empty at once."""
    net = await nursery.start(_net_task)
    ep = net.endpoint()
    node = Node(DhtProtocol(None, config=DhtConfig(), now=trio.current_time()), ep, ep.addr)
    ep.set_handler(node)
    await nursery.start(node.run)
    return node


async def _net_task(*, task_status: trio.TaskStatus[object]) -> None:
    async with open_fake_network(seed=3) as net:
        task_status.started(net)
        await trio.sleep_forever()


async def test_announce_then_get_peers_finds_us_for_every_wire_id(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_network(seed=1) as net, trio.open_nursery() as nursery:
        sim = await build_dht(net, nursery, 16, seed=1)
        seeder, leecher = sim.nodes[0], sim.nodes[-1]
        seed_src = DhtPeerSource(
            seeder, HYBRID, lambda p: None, port=7000, wants_peers=lambda: False
        )
        assert await seed_src.run_round()
        s = seed_src.statistics()
        assert (s.lookups, s.announces) == (0, 2)  # a seed only announces, v1 and truncated v2
        assert s.announce_stored > 0

        found: list[PeerAddr] = []
        leech_src = DhtPeerSource(leecher, HYBRID, found.append, port=7001, announce=False)
        assert await leech_src.run_round()
        want = PeerAddr(seeder.local_addr[0], 7000)
        # the same peer under both ids is handed on once per round
        assert found == [want]
        s = leech_src.statistics()
        assert (s.lookups, s.announces, s.peers_found) == (2, 0, 1)

        # a v2-only torrent is announced under its truncated id: a v1-hybrid lookup of it finds it
        only_v2 = InfoHash(v2=HYBRID.v2)
        got: list[PeerAddr] = []
        await DhtPeerSource(leecher, only_v2, got.append, port=1, announce=False).run_round()
        assert got == [want]
        nursery.cancel_scope.cancel()


async def test_implied_port_announces_the_dht_port(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_network(seed=2) as net, trio.open_nursery() as nursery:
        sim = await build_dht(net, nursery, 12, seed=2)
        a, b = sim.nodes[1], sim.nodes[-2]
        await DhtPeerSource(
            a, V1, lambda p: None, port=7000, implied_port=True, wants_peers=lambda: False
        ).run_round()
        found: list[PeerAddr] = []
        await DhtPeerSource(b, V1, found.append, port=1, announce=False).run_round()
        assert found == [PeerAddr.from_tuple(a.local_addr)]
        nursery.cancel_scope.cancel()


async def test_a_seed_is_announced_as_a_seed_for_dht_scrapes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_network(seed=4) as net, trio.open_nursery() as nursery:
        sim = await build_dht(net, nursery, 16, seed=4)
        for i, node in enumerate(sim.nodes[1:4]):  # one seed, two downloaders
            await DhtPeerSource(
                node, V1, lambda p: None, port=7000 + i, wants_peers=lambda: False,
                is_seed=functools.partial(bool, i == 0),
            ).run_round()  # fmt: skip
        seeds, peers = await sim.nodes[-1].scrape(V1.wire)
        assert (seeds, peers) == (1, 2)
        nursery.cancel_scope.cancel()


async def test_intervals_follow_peer_need_and_reachability(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_network(seed=4) as net, trio.open_nursery() as nursery:
        sim = await build_dht(net, nursery, 10, seed=4)
        need = True
        src = DhtPeerSource(sim.nodes[0], V1, lambda p: None, port=7000, wants_peers=lambda: need)
        start = trio.current_time()
        nursery.start_soon(src.run)
        await trio.sleep(1)
        s = src.statistics()
        assert s.rounds == 1 and s.next_round is not None
        assert math.isclose(s.next_round - start, FAST_INTERVAL, abs_tol=30)
        assert 0 < next_round_in(src) <= FAST_INTERVAL
        need = False
        await trio.sleep(FAST_INTERVAL)
        s = src.statistics()
        assert s.rounds == 2
        assert s.lookups == 1  # no get_peers once peers are no longer wanted
        assert s.next_round is not None
        assert math.isclose(s.next_round - trio.current_time(), ANNOUNCE_INTERVAL, abs_tol=30)
        # wake() starts a round now
        src.wake()
        await trio.sleep(1)
        assert src.statistics().rounds == 3
        nursery.cancel_scope.cancel()


async def test_unreachable_dht_retries_sooner(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        node = await _lone_node(nursery)
        src = DhtPeerSource(node, V1, lambda p: None, port=7000, wants_peers=lambda: False)
        nursery.start_soon(src.run)
        await trio.sleep(1)
        assert src.statistics().rounds == 1
        await trio.sleep(RETRY_INTERVAL)
        assert src.statistics().rounds == 2
        nursery.cancel_scope.cancel()


async def test_private_torrents_never_touch_the_dht(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        node = await _lone_node(nursery)
        before = node.statistics().packets_out
        src = DhtPeerSource(node, V1, lambda p: None, port=7000, private=True)
        with trio.fail_after(1):
            await src.run()  # returns at once
        assert not await src.run_round()
        s = src.statistics()
        assert (s.enabled, s.rounds, s.lookups, s.announces) == (False, 0, 0, 0)
        assert node.statistics().packets_out == before
        nursery.cancel_scope.cancel()


async def test_bounded_channel_and_per_round_cap(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_network(seed=5) as net, trio.open_nursery() as nursery:
        sim = await build_dht(net, nursery, 14, seed=5)
        for i, node in enumerate(sim.nodes[:6]):
            await DhtPeerSource(
                node, V1, lambda p: None, port=8000 + i, wants_peers=lambda: False
            ).run_round()
        send, recv = trio.open_memory_channel[PeerAddr](2)
        src = DhtPeerSource(sim.nodes[-1], V1, send, port=1, announce=False)
        await src.run_round()
        s = src.statistics()
        assert (s.peers_found, s.peers_dropped) == (2, 4)
        assert len([recv.receive_nowait(), recv.receive_nowait()]) == 2
        capped: list[PeerAddr] = []
        src2 = DhtPeerSource(
            sim.nodes[-1], V1, capped.append, port=1, announce=False, max_peers_per_round=3
        )
        await src2.run_round()
        assert len(capped) == 3 and src2.statistics().peers_dropped == 3
        nursery.cancel_scope.cancel()


async def test_every_round_is_reported(autojump_clock: trio.testing.MockClock) -> None:
    """on_round gets the peers handed on, whether a node took part, and the last error."""
    async with open_fake_network(seed=7) as net, trio.open_nursery() as nursery:
        sim = await build_dht(net, nursery, 12, seed=7)
        await DhtPeerSource(sim.nodes[0], V1, lambda p: None, port=7000).run_round()
        rounds: list[DhtRound] = []
        src = DhtPeerSource(sim.nodes[-1], V1, lambda p: None, port=7001, on_round=rounds.append)
        assert await src.run_round()
        assert rounds == [DhtRound(peers=1, reached=True, error=None)]
        lone = await _lone_node(nursery)
        src = DhtPeerSource(lone, V1, lambda p: None, port=7002, on_round=rounds.append)
        assert not await src.run_round()
        assert rounds[-1] == DhtRound(peers=0, reached=False, error=None)
        nursery.cancel_scope.cancel()


async def test_a_timed_out_lookup_is_the_rounds_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_network(seed=8, delay=5.0) as net, trio.open_nursery() as nursery:
        sim = await build_dht(net, nursery, 8, seed=8)
        rounds: list[DhtRound] = []
        src = DhtPeerSource(
            sim.nodes[0], V1, lambda p: None, port=7000, lookup_timeout=1.0, on_round=rounds.append
        )
        await src.run_round()
        assert len(rounds) == 1 and rounds[0].error == "announce timed out"
        assert src.statistics().errors == 2  # get_peers and announce both timed out
        nursery.cancel_scope.cancel()


async def test_cancellation_leaves_no_lookup_behind(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_network(seed=6, delay=5.0) as net, trio.open_nursery() as nursery:
        sim = await build_dht(net, nursery, 8, seed=6)
        node = sim.nodes[0]
        src = DhtPeerSource(node, HYBRID, lambda p: None, port=7000)
        with trio.move_on_after(1):  # mid-lookup: the fake network delays every datagram 5 s
            await src.run()
        assert node.statistics().lookups_active == 0
        nursery.cancel_scope.cancel()


async def test_two_sessions_find_each_other_through_their_muxes() -> None:
    """Real UDP on loopback: each session's DHT node shares its mux; the bootstrap is a third."""
    async with (
        open_node(host="127.0.0.1") as router,
        open_udp_mux("127.0.0.1", 0) as mux_a,
        open_udp_mux("127.0.0.1", 0) as mux_b,
        open_node(
            endpoint=mux_a,
            local_addr=mux_a.local_address(),
            bootstrap=[("127.0.0.1", router.port)],
            wait_joined=False,
        ) as node_a,
        open_node(
            endpoint=mux_b,
            local_addr=mux_b.local_address(),
            bootstrap=[("127.0.0.1", router.port)],
            wait_joined=False,
        ) as node_b,
    ):
        mux_a.register("dht", node_a, family=4)
        mux_b.register("dht", node_b, family=4)
        with trio.fail_after(20):
            await node_a.bootstrap([PeerAddr("127.0.0.1", router.port)])
            await node_b.bootstrap([PeerAddr("127.0.0.1", router.port)])
            a = DhtPeerSource(
                node_a,
                V1,
                lambda p: None,
                port=mux_a.port,
                implied_port=True,
                wants_peers=lambda: False,
            )
            assert await a.run_round()
            found: list[PeerAddr] = []
            b = DhtPeerSource(node_b, V1, found.append, port=mux_b.port)
            assert await b.run_round()
        assert PeerAddr("127.0.0.1", mux_a.port) in found
        assert mux_a.statistics().dht > 0 and mux_b.statistics().dht > 0


async def test_one_source_over_ipv4_and_ipv6_nodes() -> None:
    async with open_udp_stack("127.0.0.1", 0, host6="::1", utp=False) as a:
        port = a.mux.port
        boot = [f"127.0.0.1:{port}", f"[::1]:{port}"]
        async with open_udp_stack("127.0.0.1", 0, host6="::1", utp=False, dht_bootstrap=boot) as b:
            assert b.dht is not None and b.dht6 is not None
            with trio.fail_after(20):
                await b.dht.bootstrap([PeerAddr("127.0.0.1", port)])
                await b.dht6.bootstrap([PeerAddr("::1", port)])
                src_a = DhtPeerSource(
                    [a.dht, a.dht6], V1, lambda p: None, port=port, wants_peers=lambda: False
                )
                assert await src_a.run_round()
                assert src_a.statistics().announces == 2
                found: list[PeerAddr] = []
                src_b = DhtPeerSource(
                    [b.dht, None, b.dht6], V1, found.append, port=1, announce=False
                )
                assert await src_b.run_round()
            assert set(found) == {PeerAddr("127.0.0.1", port), PeerAddr("::1", port)}
    assert not DhtPeerSource([], V1, found.append, port=1).enabled
