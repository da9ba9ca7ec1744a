"""The trio shell: real loopback sockets, a shared endpoint, state files, read-only mode."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from torrio.core import DatagramEndpoint, PeerAddr
from torrio.dht import DhtConfig, DhtError, SigningKey, key_for, load_state, open_node
from torrio.testing.fakenet import open_fake_network


async def test_chat_room_on_loopback() -> None:
    with trio.fail_after(20):
        async with open_node(host="127.0.0.1") as hub:  # noqa: SIM117 - each node joins via the hub
            async with open_node(host="127.0.0.1", bootstrap=[("127.0.0.1", hub.port)]) as alice:
                async with open_node(host="127.0.0.1", bootstrap=[f"127.0.0.1:{hub.port}"]) as bob:
                    room = key_for("chat room")
                    assert await alice.announce(room, port=5555) >= 1
                    await bob.announce(room)  # implied port: bob's DHT port
                    alice_sees = {p async for p in alice.get_peers(room)}
                    assert PeerAddr("127.0.0.1", bob.port) in alice_sees
                    stream = bob.get_peers(room)
                    seen = [p async for p in stream]
                    assert PeerAddr("127.0.0.1", 5555) in seen
                    assert stream.done is not None and stream.done.queries >= 1
                    s = alice.statistics()
                    assert s.packets_in > 0 and s.packets_out > 0 and s.lookups_done >= 2


async def test_state_is_saved_and_restored(tmp_path: Path) -> None:
    state = tmp_path / "dht.state"
    with trio.fail_after(20):
        async with open_node(host="127.0.0.1") as hub:
            async with open_node(
                host="127.0.0.1", bootstrap=[("127.0.0.1", hub.port)], state=state
            ) as n:
                first_id = n.node_id
            saved_id, nodes = load_state(state)
            assert saved_id == first_id
            assert PeerAddr("127.0.0.1", hub.port) in [x.addr for x in nodes]
            # a restart rejoins from the file alone, with the same id
            async with open_node(host="127.0.0.1", state=state) as again:
                assert again.node_id == first_id
                assert again.protocol.table().get(PeerAddr("127.0.0.1", hub.port)) is not None
                assert again.statistics().responses_in >= 1


def test_bad_state_file_raises_dht_error(tmp_path: Path) -> None:
    p = tmp_path / "bad"
    p.write_bytes(b"not bencode")
    with pytest.raises(DhtError):
        load_state(p)
    assert load_state(tmp_path / "missing") == (None, [])


async def test_shared_endpoint_and_read_only(autojump_clock: trio.testing.MockClock) -> None:
    """A node over someone else's endpoint: the caller routes datagrams to datagram_received."""
    async with open_fake_network(delay=0.01, seed=9) as net:
        ep_a = net.endpoint()
        ep_b = net.endpoint()
        assert isinstance(ep_a, DatagramEndpoint)
        async with open_node(endpoint=ep_a, local_addr=ep_a.addr) as a:
            ep_a.set_handler(a)
            async with open_node(
                endpoint=ep_b,
                local_addr=ep_b.addr,
                bootstrap=[ep_a.addr],
                read_only=True,
                wait_joined=False,
            ) as ro:
                ep_b.set_handler(ro)
                await ro.bootstrap([PeerAddr.from_tuple(ep_a.addr)])
                # the read-only node can look things up and store items on others...
                r = await ro.put_immutable(b"from a read-only node")
                assert r.stored == 1
                item = await a.get_immutable(r.target)
                assert item is None or item.value == b"from a read-only node"
                # ...but it is not in anyone's table and answers nothing
                assert a.protocol.table().get(PeerAddr.from_tuple(ep_b.addr)) is None
                a.add_node(PeerAddr.from_tuple(ep_b.addr))
                await trio.sleep(10)
                assert a.protocol.table().get(PeerAddr.from_tuple(ep_b.addr)) is None
                assert ro.statistics().queries_in == 0


async def test_open_node_with_endpoint_needs_local_addr() -> None:
    async with open_fake_network() as net:
        with pytest.raises(DhtError):
            async with open_node(endpoint=net.endpoint()):
                pass  # pragma: no cover


