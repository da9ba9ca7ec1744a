"""SOCKS5, sans-I/O: the UDP request header (RFC 1928 §7) and the client side of the TCP
negotiation (method selection, RFC 1929 username/password, one command and its reply).

:func:`wrap` puts ``RSV FRAG ATYP DST.ADDR DST.PORT`` in front of a datagram for the proxy's UDP
relay; :func:`unwrap` takes it off a datagram the relay sent back. Fragments (``FRAG != 0``) are
refused with :class:`Socks5Fragment`: nobody fragments in practice (libtorrent and Dante do not)
and reassembly would be a buffer a remote party could grow. Every malformed input raises
:class:`~torrio.client.ProxyError` (or that subclass), nothing else.

:class:`Socks5Negotiation` is the TCP control conversation in the shape of h11: take its
:meth:`~Socks5Negotiation.data_to_send`, feed what the proxy answers to
:meth:`~Socks5Negotiation.receive_data`, and call :meth:`~Socks5Negotiation.next_event` until it
returns a :class:`Socks5Reply` instead of :data:`NEED_DATA`. socksio has a sans-I/O SOCKS5
connection, but it parses a reply only when handed exactly that reply's bytes (no buffering of a
reply split across reads), decodes a domain-name reply with its length byte included, and leaves
its datagram type unimplemented; so the few dozen lines are ours.

No trio, no sockets, no clocks: this module imports with both blocked.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import struct
from typing import Final, overload

import attrs

from ._proxy import ProxyError

SocketAddress = tuple[str, int]

ATYP_IPV4: Final = 1
ATYP_DOMAIN: Final = 3
ATYP_IPV6: Final = 4

CMD_CONNECT: Final = 1
CMD_BIND: Final = 2
CMD_UDP_ASSOCIATE: Final = 3

METHOD_NO_AUTH: Final = 0
METHOD_USER_PASS: Final = 2
METHOD_NONE_ACCEPTABLE: Final = 0xFF

#: RFC 1928 reply codes, for messages.
REPLY_MESSAGES: Final = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}

MAX_HEADER: Final = 4 + 1 + 255 + 2
"""The longest UDP request header (a 255-byte domain name)."""

_PORT = struct.Struct("!H")
_V4_HEAD = struct.Struct("!HBB4sH")
_V6_HEAD = struct.Struct("!HBB16sH")


class Socks5Fragment(ProxyError):
    """A relayed datagram with ``FRAG != 0``: a fragment, which torrio drops."""


# -- addresses -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def encode_address(host: str, port: int) -> bytes:
    """``ATYP DST.ADDR DST.PORT`` for ``host`` (IPv4/IPv6 literal or a domain name) and ``port``."""
    if not 0 <= port <= 0xFFFF:
        raise ProxyError(f"port out of range: {port}")
    if ":" in host:
        try:
            packed = ipaddress.IPv6Address(host).packed
        except ValueError:
            raise ProxyError(f"bad IPv6 address: {host!r}") from None
        return bytes([ATYP_IPV6]) + packed + _PORT.pack(port)
    try:
        packed = ipaddress.IPv4Address(host).packed
    except ValueError:
        pass
    else:
        return bytes([ATYP_IPV4]) + packed + _PORT.pack(port)
    try:
        name = host.encode("ascii")
    except UnicodeError:
        raise ProxyError(f"host name is not ASCII (IDNA-encode it first): {host!r}") from None
    if not 0 < len(name) <= 255:
        raise ProxyError(f"host name must be 1 to 255 bytes: {host!r}")
    return bytes([ATYP_DOMAIN, len(name)]) + name + _PORT.pack(port)


@functools.lru_cache(maxsize=4096)
def _v4_text(packed: bytes) -> str:
    return "%d.%d.%d.%d" % tuple(packed)  # noqa: UP031 - the fastest spelling


@functools.lru_cache(maxsize=1024)
def _v6_text(packed: bytes) -> str:
    ip = ipaddress.IPv6Address(packed)
    mapped = ip.ipv4_mapped  # written as IPv6 by some relays: the IPv4 form, as sockets give it
    return str(mapped) if mapped is not None else ip.compressed


def decode_address(buf: bytes | bytearray | memoryview, offset: int) -> tuple[SocketAddress, int]:
    """Read ``ATYP ADDR PORT`` at ``offset``; returns the address and the offset after it."""
    end = len(buf)
    if offset >= end:
        raise ProxyError("SOCKS5 address missing")
    atyp = buf[offset]
    if atyp == ATYP_IPV4:
        stop = offset + 7
        if stop > end:
            raise ProxyError("SOCKS5 IPv4 address truncated")
        host = _v4_text(bytes(buf[offset + 1 : offset + 5]))
    elif atyp == ATYP_IPV6:
        stop = offset + 19
        if stop > end:
            raise ProxyError("SOCKS5 IPv6 address truncated")
        host = _v6_text(bytes(buf[offset + 1 : offset + 17]))
    elif atyp == ATYP_DOMAIN:
        if offset + 1 >= end:
            raise ProxyError("SOCKS5 domain name truncated")
        n = buf[offset + 1]
        stop = offset + 4 + n
        if n == 0 or stop > end:
            raise ProxyError("SOCKS5 domain name empty or truncated")
        try:
            host = bytes(buf[offset + 2 : offset + 2 + n]).decode("ascii")
        except UnicodeError:
            raise ProxyError("SOCKS5 domain name is not ASCII") from None
    else:
        raise ProxyError(f"unknown SOCKS5 address type {atyp}")
    (port,) = _PORT.unpack_from(buf, stop - 2)
    return (host, port), stop


# -- the UDP request header ----------------------------------------------------------------------


def wrap(data: bytes | memoryview, addr: SocketAddress) -> bytes:
    """``data`` for ``addr`` with the SOCKS5 UDP request header in front (FRAG 0)."""
    return b"\x00\x00\x00" + encode_address(addr[0], addr[1]) + data


@overload
def unwrap(datagram: bytes) -> tuple[bytes, SocketAddress]: ...
@overload
def unwrap(datagram: memoryview) -> tuple[memoryview, SocketAddress]: ...
@overload
def unwrap(datagram: bytes | memoryview) -> tuple[bytes | memoryview, SocketAddress]: ...


def unwrap(datagram: bytes | memoryview) -> tuple[bytes | memoryview, SocketAddress]:
    """The payload and source address of a datagram from the relay.

    A ``memoryview`` in gives a ``memoryview`` of the same buffer out (no copy). Raises
    :class:`Socks5Fragment` for a fragment and ProxyError for anything malformed.
    """
    if len(datagram) < 4:
        raise ProxyError("SOCKS5 UDP header truncated")
    if datagram[0] or datagram[1]:
        raise ProxyError("SOCKS5 UDP header: reserved bytes are not zero")
    if datagram[2]:
        raise Socks5Fragment(f"SOCKS5 UDP fragment {datagram[2]} dropped")
    addr, offset = decode_address(datagram, 3)
    return datagram[offset:], addr


# -- the TCP negotiation -------------------------------------------------------------------------


class _NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _NeedData.NEED_DATA
"""What :meth:`Socks5Negotiation.next_event` returns until the proxy's reply is complete."""


