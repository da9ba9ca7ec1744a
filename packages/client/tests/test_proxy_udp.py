"""UDP through SOCKS5 (UDP ASSOCIATE): the header codec, the negotiation, the association, and a
UDP tracker announce and a DHT exchange that reach their servers only through a test proxy."""

from __future__ import annotations

import contextlib
import ipaddress
import string

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torrio.client._proxy import ProxyConfig, ProxyError
from torrio.client._proxy_udp import (
    Associated,
    AssociationLost,
    Socks5UdpAssociation,
    open_socks5_udp_association,
    open_socks5_udp_endpoint,
)
from torrio.client._socks5 import (
    CMD_CONNECT,
    NEED_DATA,
    Socks5Fragment,
    Socks5Negotiation,
    Socks5Reply,
    unwrap,
    wrap,
)
from torrio.core import PeerAddr, SocketAddress
from torrio.testing.layering import assert_imports_without
from torrio.testing.socks5 import Socks5TestProxy, open_socks5_proxy

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- the UDP request header ----------------------------------------------------------------------

ipv4 = st.ip_addresses(v=4).map(str)


def _unmapped_v6(text: str) -> bool:
    # IPv4-mapped addresses come back in IPv4 form (tested below), so they are left out here
    return ipaddress.IPv6Address(text).ipv4_mapped is None


ipv6 = st.ip_addresses(v=6).map(lambda a: a.compressed).filter(_unmapped_v6)
domains = st.text(string.ascii_letters + string.digits + ".-", min_size=1, max_size=255).filter(
    lambda s: ":" not in s and not _is_ipv4(s)
)
addresses = st.tuples(st.one_of(ipv4, ipv6, domains), st.integers(0, 0xFFFF))


def _is_ipv4(s: str) -> bool:
    try:
        ipaddress.IPv4Address(s)
    except ValueError:
        return False
    return True


def test_wrap_known_bytes() -> None:
    assert wrap(b"xy", ("1.2.3.4", 0x1234)) == b"\0\0\0\x01\x01\x02\x03\x04\x12\x34xy"
    assert wrap(b"", ("::1", 80)) == b"\0\0\0\x04" + bytes(15) + b"\x01\x00\x50"
    assert wrap(b"z", ("tracker.example", 6969)) == b"\0\0\0\x03\x0ftracker.example\x1b\x39z"


@SETTINGS
@given(st.binary(max_size=300), addresses)
def test_wrap_unwrap_round_trip(data: bytes, addr: SocketAddress) -> None:
    assert unwrap(wrap(data, addr)) == (data, addr)


def test_ipv4_mapped_sources_come_back_as_ipv4() -> None:
    # some relays write an IPv4 source in IPv6 form; sockets and routing tables use the IPv4 one
    assert unwrap(wrap(b"x", ("::ffff:1.2.3.4", 5))) == (b"x", ("1.2.3.4", 5))


def test_unwrap_of_a_memoryview_does_not_copy() -> None:
    buf = bytearray(wrap(b"payload", ("10.0.0.1", 6881)))
    payload, addr = unwrap(memoryview(buf))
    assert isinstance(payload, memoryview) and payload.obj is buf
    assert (bytes(payload), addr) == (b"payload", ("10.0.0.1", 6881))


def test_fragments_are_refused_with_their_own_error() -> None:
    frag = bytearray(wrap(b"part", ("1.2.3.4", 1)))
    frag[2] = 1
    with pytest.raises(Socks5Fragment):
        unwrap(bytes(frag))
    assert issubclass(Socks5Fragment, ProxyError)


@pytest.mark.parametrize(
    "addr",
    [("::zz", 1), ("1.2.3.4", 70000), ("1.2.3.4", -1), ("x" * 256, 1), ("", 1), ("bücher.de", 1)],
)
def test_wrap_rejects_unwritable_addresses(addr: SocketAddress) -> None:
    with pytest.raises(ProxyError):
        wrap(b"", addr)


