"""The session's shared UDP socket: routing by shape, per-family handlers, sends, real consumers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.client._errors import ClientError
from torrio.client._udp_mux import (
    BOOTSTRAP_RETRY,
    DEFAULT_UDP_BUFFER,
    RESET_RATE,
    UdpMux,
    _join,
    open_udp_mux,
    open_udp_stack,
    resolve_bootstrap,
)
from torrio.core import PeerAddr, SocketAddress
from torrio.dht import DhtConfig, DhtProtocol, Node, key_for, open_node
from torrio.testing.fakenet import open_fake_network
from torrio.tracker import (
    AnnounceRequest,
    ConnectRequest,
    ConnectResponse,
    UdpAnnounce,
    UdpAnnounceReply,
    UdpTrackerClient,
    decode_request,
    encode_response,
)
from torrio.utp import (
    PacketType,
    UtpConnectionReset,
    decode_packet,
    encode_packet,
    open_utp_socket,
)


class Recorder:
    """A DatagramHandler that keeps what it gets (as the objects it was handed)."""

    def __init__(self) -> None:
        self.got: list[tuple[object, SocketAddress]] = []
        self.event = trio.Event()

    def datagram_received(self, data: bytes, addr: SocketAddress) -> None:
        self.got.append((data, addr))
        self.event.set()


def _syn() -> bytes:
    return encode_packet(PacketType.SYN, 7, 0, 0, 0, 1, 0)


async def _wait_received(mux: UdpMux, n: int) -> None:
    with trio.fail_after(5):
        while mux.statistics().received < n:  # noqa: ASYNC110 (kernel delivery)
            await trio.sleep(0.001)


async def test_routes_each_shape_and_drops_the_rest() -> None:
    async with open_udp_mux("127.0.0.1", 0) as mux:
        dht, utp, tracker = Recorder(), Recorder(), Recorder()
        mux.register("dht", dht)
        mux.register("utp", utp)
        mux.register("tracker", tracker)  # no is_reply: the BEP 15 reply shape decides
        reply = encode_response(ConnectResponse(transaction_id=5, connection_id=9))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.1", 0))
            for d in (b"d1:y1:qe", _syn(), reply, b"hello", b"\x00\x00\x00\x09abcd", b"\xff" * 30):
                peer.sendto(d, ("127.0.0.1", mux.port))
            await _wait_received(mux, 6)
            src = peer.getsockname()
        s = mux.statistics()
        assert (s.dht, s.utp, s.tracker, s.dropped, s.no_handler) == (1, 1, 1, 3, 0)
        assert dht.got == [(b"d1:y1:qe", src)]
        assert tracker.got == [(reply, src)]
        assert type(dht.got[0][0]) is bytes
        # uTP gets a view of the receive buffer (decoded in place, never kept)
        assert isinstance(utp.got[0][0], memoryview)


async def test_unregistered_routes_count_as_no_handler() -> None:
    async with open_udp_mux("127.0.0.1", 0) as mux:
        dht = Recorder()
        mux.register("dht", dht)
        mux.unregister("dht")
        mux.dispatch(b"d1:ae", ("127.0.0.1", 1))
        mux.dispatch(_syn(), ("127.0.0.1", 1))
        mux.dispatch(b"\x00\x00\x00\x00" + bytes(12), ("127.0.0.1", 1))
        mux.dispatch(b"", ("127.0.0.1", 1))
        s = mux.statistics()
        assert (s.no_handler, s.dropped, s.received) == (3, 1, 4)
        assert dht.got == []


async def test_tracker_route_asks_the_client_which_replies_it_awaits() -> None:
    async with open_udp_mux("127.0.0.1", 0) as mux:
        client = UdpTrackerClient(mux)
        mux.register("tracker", client)
        # nobody awaits transaction 5: dropped by the matcher, never reaches the client
        mux.dispatch(encode_response(ConnectResponse(5, 9)), ("127.0.0.1", 1))
        assert mux.statistics().dropped == 1
        assert client.statistics() == UdpTrackerClient(mux).statistics()


async def test_matcher_only_for_tracker_and_routes_checked() -> None:
    async with open_udp_mux("127.0.0.1", 0) as mux:
        with pytest.raises(ClientError):
            mux.register("dht", Recorder(), match=lambda d, a: True)
        with pytest.raises(ClientError):
            mux.register("gossip", Recorder())  # type: ignore[arg-type]
        with pytest.raises(ClientError):
            mux.register("dht", Recorder(), family=5)


async def test_handler_errors_are_counted_not_raised() -> None:
    class Broken:
        def datagram_received(self, data: bytes, addr: SocketAddress) -> None:
            raise RuntimeError("bug")

    async with open_udp_mux("127.0.0.1", 0) as mux:
        mux.register("dht", Broken())
        mux.dispatch(b"d1:ae", ("127.0.0.1", 1))
        assert mux.statistics().handler_errors == 1


def _rmem_max() -> int:
    try:
        return int(Path("/proc/sys/net/core/rmem_max").read_text())
    except OSError:  # pragma: no cover - not Linux
        return 0


async def test_socket_buffers_are_raised() -> None:
    async with open_udp_mux("127.0.0.1", 0) as mux:
        s = mux.statistics()
        # Linux reports double the value set, capped at rmem_max
        want = min(DEFAULT_UDP_BUFFER, _rmem_max())
        assert s.recv_buffer >= want
        big_window = mux.utp_config().recv_buffer_size
        assert big_window <= s.recv_buffer
    async with open_udp_mux("127.0.0.1", 0, buffer_size=None) as small:
        assert small.utp_config().recv_buffer_size <= big_window


async def test_sendto_picks_the_family_socket_and_binds_ipv6_on_the_same_port() -> None:
    async with open_udp_mux("127.0.0.1", 0, host6="::1") as mux:
        assert mux.families == (4, 6)
        assert mux.local_address(6)[1] == mux.port == mux.local_address(4)[1]
        v4, v6 = Recorder(), Recorder()
        mux.register("dht", v4, family=4)
        mux.register("dht", v6, family=6)
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
            socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as b,
        ):
            a.bind(("127.0.0.1", 0))
            b.bind(("::1", 0))
            a.sendto(b"d1:a1:4e", ("127.0.0.1", mux.port))
            b.sendto(b"d1:a1:6e", ("::1", mux.port))
            await _wait_received(mux, 2)
            assert [d for d, _ in v4.got] == [b"d1:a1:4e"]
            assert [d for d, _ in v6.got] == [b"d1:a1:6e"]
            await mux.sendto(b"to4", ("127.0.0.1", a.getsockname()[1]))
            await mux.sendto(b"to6", ("::1", b.getsockname()[1]))
            assert a.recvfrom(100) == (b"to4", ("127.0.0.1", mux.port))
            assert b.recvfrom(100)[0] == b"to6"
        assert mux.statistics().sent == 2


async def test_sendto_a_family_without_socket_raises_oserror() -> None:
    async with open_udp_mux("127.0.0.1", 0) as mux:
        with pytest.raises(OSError):
            await mux.sendto(b"x", ("::1", 9))
        with pytest.raises(ClientError):
            mux.local_address(6)
        assert mux.statistics().send_errors == 1


async def test_bind_failure_is_a_client_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        with pytest.raises(ClientError):
            async with open_udp_mux("127.0.0.1", taken.getsockname()[1]):
                pass  # pragma: no cover


async def test_dht_utp_and_tracker_share_one_port() -> None:
    """A real DHT node, uTP socket and UDP tracker client all on one mux, each reaching a peer."""
    async with (
        open_udp_mux("127.0.0.1", 0) as mux,
        open_node(host="127.0.0.1") as other_dht,
        open_utp_socket(("127.0.0.1", 0)) as other_utp,
        open_node(
            endpoint=mux, local_addr=mux.local_address(), bootstrap=[], wait_joined=False
        ) as node,
        open_utp_socket(endpoint=mux, config=mux.utp_config()) as utp,
        trio.open_nursery() as nursery,
    ):
        mux.register("dht", node, family=4)
        mux.register("utp", utp)
        client = UdpTrackerClient(mux, retransmit_base=1.0)
        mux.register("tracker", client)

        # DHT: our node announces, the other node's get_peers finds us
        node.add_node(PeerAddr("127.0.0.1", other_dht.port))
        with trio.fail_after(10):
            while node.statistics().routing_table.nodes < 1:  # noqa: ASYNC110 (no event)
                await trio.sleep(0.01)
            stored = await node.announce(key_for("room"), port=4242)
            assert stored >= 1
            found = [p async for p in other_dht.get_peers(key_for("room"))]
        assert any(p.port == 4242 for p in found)

        # uTP: both ways through the mux
        async def echo() -> None:
            async for s in other_utp.accept():
                async with s:
                    await s.send_all(await s.receive_some())
                return

        nursery.start_soon(echo)
        addr = other_utp.local_address
        assert addr is not None
        with trio.fail_after(10):
            stream = await utp.connect(addr)
            async with stream:
                await stream.send_all(b"ping over the mux")
                assert await stream.receive_some() == b"ping over the mux"

        # UDP tracker: a minimal BEP 15 responder
        tracker_sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        with tracker_sock:
            await tracker_sock.bind(("127.0.0.1", 0))

            async def serve_tracker() -> None:
                for _ in range(2):
                    data, src = await tracker_sock.recvfrom(2048)
                    req = decode_request(data)
                    if isinstance(req, ConnectRequest):
                        out = encode_response(ConnectResponse(req.transaction_id, 77))
                    else:
                        assert isinstance(req, UdpAnnounce)
                        out = encode_response(UdpAnnounceReply(req.transaction_id, 1800, 1, 2, ()))
                    await tracker_sock.sendto(out, src)

            nursery.start_soon(serve_tracker)
            port = tracker_sock.getsockname()[1]
            with trio.fail_after(10):
                resp = await client.announce(
                    f"udp://127.0.0.1:{port}/announce",
                    AnnounceRequest(info_hash=b"i" * 20, peer_id=b"p" * 20, port=mux.port),
                )
            assert resp.interval == 1800

        s = mux.statistics()
        assert s.dht >= 2 and s.utp >= 2 and s.tracker == 2
        assert s.handler_errors == 0


async def test_udp_stack_opens_and_registers_the_consumers(tmp_path: Path) -> None:
    async with (
        open_node(host="127.0.0.1") as router,
        open_udp_stack(
            "127.0.0.1",
            0,
            dht_bootstrap=[f"127.0.0.1:{router.port}"],
            dht_state=tmp_path / "dht.state",
        ) as a,
        open_udp_stack("127.0.0.1", 0, dht_bootstrap=[("127.0.0.1", router.port)]) as b,
        trio.open_nursery() as nursery,
    ):
        assert a.utp is not None and b.utp is not None and a.dht is not None and b.dht is not None
        assert a.dht6 is None
        assert a.mux.handler("utp") is a.utp and a.mux.handler("dht", 4) is a.dht
        with trio.fail_after(20):
            while a.dht.statistics().routing_table.nodes < 1:  # noqa: ASYNC110 (no event)
                await trio.sleep(0.01)
            await a.dht.announce(key_for("stack"), port=a.mux.port)
            found = [p async for p in b.dht.get_peers(key_for("stack"))]
            assert PeerAddr("127.0.0.1", a.mux.port) in found

            async def accept_one() -> None:
                assert b.utp is not None
                async for s in b.utp.accept():
                    await s.aclose()
                    return

            nursery.start_soon(accept_one)
            stream = await a.utp.connect(b.mux.local_address())
            await stream.aclose()
    assert (tmp_path / "dht.state").exists()


async def test_udp_stack_without_utp_or_dht_drops_their_datagrams() -> None:
    async with open_udp_stack("127.0.0.1", 0, utp=False, dht=False) as stack:
        assert (stack.utp, stack.dht, stack.dht6) == (None, None, None)
        stack.mux.dispatch(b"d1:ae", ("127.0.0.1", 1))
        stack.mux.dispatch(_syn(), ("127.0.0.1", 1))
        assert stack.mux.statistics().no_handler == 2


async def test_udp_stack_ipv6_gets_its_own_dht_node() -> None:
    async with open_udp_stack("127.0.0.1", 0, host6="::1", utp=False) as stack:
        assert stack.dht is not None and stack.dht6 is not None
        assert stack.mux.handler("dht", 6) is stack.dht6
        assert stack.dht6.local_addr == stack.mux.local_address(6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_any_datagram_is_routed_or_counted(datagrams: list[bytes]) -> None:
    """Hostile input: every datagram lands in exactly one counter; nothing raises."""

    async def main() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        mux = UdpMux({4: sock})
        try:
            for route in ("dht", "utp", "tracker"):
                mux.register(route, Recorder())
            for d in datagrams:
                mux.dispatch(d, ("127.0.0.1", 1))
            s = mux.statistics()
            assert s.received == len(datagrams)
            assert s.dht + s.utp + s.tracker + s.dropped + s.no_handler == s.received
            assert s.handler_errors == 0
        finally:
            sock.close()

    trio.run(main)


async def test_resolve_bootstrap_forms() -> None:
    entries: list[tuple[str, int] | str] = [
        "127.0.0.1:6881",
        "[::1]:7000",
        ("127.0.0.2", 1),
        "localhost:6882",
        "no-port",
        "host:notaport",
        "name.invalid:1",
    ]
    v4 = await resolve_bootstrap(entries, 4)
    assert v4[:3] == [
        PeerAddr("127.0.0.1", 6881),
        PeerAddr("127.0.0.2", 1),
        PeerAddr("127.0.0.1", 6882),
    ]
    assert PeerAddr("::1", 7000) in await resolve_bootstrap(entries, 6)


async def test_join_retries_until_a_bootstrap_node_answers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_network(seed=9) as net, trio.open_nursery() as nursery:
        ep = net.endpoint()
        node = Node(DhtProtocol(None, config=DhtConfig(), now=trio.current_time()), ep, ep.addr)
        ep.set_handler(node)
        await nursery.start(node.run)
        later = ("10.200.0.1", 6881)
        nursery.start_soon(_join, node, [f"{later[0]}:{later[1]}"], 4)
        await trio.sleep(BOOTSTRAP_RETRY / 2)
        assert node.statistics().routing_table.nodes == 0
        ep2 = net.endpoint(later)
        other = Node(DhtProtocol(None, config=DhtConfig(), now=trio.current_time()), ep2, later)
        ep2.set_handler(other)
        await nursery.start(other.run)
        await trio.sleep(BOOTSTRAP_RETRY)
        assert node.statistics().routing_table.nodes == 1
        nursery.cancel_scope.cancel()


async def test_a_utp_syn_to_a_mux_without_utp_is_reset_so_the_dialer_gives_up_at_once() -> None:
    """Regression: the SYN used to be dropped silently, so a ``both`` dialer waited out its ~3 s
    uTP timeout before falling back to TCP."""
    async with (
        open_udp_stack("127.0.0.1", 0, utp=False, dht=False) as stack,
        open_utp_socket(("127.0.0.1", 0)) as dialer,
    ):
        with trio.fail_after(2), pytest.raises(UtpConnectionReset):
            await dialer.connect(stack.mux.local_address())
        s = stack.mux.statistics()
        assert (s.resets_sent, s.resets_limited, s.no_handler) == (1, 0, 1)


async def test_syn_resets_answer_the_syn_and_are_rate_limited(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_udp_mux("127.0.0.1", 0) as mux:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.1", 0))
            peer.setblocking(False)
            src = peer.getsockname()
            for i in range(RESET_RATE + 10):
                mux.dispatch(encode_packet(PacketType.SYN, 1000 + i, 0, 0, 0, 77 + i, 0), src)
            # DATA/STATE for nobody is not answered (only a SYN opens a connection)
            mux.dispatch(encode_packet(PacketType.DATA, 5, 0, 0, 0, 9, 0, b"x"), src)
            mux.dispatch(encode_packet(PacketType.STATE, 5, 0, 0, 0, 9, 0), src)
            s = mux.statistics()
            assert (s.resets_sent, s.resets_limited) == (RESET_RATE, 10)
            first = decode_packet(peer.recv(100))
            assert first.type == PacketType.RESET
            # the id the dialer receives on, and its SYN's sequence number acknowledged
            assert (first.connection_id, first.ack_nr) == (1000, 77)
            autojump_clock.jump(1.0)  # a new second: a new budget
            mux.dispatch(encode_packet(PacketType.SYN, 1, 0, 0, 0, 2, 0), src)
            assert mux.statistics().resets_sent == RESET_RATE + 1
            # a short or extended datagram with the SYN byte is not answered
            mux.dispatch(b"\x41\x00\x00\x01", src)
            assert mux.statistics().resets_sent == RESET_RATE + 1


async def test_a_registered_utp_socket_gets_bulk_datagrams_on_the_fast_path() -> None:
    """DATA/STATE/FIN skip the per-datagram routing but are still counted as uTP."""
    async with (
        open_udp_stack("127.0.0.1", 0, utp=True, dht=False) as stack,
        open_utp_socket(("127.0.0.1", 0)) as other,
    ):
        assert stack.utp is not None
        payload = bytes(range(256)) * 400

        async def serve() -> None:
            async for stream in stack.utp.accept():  # type: ignore[union-attr]
                got = bytearray()
                while chunk := await stream.receive_some():
                    got += chunk
                await stream.send_all(bytes(got))
                await stream.send_eof()
                await stream.wait_all_sent()
                return

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve)
                stream = await other.connect(stack.mux.local_address())
                await stream.send_all(payload)
                await stream.send_eof()
                echoed = bytearray()
                while chunk := await stream.receive_some():
                    echoed += chunk
                await stream.aclose()
        assert echoed == payload
        s = stack.mux.statistics()
        assert s.utp == s.received > len(payload) // 1400
        assert s.sent > len(payload) // 1400 and s.send_errors == s.handler_errors == 0