@attrs.frozen
class Socks5Reply:
    """The proxy's successful answer to the command: ``BND.ADDR``/``BND.PORT``.

    For UDP ASSOCIATE it is the relay's address; ``0.0.0.0`` or ``::`` there means "the address
    you reached me at" (the caller substitutes the proxy's host).
    """

    bound: SocketAddress


class _State(enum.Enum):
    METHOD = "method"
    AUTH = "auth"
    REPLY = "reply"
    DONE = "done"
    FAILED = "failed"


@attrs.define
class Socks5Negotiation:
    """The client side of one SOCKS5 TCP negotiation, from greeting to the command's reply.

    ``command`` is :data:`CMD_UDP_ASSOCIATE` (default) or :data:`CMD_CONNECT`; ``target`` the
    DST.ADDR/DST.PORT to send (for UDP ASSOCIATE: the address we will send from, all zeros when
    unknown). With ``username`` set, username/password authentication is offered beside none.
    Errors raise ProxyError (``code``: the reply or auth status byte) and leave the machine failed.
    """

    command: int = CMD_UDP_ASSOCIATE
    target: SocketAddress = ("0.0.0.0", 0)
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    _state: _State = attrs.field(init=False, default=_State.METHOD)
    _in: bytearray = attrs.field(init=False, factory=bytearray)
    _out: bytearray = attrs.field(init=False, factory=bytearray)

    def __attrs_post_init__(self) -> None:
        methods = [METHOD_NO_AUTH]
        if self.username is not None:
            methods.append(METHOD_USER_PASS)
            user = self.username.encode()
            pw = (self.password or "").encode()
            if len(user) > 255 or len(pw) > 255:
                raise ProxyError("SOCKS5 username and password are limited to 255 bytes")
        self._out += bytes([5, len(methods), *methods])

    @property
    def done(self) -> bool:
        """True once the reply has been read (successfully)."""
        return self._state is _State.DONE

    def data_to_send(self) -> bytes:
        """The bytes to write to the proxy now (and forget)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes | memoryview) -> None:
        """Bytes the proxy sent. Nothing more is expected after the reply; later bytes are
        ignored, and a reply never needs more than :data:`MAX_HEADER` + 4 buffered bytes."""
        if self._state in (_State.DONE, _State.FAILED):
            return
        self._in += data

    def next_event(self) -> Socks5Reply | _NeedData:
        """Advance as far as the buffered bytes allow: the reply, or :data:`NEED_DATA`."""
        try:
            return self._advance()
        except ProxyError:
            self._state = _State.FAILED
            raise

    def _advance(self) -> Socks5Reply | _NeedData:
        buf = self._in
        if self._state is _State.FAILED:
            raise ProxyError("the SOCKS5 negotiation has already failed")
        if self._state is _State.METHOD:
            if len(buf) < 2:
                return NEED_DATA
            ver, method = buf[0], buf[1]
            del buf[:2]
            if ver != 5:
                raise ProxyError(f"not a SOCKS5 proxy (version byte {ver})")
            if method == METHOD_USER_PASS and self.username is not None:
                user = self.username.encode()
                pw = (self.password or "").encode()
                self._out += bytes([1, len(user)]) + user + bytes([len(pw)]) + pw
                self._state = _State.AUTH
            elif method == METHOD_NO_AUTH:
                self._send_command()
            elif method == METHOD_NONE_ACCEPTABLE:
                hint = "" if self.username is not None else " (it may want a username/password)"
                raise ProxyError(f"the proxy accepts none of our authentication methods{hint}")
            else:
                raise ProxyError(f"the proxy chose an authentication method not offered: {method}")
        if self._state is _State.AUTH:
            if len(buf) < 2:
                return NEED_DATA
            status = buf[1]
            del buf[:2]
            if status != 0:
                raise ProxyError("SOCKS5 authentication failed", code=status)
            self._send_command()
        if self._state is _State.REPLY:
            if len(buf) < 5:
                return NEED_DATA
            if buf[0] != 5:
                raise ProxyError(f"malformed SOCKS5 reply (version byte {buf[0]})")
            rep = buf[1]
            if rep != 0:
                msg = REPLY_MESSAGES.get(rep, f"reply code {rep}")
                raise ProxyError(f"the proxy refused the request: {msg}", code=rep)
            atyp = buf[3]
            need = {ATYP_IPV4: 10, ATYP_IPV6: 22, ATYP_DOMAIN: 7 + buf[4]}.get(atyp)
            if need is None:
                raise ProxyError(f"unknown SOCKS5 address type {atyp} in reply")
            if len(buf) < need:
                return NEED_DATA
            bound, _ = decode_address(buf, 3)
            del buf[:need]
            self._state = _State.DONE
            return Socks5Reply(bound)
        if self._state is _State.DONE:
            raise ProxyError("the SOCKS5 negotiation is finished")
        return NEED_DATA  # pragma: no cover

    def _send_command(self) -> None:
        self._out += bytes([5, self.command, 0]) + encode_address(*self.target)
        self._state = _State.REPLY