@pytest.mark.parametrize(
    "datagram",
    [b"", b"\0\0\0", b"\0\1\0\1" + bytes(6), b"\0\0\0\x05" + bytes(6), b"\0\0\0\x01\1\2\3",
     b"\0\0\0\x04" + bytes(17), b"\0\0\0\x03\x00\0\0", b"\0\0\0\x03\x05ab", b"\0\0\0\x03\x01\xff\0\1"],
)  # fmt: skip
def test_unwrap_rejects_malformed_headers(datagram: bytes) -> None:
    with pytest.raises(ProxyError):
        unwrap(datagram)


@SETTINGS
@given(st.binary(max_size=64), addresses, st.data())
def test_mutated_datagrams_raise_only_proxy_error(
    data: bytes, addr: SocketAddress, draw: st.DataObject
) -> None:
    packet = bytearray(wrap(data, addr))
    for _ in range(draw.draw(st.integers(1, 4))):
        op = draw.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = draw.draw(st.integers(0, max(len(packet) - 1, 0)))
        if op == "flip" and packet:
            packet[at] ^= draw.draw(st.integers(1, 255))
        elif op == "cut":
            del packet[at:]
        else:
            packet[at:at] = draw.draw(st.binary(min_size=1, max_size=4))
    with contextlib.suppress(ProxyError):
        unwrap(bytes(packet))


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_proxy_error(datagram: bytes) -> None:
    with contextlib.suppress(ProxyError):
        unwrap(datagram)


# -- the negotiation (sans-I/O) ------------------------------------------------------------------


def _drive(neg: Socks5Negotiation, server_bytes: bytes, chunks: list[int] | None = None) -> object:
    """Feed the proxy's bytes (in the given chunk sizes) until an event or the bytes run out."""
    chunks = chunks or [len(server_bytes)]
    pos = 0
    event = neg.next_event()
    while event is NEED_DATA and pos < len(server_bytes):
        n = chunks[0] if chunks else len(server_bytes)
        chunks = chunks[1:]
        neg.receive_data(server_bytes[pos : pos + n])
        pos += n
        event = neg.next_event()
    return event


