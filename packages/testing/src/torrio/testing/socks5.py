"""A SOCKS5 proxy for tests: CONNECT and UDP ASSOCIATE (RFC 1928), username/password (RFC 1929).

Loopback only, port 0, torn down with its ``async with`` block, and it counts everything so a test
can prove traffic went through it::

    async with open_socks5_proxy("user", "secret") as proxy:
        ... proxy.url ...                      # socks5://user:secret@127.0.0.1:PORT
        assert proxy.udp_from_client == 1      # datagrams relayed out for the client
        assert proxy.udp_to_client == 1        # datagrams relayed back to it

Each UDP association gets its own relay socket, which is both where the client sends (with the
SOCKS5 header) and the source remote hosts see; it lives as long as the association's TCP
control connection. The client's UDP address is the ASSOCIATE request's DST when it names a
port, else the first datagram from the control connection's IP. Fragments and malformed headers
are dropped and counted. Deliberately written apart from torrio.client's codec so the two check
each other.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
from collections.abc import AsyncIterator
from functools import partial

import attrs
import trio

__all__ = ["Socks5TestProxy", "open_socks5_proxy"]

Address = tuple[str, int]


class _Closed(Exception):
    pass


async def _read_exact(stream: trio.SocketStream, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = await stream.receive_some(n - len(buf))
        if not chunk:
            raise _Closed
        buf += chunk
    return buf


def _pack_addr(host: str, port: int) -> bytes:
    if ":" in host:
        return b"\x04" + socket.inet_pton(socket.AF_INET6, host) + struct.pack(">H", port)
    return b"\x01" + socket.inet_pton(socket.AF_INET, host) + struct.pack(">H", port)


def _norm(host: str) -> str:
    return str(ipaddress.ip_address(host.split("%", 1)[0]))


@attrs.define(eq=False)
class Socks5TestProxy:
    """A running test proxy: its address, settings and counters. See :func:`open_socks5_proxy`."""

    host: str
    username: str | None = None
    password: str | None = None
    udp: bool = True
    """False: UDP ASSOCIATE is answered with "command not supported" (7)."""
    reply_unspecified: bool = False
    """True: the relay address is answered as ``0.0.0.0``/``::`` (meaning "my own host")."""
    port: int = 0
    connect_targets: list[Address] = attrs.field(factory=list)
    """Where CONNECT requests asked to go, in order."""
    auth_failures: int = 0
    associations: int = 0
    """UDP associations granted."""
    relay_addresses: list[Address] = attrs.field(factory=list)
    """Each association's relay socket address, in order (what remote hosts see)."""
    udp_from_client: int = 0
    """Datagrams unwrapped from the client and sent on to their destination."""
    udp_to_client: int = 0
    """Datagrams from remote hosts wrapped and sent to the client."""
    udp_dropped: int = 0
    """Datagrams dropped: fragments, malformed headers, or arriving before the client is known."""
    udp_destinations: list[Address] = attrs.field(factory=list)
    """Where the client's datagrams went (one entry per datagram, capped at 10,000)."""
    _controls: list[trio.SocketStream] = attrs.field(factory=list)

    @property
    def url(self) -> str:
        """``socks5://[user:password@]host:port``."""
        cred = ""
        if self.username is not None:
            cred = f"{self.username}:{self.password or ''}@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"socks5://{cred}{host}:{self.port}"

    @property
    def open_associations(self) -> int:
        """UDP associations whose control connection is still open."""
        return len(self._controls)

    async def drop_associations(self) -> None:
        """Close every UDP association's control connection (and so its relay), as a proxy
        restarting would."""
        for stream in list(self._controls):
            await stream.aclose()
        await trio.lowlevel.checkpoint()

    # -- the TCP side -----------------------------------------------------------------------------

    async def handle(self, client: trio.SocketStream) -> None:
        """Serve one client connection (what ``trio.serve_tcp`` calls; usable with any listener)."""
        async with client:
            with contextlib.suppress(_Closed, trio.BrokenResourceError, trio.ClosedResourceError):
                if not await self._authenticate(client):
                    return
                ver, cmd, _rsv, atyp = await _read_exact(client, 4)
                if ver != 5:
                    return
                if atyp == 1:
                    host = socket.inet_ntop(socket.AF_INET, await _read_exact(client, 4))
                elif atyp == 4:
                    host = socket.inet_ntop(socket.AF_INET6, await _read_exact(client, 16))
                elif atyp == 3:
                    (n,) = await _read_exact(client, 1)
                    host = (await _read_exact(client, n)).decode("ascii")
                else:
                    await client.send_all(b"\x05\x08\x00" + _pack_addr("0.0.0.0", 0))
                    return
                (port,) = struct.unpack(">H", await _read_exact(client, 2))
                if cmd == 1:
                    await self._connect(client, host, port)
                elif cmd == 3 and self.udp:
                    await self._associate(client, port)
                else:
                    await client.send_all(b"\x05\x07\x00" + _pack_addr("0.0.0.0", 0))

    async def _authenticate(self, client: trio.SocketStream) -> bool:
        ver, n = await _read_exact(client, 2)
        methods = await _read_exact(client, n)
        if ver != 5:
            return False
        want = 2 if self.username is not None else 0
        if want not in methods:
            await client.send_all(b"\x05\xff")
            return False
        await client.send_all(bytes([5, want]))
        if want == 2:
            _, ulen = await _read_exact(client, 2)
            user = (await _read_exact(client, ulen)).decode()
            (plen,) = await _read_exact(client, 1)
            pw = (await _read_exact(client, plen)).decode()
            if (user, pw) != (self.username, self.password):
                self.auth_failures += 1
                await client.send_all(b"\x01\x01")
                return False
            await client.send_all(b"\x01\x00")
        return True

    async def _connect(self, client: trio.SocketStream, host: str, port: int) -> None:
        self.connect_targets.append((host, port))
        try:
            upstream = await trio.open_tcp_stream(host, port)
        except OSError:
            await client.send_all(b"\x05\x05\x00" + _pack_addr("0.0.0.0", 0))  # refused
            return
        name = upstream.socket.getsockname()
        await client.send_all(b"\x05\x00\x00" + _pack_addr(str(name[0]), int(name[1])))
        async with upstream, trio.open_nursery() as nursery:
            nursery.start_soon(_pipe, client, upstream)
            nursery.start_soon(_pipe, upstream, client)

    async def _associate(self, client: trio.SocketStream, client_port: int) -> None:
        peer_ip = _norm(str(client.socket.getpeername()[0]))
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        relay = trio.socket.socket(family, socket.SOCK_DGRAM)
        with relay:
            await relay.bind((self.host, 0))
            name = relay.getsockname()
            addr = (str(name[0]), int(name[1]))
            self.relay_addresses.append(addr)
            self.associations += 1
            shown = (
                ("::" if family == socket.AF_INET6 else "0.0.0.0")
                if self.reply_unspecified
                else addr[0]
            )
            await client.send_all(b"\x05\x00\x00" + _pack_addr(shown, addr[1]))
            known = (peer_ip, client_port) if client_port else None
            self._controls.append(client)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._relay, relay, peer_ip, known)
                    # the association lives as long as the control connection
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        while await client.receive_some(4096):
                            pass
                    nursery.cancel_scope.cancel()
            finally:
                self._controls.remove(client)

    # -- the UDP relay ----------------------------------------------------------------------------

    async def _relay(
        self, sock: trio.socket.SocketType, peer_ip: str, known: Address | None
    ) -> None:
        client = known
        while True:
            try:
                data, raw = await sock.recvfrom(65536)
            except OSError:
                continue
            src = (_norm(str(raw[0])), int(raw[1]))
            if client is None and src[0] == peer_ip:
                client = src
            if src == client:
                dest = _parse_header(data)
                if dest is None:
                    self.udp_dropped += 1
                    continue
                (host, port), offset = dest
                if len(self.udp_destinations) < 10_000:
                    self.udp_destinations.append((host, port))
                with contextlib.suppress(OSError):
                    if ":" in host and sock.family == socket.AF_INET:
                        self.udp_dropped += 1  # no IPv6 route from an IPv4 relay
                        continue
                    await sock.sendto(data[offset:], (host, port))
                    self.udp_from_client += 1
            elif client is None:
                self.udp_dropped += 1
            else:
                with contextlib.suppress(OSError):
                    await sock.sendto(b"\x00\x00\x00" + _pack_addr(*src) + data, client)
                    self.udp_to_client += 1


