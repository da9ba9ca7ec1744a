"""BEP 33 DHT scrape with libtorrent on loopback.

Two libtorrent sessions (on 127.0.0.1 and 127.0.0.2, so the bloom filters, which count IP
addresses, can tell them apart) join a DHT of our nodes. One announces as a seed, the other as a
downloader; our ``scrape`` gets libtorrent's nodes' ``BFsd``/``BFpe`` filters and counts one of
each; libtorrent's ``seed`` flag reaches our store; our seed announce reaches libtorrent's store.

libtorrent's Python binding cannot send a ``get_peers`` with ``scrape=1`` (no
``dht_direct_request``, and its own lookups never ask for filters), so the direction
"libtorrent scrapes our node" is covered only by our codec and protocol tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio

from torrio import dht
from torrio.core import PeerAddr
from torrio.testing import libtorrent as ltharness

pytestmark = pytest.mark.skipif(not ltharness.available(), reason="libtorrent not installed")

N_OURS = 4
SEED_FLAG = 1  # libtorrent's dht::announce_flags::seed


def _lt_settings(host: str, boot: str) -> dict[str, Any]:
    return {
        "enable_dht": True,
        "listen_interfaces": f"{host}:0",
        "dht_bootstrap_nodes": boot,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False,
        "alert_queue_size": 200000,
        "dht_block_ratelimit": 100000,
    }


@asynccontextmanager
async def swarm() -> AsyncIterator[tuple[list[dht.Node], list[ltharness.LtSession]]]:
    """Our nodes on 127.0.0.1 and two libtorrent sessions (127.0.0.1 and 127.0.0.2)."""
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(dht.open_node(host="127.0.0.1"))
        nodes = [first]
        for _ in range(N_OURS - 1):
            nodes.append(
                await stack.enter_async_context(
                    dht.open_node(host="127.0.0.1", bootstrap=[("127.0.0.1", first.port)])
                )
            )
        boot = ",".join(f"127.0.0.1:{n.port}" for n in nodes)
        sessions = [
            await stack.enter_async_context(ltharness.open_session(_lt_settings(host, boot)))
            for host in ("127.0.0.1", "127.0.0.2")
        ]
        addrs = [
            PeerAddr(h, s.port) for h, s in zip(("127.0.0.1", "127.0.0.2"), sessions, strict=True)
        ]

        def joined() -> bool:
            return all(
                sum(1 for n in nodes if n.protocol.table().get(a) is not None) >= 2 for a in addrs
            )

        with trio.fail_after(30):
            while not joined():
                for s in sessions:
                    s.pop_alerts()
                await trio.sleep(0.05)
        for n in nodes:
            for a in addrs:
                n.add_node(a)
        # and each libtorrent node knows the other one (a small DHT: everyone stores everything)
        for s, other in zip(sessions, reversed(addrs), strict=True):
            s.session.add_dht_node((str(other.ip), other.port))
        await trio.sleep(0.5)
        yield nodes, sessions


async def test_scrape_counts_libtorrent_seed_and_downloader() -> None:
    async with swarm() as (nodes, (seed_ses, dl_ses)):
        lt = seed_ses.lt
        key = dht.key_for("torrio-dht interop: BEP 33 scrape")
        lt_key = lt.sha1_hash(key.value)
        seed_ses.session.dht_announce(lt_key, 12345, SEED_FLAG)
        dl_ses.session.dht_announce(lt_key, 23456, 0)
        lt_ports = {seed_ses.port, dl_ses.port}

        # our nodes store libtorrent's announces, with BEP 33's seed flag
        def stored() -> tuple[bool, bool]:
            seeds = peers = False
            for n in nodes:
                filters = n.protocol._peers.bloom(key, trio.current_time())
                if filters is not None:
                    seeds |= "127.0.0.1" in filters[0]
                    peers |= "127.0.0.2" in filters[1]
            return seeds, peers

        with trio.fail_after(30):
            while stored() != (True, True):
                for s in (seed_ses, dl_ses):
                    s.pop_alerts()
                await trio.sleep(0.1)

        # libtorrent's nodes answer our scrape with filters; libtorrent stores each other's
        # announces, so between them they know the seed on .1 and the downloader on .2. Their
        # filters equal ours bit for bit: both sides hash addresses the BEP 33 way.
        want_seeds, want_peers = dht.BloomFilter(), dht.BloomFilter()
        want_seeds.add("127.0.0.1")
        want_peers.add("127.0.0.2")
        with trio.fail_after(60):
            while True:
                r = await nodes[-1].scrape_filters(key)
                lt_seeds, lt_peers = dht.BloomFilter(), dht.BloomFilter()
                for f in r.found:
                    if f.node is not None and f.node.addr.port in lt_ports:
                        lt_seeds |= f.seeds or dht.BloomFilter()
                        lt_peers |= f.peers or dht.BloomFilter()
                if (lt_seeds, lt_peers) == (want_seeds, want_peers):
                    break
                for s in (seed_ses, dl_ses):
                    s.pop_alerts()
                await trio.sleep(0.5)
        assert round(lt_seeds.estimate()) == 1 and round(lt_peers.estimate()) == 1
        assert (r.seeds, r.peers) == (1, 1)
        assert "127.0.0.1" in r.seeds_filter and "127.0.0.2" in r.peers_filter
        assert await nodes[0].scrape(key) == (1, 1)


async def test_libtorrent_stores_our_seed_flag() -> None:
    async with (
        swarm() as (nodes, (ses_a, ses_b)),
        dht.open_node(host="127.0.0.3", bootstrap=[("127.0.0.1", nodes[0].port)]) as ours,
    ):
        key = dht.key_for("torrio-dht interop: our seed")
        assert await ours.announce(key, port=34567, seed=True) >= 1
        lt_ports = {ses_a.port, ses_b.port}
        with trio.fail_after(60):
            while True:
                r = await nodes[1].scrape_filters(key)
                lt_seeds = [
                    f
                    for f in r.found
                    if f.node is not None
                    and f.node.addr.port in lt_ports
                    and f.seeds is not None
                    and "127.0.0.3" in f.seeds
                ]
                if lt_seeds:
                    break
                await ours.announce(key, port=34567, seed=True)
                await trio.sleep(0.5)
        f = lt_seeds[0]
        assert f.seeds is not None and round(f.seeds.estimate()) == 1
        assert f.peers is None or "127.0.0.3" not in f.peers
        assert await nodes[2].scrape(key) == (1, 0)