def test_negotiation_without_auth() -> None:
    neg = Socks5Negotiation()
    assert neg.data_to_send() == b"\x05\x01\x00"
    assert neg.next_event() is NEED_DATA
    neg.receive_data(b"\x05\x00")
    assert neg.next_event() is NEED_DATA
    assert neg.data_to_send() == b"\x05\x03\x00\x01" + bytes(6)  # UDP ASSOCIATE 0.0.0.0:0
    neg.receive_data(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x1a\x0a")
    assert neg.next_event() == Socks5Reply(("127.0.0.1", 6666))
    assert neg.done and neg.data_to_send() == b""


def test_negotiation_with_auth_and_a_domain_reply() -> None:
    neg = Socks5Negotiation(
        command=CMD_CONNECT, target=("h.example", 80), username="u", password="pw"
    )
    assert neg.data_to_send() == b"\x05\x02\x00\x02"
    neg.receive_data(b"\x05\x02")
    assert neg.next_event() is NEED_DATA
    assert neg.data_to_send() == b"\x01\x01u\x02pw"
    neg.receive_data(b"\x01\x00")
    assert neg.next_event() is NEED_DATA
    assert neg.data_to_send() == b"\x05\x01\x00\x03\x09h.example\x00\x50"
    neg.receive_data(b"\x05\x00\x00\x03\x05relay\x04\x00")
    assert neg.next_event() == Socks5Reply(("relay", 1024))


SERVER_WITH_AUTH = b"\x05\x02" + b"\x01\x00" + b"\x05\x00\x00\x04" + bytes(15) + b"\x01\x30\x39"


@SETTINGS
@given(st.lists(st.integers(1, 5), min_size=1, max_size=40))
def test_negotiation_takes_replies_split_anywhere(chunks: list[int]) -> None:
    neg = Socks5Negotiation(username="u", password="p")
    neg.data_to_send()
    assert _drive(neg, SERVER_WITH_AUTH, chunks) == Socks5Reply(("::1", 12345))


@pytest.mark.parametrize(
    ("server", "code", "match"),
    [
        (b"\x05\xff", None, "none of our authentication"),
        (b"\x04\x00", None, "not a SOCKS5"),
        (b"\x05\x02\x01\x01", 1, "authentication failed"),
        (b"\x05\x02\x01\x00\x05\x07\x00\x01" + bytes(6), 7, "command not supported"),
        (b"\x05\x02\x01\x00\x05\x00\x00\x09" + bytes(6), None, "address type"),
        (b"\x05\x01", None, "not offered"),
    ],
)
def test_negotiation_failures(server: bytes, code: int | None, match: str) -> None:
    neg = Socks5Negotiation(username="u", password="p")
    with pytest.raises(ProxyError, match=match) as exc:
        _drive(neg, server)
    assert exc.value.code == code
    with pytest.raises(ProxyError):  # a failed machine stays failed
        neg.next_event()


def test_username_method_chosen_without_credentials_is_refused() -> None:
    with pytest.raises(ProxyError, match="not offered"):
        _drive(Socks5Negotiation(), b"\x05\x02")


@SETTINGS
@given(st.data())
def test_mutated_proxy_replies_raise_only_proxy_error(draw: st.DataObject) -> None:
    server = bytearray(SERVER_WITH_AUTH)
    for _ in range(draw.draw(st.integers(1, 3))):
        at = draw.draw(st.integers(0, len(server) - 1))
        server[at] = draw.draw(st.integers(0, 255))
    neg = Socks5Negotiation(username="u", password="p")
    try:
        event = _drive(neg, bytes(server), draw.draw(st.lists(st.integers(1, 8), max_size=30)))
    except ProxyError:
        return
    assert event is NEED_DATA or isinstance(event, Socks5Reply)


def test_codec_imports_without_trio_or_sockets() -> None:
    assert_imports_without("torrio.client", "_socks5", blocked=("trio", "socket"))


# -- the association on loopback -----------------------------------------------------------------


class Collector:
    def __init__(self) -> None:
        self.got: list[tuple[bytes, SocketAddress]] = []
        self.event = trio.Event()

    def datagram_received(self, data: bytes, addr: SocketAddress) -> None:
        self.got.append((data, addr))
        self.event.set()

    async def wait(self, n: int = 1) -> None:
        while len(self.got) < n:
            self.event = trio.Event()
            await self.event.wait()


async def _echo(sock: trio.socket.SocketType, sources: list[SocketAddress]) -> None:
    while True:
        data, raw = await sock.recvfrom(65536)
        sources.append((str(raw[0]), int(raw[1])))
        await sock.sendto(b"echo:" + data, raw)


async def _echo_round_trip(proxy: Socks5TestProxy) -> None:
    sources: list[SocketAddress] = []
    with trio.socket.socket(type=trio.socket.SOCK_DGRAM) as echo:
        await echo.bind(("127.0.0.1", 0))
        target = echo.getsockname()
        got = Collector()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_echo, echo, sources)
            cfg = ProxyConfig.parse(proxy.url)
            async with open_socks5_udp_endpoint(cfg, host="127.0.0.1", handler=got) as ep:
                await ep.sendto(b"one", target)
                await ep.sendto(b"two", target)
                await got.wait(2)
                relay = proxy.relay_addresses[-1]
                assert ep.association.relay == relay
                assert sorted(got.got) == [(b"echo:one", target), (b"echo:two", target)]
                # the echo server only ever saw the relay, never our own socket
                assert sources == [relay, relay] and ep.local_address not in sources
                stats = ep.association.statistics()
                assert (stats.sent, stats.received, stats.associations) == (2, 2, 1)
            nursery.cancel_scope.cancel()
    assert (proxy.udp_from_client, proxy.udp_to_client) == (2, 2)
    assert proxy.udp_destinations == [target, target]


async def test_udp_through_the_proxy_without_auth() -> None:
    with trio.fail_after(10):
        async with open_socks5_proxy() as proxy:
            await _echo_round_trip(proxy)


async def test_udp_through_the_proxy_with_auth() -> None:
    with trio.fail_after(10):
        async with open_socks5_proxy("alice", "s3cret") as proxy:
            await _echo_round_trip(proxy)
            assert proxy.auth_failures == 0 and proxy.associations == 1


