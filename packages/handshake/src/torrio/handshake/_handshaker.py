"""The trio shell: complete outgoing and incoming handshakes (plain or MSE/PE) over any stream."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

import attrs
import trio

from torrio.core import InfoHash, PeerAddr, PeerId

from ._errors import HandshakeError
from ._handshake import (
    HANDSHAKE_LEN,
    HANDSHAKE_PREFIX_LEN,
    PROTOCOL_PREFIX,
    Handshake,
    is_plaintext_start,
    parse_prefix,
)
from ._mse import (
    MAX_PAD,
    NEED_DATA,
    CryptoMethod,
    EncryptionPolicy,
    MseEstablished,
    MseInitiator,
    MseResponder,
    req2_hash,
)
from ._reserved import DEFAULT_RESERVED, Reserved
from ._stream import PeerStream

_CHUNK = 4096


@attrs.frozen
class HandshakeResult:
    """A completed handshake.

    ``stream`` carries the peer protocol from here on (a :class:`PeerStream` after MSE; the
    original stream after a plaintext handshake). ``handshake`` is the peer's.
    """

    stream: trio.abc.Stream
    handshake: Handshake
    info_hash: InfoHash
    encrypted: bool
    used_mse: bool
    peer: PeerAddr | None = None

    @property
    def peer_id(self) -> PeerId:
        """The peer's id."""
        return self.handshake.peer_id

    @property
    def reserved(self) -> Reserved:
        """The peer's reserved bits."""
        return self.handshake.reserved


@attrs.frozen
class HandshakerStatistics:
    """Counters of one :class:`Handshaker`."""

    torrents: int
    completed_outgoing: int
    completed_incoming: int
    failed: int
    encrypted: int


