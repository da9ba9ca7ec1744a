"""The connect strategy for --transport tcp|utp|both, and the two-way acceptor."""

from __future__ import annotations

import socket

import pytest
import trio

from torrio.client._errors import ClientError
from torrio.client._transport import (
    Dialed,
    Transport,
    peer_address,
    serve_incoming,
    stream_kind,
)
from torrio.client._udp_mux import open_udp_mux
from torrio.core import InfoHash, PeerAddr, PeerId
from torrio.handshake import EncryptionPolicy, Handshaker
from torrio.utp import UtpError, UtpStream, open_utp_socket
from torrio.wire import Have, Interested, Piece, open_peer_connection

INFO_HASH = InfoHash(v1=b"\x11" * 20)


def _handshaker(policy: EncryptionPolicy = EncryptionPolicy.PREFER) -> Handshaker:
    hs = Handshaker(PeerId.generate(), policy=policy, timeout=10)
    hs.add_torrent(INFO_HASH)
    return hs


async def test_handshake_and_wire_over_utp_through_the_mux() -> None:
    """Our Handshaker (MSE, preferred) and torrio.wire over a UtpStream, both ends on a mux."""
    got: list[object] = []
    accepted: list[str] = []

    async with (
        open_udp_mux("127.0.0.1", 0) as mux_a,
        open_udp_mux("127.0.0.1", 0) as mux_b,
        open_utp_socket(endpoint=mux_a, config=mux_a.utp_config()) as utp_a,
        open_utp_socket(endpoint=mux_b, config=mux_b.utp_config()) as utp_b,
        trio.open_nursery() as nursery,
    ):
        mux_a.register("utp", utp_a)
        mux_b.register("utp", utp_b)
        server_hs = _handshaker()
        done = trio.Event()

        async def handle(stream: trio.abc.Stream) -> None:
            accepted.append(stream_kind(stream))
            addr = peer_address(stream)
            assert addr == PeerAddr("127.0.0.1", mux_a.port)
            result = await server_hs.accept(stream, peer=addr)
            async with open_peer_connection(result.stream, num_pieces=8) as conn:
                got.append(await conn.receive())
                got.append(await conn.receive())
                await conn.send(Have(7))
                done.set()
                await trio.sleep_forever()

        await nursery.start(serve_incoming, handle, [], utp_b)
        transport = Transport("utp", utp=utp_a, connect_timeout=10)
        target = PeerAddr("127.0.0.1", mux_b.port)
        with trio.fail_after(20):
            dialed = await transport.connect(target)
            assert dialed.kind == "utp" and isinstance(dialed.stream, UtpStream)
            result = await _handshaker().initiate(
                dialed.stream,
                INFO_HASH,
                peer=target,
                reconnect=lambda: transport.redial(dialed),
            )
            assert result.used_mse  # PREFER both sides: MSE handshake, plaintext payload
            async with open_peer_connection(result.stream, num_pieces=8) as conn:
                await conn.send(Interested())
                await conn.send(Piece(3, 0, b"x" * 16384))
                assert await conn.receive() == Have(7)
                await done.wait()
        nursery.cancel_scope.cancel()
    assert accepted == ["utp"]
    assert got == [Interested(), Piece(3, 0, b"x" * 16384)]
    assert mux_a.statistics().utp > 0 and mux_b.statistics().utp > 0