async def test_relay_reported_as_unspecified_means_the_proxys_host() -> None:
    with trio.fail_after(10):
        async with open_socks5_proxy(reply_unspecified=True) as proxy:
            await _echo_round_trip(proxy)


async def test_wrong_password_is_a_proxy_error() -> None:
    with trio.fail_after(10):
        async with open_socks5_proxy("alice", "s3cret") as proxy:
            cfg = ProxyConfig.parse(proxy.url.replace("s3cret", "wrong"))
            with pytest.raises(ProxyError, match="authentication failed") as exc:
                async with open_socks5_udp_association(cfg):
                    pytest.fail("associated with a wrong password")  # pragma: no cover
            assert "wrong" not in str(exc.value) and "***" in str(exc.value)
            assert exc.value.code == 1 and proxy.auth_failures == 1


async def test_missing_credentials_is_a_proxy_error() -> None:
    with trio.fail_after(10):
        async with open_socks5_proxy("alice", "s3cret") as proxy:
            cfg = ProxyConfig.parse(f"socks5://127.0.0.1:{proxy.port}")
            with pytest.raises(ProxyError, match="username/password"):
                async with open_socks5_udp_association(cfg):
                    pass  # pragma: no cover


async def test_proxy_without_udp_support_is_a_proxy_error() -> None:
    with trio.fail_after(10):
        async with open_socks5_proxy(udp=False) as proxy:
            with pytest.raises(ProxyError, match="command not supported") as exc:
                async with open_socks5_udp_association(ProxyConfig.parse(proxy.url)):
                    pass  # pragma: no cover
            assert exc.value.code == 7


async def test_unreachable_proxy_is_a_proxy_error() -> None:
    with trio.socket.socket() as s:
        await s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with trio.fail_after(10), pytest.raises(ProxyError, match="cannot reach"):
        async with open_socks5_udp_association(ProxyConfig.parse(f"socks5://127.0.0.1:{dead}")):
            pass  # pragma: no cover


@pytest.mark.parametrize("url", ["socks4://127.0.0.1:1", "http://127.0.0.1:1"])
def test_only_socks5_carries_udp(url: str) -> None:
    cfg = ProxyConfig.parse(url)
    assert not cfg.supports_udp
    with pytest.raises(ProxyError, match="cannot carry UDP"):
        Socks5UdpAssociation(cfg)
    assert ProxyConfig.parse("socks5h://h:1").supports_udp


async def test_datagrams_not_from_the_relay_are_dropped() -> None:
    with trio.fail_after(10):
        async with open_socks5_proxy() as proxy:
            got = Collector()
            cfg = ProxyConfig.parse(proxy.url)
            async with open_socks5_udp_endpoint(cfg, host="127.0.0.1", handler=got) as ep:
                assoc = ep.association
                with trio.socket.socket(type=trio.socket.SOCK_DGRAM) as spoofer:
                    await spoofer.bind(("127.0.0.1", 0))
                    # a well-formed SOCKS5 datagram, but sent straight to us, not via the relay
                    await spoofer.sendto(wrap(b"d1:ae", ("8.8.8.8", 53)), ep.local_address)
                    # loopback delivers at once: when every task is blocked, it has been read
                    await trio.testing.wait_all_tasks_blocked()
                assert assoc.statistics().dropped_foreign == 1
                assert got.got == []
                # unwrap_incoming directly: relay accepted (IPv4-mapped form too), others not
                relay = assoc.relay
                assert relay is not None
                pkt = wrap(b"x", ("1.2.3.4", 5))
                assert assoc.unwrap_incoming(pkt, relay) == (b"x", ("1.2.3.4", 5))
                mapped = ("::ffff:" + relay[0], relay[1])
                assert assoc.unwrap_incoming(pkt, mapped) == (b"x", ("1.2.3.4", 5))
                assert assoc.unwrap_incoming(pkt, (relay[0], relay[1] + 1)) is None
                frag = b"\0\0\1" + pkt[3:]
                assert assoc.unwrap_incoming(frag, relay) is None
                assert assoc.unwrap_incoming(b"\0\0\0\x09", relay) is None
                assert assoc.wrap_outgoing(b"", ("bücher.de", 1)) is None
                stats = assoc.statistics()
                assert (stats.dropped_fragments, stats.dropped_malformed) == (1, 1)
                assert (stats.dropped_foreign, stats.dropped_unsendable) == (2, 1)


