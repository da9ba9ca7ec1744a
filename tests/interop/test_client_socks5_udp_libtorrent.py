"""libtorrent's SOCKS5 UDP client against torrio.testing.socks5: a libtorrent UDP tracker announce
goes through our test proxy (username/password, UDP ASSOCIATE, the RFC 1928 UDP header) and
reaches a torrio tracker from the relay's address only. This checks the test proxy that the
client's own SOCKS5 UDP tests (packages/client/tests/test_proxy_udp.py) rely on against an
independent implementation."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from torrio.core import SocketAddress
from torrio.testing import libtorrent as ltx
from torrio.testing import make_random_file
from torrio.testing.socks5 import open_socks5_proxy

pytestmark = pytest.mark.skipif(not ltx.available(), reason="libtorrent wheel not installed")


async def _recording_udp_tracker(
    sock: trio.socket.SocketType,
    sources: list[SocketAddress],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    from torrio.tracker_server import ConnectionIds, MemoryStore, Tracker, handle_datagram

    tracker = Tracker(MemoryStore())
    ids = ConnectionIds()
    task_status.started()
    while True:
        data, raw = await sock.recvfrom(2048)
        addr = (str(raw[0]), int(raw[1]))
        sources.append(addr)
        reply = await handle_datagram(tracker, ids, memoryview(data), addr)
        if reply is not None:
            await sock.sendto(reply, raw)


async def test_libtorrent_udp_tracker_announce_through_our_socks5_proxy(tmp_path: Path) -> None:
    sources: list[SocketAddress] = []
    async with open_socks5_proxy("lt", "secret") as proxy, trio.open_nursery() as nursery:
        with trio.socket.socket(type=trio.socket.SOCK_DGRAM) as server:
            await server.bind(("127.0.0.1", 0))
            port = server.getsockname()[1]
            await nursery.start(_recording_udp_tracker, server, sources)
            data = make_random_file(tmp_path / "seed" / "payload.bin", 300_000, seed=11)
            url = f"udp://127.0.0.1:{port}/announce"
            torrent = ltx.create_torrent(data, piece_size=256 * 1024, version="v1", trackers=[url])
            lt = ltx._require()
            settings = {
                "proxy_type": lt.proxy_type_t.socks5_pw,
                "proxy_hostname": "127.0.0.1",
                "proxy_port": proxy.port,
                "proxy_username": "lt",
                "proxy_password": "secret",
                "proxy_tracker_connections": True,
                "proxy_peer_connections": True,
                "tracker_completion_timeout": 10,
                "tracker_receive_timeout": 5,
                "stop_tracker_timeout": 1,
            }
            async with ltx.open_session(settings) as ses:
                handle = ses.add_torrent(torrent, tmp_path / "seed", seed_mode=True)
                # libtorrent refuses UDP sends until its association is up, then retries only
                # after 30 s: once the proxy has granted it, ask for an announce right away
                await ses.wait_for(lambda: proxy.associations >= 1, timeout=30)
                handle.force_reannounce()
                await ses.wait_alert(
                    lambda a: type(a).__name__ == "tracker_reply_alert", timeout=30
                )
            relay = proxy.relay_addresses[0]
            assert proxy.auth_failures == 0
            assert sources and set(sources) == {relay}
            assert proxy.udp_from_client >= 2 and proxy.udp_to_client >= 2  # connect, announce
            assert set(proxy.udp_destinations) == {("127.0.0.1", port)}
        nursery.cancel_scope.cancel()


async def test_torrio_dht_node_behind_the_proxy_and_a_libtorrent_node() -> None:
    """Our DHT node sends only through a SOCKS5 UDP association (torrio.client's
    Socks5UdpAssociation); libtorrent's node, reached through the relay, stores our announce."""
    from typing import Any

    from torrio import dht
    from torrio.client._proxy import ProxyConfig
    from torrio.client._proxy_udp import open_socks5_udp_endpoint
    from torrio.core import PeerAddr

    settings = {
        "enable_dht": True,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False,
        "dht_block_ratelimit": 100000,
        "alert_queue_size": 200000,
    }
    key = dht.key_for(b"torrio behind a SOCKS5 proxy")
    with trio.fail_after(60):
        async with (
            open_socks5_proxy("u", "p") as proxy,
            ltx.open_session(settings) as ses,
            open_socks5_udp_endpoint(ProxyConfig.parse(proxy.url), host="127.0.0.1") as ep,
            dht.open_node(endpoint=ep, local_addr=ep.local_address, wait_joined=False) as node,
        ):
            ep.set_handler(node)
            lt_addr = PeerAddr("127.0.0.1", ses.port)
            await node.bootstrap([lt_addr])
            assert node.protocol.table().get(lt_addr) is not None  # libtorrent answered us
            assert await node.announce(key, port=34567) >= 1
            lt = ses.lt
            ses.session.dht_get_peers(lt.sha1_hash(key.value))

            def has_us(a: Any) -> bool:
                return (
                    type(a).__name__ == "dht_get_peers_reply_alert"
                    and bytes(a.info_hash.to_bytes()) == key.value
                    and ("127.0.0.1", 34567) in [tuple(p) for p in a.peers()]
                )

            await ses.wait_alert(has_us, timeout=30)
            stats = ep.association.statistics()
            assert stats.sent >= 3 and stats.received >= 3
            assert set(proxy.udp_destinations) == {("127.0.0.1", ses.port)}
