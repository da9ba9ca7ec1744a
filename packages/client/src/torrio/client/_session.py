"""The session: one listener, one peer id, many torrents, limits and an event stream.

``async with open_session(listen_port=6881) as session`` starts the TCP listener and runs every
torrent's tasks in the session's nursery; leaving the block saves fast-resume data of every torrent
and closes everything.

Beside the TCP listener(s) the session opens one UDP port with the same number
(:func:`torrio.client._udp_mux.open_udp_stack`): IPv4, and IPv6 too when it listens on an IPv6 or
dual (``::``) host, shared by UDP trackers, uTP and the DHT. Outgoing connections follow the
``transport`` setting through :class:`torrio.client._transport.Transport` (``both``: uTP first,
TCP when uTP fails or does not answer); incoming ones are accepted over TCP and, unless the
transport is ``tcp``, over uTP.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import attrs
import trio

from torrio.core import InfoHash, PeerAddr, PeerId
from torrio.disk import DiskManager, open_disk_manager
from torrio.handshake import (
    DEFAULT_RESERVED,
    EncryptionPolicy,
    HandshakeError,
    Handshaker,
    HandshakeResult,
    Reserved,
)
from torrio.utp import UtpSocket

from . import _events as ev
from ._errors import ClientError
from ._event_hub import EventHub, EventStream
from ._handle import TorrentHandle
from ._lifecycle import QueueEntry, QueueLimits, assign_queue
from ._lsd_driver import run_lsd
from ._magnet import MagnetTorrent, as_magnet
from ._net_policy import NetPolicy, load_net_policy
from ._params import AddTorrent, SessionSettings
from ._piece_store import PieceStore, default_storage
from ._rate_limit import TokenBucket
from ._source import load_torrent
from ._status import SessionStatus
from ._torrent import TorrentRuntime
from ._transport import UTP_TIMEOUT, Transport, TransportStatistics, serve_incoming, stream_kind
from ._udp_mux import UdpMux, UdpMuxStatistics, UdpStack, open_udp_stack

RESERVED = (DEFAULT_RESERVED & ~Reserved.DHT) | Reserved.FAST | Reserved.EXTENSION_PROTOCOL
_BIND_ATTEMPTS = 5
"""Ports tried when the OS picks the TCP port and its UDP twin turns out to be taken."""


class Session:
    """A running BitTorrent session. Create it with :func:`open_session`."""

    def __init__(
        self,
        settings: SessionSettings,
        nursery: trio.Nursery,
        trackers: Any,
        disk: DiskManager,
        *,
        udp: UdpMux | None = None,
        utp: UtpSocket | None = None,
        dht: Any = None,
        dht6: Any = None,
        net: NetPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.net = net or NetPolicy()
        """The IP filter and proxy (``settings.ip_filter`` / ``settings.proxy``)."""
        self._nursery = nursery
        self.trackers = trackers
        self.disk = disk
        self.udp = udp
        """The shared UDP mux (:class:`torrio.client._udp_mux.UdpMux`; its ``statistics()``)."""
        self.utp = utp
        """The uTP socket on the shared port (None when the transport is ``tcp``)."""
        self.dht = dht
        """A torrio-dht ``Node`` when the DHT is on (``settings.dht``), else None: the IPv4 one,
        or the IPv6 one for a session listening on IPv6 only."""
        self.dht6 = dht6
        """The IPv6 DHT node (a session listening on an IPv6 or dual host), else None."""
        mode = settings.transport
        if self.net.proxy is not None or utp is None:
            mode = "tcp"  # peers are dialed through the proxy (TCP only), never over uTP
        self.transport = Transport(
            mode,
            utp=utp,
            connect_timeout=settings.connect_timeout,
            utp_timeout=min(UTP_TIMEOUT, settings.connect_timeout),
            tcp_connect=self.net.open_stream,
            utp_families=None if udp is None else udp.families,
        )
        """How peers are dialed and accepted (``transport.statistics()``: uTP/TCP attempts,
        fallbacks and incoming connections per transport)."""
        self.peer_id = PeerId.generate(settings.peer_id_prefix)
        self.hub = EventHub(settings.event_buffer)
        self.handshaker = Handshaker(
            self.peer_id,
            reserved=RESERVED,
            policy=EncryptionPolicy(settings.encryption),
            timeout=settings.connect_timeout,
            allow_peer=lambda hs: hs.peer_id != self.peer_id,
        )
        self.up_bucket = TokenBucket(rate=settings.max_upload_rate)
        self.down_bucket = TokenBucket(rate=settings.max_download_rate)
        self.port = 0
        self.peer_count = 0
        self._torrents: dict[InfoHash, TorrentRuntime] = {}
        self._magnets: dict[InfoHash, MagnetTorrent] = {}
        self._half_open = trio.Semaphore(settings.max_half_open)
        self._listeners: list[trio.SocketListener] = []
        self._closing = False
        self.lsd: Any = None
        """The running ``LsdService`` when ``settings.lsd`` is on (and multicast works), else None."""

    # -- public API -----------------------------------------------------------------------

    @property
    def dht_nodes(self) -> tuple[Any, ...]:
        """The running DHT nodes (IPv4 and/or IPv6; empty when the DHT is off)."""
        return tuple(n for n in dict.fromkeys((self.dht, self.dht6)) if n is not None)

    def udp_statistics(self) -> UdpMuxStatistics | None:
        """Counters of the shared UDP port (datagrams per consumer, drops, buffer sizes)."""
        return None if self.udp is None else self.udp.statistics()

    def transport_statistics(self) -> TransportStatistics:
        """Counters of outgoing dials (uTP/TCP, fallbacks) and incoming streams per transport."""
        return self.transport.statistics()

    def events(self) -> EventStream:
        """A stream of every event from now on (create it before the actions you watch)."""
        return self.hub.subscribe()

    def torrents(self) -> list[TorrentHandle]:
        """Handles of every torrent (magnets still fetching their metadata included)."""
        targets: list[TorrentRuntime | MagnetTorrent] = [*self._torrents.values()]
        targets.extend(self._magnets.values())
        return [TorrentHandle(t) for t in targets]

    def find_torrent(self, info_hash: InfoHash) -> TorrentHandle | None:
        """The handle of a torrent, if it is in the session (a v1 or v2 digest is enough)."""
        hit = self._lookup(info_hash)
        return None if hit is None else TorrentHandle(hit)

    async def add_torrent(self, params: AddTorrent) -> TorrentHandle:
        """Add a torrent; it starts checking at once. Raises :class:`ClientError`.

        A magnet source returns at once too: the handle's state is ``DOWNLOADING_METADATA``
        until the info dict arrives (:meth:`TorrentHandle.wait_metadata`), then the torrent
        checks and downloads like one added from a file.
        """
        if self._closing:
            raise ClientError("session is closing")
        magnet = as_magnet(params.source)
        if magnet is not None:
            if self._known(magnet.info_hash):
                raise ClientError(
                    "torrent already in the session", info_hash=magnet.info_hash.hex()
                )
            pending = MagnetTorrent(self, magnet, params)
            self._magnets[magnet.info_hash] = pending
            self.handshaker.add_torrent(magnet.info_hash)
            self.hub.publish(ev.TorrentAdded(magnet.info_hash, pending.name))
            self._nursery.start_soon(self._run_magnet, pending)
            await trio.lowlevel.checkpoint()
            return TorrentHandle(pending)
        rt = await self._start_runtime(params)
        self.hub.publish(ev.TorrentAdded(rt.info_hash, rt.name))
        await trio.lowlevel.checkpoint()
        return TorrentHandle(rt)

    def _known(self, info_hash: InfoHash) -> bool:
        return self._lookup(info_hash) is not None

    def _lookup(self, info_hash: InfoHash) -> TorrentRuntime | MagnetTorrent | None:
        """The torrent or pending magnet whose info-hash shares a digest with ``info_hash``."""
        hit = self._torrents.get(info_hash) or self._magnets.get(info_hash)
        if hit is not None:
            return hit
        for table in (self._torrents, self._magnets):
            for ih, entry in table.items():
                if (ih.v1 is not None and ih.v1 == info_hash.v1) or (
                    ih.v2 is not None and ih.v2 == info_hash.v2
                ):
                    return entry
        return None

    async def _start_runtime(self, params: AddTorrent) -> TorrentRuntime:
        torrent = await load_torrent(params.source)
        if self._known(torrent.info_hash):
            raise ClientError("torrent already in the session", info_hash=torrent.info_hash.hex())
        if params.file_priorities is not None and len(params.file_priorities) != len(torrent.files):
            raise ClientError(f"file_priorities needs {len(torrent.files)} entries")
        save_path = str(params.save_path)
        factory = params.storage or default_storage
        try:
            fs = await trio.to_thread.run_sync(factory, save_path)
        except OSError as exc:
            raise ClientError(f"cannot use save path {save_path}: {exc}") from exc
        store = PieceStore(
            self.disk,
            torrent,
            fs,
            file_priorities=params.file_priorities,
            seed_mode=params.seed_mode,
        )
        rt = TorrentRuntime(self, torrent, params, store, params.resume_data)
        self._torrents[torrent.info_hash] = rt
        self.handshaker.add_torrent(torrent.info_hash)
        self._nursery.start_soon(self._run_torrent, rt)
        return rt

    async def _run_magnet(self, pending: MagnetTorrent) -> None:
        try:
            params = await pending.fetch()
        finally:
            self._magnets.pop(pending.info_hash, None)
            self.handshaker.remove_torrent(pending.info_hash)
        if params is None or self._closing:
            pending.remove()
            return
        try:
            rt = await self._start_runtime(params)
        except ClientError as exc:
            self._magnets[pending.info_hash] = pending
            self.handshaker.add_torrent(pending.info_hash)
            pending.fail(str(exc))
            return
        for name, rate in pending.rate_limits.items():
            bucket = rt.down_bucket if name == "download" else rt.up_bucket
            bucket.set_rate(rate, trio.current_time())
        if rt.picker is not None and pending.sequential:
            rt.picker.set_sequential(True)
        pending.runtime = rt
        pending.metadata_event.set()

    async def remove_torrent(self, handle: TorrentHandle, *, delete_files: bool = False) -> None:
        """Remove a torrent (saving resume data first unless its files are deleted)."""
        target = handle._target
        if isinstance(target, MagnetTorrent):
            if target.runtime is None:
                if self._magnets.pop(target.info_hash, None) is None or target.removed:
                    raise ClientError(
                        "torrent not in this session", info_hash=handle.info_hash.hex()
                    )
                self.handshaker.remove_torrent(target.info_hash)
                target.remove()
                self.hub.publish(ev.TorrentRemoved(target.info_hash))
                await trio.lowlevel.checkpoint()
                return
            target.removed = True
        rt = self._torrents.pop(handle.info_hash, None)
        if rt is None:
            raise ClientError("torrent not in this session", info_hash=handle.info_hash.hex())
        self.handshaker.remove_torrent(rt.info_hash)
        await rt.pause()
        if not delete_files:
            await rt.save_resume()
        rt.removed = True
        rt._set_state_event()
        await rt.store.close(delete_files=delete_files)
        if delete_files:
            await trio.to_thread.run_sync(self._delete_resume, rt)
        self.hub.publish(ev.TorrentRemoved(rt.info_hash))
        self.requeue()

    @staticmethod
    def _delete_resume(rt: TorrentRuntime) -> None:
        path = rt.resume_path()
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()

    def set_rate_limits(self, *, download: int | None = None, upload: int | None = None) -> None:
        """Session-wide limits in bytes/s (0 = unlimited; None leaves a limit unchanged)."""
        now = trio.current_time()
        if download is not None:
            self.down_bucket.set_rate(download, now)
        if upload is not None:
            self.up_bucket.set_rate(upload, now)

    def status(self) -> SessionStatus:
        """A snapshot of the whole session."""
        now = trio.current_time()
        rts = list(self._torrents.values())
        return SessionStatus(
            port=self.port,
            torrents=len(rts) + len(self._magnets),
            peers=self.peer_count,
            download_rate=sum(rt.down.rate(now) for rt in rts),
            upload_rate=sum(rt.up.rate(now) for rt in rts),
            downloaded=sum(rt.down.total for rt in rts),
            uploaded=sum(rt.up.total for rt in rts),
            blocked_peers=self.net.blocked_count,
        )

    # -- used by torrents --------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once the session is shutting down."""
        return self._closing

    def spawn(self, fn: Any, *args: Any) -> None:
        """Run a background job in the session's nursery."""
        self._nursery.start_soon(fn, *args)

    def connection_room(self) -> int:
        """How many more connections the global limit allows."""
        return max(0, self.settings.max_connections - self.peer_count)

    def is_self(self, addr: PeerAddr) -> bool:
        """True if ``addr`` is our own listener (trackers hand us back to ourselves)."""
        if addr.port != self.port:
            return False
        return (
            addr.ip.is_loopback
            or addr.ip.is_unspecified
            or str(addr.ip) == (self.settings.listen_host)
        )

    def requeue(self) -> None:
        """Apply the active-torrent limits (queued torrents wait for a slot)."""
        s = self.settings
        limits = QueueLimits(s.active_downloads, s.active_seeds, s.active_limit)
        entries = [
            QueueEntry(
                ih,
                rt.lifecycle.finished,
                rt.lifecycle.checked and not rt.lifecycle.paused and rt.lifecycle.error is None,
            )
            for ih, rt in self._torrents.items()
        ]
        active = assign_queue(entries, limits)
        for ih, rt in self._torrents.items():
            if rt.lifecycle.checked and not rt.lifecycle.paused:
                rt.set_queued(ih not in active)

    async def dial(self, addr: PeerAddr, rt: TorrentRuntime) -> HandshakeResult:
        """Connect to ``addr`` by the transport rule (``tcp``, ``utp``, or ``both``: uTP first,
        then TCP) and handshake for ``rt``. With a proxy: TCP through it only."""
        if self.net.blocked(addr):
            raise ClientError(f"{addr} is blocked by the IP filter")
        async with self._half_open:
            dialed = await self.transport.connect(addr)
            _tune(dialed.stream)

            async def reconnect() -> trio.abc.Stream:
                stream = await self.transport.redial(dialed)
                _tune(stream)
                return stream

            return await self.handshaker.initiate(
                dialed.stream, rt.info_hash, peer=addr, reconnect=reconnect
            )

    async def _handle_incoming(self, stream: trio.abc.Stream) -> None:
        try:
            if isinstance(stream, trio.SocketStream):
                host, port = stream.socket.getpeername()[:2]
            else:
                host, port = stream.remote_address  # type: ignore[attr-defined]
            addr = PeerAddr.from_tuple((host, port))
        except (OSError, ValueError, AttributeError):
            await trio.aclose_forcefully(stream)
            return
        if self.net.blocked(addr):
            await trio.aclose_forcefully(stream)
            return
        _tune(stream)
        try:
            result = await self.handshaker.accept(stream, peer=addr)
        except HandshakeError:
            return
        rt = self._torrents.get(result.info_hash)
        if rt is None:
            pending = self._magnets.get(result.info_hash)
            if (
                pending is None
                or self.peer_count >= self.settings.max_connections
                or not await pending.serve_incoming(result, addr)
            ):
                await trio.aclose_forcefully(result.stream)
            return
        if (
            rt is None
            or not rt.lifecycle.active
            or self.peer_count >= self.settings.max_connections
        ):
            await trio.aclose_forcefully(result.stream)
            return
        await rt.add_peer(result, addr, incoming=True)

    # -- running -----------------------------------------------------------------------------

    async def _run_torrent(self, rt: TorrentRuntime) -> None:
        try:
            await rt.run()
        except Exception as exc:  # a bug or an unexpected failure: report it, keep the session
            rt.lifecycle.fail(f"{type(exc).__name__}: {exc}")
            self.hub.publish(ev.TorrentError(rt.info_hash, str(exc) or type(exc).__name__))
            rt._set_state_event()
            if self.settings.reraise_errors:
                raise

    async def _start(self, listeners: list[trio.SocketListener], port: int) -> None:
        self._listeners = listeners
        self.port = port
        await self._nursery.start(
            partial(
                serve_incoming,
                self._accepted,
                listeners,
                self.utp,
                handler_nursery=self._nursery,
            )
        )
        self._nursery.start_soon(self._stats_loop)
        if self.settings.lsd:
            await self._nursery.start(run_lsd, self)

    async def _accepted(self, stream: trio.abc.Stream) -> None:
        self.transport.note_incoming(stream_kind(stream))
        await self._handle_incoming(stream)

    async def _stats_loop(self) -> None:
        interval = self.settings.stats_interval
        if interval <= 0:
            return
        while True:
            await trio.sleep(interval)
            self.hub.publish(
                ev.StatsEvent(self.status(), tuple(rt.status() for rt in self._torrents.values()))
            )

    async def _shutdown(self) -> None:
        self._closing = True
        for rt in list(self._torrents.values()):
            rt._stop_active()
        for rt in list(self._torrents.values()):
            with trio.move_on_after(10):
                await rt.save_resume()
            with trio.move_on_after(5):
                await rt.store.close()
        self.hub.close()