async def _next_event(assoc: Socks5UdpAssociation) -> Associated | AssociationLost:
    return await assoc.events.receive()


async def test_control_connection_dropped_reassociates_with_backoff(
    mock_clock: trio.testing.MockClock,
) -> None:
    """The proxy closing the control connection ends the association: the loss is an event,
    datagrams are dropped (never sent directly) until a new association, which comes after
    the backoff; a failing re-association (the password changed) backs off doubling."""
    async with open_socks5_proxy("u", "p") as proxy:
        echo_sources: list[SocketAddress] = []
        with trio.socket.socket(type=trio.socket.SOCK_DGRAM) as echo:
            await echo.bind(("127.0.0.1", 0))
            target = echo.getsockname()
            got = Collector()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_echo, echo, echo_sources)
                async with open_socks5_udp_endpoint(
                    ProxyConfig.parse(proxy.url), host="127.0.0.1", handler=got, retry_initial=2.0
                ) as ep:
                    assoc = ep.association
                    first = assoc.relay
                    assert await _next_event(assoc) == Associated(first)  # type: ignore[arg-type]

                    await proxy.drop_associations()
                    lost = await _next_event(assoc)
                    assert isinstance(lost, AssociationLost) and lost.retry_in == 2.0
                    assert "closed the UDP association" in str(lost.error)
                    assert assoc.statistics().relay is None
                    await ep.sendto(b"lost", target)  # dropped, not sent around the proxy
                    assert assoc.statistics().dropped_unassociated == 1

                    proxy.password = "changed"  # the next attempt fails: backoff doubles
                    mock_clock.jump(2.0)
                    failed = await _next_event(assoc)
                    assert isinstance(failed, AssociationLost) and failed.retry_in == 4.0
                    assert failed.error.code == 1

                    proxy.password = "p"
                    mock_clock.jump(4.0)
                    again = await _next_event(assoc)
                    assert isinstance(again, Associated) and again.relay != first
                    assert again.relay == proxy.relay_addresses[-1] == assoc.relay

                    await ep.sendto(b"back", target)
                    await got.wait(1)
                    assert got.got == [(b"echo:back", target)]
                    assert echo_sources == [again.relay]
                    stats = assoc.statistics()
                    assert (stats.associations, stats.failures) == (2, 2)
                    assert stats.last_error is not None and "authentication" in stats.last_error
                nursery.cancel_scope.cancel()
        assert proxy.open_associations == 0


# -- a UDP tracker announce through the proxy ----------------------------------------------------