async def _tcp_only_peer(
    nursery: trio.Nursery, accepted: list[trio.abc.Stream]
) -> tuple[PeerAddr, socket.socket]:
    """A TCP listener whose UDP port number is held by a socket that never answers."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", port))

    async def keep(stream: trio.abc.Stream) -> None:
        accepted.append(stream)
        await trio.sleep_forever()

    await nursery.start(serve_incoming, keep, listeners, None)
    return PeerAddr("127.0.0.1", port), silent


async def test_both_falls_back_to_tcp_when_the_peer_has_no_utp() -> None:
    accepted: list[trio.abc.Stream] = []
    async with (
        open_udp_mux("127.0.0.1", 0) as mux,
        open_utp_socket(endpoint=mux, config=mux.utp_config()) as utp,
        trio.open_nursery() as nursery,
    ):
        mux.register("utp", utp)
        target, silent = await _tcp_only_peer(nursery, accepted)
        with silent:
            transport = Transport("both", utp=utp, utp_timeout=0.3, connect_timeout=5)
            with trio.fail_after(10):
                first = await transport.connect(target)
            assert first.kind == "tcp" and isinstance(first.stream, trio.SocketStream)
            s = transport.statistics()
            assert (s.utp_attempts, s.utp_failed, s.fallbacks, s.tcp_connected) == (1, 1, 1, 1)
            # remembered: the next dial goes straight to TCP
            with trio.fail_after(2):
                second = await transport.connect(target)
                again = await transport.redial(second)
            assert second.kind == "tcp" and isinstance(again, trio.SocketStream)
            s = transport.statistics()
            assert (s.utp_attempts, s.tcp_connected, s.no_utp_known) == (1, 3, 1)
            for d in (first.stream, second.stream, again):
                await d.aclose()
        nursery.cancel_scope.cancel()
    assert len(accepted) == 3
    assert all(stream_kind(st) == "tcp" for st in accepted)


async def test_both_prefers_utp_and_tcp_mode_never_uses_it() -> None:
    async with (
        open_udp_mux("127.0.0.1", 0) as mux_a,
        open_udp_mux("127.0.0.1", 0) as mux_b,
        open_utp_socket(endpoint=mux_a) as utp_a,
        open_utp_socket(endpoint=mux_b) as utp_b,
        trio.open_nursery() as nursery,
    ):
        mux_a.register("utp", utp_a)
        mux_b.register("utp", utp_b)
        kinds: list[str] = []
        listeners = await trio.open_tcp_listeners(mux_b.port, host="127.0.0.1")

        async def handle(stream: trio.abc.Stream) -> None:
            kinds.append(stream_kind(stream))
            assert peer_address(stream) is not None
            await stream.aclose()

        await nursery.start(serve_incoming, handle, listeners, utp_b)
        target = PeerAddr("127.0.0.1", mux_b.port)
        with trio.fail_after(10):
            both = await Transport("both", utp=utp_a).connect(target)
            tcp = await Transport("tcp", utp=utp_a).connect(target)
            while len(kinds) < 2:  # noqa: ASYNC110 (handlers run in their own tasks)
                await trio.sleep(0.01)
        assert (both.kind, tcp.kind) == ("utp", "tcp")
        assert sorted(kinds) == ["tcp", "utp"]
        await both.stream.aclose()
        await tcp.stream.aclose()
        nursery.cancel_scope.cancel()


async def test_utp_only_does_not_fall_back() -> None:
    accepted: list[trio.abc.Stream] = []
    async with (
        open_udp_mux("127.0.0.1", 0) as mux,
        open_utp_socket(endpoint=mux) as utp,
        trio.open_nursery() as nursery,
    ):
        mux.register("utp", utp)
        target, silent = await _tcp_only_peer(nursery, accepted)
        with silent:
            transport = Transport("utp", utp=utp, connect_timeout=0.3)
            with pytest.raises((trio.TooSlowError, UtpError)):
                await transport.connect(target)
        s = transport.statistics()
        assert (s.utp_failed, s.tcp_attempts, s.fallbacks) == (1, 0, 0)
        nursery.cancel_scope.cancel()
    assert accepted == []


async def test_tcp_dialer_is_replaceable_and_errors_propagate() -> None:
    calls: list[PeerAddr] = []

    async def refuse(addr: PeerAddr) -> trio.abc.Stream:
        calls.append(addr)
        raise ConnectionRefusedError("nope")

    transport = Transport("tcp", tcp_connect=refuse)
    with pytest.raises(ConnectionRefusedError):
        await transport.connect(PeerAddr("127.0.0.1", 9))
    assert calls == [PeerAddr("127.0.0.1", 9)]
    assert transport.statistics().tcp_failed == 1
    assert not transport.accepts_utp


async def test_modes_are_checked() -> None:
    with pytest.raises(ClientError):
        Transport("quic")
    with pytest.raises(ClientError):
        Transport("utp")
    with pytest.raises(ClientError):
        Transport("both", utp=None)


async def test_no_utp_memory_is_bounded() -> None:
    async with (
        open_udp_mux("127.0.0.1", 0) as mux,
        open_utp_socket(endpoint=mux) as utp,
    ):
        mux.register("utp", utp)

        async def refuse(addr: PeerAddr) -> trio.abc.Stream:
            raise ConnectionRefusedError

        transport = Transport("both", utp=utp, utp_timeout=0.01, tcp_connect=refuse, remember=3)
        for port in range(20000, 20006):
            with pytest.raises(ConnectionRefusedError):
                await transport.connect(PeerAddr("127.0.0.1", port))
        assert transport.statistics().no_utp_known == 3


def test_peer_address_of_an_unknown_stream_is_none() -> None:
    class Other(trio.abc.Stream):
        async def send_all(self, data: bytes | bytearray | memoryview) -> None: ...
        async def wait_send_all_might_not_block(self) -> None: ...
        async def receive_some(self, max_bytes: int | None = None) -> bytes:
            return b""

        async def aclose(self) -> None: ...

    assert peer_address(Other()) is None
    assert stream_kind(Other()) == "tcp"
    assert Dialed(Other(), "tcp", PeerAddr("127.0.0.1", 1)).kind == "tcp"


def test_incoming_streams_are_counted_per_transport() -> None:
    transport = Transport("tcp")
    transport.note_incoming("utp")
    transport.note_incoming("tcp")
    transport.note_incoming("tcp")
    s = transport.statistics()
    assert (s.tcp_incoming, s.utp_incoming) == (2, 1)


async def test_a_family_without_a_utp_port_is_not_tried_over_utp() -> None:
    """Regression: a v4-only UDP port cannot send a SYN to an IPv6 peer; ``both`` used to wait
    out the uTP timeout before TCP, ``utp`` until the connect timeout."""
    async with (
        open_udp_mux("127.0.0.1", 0) as mux,
        open_utp_socket(endpoint=mux) as utp,
    ):
        mux.register("utp", utp)
        dialed: list[PeerAddr] = []

        async def tcp(addr: PeerAddr) -> trio.abc.Stream:
            dialed.append(addr)
            raise ConnectionRefusedError

        v6 = PeerAddr("::1", 1)
        both = Transport("both", utp=utp, tcp_connect=tcp, utp_families=mux.families)
        with trio.fail_after(1), pytest.raises(ConnectionRefusedError):
            await both.connect(v6)
        s = both.statistics()
        assert (s.utp_attempts, s.fallbacks, dialed) == (0, 0, [v6])
        only = Transport("utp", utp=utp, utp_families=mux.families)
        with trio.fail_after(1), pytest.raises(UtpError):
            await only.connect(v6)
        assert only.statistics().utp_failed == 1
