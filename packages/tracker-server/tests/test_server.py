"""Our client against our server on loopback: HTTP and UDP, loss, whitelist, caps, expiry, restart."""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from torrio.bencode import decode
from torrio.core import PeerAddr, SocketAddress
from torrio.tracker import (
    AnnounceRequest,
    Event,
    HttpTrackerClient,
    SocketEndpoint,
    TrackerClient,
    TrackerFailure,
    UdpTrackerClient,
    announce_url,
    bind_udp_socket,
    open_tracker_client,
)
from torrio.tracker_server import (
    MemoryStore,
    SqliteStore,
    Tracker,
    TrackerConfig,
    open_tracker_server,
)

IH = b"\xab" * 20


def req(
    n: int, *, left: int = 100, event: Event = Event.STARTED, port: int | None = None, **kw: object
) -> AnnounceRequest:
    return AnnounceRequest(
        info_hash=kw.pop("info_hash", IH),  # type: ignore[arg-type]
        peer_id=n.to_bytes(20, "big"),
        port=port or 10000 + n,
        left=left,
        event=event,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def client() -> AsyncIterator[TrackerClient]:
    async with open_tracker_client(
        allow_local=True, udp_host="127.0.0.1", retransmit_base=0.5
    ) as c:
        yield c


@pytest.mark.parametrize("transport", ["http", "udp"])
async def test_peers_find_each_other_and_never_themselves(
    transport: str, client: TrackerClient
) -> None:
    async with open_tracker_server() as srv:
        url = srv.http_url if transport == "http" else srv.udp_url
        r1 = await client.announce(url, req(1))
        assert r1.peers == ()
        r2 = await client.announce(url, req(2, left=0))
        assert r2.peers == (PeerAddr("127.0.0.1", 10001),)
        assert (r2.complete, r2.incomplete) == (1, 1)
        r3 = await client.announce(url, req(3))
        assert set(r3.peers) == {PeerAddr("127.0.0.1", 10001), PeerAddr("127.0.0.1", 10002)}
        assert r3.interval == 1800
        s = await client.scrape(url, [IH])
        assert (s.files[IH].complete, s.files[IH].incomplete) == (1, 2)
        await client.announce(url, req(1, event=Event.STOPPED))
        s = await client.scrape(url, [IH])
        assert s.files[IH].incomplete == 1


async def test_http_dict_form_and_index_page(client: TrackerClient) -> None:
    async with open_tracker_server() as srv:
        await client.announce(srv.http_url, req(1))
        resp = await client.announce(srv.http_url, req(2, compact=False, no_peer_id=False))
        assert resp.peers == (PeerAddr("127.0.0.1", 10001),)
        assert resp.peer_ids == ((1).to_bytes(20, "big"),)
        resp = await client.announce(srv.http_url, req(3, compact=False, no_peer_id=True))
        assert len(resp.peers) == 2 and resp.peer_ids == (None, None)
        await client.announce(srv.http_url, req(2, left=0, event=Event.COMPLETED))
        async with httpx.AsyncClient() as http:
            page = (await http.get(srv.http_url.removesuffix("announce"))).text
            assert IH.hex() in page and "<td>1</td><td>2</td><td>1</td>" in page
            assert (
                await http.get(srv.http_url.removesuffix("announce") + "nope")
            ).status_code == 404
            raw = (await http.get(srv.http_url + "?info_hash=short")).content
            assert b"failure reason" in decode(raw)  # type: ignore[operator]


async def test_full_scrape_without_info_hash(client: TrackerClient) -> None:
    async with open_tracker_server() as srv:
        await client.announce(srv.http_url, req(1))
        await client.announce(srv.http_url, req(2, info_hash=b"\x07" * 20, left=0))
        async with httpx.AsyncClient() as http:
            body = (await http.get(srv.http_url.replace("/announce", "/scrape"))).content
        top = decode(body)
        assert isinstance(top, dict)
        files = top[b"files"]
        assert files == {
            IH: {b"complete": 0, b"downloaded": 0, b"incomplete": 1},
            b"\x07" * 20: {b"complete": 1, b"downloaded": 0, b"incomplete": 0},
        }


async def test_numwant_is_capped_and_interval_configurable(client: TrackerClient) -> None:
    cfg = TrackerConfig(interval=120, min_interval=30, max_numwant=5)
    async with open_tracker_server(config=cfg) as srv:
        for n in range(1, 21):
            await client.announce(srv.udp_url, req(n, numwant=0))
        r = await client.announce(srv.http_url, req(99, numwant=1000))
        assert len(r.peers) == 5 and r.interval == 120 and r.min_interval == 30
        r = await client.announce(srv.udp_url, req(98, numwant=1000))
        assert len(r.peers) == 5


async def test_whitelist_refuses_other_torrents(client: TrackerClient) -> None:
    async with open_tracker_server(config=TrackerConfig(whitelist=frozenset({IH}))) as srv:
        await client.announce(srv.http_url, req(1))
        for url in (srv.http_url, srv.udp_url):
            with pytest.raises(TrackerFailure, match="whitelist"):
                await client.announce(url, req(2, info_hash=b"\x01" * 20))


async def test_peers_expire_after_missing_announces(client: TrackerClient) -> None:
    now = [1000.0]
    tracker = Tracker(MemoryStore(), TrackerConfig(interval=10, peer_ttl=25), clock=lambda: now[0])
    await tracker.announce(req(1), PeerAddr("10.0.0.1", 1).ip)
    now[0] += 20
    await tracker.announce(req(2), PeerAddr("10.0.0.2", 1).ip)
    now[0] += 10  # peer 1 missed two announces
    resp = await tracker.announce(req(3), PeerAddr("10.0.0.3", 1).ip)
    assert resp.peers == (PeerAddr("10.0.0.2", 10002),)


async def test_ip_hint_only_when_trusted() -> None:
    for trust, expected in ((False, "10.0.0.1"), (True, "192.0.2.7")):
        tracker = Tracker(MemoryStore(), TrackerConfig(trust_ip_param=trust))
        await tracker.announce(req(1, ip="192.0.2.7"), PeerAddr("10.0.0.1", 1).ip)
        resp = await tracker.announce(req(2), PeerAddr("10.0.0.2", 1).ip)
        assert resp.peers == (PeerAddr(expected, 10001),)


class LossyEndpoint:
    """Drops a share of outgoing datagrams (the incoming side drops too, in the pump below)."""

    def __init__(self, inner: SocketEndpoint, rng: random.Random, loss: float) -> None:
        self.inner, self.rng, self.loss = inner, rng, loss
        self.dropped = 0

    async def sendto(self, data: bytes, addr: SocketAddress) -> None:
        if self.rng.random() < self.loss:
            self.dropped += 1
            return
        await self.inner.sendto(data, addr)


async def test_udp_retransmission_survives_packet_loss() -> None:
    rng = random.Random(7)
    async with open_tracker_server() as srv, trio.open_nursery() as nursery:
        sock = await bind_udp_socket("127.0.0.1")
        lossy = LossyEndpoint(SocketEndpoint(sock), rng, 0.3)
        client = UdpTrackerClient(lossy, retransmit_base=0.02, max_retransmits=12)
        dropped_in = [0]

        async def pump() -> None:
            while True:
                data, addr = await sock.recvfrom(2048)
                if rng.random() < 0.3:
                    dropped_in[0] += 1
                    continue
                client.datagram_received(data, (addr[0], addr[1]))

        nursery.start_soon(pump)
        with trio.fail_after(30):
            for n in range(1, 16):
                resp = await client.announce(srv.udp_url, req(n))
                assert len(resp.peers) == n - 1
        assert lossy.dropped + dropped_in[0] > 5
        assert client.statistics().retransmits > 0
        nursery.cancel_scope.cancel()
        sock.close()


async def test_udp_bad_connection_id_is_refused() -> None:
    async with open_tracker_server() as srv:
        from torrio.tracker import UdpAnnounce, UdpError, decode_response, encode_request

        with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            await s.bind(("127.0.0.1", 0))
            await s.sendto(encode_request(UdpAnnounce(12345, 7, req(1))), srv.addresses.udp[0])
            with trio.fail_after(5):
                data = await s.recv(2048)
        msg = decode_response(data)
        assert (
            isinstance(msg, UdpError) and msg.transaction_id == 7 and "connection id" in msg.message
        )


async def test_ipv6_loopback(client: TrackerClient) -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    async with (
        open_tracker_server(hosts=("::1",)) as srv,
        open_tracker_client(allow_local=True, udp_host="::", retransmit_base=0.5) as c6,
    ):
        assert srv.http_url.startswith("http://[::1]:")
        await c6.announce(srv.http_url, req(1))
        r = await c6.announce(srv.udp_url, req(2))
        assert r.peers == (PeerAddr("::1", 10001),)
        r = await c6.announce(srv.http_url, req(3))
        assert set(r.peers) == {PeerAddr("::1", 10001), PeerAddr("::1", 10002)}


async def test_sqlite_restart_keeps_peers(tmp_path: Path, client: TrackerClient) -> None:
    path = str(tmp_path / "swarms.db")
    store = SqliteStore(path)
    async with open_tracker_server(store) as srv:
        await client.announce(srv.http_url, req(1))
        await client.announce(srv.udp_url, req(2, left=0, event=Event.COMPLETED))
    await store.aclose()
    store = SqliteStore(path)
    try:
        async with open_tracker_server(store) as srv:
            resp = await client.announce(srv.http_url, req(3))
            assert set(resp.peers) == {PeerAddr("127.0.0.1", 10001), PeerAddr("127.0.0.1", 10002)}
            assert (resp.complete, resp.incomplete, resp.downloaded) == (1, 2, 1)
    finally:
        await store.aclose()


async def test_raw_query_with_unescaped_bytes_is_understood(client: TrackerClient) -> None:
    async with open_tracker_server() as srv:
        await client.announce(srv.http_url, req(1))
        http = HttpTrackerClient(allow_local=True)
        try:
            resp = await http.announce(srv.http_url, req(2))
        finally:
            await http.aclose()
        assert resp.peers == (PeerAddr("127.0.0.1", 10001),)
        assert "%AB" in announce_url(srv.http_url, req(2))


async def test_regression_connection_id_is_valid_from_another_socket_of_the_same_host() -> None:
    """libtorrent shares one cached connection id among all sessions (sockets) of a process."""
    async with open_tracker_server() as srv:
        from torrio.tracker import (
            ConnectRequest,
            ConnectResponse,
            UdpAnnounceReply,
            decode_response,
            encode_request,
        )

        with (
            trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
            trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
        ):
            await a.bind(("127.0.0.1", 0))
            await b.bind(("127.0.0.1", 0))
            with trio.fail_after(5):
                await a.sendto(encode_request(ConnectRequest(1)), srv.addresses.udp[0])
                conn = decode_response(await a.recv(2048))
                assert isinstance(conn, ConnectResponse)
                from torrio.tracker import UdpAnnounce

                await b.sendto(
                    encode_request(UdpAnnounce(conn.connection_id, 2, req(1))), srv.addresses.udp[0]
                )
                assert isinstance(decode_response(await b.recv(2048)), UdpAnnounceReply)


async def test_shared_connection_secret_lets_ids_cross_processes(client: TrackerClient) -> None:
    cfg = TrackerConfig(connection_secret=b"k" * 32)
    async with open_tracker_server(config=cfg) as one, open_tracker_server(config=cfg) as two:
        from torrio.tracker import (
            ConnectRequest,
            ConnectResponse,
            UdpAnnounce,
            UdpAnnounceReply,
            decode_response,
            encode_request,
        )

        with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            await s.bind(("127.0.0.1", 0))
            with trio.fail_after(5):
                await s.sendto(encode_request(ConnectRequest(1)), one.addresses.udp[0])
                conn = decode_response(await s.recv(2048))
                assert isinstance(conn, ConnectResponse)
                await s.sendto(
                    encode_request(UdpAnnounce(conn.connection_id, 2, req(1))), two.addresses.udp[0]
                )
                assert isinstance(decode_response(await s.recv(2048)), UdpAnnounceReply)


async def test_default_dual_stack_client_socket_reaches_an_ipv4_tracker() -> None:
    async with open_tracker_server() as srv, open_tracker_client(retransmit_base=0.5) as c:
        await c.announce(srv.udp_url, req(1))
        assert (await c.announce(srv.udp_url, req(2))).peers == (PeerAddr("127.0.0.1", 10001),)


def _url(scheme: str, addr: tuple[str, int]) -> str:
    host = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
    return f"{scheme}://{host}:{addr[1]}/announce"


async def test_one_tracker_on_ipv4_and_ipv6_serves_both_families(client: TrackerClient) -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    async with open_tracker_server(hosts=("127.0.0.1", "::1")) as srv:
        v4_http, v6_http = (_url("http", a) for a in srv.addresses.http)
        v4_udp, v6_udp = (_url("udp", a) for a in srv.addresses.udp)
        async with open_tracker_client(allow_local=True, retransmit_base=0.5) as dual:
            await dual.announce(v4_udp, req(1))
            await dual.announce(v6_udp, req(2))
            both = await dual.announce(v6_http, req(3))  # HTTP: v4 in "peers", v6 in "peers6"
            assert set(both.peers) == {PeerAddr("127.0.0.1", 10001), PeerAddr("::1", 10002)}
            only6 = await dual.announce(v6_udp, req(4))  # UDP answers in the tracker's family
            assert set(only6.peers) == {PeerAddr("::1", 10002), PeerAddr("::1", 10003)}
            only4 = await dual.announce(v4_udp, req(5))
            assert set(only4.peers) == {PeerAddr("127.0.0.1", 10001)}
            counts = await dual.scrape(v4_http, [IH])
            assert counts.files[IH].incomplete == 5