async def _udp_tracker(
    sock: trio.socket.SocketType,
    sources: list[SocketAddress],
    *,
    task_status: trio.TaskStatus[None],
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


async def test_udp_tracker_announce_through_the_proxy() -> None:
    from torrio.tracker import AnnounceRequest, Event, open_tracker_client

    sources: list[SocketAddress] = []
    with trio.fail_after(15):
        async with open_socks5_proxy("u", "p") as proxy, trio.open_nursery() as nursery:
            with trio.socket.socket(type=trio.socket.SOCK_DGRAM) as server:
                await server.bind(("127.0.0.1", 0))
                port = server.getsockname()[1]
                await nursery.start(_udp_tracker, server, sources)
                cfg = ProxyConfig.parse(proxy.url)
                async with (
                    open_socks5_udp_endpoint(cfg, host="127.0.0.1") as ep,
                    open_tracker_client(udp_endpoint=ep, retransmit_base=2.0) as client,
                ):
                    assert client.udp is not None
                    ep.set_handler(client.udp)
                    req = AnnounceRequest(
                        info_hash=b"\x11" * 20, peer_id=b"-TR0001-" + b"x" * 12, port=6881,
                        left=100, event=Event.STARTED,
                    )  # fmt: skip
                    resp = await client.announce(f"udp://127.0.0.1:{port}/announce", req)
                    assert resp.incomplete == 1 and resp.peers == ()
                    relay = proxy.relay_addresses[0]
                    # the tracker saw the proxy's relay and nothing else: connect + announce
                    assert sources == [relay, relay]
                    assert ep.local_address not in sources
                    assert (proxy.udp_from_client, proxy.udp_to_client) == (2, 2)
                    assert proxy.udp_destinations == [("127.0.0.1", port)] * 2
                nursery.cancel_scope.cancel()


# -- two DHT nodes, one behind the proxy ---------------------------------------------------------


async def test_dht_node_behind_the_proxy() -> None:
    from torrio.dht import key_for, open_node

    key = key_for(b"proxied room")
    with trio.fail_after(20):
        async with (
            open_socks5_proxy() as proxy,
            open_node(host="127.0.0.1", wait_joined=False) as direct,
            open_socks5_udp_endpoint(ProxyConfig.parse(proxy.url), host="127.0.0.1") as ep,
            open_node(endpoint=ep, local_addr=ep.local_address, wait_joined=False) as hidden,
        ):
            ep.set_handler(hidden)
            done = await hidden.bootstrap([PeerAddr("127.0.0.1", direct.port)])
            assert done is not None
            relay = proxy.relay_addresses[0]
            # the direct node knows the hidden one by the relay's address, not its own socket's
            contacts = {
                c.node.addr.as_tuple(): c.node.id for c in direct.protocol.table().contacts()
            }
            assert contacts == {relay: hidden.node_id}
            assert any(c.node.id == direct.node_id for c in hidden.protocol.table().contacts())

            # announce from behind the proxy; the direct node finds the peer
            assert await hidden.announce(key, port=9000) >= 1
            found = {p async for p in direct.get_peers(key)}
            assert PeerAddr("127.0.0.1", 9000) in found
            assert proxy.udp_from_client >= 3 and proxy.udp_to_client >= 3
            assert all(d == ("127.0.0.1", direct.port) for d in proxy.udp_destinations)


def _has_ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
async def test_udp_through_an_ipv6_proxy_to_an_ipv6_target() -> None:
    with trio.fail_after(10):
        async with open_socks5_proxy("u", "p", host="::1") as proxy:
            assert proxy.url.startswith("socks5://u:p@[::1]:")
            with trio.socket.socket(trio.socket.AF_INET6, trio.socket.SOCK_DGRAM) as echo:
                await echo.bind(("::1", 0))
                target = (str(echo.getsockname()[0]), int(echo.getsockname()[1]))
                sources: list[SocketAddress] = []
                got = Collector()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_echo, echo, sources)
                    cfg = ProxyConfig.parse(proxy.url)
                    async with open_socks5_udp_endpoint(cfg, handler=got) as ep:
                        assert ep.association.relay == proxy.relay_addresses[0]
                        await ep.sendto(b"six", target)
                        await got.wait(1)
                    nursery.cancel_scope.cancel()
                assert got.got == [(b"echo:six", target)]
                assert [s[:2] for s in sources] == [proxy.relay_addresses[0]]


# -- a uTP stream through the proxy --------------------------------------------------------------


async def test_utp_stream_through_the_proxy() -> None:
    from torrio.utp import open_utp_socket

    payload = bytes(range(256)) * 800  # 200 KiB: many datagrams, acks and window updates
    with trio.fail_after(20):
        async with (
            open_socks5_proxy("u", "p") as proxy,
            open_utp_socket(("127.0.0.1", 0)) as server,
            open_socks5_udp_endpoint(ProxyConfig.parse(proxy.url), host="127.0.0.1") as ep,
            open_utp_socket(endpoint=ep) as client,
            trio.open_nursery() as nursery,
        ):
            ep.set_handler(client)
            server_addr = server.local_address
            assert server_addr is not None
            received = bytearray()
            accepted: list[SocketAddress] = []

            async def serve_one() -> None:
                async for stream in server.accept():
                    accepted.append(stream.remote_address)
                    while len(received) < len(payload):
                        received.extend(await stream.receive_some(65536))
                    await stream.send_all(b"got it")
                    return

            nursery.start_soon(serve_one)
            stream = await client.connect(server_addr)
            await stream.send_all(payload)
            reply = b""
            while len(reply) < 6:
                reply += await stream.receive_some(64)
            assert reply == b"got it" and bytes(received) == payload
            # the server's peer is the relay, never our own socket
            assert accepted == [proxy.relay_addresses[0]]
            assert set(proxy.udp_destinations) == {server_addr}
            assert proxy.udp_from_client > 100 and proxy.udp_to_client > 10
            assert ep.association.statistics().dropped_foreign == 0
            nursery.cancel_scope.cancel()