async def test_mutable_cas_and_explicit_seq(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_network(delay=0.01, seed=10) as net:
        eps = [net.endpoint() for _ in range(4)]
        async with open_node(endpoint=eps[0], local_addr=eps[0].addr, config=DhtConfig()) as hub:
            eps[0].set_handler(hub)
            async with (
                open_node(
                    endpoint=eps[1],
                    local_addr=eps[1].addr,
                    bootstrap=[eps[0].addr],
                    wait_joined=False,
                ) as a,
                open_node(
                    endpoint=eps[2],
                    local_addr=eps[2].addr,
                    bootstrap=[eps[0].addr],
                    wait_joined=False,
                ) as b,
            ):
                eps[1].set_handler(a)
                eps[2].set_handler(b)
                await a.bootstrap([PeerAddr.from_tuple(eps[0].addr)])
                await b.bootstrap([PeerAddr.from_tuple(eps[0].addr)])
                key = SigningKey.generate()
                r = await a.put_mutable(key, b"v10", seq=10)
                assert r.stored >= 1
                await b.put_mutable(key, b"v9", seq=9)  # refused where seq 10 is stored
                latest = await b.get_mutable(key.public_key)
                assert latest is not None and latest.seq == 10 and latest.value == b"v10"
                wrong_cas = await b.put_mutable(key, b"v11", seq=11, cas=3)
                assert wrong_cas.stored == 0
                good_cas = await b.put_mutable(key, b"v11", seq=11, cas=10)
                assert good_cas.stored >= 1
                got = await a.get_mutable(key.public_key)
                assert got is not None and got.seq == 11 and got.value == b"v11"
                samples = await a.sample_infohashes()
                assert all(s.num is not None for s in samples)


async def test_regression_two_lone_nodes_find_each_others_announces() -> None:
    # each node stored the other's announce itself and never looked in its own store
    with trio.fail_after(20):
        async with open_node(host="127.0.0.1") as a:  # noqa: SIM117 - b joins via a
            async with open_node(host="127.0.0.1", bootstrap=[("127.0.0.1", a.port)]) as b:
                room = key_for("two of us")
                assert await a.announce(room, port=9001) >= 1
                assert await b.announce(room, port=9002) >= 1
                assert PeerAddr("127.0.0.1", 9002) in {p async for p in a.get_peers(room)}
                assert PeerAddr("127.0.0.1", 9001) in {p async for p in b.get_peers(room)}
                r = await a.put_immutable(b"mine")
                assert (await a.get_immutable(r.target)) is not None


async def test_external_ip_gives_a_bep42_id() -> None:
    from torrio.dht import is_valid_node_id

    async with open_node(host="127.0.0.1", external_ip="203.0.113.7") as n:
        assert is_valid_node_id(n.node_id, "203.0.113.7")


async def test_regression_abandoned_peer_stream_leaves_no_listener(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_network(delay=0.01, seed=11) as net:
        ep_a, ep_b = net.endpoint(), net.endpoint()
        async with open_node(endpoint=ep_a, local_addr=ep_a.addr) as a:
            ep_a.set_handler(a)
            async with open_node(endpoint=ep_b, local_addr=ep_b.addr, wait_joined=False) as b:
                ep_b.set_handler(b)
                await b.bootstrap([PeerAddr.from_tuple(ep_a.addr)])
                key = key_for("leak")
                await a.announce(key, port=1)
                stream = b.get_peers(key)
                async for _ in stream:
                    break  # stop reading at the first peer
                await trio.sleep(30)
                assert b._listeners == {}
                assert b.statistics().lookups_active == 0


def _has_ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_nodes_use_their_own_table() -> None:
    with trio.fail_after(20):
        async with open_node(host="::1") as a:  # noqa: SIM117 - each joins via a
            async with open_node(host="::1", bootstrap=[("::1", a.port)]) as b:
                async with open_node(host="::1", bootstrap=[("::1", a.port)]) as c:
                    room = key_for("v6 room")
                    assert await b.announce(room, port=1234) >= 1
                    assert PeerAddr("::1", 1234) in [p async for p in c.get_peers(room)]
                    s = c.statistics()
                    assert s.routing_table6.nodes >= 1 and s.routing_table.nodes == 0