def _tune(stream: trio.abc.Stream) -> None:
    import socket

    if isinstance(stream, trio.SocketStream):
        with contextlib.suppress(OSError):
            stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)


@contextlib.asynccontextmanager
async def _proxied_tracker_http(net: NetPolicy, settings: SessionSettings) -> AsyncIterator[Any]:
    from torrio.tracker import HttpTrackerClient

    async with net.http_client(
        user_agent=settings.user_agent, allow_local=settings.tracker_allow_local
    ) as client:
        yield HttpTrackerClient(allow_local=settings.tracker_allow_local, client=client)


def _udp_hosts(listen_host: str) -> tuple[str, str | None]:
    """``(host, host6)`` of the UDP mux for a listen host: ``::`` is dual-stack (IPv4 and IPv6 on
    one port number), another IPv6 literal is IPv6 only, anything else IPv4 only."""
    if listen_host == "::":
        return "0.0.0.0", "::"
    return listen_host, None


async def _open_listeners(settings: SessionSettings) -> list[trio.SocketListener]:
    """The TCP listeners: on ``listen_host``, or for ``::`` on ``0.0.0.0`` and ``::`` with one port
    number (a few tries when the port is picked by the OS and the IPv6 one is taken)."""
    if settings.listen_host != "::":
        return await trio.open_tcp_listeners(settings.listen_port, host=settings.listen_host)
    for attempt in range(5):
        v4 = await trio.open_tcp_listeners(settings.listen_port, host="0.0.0.0")
        port = v4[0].socket.getsockname()[1]
        try:
            return v4 + await trio.open_tcp_listeners(port, host="::")
        except OSError:
            for listener in v4:
                await listener.aclose()
            if settings.listen_port != 0 or attempt == 4:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def _bind(
    stack: contextlib.AsyncExitStack, settings: SessionSettings, proxy: Any = None
) -> tuple[list[trio.SocketListener], UdpStack]:
    """The TCP listeners and the UDP stack on the same port number (entered on ``stack``). When
    the OS picks the port and its UDP twin is taken, another port is tried (a few times)."""
    host, host6 = _udp_hosts(settings.listen_host)
    for attempt in range(_BIND_ATTEMPTS):
        try:
            listeners = await _open_listeners(settings)
        except OSError as exc:
            raise ClientError(
                f"cannot listen on {settings.listen_host}:{settings.listen_port}: {exc}"
            ) from exc
        port = listeners[0].socket.getsockname()[1]
        try:
            udp: UdpStack = await stack.enter_async_context(
                open_udp_stack(
                    host,
                    port,
                    host6=host6,
                    utp=settings.transport != "tcp",
                    dht=settings.dht,
                    dht_bootstrap=list(settings.dht_bootstrap),
                    dht_state=settings.dht_state,
                    proxy=proxy,
                )
            )
        except BaseException as exc:
            for listener in listeners:
                with trio.CancelScope(shield=True):
                    await listener.aclose()
            retry = isinstance(exc, ClientError) and settings.listen_port == 0
            if not retry or attempt == _BIND_ATTEMPTS - 1:
                raise
            continue
        return listeners, udp
    raise AssertionError("unreachable")  # pragma: no cover