async def test_drop_closes_the_control_connection_and_reassociates() -> None:
    with trio.fail_after(10):
        async with (
            open_socks5_proxy() as proxy,
            open_socks5_udp_association(ProxyConfig.parse(proxy.url), retry_initial=0.01) as assoc,
        ):
            first = await _next_event(assoc)
            assert isinstance(first, Associated) and proxy.open_associations == 1
            await assoc.drop()
            lost = await _next_event(assoc)
            assert isinstance(lost, AssociationLost) and "dropped on request" in str(lost.error)
            again = await _next_event(assoc)
            assert isinstance(again, Associated) and again.relay == await assoc.wait_associated()
            assert proxy.associations == 2
            assert assoc.statistics().associations == 2


async def test_proxy_named_by_host_name_gets_a_socket_of_the_relays_family() -> None:
    with trio.fail_after(10):
        async with open_socks5_proxy() as proxy:
            cfg = ProxyConfig.parse(f"socks5://localhost:{proxy.port}")
            async with open_socks5_udp_endpoint(cfg) as ep:
                assert ep.association.relay == proxy.relay_addresses[0]
                assert ep.socket.family == trio.socket.AF_INET
                assert ep.local_address[0] == "0.0.0.0"


# -- the session's shared socket: UdpMux.set_proxy ------------------------------------------------


class _FakeProxy:
    """A UdpProxy that relabels datagrams, to test the mux's side of the hook alone."""

    def __init__(self, incoming: tuple[bytes, SocketAddress] | None) -> None:
        self.incoming = incoming
        self.outgoing: list[tuple[bytes, SocketAddress]] = []

    def wrap_outgoing(
        self, data: bytes | memoryview, addr: SocketAddress
    ) -> tuple[bytes, SocketAddress] | None:
        self.outgoing.append((bytes(data), addr))
        return None

    def unwrap_incoming(
        self, data: bytes | memoryview, src: SocketAddress
    ) -> tuple[bytes | memoryview, SocketAddress] | None:
        if self.incoming is None:
            return None
        return self.incoming


async def test_mux_routes_unwrapped_datagrams_by_their_real_family() -> None:
    from torrio.client._udp_mux import open_udp_mux

    async with open_udp_mux("127.0.0.1", 0, buffer_size=None) as mux:
        v4, v6 = Collector(), Collector()
        mux.register("dht", v4, family=4)
        mux.register("dht", v6, family=6)
        # an IPv6 DHT reply relayed over the IPv4 socket goes to the IPv6 node
        mux.set_proxy(_FakeProxy((b"d1:y1:re", ("2001:db8::7", 6881))))
        mux.dispatch(b"\0\0\0\x04...", ("127.0.0.1", 1080), 4)
        assert v6.got == [(b"d1:y1:re", ("2001:db8::7", 6881))] and v4.got == []
        # what the proxy refuses is dropped, never routed as it came
        mux.set_proxy(_FakeProxy(None))
        before = mux.statistics().dropped
        mux.dispatch(b"d1:y1:qe", ("127.0.0.1", 9), 4)
        assert v4.got == [] and mux.statistics().dropped == before + 1
        # and nothing is sent while the proxy has no relay
        fake = _FakeProxy(None)
        mux.set_proxy(fake)
        await mux.sendto(b"d1:y1:qe", ("127.0.0.1", 9))
        assert fake.outgoing == [(b"d1:y1:qe", ("127.0.0.1", 9))]
        assert mux.statistics().sent == 0