async def _read_exactly(stream: trio.abc.Stream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.receive_some(n - len(buf))
        if not chunk:
            raise HandshakeError("peer closed the connection during the handshake", "closed")
        buf += chunk
    return bytes(buf)


async def _run_mse(
    stream: trio.abc.Stream, machine: MseInitiator | MseResponder, first: bytes = b""
) -> MseEstablished:
    if first:
        machine.receive_data(first)
    while True:
        ev = machine.next_event()
        out = machine.data_to_send()
        if out:
            await stream.send_all(out)
        if ev is not NEED_DATA:
            assert isinstance(ev, MseEstablished)
            return ev
        data = await stream.receive_some(_CHUNK)
        if not data:
            raise HandshakeError("peer closed the connection during MSE", "closed")
        machine.receive_data(data)


# What ends a handshake attempt (all reported as HandshakeError by Handshaker._fail).
_FAILURES = (
    trio.TooSlowError,
    HandshakeError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    OSError,
)

# HandshakeError reasons after which PREFER retries in plaintext (a plaintext-only peer either
# closes on our MSE bytes or answers with something that holds no verification constant).
_FALLBACK_REASONS = frozenset({"closed", "vc-not-found"})


class Handshaker:
    """Completes handshakes for many torrents.

    Torrents are registered with :meth:`add_torrent` and found by every 20-byte wire id they have
    (v1, truncated v2). Filters return False to refuse: ``allow_addr`` runs first (incoming, when
    an address is given), ``allow_info_hash`` once the torrent is known, ``allow_peer`` on the
    peer's handshake. Every handshake is bounded by ``timeout`` seconds. On any failure the
    stream is closed and :class:`HandshakeError` raised. ``prefer_rc4`` (default False, as in
    libtorrent): an incoming MSE handshake that offers both RC4 and plaintext gets plaintext.
    """

    def __init__(
        self,
        peer_id: PeerId,
        *,
        reserved: Reserved = DEFAULT_RESERVED,
        policy: EncryptionPolicy = EncryptionPolicy.PREFER,
        timeout: float = 10.0,
        allow_addr: Callable[[PeerAddr], bool] | None = None,
        allow_info_hash: Callable[[InfoHash], bool] | None = None,
        allow_peer: Callable[[Handshake], bool] | None = None,
        pad_max: int = MAX_PAD,
        randbytes: Callable[[int], bytes] = os.urandom,
        prefer_rc4: bool = False,
    ) -> None:
        self.peer_id = peer_id
        self.prefer_rc4 = prefer_rc4
        self.reserved = reserved
        self.policy = policy
        self.timeout = timeout
        self.allow_addr = allow_addr
        self.allow_info_hash = allow_info_hash
        self.allow_peer = allow_peer
        self.pad_max = pad_max
        self._rand = randbytes
        self._torrents: dict[bytes, InfoHash] = {}
        self._skeys: dict[bytes, bytes] = {}  # HASH('req2', wire id) -> wire id, for MSE
        self._out_ok = 0
        self._in_ok = 0
        self._failed = 0
        self._encrypted = 0

    # -- torrents ------------------------------------------------------------------------------

    def add_torrent(self, info_hash: InfoHash) -> None:
        """Accept incoming handshakes for ``info_hash`` (under each of its wire ids)."""
        for wid in info_hash.wire_ids():
            self._torrents[wid] = info_hash
            self._skeys[req2_hash(wid)] = wid

    def remove_torrent(self, info_hash: InfoHash) -> None:
        """Stop accepting ``info_hash``."""
        for wid in info_hash.wire_ids():
            if self._torrents.get(wid) == info_hash:
                del self._torrents[wid]
                self._skeys.pop(req2_hash(wid), None)

    def lookup(self, wire_id: bytes) -> InfoHash | None:
        """The registered torrent a 20-byte wire id names."""
        return self._torrents.get(bytes(wire_id))

    @property
    def torrents(self) -> list[InfoHash]:
        """The registered torrents."""
        return list({id(v): v for v in self._torrents.values()}.values())

    def statistics(self) -> HandshakerStatistics:
        """A snapshot of the counters."""
        return HandshakerStatistics(
            torrents=len(self.torrents),
            completed_outgoing=self._out_ok,
            completed_incoming=self._in_ok,
            failed=self._failed,
            encrypted=self._encrypted,
        )

    # -- outgoing ------------------------------------------------------------------------------

    async def initiate(
        self,
        stream: trio.abc.Stream,
        info_hash: InfoHash,
        *,
        peer: PeerAddr | None = None,
        wire_id: bytes | None = None,
        reconnect: Callable[[], Awaitable[trio.abc.Stream]] | None = None,
        policy: EncryptionPolicy | None = None,
    ) -> HandshakeResult:
        """Handshake as the connecting side over ``stream``.

        With policy PREFER, if the encrypted attempt fails in a way a plaintext-only peer causes
        (it closes or resets the connection, or no MSE answer is found) and ``reconnect`` is
        given, a new stream is opened with it and a plaintext handshake is tried there. Without
        ``reconnect`` there is no fallback (a TCP connection cannot be rewound); use
        :meth:`connect` with a connection factory to get the fallback without passing
        ``reconnect`` separately.
        """
        policy = self.policy if policy is None else policy
        wid = info_hash.wire if wire_id is None else bytes(wire_id)
        ours = Handshake(wid, self.peer_id, self.reserved)
        try:
            try:
                with trio.fail_after(self.timeout):
                    result = await self._initiate(stream, info_hash, ours, policy, peer)
            except (
                HandshakeError,
                trio.BrokenResourceError,
                trio.ClosedResourceError,
                OSError,
            ) as exc:
                await trio.aclose_forcefully(stream)
                if (
                    policy is not EncryptionPolicy.PREFER
                    or reconnect is None
                    or (isinstance(exc, HandshakeError) and exc.reason not in _FALLBACK_REASONS)
                ):
                    raise
                stream = await reconnect()
                with trio.fail_after(self.timeout):
                    result = await self._initiate(
                        stream, info_hash, ours, EncryptionPolicy.DISABLE, peer
                    )
        except _FAILURES as exc:
            await self._fail(stream, exc, peer)
        self._out_ok += 1
        self._encrypted += result.encrypted
        return result

    async def connect(
        self,
        open_stream: Callable[[], Awaitable[trio.abc.Stream]],
        info_hash: InfoHash,
        *,
        peer: PeerAddr | None = None,
        wire_id: bytes | None = None,
        policy: EncryptionPolicy | None = None,
    ) -> HandshakeResult:
        """Open a connection with the factory ``open_stream`` and handshake over it.

        The factory must open a *fresh* connection to the same peer on every call (for TCP:
        ``functools.partial(trio.open_tcp_stream, host, port)``). With policy PREFER it is called
        a second time when the peer refuses the encrypted attempt, and a plaintext handshake is
        tried on that new connection: the fallback needs nothing else from the caller. Errors
        opening the connection propagate as :class:`HandshakeError` (reason ``"connect"``).
        """
        try:
            stream = await open_stream()
        except OSError as exc:
            self._failed += 1
            raise HandshakeError(f"cannot connect: {exc}", "connect", peer) from exc
        return await self.initiate(
            stream, info_hash, peer=peer, wire_id=wire_id, reconnect=open_stream, policy=policy
        )

    async def _initiate(
        self,
        stream: trio.abc.Stream,
        info_hash: InfoHash,
        ours: Handshake,
        policy: EncryptionPolicy,
        peer: PeerAddr | None,
    ) -> HandshakeResult:
        used_mse = policy is not EncryptionPolicy.DISABLE
        if used_mse:
            machine = MseInitiator(
                ours.info_hash,
                provide=policy.methods,
                initial_payload=ours.to_bytes(),
                pad_max=self.pad_max,
                randbytes=self._rand,
            )
            est = await _run_mse(stream, machine)
            conn: trio.abc.Stream = PeerStream(
                stream, encryptor=est.encryptor, decryptor=est.decryptor, prefix=est.leftover
            )
            encrypted = est.method is CryptoMethod.RC4
        else:
            await stream.send_all(ours.to_bytes())
            conn = stream
            encrypted = False
        theirs = Handshake.from_bytes(await _read_exactly(conn, HANDSHAKE_LEN))
        if theirs.info_hash != ours.info_hash:
            raise HandshakeError("peer answered with another info-hash", "info-hash-mismatch", peer)
        if self.allow_peer is not None and not self.allow_peer(theirs):
            raise HandshakeError("peer refused by filter", "filtered", peer)
        return HandshakeResult(conn, theirs, info_hash, encrypted, used_mse, peer)

    # -- incoming ------------------------------------------------------------------------------

    async def serve(
        self,
        listeners: Sequence[trio.abc.Listener[Any]],
        handler: Callable[[HandshakeResult], Awaitable[object]],
        *,
        handler_nursery: trio.Nursery | None = None,
        task_status: trio.TaskStatus[list[trio.abc.Listener[Any]]] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Accept connections on ``listeners``, handshake each, and run ``handler(result)`` for the
        ones that succeed (failures are counted in :meth:`statistics` and dropped).

        Use with ``await nursery.start(handshaker.serve, listeners, handler)`` (which returns the
        listeners, as :func:`trio.serve_listeners` does).
        """

        async def one(stream: trio.abc.Stream) -> None:
            peer: PeerAddr | None = None
            if isinstance(stream, trio.SocketStream):
                try:
                    peer = PeerAddr.from_tuple(stream.socket.getpeername())
                except (OSError, ValueError):
                    peer = None
            try:
                result = await self.accept(stream, peer=peer)
            except HandshakeError:
                return
            await handler(result)

        await trio.serve_listeners(
            one, list(listeners), handler_nursery=handler_nursery, task_status=task_status
        )

    async def _fail(
        self, stream: trio.abc.Stream, exc: BaseException, peer: PeerAddr | None
    ) -> NoReturn:
        """Count a failed handshake, close its stream, raise it as a :class:`HandshakeError`."""
        self._failed += 1
        await trio.aclose_forcefully(stream)
        if isinstance(exc, HandshakeError):
            exc.peer = exc.peer or peer
            raise exc
        if isinstance(exc, trio.TooSlowError):
            raise HandshakeError("handshake timed out", "timeout", peer) from None
        raise HandshakeError(f"transport failed: {exc}", "closed", peer) from exc

    async def accept(
        self, stream: trio.abc.Stream, *, peer: PeerAddr | None = None
    ) -> HandshakeResult:
        """Handshake as the accepting side for whichever registered torrent the peer names."""
        try:
            if peer is not None and self.allow_addr is not None and not self.allow_addr(peer):
                raise HandshakeError("address refused by filter", "filtered", peer)
            with trio.fail_after(self.timeout):
                result = await self._accept(stream, peer)
        except _FAILURES as exc:
            await self._fail(stream, exc, peer)
        self._in_ok += 1
        self._encrypted += result.encrypted
        return result

    async def _accept(self, stream: trio.abc.Stream, peer: PeerAddr | None) -> HandshakeResult:
        first = bytearray()
        plain: bool | None = None
        while plain is None:
            chunk = await stream.receive_some(len(PROTOCOL_PREFIX) - len(first))
            if not chunk:
                raise HandshakeError(
                    "peer closed the connection before a handshake", "closed", peer
                )
            first += chunk
            plain = is_plaintext_start(first)
        conn: trio.abc.Stream
        if plain:
            if self.policy is EncryptionPolicy.REQUIRE:
                raise HandshakeError(
                    "plaintext handshake refused (encryption required)", "policy", peer
                )
            conn = stream
            prefix = bytes(first) + await _read_exactly(stream, HANDSHAKE_PREFIX_LEN - len(first))
            encrypted = used_mse = False
        else:
            if self.policy is EncryptionPolicy.DISABLE:
                raise HandshakeError(
                    "not a plaintext handshake (encryption disabled)", "policy", peer
                )
            machine = MseResponder(
                self._skeys,
                allowed=self.policy.methods,
                prefer_rc4=self.prefer_rc4,
                pad_max=self.pad_max,
                randbytes=self._rand,
            )
            est = await _run_mse(stream, machine, bytes(first))
            conn = PeerStream(
                stream,
                encryptor=est.encryptor,
                decryptor=est.decryptor,
                prefix=est.initial_payload + est.leftover,
            )
            encrypted = est.method is CryptoMethod.RC4
            used_mse = True
            prefix = await _read_exactly(conn, HANDSHAKE_PREFIX_LEN)
            if bytes(prefix[:20]) != PROTOCOL_PREFIX:
                raise HandshakeError("bad handshake inside MSE", "bad-protocol", peer)
        _reserved, wid = parse_prefix(prefix)
        info_hash = self._torrents.get(wid)
        if info_hash is None:
            raise HandshakeError("unknown info-hash", "unknown-info-hash", peer)
        if self.allow_info_hash is not None and not self.allow_info_hash(info_hash):
            raise HandshakeError("torrent refused by filter", "filtered", peer)
        # answer before reading the peer id: some initiators wait for us before sending it
        await conn.send_all(Handshake(wid, self.peer_id, self.reserved).to_bytes())
        rest = await _read_exactly(conn, HANDSHAKE_LEN - HANDSHAKE_PREFIX_LEN)
        theirs = Handshake.from_bytes(prefix + rest)
        if self.allow_peer is not None and not self.allow_peer(theirs):
            raise HandshakeError("peer refused by filter", "filtered", peer)
        return HandshakeResult(conn, theirs, info_hash, encrypted, used_mse, peer)