async def _udp_through_proxy(
    stack: contextlib.AsyncExitStack, net: NetPolicy, connect_timeout: float
) -> Any:
    """A SOCKS5 UDP association for the shared UDP port when the proxy can carry UDP, else None
    (no proxy, a SOCKS4/HTTP proxy, or a SOCKS5 proxy that refuses UDP ASSOCIATE)."""
    proxy = net.proxy
    if proxy is None or not proxy.supports_udp:
        return None
    from ._proxy import ProxyError
    from ._proxy_udp import open_socks5_udp_association

    try:
        return await stack.enter_async_context(
            open_socks5_udp_association(proxy, connect_timeout=connect_timeout)
        )
    except ProxyError:
        return None


@contextlib.asynccontextmanager
async def open_session(
    settings: SessionSettings | None = None, **overrides: Any
) -> AsyncIterator[Session]:
    """Run a session for the duration of the block.

    Keyword arguments override fields of :class:`SessionSettings` (``listen_port=0``,
    ``listen_host="127.0.0.1"``, ``encryption="require"``, ``resume_dir=...``, ...). The session
    listens on one port number: TCP, and UDP for uTP, the DHT and UDP trackers (one shared
    :class:`~torrio.client._udp_mux.UdpMux`, IPv4 and, for an IPv6 or ``::`` listen host, IPv6).
    """
    try:
        settings = attrs.evolve(settings or SessionSettings(), **overrides)
    except TypeError as exc:
        raise ClientError(f"unknown session setting: {exc}") from exc
    from torrio.tracker import open_tracker_client

    net = await load_net_policy(settings.ip_filter, settings.proxy)
    listeners: list[trio.SocketListener] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            udp_proxy = await _udp_through_proxy(stack, net, settings.connect_timeout)
            no_udp = net.proxy is not None and udp_proxy is None
            if no_udp:
                # the proxy cannot carry UDP: send none (no DHT, no uTP, no udp:// trackers)
                # rather than leak around it
                settings = attrs.evolve(settings, dht=False, transport="tcp")
            listeners, udp = await _bind(stack, settings, udp_proxy)
            port = udp.mux.port
            trackers = await stack.enter_async_context(
                open_tracker_client(udp_endpoint=udp.mux, allow_local=settings.tracker_allow_local)
            )
            if no_udp:
                trackers.udp = None  # udp:// announces fail with TrackerBlocked (an event)
            if trackers.udp is not None:
                udp.mux.register("tracker", trackers.udp)
            if net.proxy is not None:
                trackers.http = await stack.enter_async_context(
                    _proxied_tracker_http(net, settings)
                )
            disk = await stack.enter_async_context(
                open_disk_manager(
                    write_cache_bytes=settings.write_cache_bytes,
                    read_cache_bytes=settings.read_cache_bytes,
                    threads=settings.disk_threads,
                )
            )
            nursery = await stack.enter_async_context(trio.open_nursery())
            session = Session(
                settings,
                nursery,
                trackers,
                disk,
                udp=udp.mux,
                utp=udp.utp,
                dht=udp.dht or udp.dht6,
                dht6=udp.dht6,
                net=net,
            )
            await session._start(listeners, port)
            try:
                yield session
            finally:
                with trio.CancelScope(shield=True):
                    await session._shutdown()
                nursery.cancel_scope.cancel()
    finally:
        for listener in listeners:
            with trio.CancelScope(shield=True):
                await listener.aclose()