async def test_session_udp_stack_through_the_proxy() -> None:
    """The shared socket with a DHT node and the UDP tracker client on it, all through one
    association: the remote DHT node and the tracker see the relay only; set_proxy(None)
    returns to direct sends."""
    from torrio.client._udp_mux import open_udp_mux
    from torrio.dht import open_node
    from torrio.tracker import AnnounceRequest, open_tracker_client

    sources: list[SocketAddress] = []
    with trio.fail_after(20):
        async with (
            open_socks5_proxy("u", "p") as proxy,
            open_udp_mux("127.0.0.1", 0, buffer_size=None) as mux,
            open_socks5_udp_association(
                ProxyConfig.parse(proxy.url), client_addr=("0.0.0.0", mux.port)
            ) as assoc,
            open_node(host="127.0.0.1", wait_joined=False) as direct,
            trio.open_nursery() as nursery,
        ):
            mux.set_proxy(assoc)  # before any consumer sends
            async with (
                open_node(endpoint=mux, local_addr=mux.local_address(), wait_joined=False) as node,
                open_tracker_client(udp_endpoint=mux, retransmit_base=2.0) as trackers,
            ):
                mux.register("dht", node)
                assert trackers.udp is not None
                mux.register("tracker", trackers.udp)
                relay = assoc.relay
                await node.bootstrap([PeerAddr("127.0.0.1", direct.port)])
                seen = {c.node.addr.as_tuple() for c in direct.protocol.table().contacts()}
                assert seen == {relay}

                with trio.socket.socket(type=trio.socket.SOCK_DGRAM) as server:
                    await server.bind(("127.0.0.1", 0))
                    port = server.getsockname()[1]
                    await nursery.start(_udp_tracker, server, sources)
                    req = AnnounceRequest(info_hash=b"\x22" * 20, peer_id=b"p" * 20, port=6881)
                    await trackers.announce(f"udp://127.0.0.1:{port}/announce", req)
                    assert sources == [relay, relay]

                    stats = mux.statistics()
                    assert stats.dht >= 1 and stats.tracker == 2
                    assert assoc.statistics().sent == stats.sent

                    # direct again: the tracker now sees our own socket
                    mux.set_proxy(None)
                    await trackers.announce(f"udp://127.0.0.1:{port}/announce", req)
                    assert sources[2:] == [mux.local_address()]  # the connection id is cached
            nursery.cancel_scope.cancel()


async def test_udp_stack_utp_through_the_proxy() -> None:
    """uTP on the shared socket (its send-without-await path and the receive loop's uTP bulk
    path) goes through the association too: the server sees only the relay."""
    from torrio.client._udp_mux import open_udp_stack
    from torrio.utp import open_utp_socket

    payload = bytes(range(256)) * 800
    with trio.fail_after(20):
        async with (
            open_socks5_proxy() as proxy,
            open_utp_socket(("127.0.0.1", 0)) as server,
            open_socks5_udp_association(ProxyConfig.parse(proxy.url)) as assoc,
            open_udp_stack("127.0.0.1", 0, dht=False, buffer_size=None, proxy=assoc) as stack,
            trio.open_nursery() as nursery,
        ):
            assert stack.utp is not None and server.local_address is not None
            accepted: list[SocketAddress] = []
            received = bytearray()

            async def serve_one() -> None:
                async for stream in server.accept():
                    accepted.append(stream.remote_address)
                    while len(received) < len(payload):
                        received.extend(await stream.receive_some(65536))
                    await stream.send_all(b"ok")
                    return

            nursery.start_soon(serve_one)
            stream = await stack.utp.connect(server.local_address)
            await stream.send_all(payload)
            assert await stream.receive_some(2) == b"ok" and bytes(received) == payload
            assert accepted == [assoc.relay]
            assert set(proxy.udp_destinations) == {server.local_address}
            assert assoc.statistics().sent == stack.mux.statistics().sent > 100
            nursery.cancel_scope.cancel()
