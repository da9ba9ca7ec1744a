"""Our DHT nodes and a libtorrent session's DHT on loopback: peers and BEP 44 items both ways."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio

from torrio import dht
from torrio.core import PeerAddr
from torrio.testing import libtorrent as ltharness

pytestmark = pytest.mark.skipif(not ltharness.available(), reason="libtorrent not installed")

N_OURS = 5


@asynccontextmanager
async def swarm() -> AsyncIterator[tuple[list[dht.Node], ltharness.LtSession]]:
    """Several of our nodes (so libtorrent has a routing table) and one libtorrent session."""
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
        ses = await stack.enter_async_context(
            ltharness.open_session(
                {
                    "enable_dht": True,
                    "dht_bootstrap_nodes": boot,
                    "dht_restrict_routing_ips": False,
                    "dht_restrict_search_ips": False,
                    "dht_enforce_node_id": False,
                    "alert_queue_size": 200000,
                    # every one of our nodes shares 127.0.0.1: lift the per-IP packet ban
                    "dht_block_ratelimit": 100000,
                }
            )
        )
        # libtorrent has joined once it has queried most of our nodes
        lt_addr = PeerAddr("127.0.0.1", ses.port)

        def joined() -> bool:
            return sum(1 for n in nodes if n.protocol.table().get(lt_addr) is not None) >= 3

        with trio.fail_after(30):
            while not joined():
                ses.pop_alerts()
                await trio.sleep(0.05)
        for n in nodes:
            n.add_node(lt_addr)
        await trio.sleep(0.2)
        yield nodes, ses


def _lt_keypair(key: dht.SigningKey) -> tuple[bytes, bytes]:
    """libtorrent's (orlp ed25519) secret key form of our seed: clamped SHA-512 of it."""
    h = bytearray(hashlib.sha512(key.seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return bytes(h), key.public_key


def _entry_bytes(x: Any) -> bytes:
    return x if isinstance(x, bytes) else bytes(x, "latin-1") if isinstance(x, str) else bytes(x)


async def test_peers_both_ways() -> None:
    async with swarm() as (nodes, ses):
        lt = ses.lt
        # libtorrent announces; our far node finds it
        key1 = dht.key_for("torrio-dht interop: libtorrent announces")
        ses.session.dht_announce(lt.sha1_hash(key1.value), 12345, 0)
        found: set[PeerAddr] = set()
        with trio.fail_after(30):
            while not any(p.port in (12345, ses.port) for p in found):
                async for peer in nodes[-1].get_peers(key1):
                    found.add(peer)
                await trio.sleep(0.2)
        # we announce; libtorrent's get_peers finds us
        key2 = dht.key_for("torrio-dht interop: torrio announces")
        assert await nodes[1].announce(key2, port=23456) >= 1
        ses.session.dht_get_peers(lt.sha1_hash(key2.value))

        def has_us(a: Any) -> bool:
            return (
                type(a).__name__ == "dht_get_peers_reply_alert"
                and bytes(a.info_hash.to_bytes()) == key2.value
                and ("127.0.0.1", 23456) in [tuple(p) for p in a.peers()]
            )

        await ses.wait_alert(has_us, timeout=30)

        # BEP 51: libtorrent samples the keys one of our nodes stores
        holder = max(nodes, key=lambda n: n.statistics().stored_keys)
        ses.session.dht_sample_infohashes(("127.0.0.1", holder.port), lt.sha1_hash(key2.value))

        def sampled(a: Any) -> bool:
            return (
                type(a).__name__ == "dht_sample_infohashes_alert"
                and a.endpoint[1] == holder.port
                and key2.value in [bytes(h.to_bytes()) for h in a.samples]
            )

        alert = await ses.wait_alert(sampled, timeout=30)
        assert alert.num_infohashes >= 1


async def test_items_both_ways() -> None:
    async with swarm() as (nodes, ses):
        lt = ses.lt
        # libtorrent puts an immutable item, we get it
        target = ses.session.dht_put_immutable_item(b"from libtorrent")
        await ses.wait_alert(
            lambda a: type(a).__name__ == "dht_put_alert" and a.num_success > 0, timeout=30
        )
        item = await nodes[-1].get_immutable(bytes(target.to_bytes()))
        assert item is not None and item.value == b"from libtorrent"

        # we put an immutable item, libtorrent gets it
        put = await nodes[2].put_immutable(b"from torrio")
        assert put.stored >= 1
        ses.session.dht_get_immutable_item(lt.sha1_hash(put.target.value))
        got = await ses.wait_alert(
            lambda a: (
                type(a).__name__ == "dht_immutable_item_alert"
                and bytes(a.target.to_bytes()) == put.target.value
            ),
            timeout=30,
        )
        assert _entry_bytes(got.item) == b"from torrio"

        # libtorrent puts a mutable item, we get it
        key = dht.SigningKey.generate()
        sk, pk = _lt_keypair(key)
        ses.session.dht_put_mutable_item(sk, pk, b"mutable from libtorrent", b"salt1")
        await ses.wait_alert(
            lambda a: (
                type(a).__name__ == "dht_put_alert"
                and bytes(a.public_key) == pk
                and a.num_success > 0
            ),
            timeout=30,
        )
        mitem = await nodes[-1].get_mutable(pk, b"salt1")
        assert mitem is not None and mitem.value == b"mutable from libtorrent"
        assert mitem.verify()

        # we put a mutable item, libtorrent gets it
        key2 = dht.SigningKey.generate()
        r = await nodes[3].put_mutable(key2, b"mutable from torrio", salt=b"salt2")
        assert r.stored >= 1
        ses.session.dht_get_mutable_item(key2.public_key, b"salt2")
        got = await ses.wait_alert(
            lambda a: (
                type(a).__name__ == "dht_mutable_item_alert"
                and bytes(a.key) == key2.public_key
                and _entry_bytes(a.item) == b"mutable from torrio"
            ),
            timeout=30,
        )
        assert got.seq == 0