def _parse_header(data: bytes) -> tuple[Address, int] | None:
    if len(data) < 4 or data[0] or data[1] or data[2]:  # fragments are dropped too
        return None
    atyp = data[3]
    try:
        if atyp == 1 and len(data) >= 10:
            return (socket.inet_ntop(socket.AF_INET, data[4:8]), int.from_bytes(data[8:10])), 10
        if atyp == 4 and len(data) >= 22:
            return (socket.inet_ntop(socket.AF_INET6, data[4:20]), int.from_bytes(data[20:22])), 22
        if atyp == 3 and len(data) >= 5:
            n = data[4]
            end = 5 + n + 2
            if n and len(data) >= end:
                host = data[5 : 5 + n].decode("ascii")
                if host == "localhost":  # the only name a loopback test needs
                    host = "127.0.0.1"
                return (host, int.from_bytes(data[end - 2 : end])), end
    except (ValueError, UnicodeError):
        pass
    return None


async def _pipe(a: trio.SocketStream, b: trio.SocketStream) -> None:
    try:
        while chunk := await a.receive_some(65536):
            await b.send_all(chunk)
        await b.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass


@contextlib.asynccontextmanager
async def open_socks5_proxy(
    username: str | None = None,
    password: str | None = None,
    *,
    host: str = "127.0.0.1",
    udp: bool = True,
    reply_unspecified: bool = False,
) -> AsyncIterator[Socks5TestProxy]:
    """A SOCKS5 proxy on ``host`` (127.0.0.1 or ::1), port 0, for the duration of the block.

    With ``username`` set, clients must authenticate (RFC 1929) with it and ``password``.
    """
    proxy = Socks5TestProxy(host, username, password, udp=udp, reply_unspecified=reply_unspecified)
    try:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, proxy.handle, 0, host=host))
            proxy.port = int(listeners[0].socket.getsockname()[1])
            try:
                yield proxy
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # the server ends only by cancellation: a lone error is the caller's own
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
