"""Adding a torrent from a magnet link: find peers, fetch the info dict (BEP 9), then add it.

When ``AddTorrent.source`` is a magnet URI or a :class:`torrio.metainfo.Magnet`,
:meth:`Session.add_torrent` returns a handle at once on a :class:`MagnetTorrent`, whose task fetches
the metadata (state ``DOWNLOADING_METADATA``) and then starts the torrent in place; incoming
connections for the info-hash are served meanwhile. :func:`resolve_magnet` is the same fetch as
one awaitable step. Peers come from the magnet's ``x.pe``, the
``AddTorrent.peers``, its ``tr`` trackers (plus ``AddTorrent.trackers``) and the session's DHT when
it is on. Every connected peer that advertises ``ut_metadata`` feeds one
:class:`~torrio.client.MetadataFetcher` (several peers in parallel, size-capped, hash-checked
against the magnet's info-hash, bad sources banned). The result is an :class:`AddTorrent` whose
source is the fetched :class:`torrio.metainfo.Torrent`, whose file priorities follow BEP 53
``so=`` (unless the caller set them), and whose peers include those that served the metadata.

v2-only magnets: BEP 9 carries no piece layers, so once the info dict is in, the same connections
are asked for each file's piece layer with BEP 52 hash requests (a
:class:`~torrio.client._piece_layer_fetch.PieceLayerFetcher`: every answer checked against the
file's ``pieces root``, liars banned). Hybrid magnets are stored with ``version="v1"`` (same info
dict and info-hash, pieces verified by their v1 SHA-1 hashes), so v1-only peers suffice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import trio

from torrio.core import InfoHash, PeerAddr, TorrioError
from torrio.metainfo import Magnet, MetainfoError
from torrio.wire import (
    UT_METADATA,
    ExtendedHandshake,
    ExtensionRegistry,
    Hashes,
    HashReject,
    HashRequest,
    UtMetadataData,
    UtMetadataReject,
    UtMetadataRequest,
    WireError,
    open_peer_connection,
)

from ._errors import ClientError
from ._fetch_driver import fetch_round
from ._metadata_fetch import MetadataFetcher, MetadataFetchError, selection_priorities
from ._peer_list import SOURCE_DHT, SOURCE_MANUAL, SOURCE_TRACKER, PeerList
from ._piece_layer_fetch import PieceLayerFetcher, PieceLayerFetchError

if TYPE_CHECKING:
    from torrio.handshake import HandshakeResult
    from torrio.metainfo import Torrent
    from torrio.wire import PeerConnection

    from ._params import AddTorrent
    from ._session import Session
    from ._status import TorrentStatus
    from ._torrent import TorrentRuntime

#: Connections used at once to fetch metadata.
MAX_METADATA_CONNECTIONS = 8
#: Seconds between tracker announces / DHT lookups while the metadata is missing.
REANNOUNCE = 30.0
_LOCAL = {UT_METADATA: 2}


class MagnetError(ClientError):
    """A magnet link cannot be used (it does not parse)."""


def as_magnet(source: object) -> Magnet | None:
    """The :class:`Magnet` ``source`` names (a magnet URI or a Magnet), else None."""
    if isinstance(source, Magnet):
        return source
    if isinstance(source, str) and source.startswith("magnet:"):
        try:
            return Magnet.parse(source)
        except MetainfoError as exc:
            raise MagnetError(f"not a valid magnet link: {exc}") from exc
    return None


@attrs.define
class _Target:
    """What :meth:`Session.dial` needs of a torrent (its info-hash)."""

    info_hash: InfoHash


class _Resolver:
    """One attempt at fetching a magnet's metadata: peer sources, connections, the fetcher."""

    def __init__(self, session: Session, magnet: Magnet, params: AddTorrent) -> None:
        self.session = session
        self.magnet = magnet
        self.params = params
        self.info_hash = magnet.info_hash
        self.fetcher: MetadataFetcher[PeerAddr] = MetadataFetcher(magnet.info_hash)
        self.peer_list = PeerList()
        self.conns: dict[PeerAddr, PeerConnection] = {}
        self.sources: list[PeerAddr] = []
        self.connecting = 0
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._incoming: set[trio.CancelScope] = set()
        self.layers: PieceLayerFetcher[PeerAddr] | None = None
        self.last_error: str | None = None
        now = trio.current_time()
        for addr in params.peers:
            self.peer_list.add(addr, SOURCE_MANUAL, now)
        for addr in magnet_peers(magnet):
            self.peer_list.add(addr, SOURCE_MANUAL, now)

    def wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def add_peer(self, addr: PeerAddr, source: str = SOURCE_MANUAL) -> None:
        """A peer to try (``connect_peer`` on the handle, or any other source)."""
        if self.peer_list.add(addr, source, trio.current_time()):
            self.wake()

    async def serve_incoming(self, result: HandshakeResult, addr: PeerAddr) -> bool:
        """Use an incoming connection for this info-hash until the fetch ends (runs in the
        caller's task); False at once if there is no room for it."""
        if self._nursery is None or len(self.conns) + self.connecting >= MAX_METADATA_CONNECTIONS:
            return False
        if addr in self.conns or self.peer_list.is_banned(addr):
            return False
        self.connecting += 1
        with trio.CancelScope() as scope:
            self._incoming.add(scope)
            try:
                await self._serve(addr, result.stream, False)
            finally:
                self._incoming.discard(scope)
        return True

    def trackers(self) -> list[str]:
        return list(dict.fromkeys([*self.magnet.trackers, *self.params.trackers]))

    async def run(self) -> Torrent:
        """Fetch until the torrent is complete (info dict, and v2 piece layers when needed)."""
        try:
            return await self._run()
        finally:
            self._nursery = None
            for scope in list(self._incoming):
                scope.cancel()

    async def _run(self) -> Torrent:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._dialer, nursery)
            if self.trackers():
                nursery.start_soon(self._trackers)
            if self.session.dht_nodes:
                nursery.start_soon(self._dht)
            while self.fetcher.info_bytes is None:
                await self._step(nursery, self.fetcher)
            torrent = magnet_torrent(self.magnet, self.fetcher)
            if torrent.has_v2 and not torrent.has_v1 and not torrent.has_all_piece_layers:
                # BEP 9 has no piece layers: ask the connected peers with BEP 52 hash requests
                self.layers = PieceLayerFetcher(torrent)
                for addr in self.conns:
                    self.layers.add_peer(addr)
                while not self.layers.done:
                    await self._step(nursery, self.layers)
                torrent = self.layers.torrent()
            self._nursery = None
            nursery.cancel_scope.cancel()
        return torrent

    async def _step(
        self,
        nursery: trio.Nursery,
        fetcher: MetadataFetcher[PeerAddr] | PieceLayerFetcher[PeerAddr],
    ) -> None:
        """One round of a fetcher: drop banned peers, send due requests, wait for news."""
        await fetch_round(fetcher, self.conns, nursery, self._changed)

    # -- peer sources --------------------------------------------------------------------------

    async def _dialer(self, nursery: trio.Nursery) -> None:
        while True:
            now = trio.current_time()
            room = MAX_METADATA_CONNECTIONS - len(self.conns) - self.connecting
            if room > 0:
                for addr in self.peer_list.candidates(now, room):
                    if self.session.is_self(addr) or addr in self.conns:
                        self.peer_list.failed(addr, now)
                        continue
                    self.connecting += 1
                    nursery.start_soon(self._connection, addr)
            deadline = self.peer_list.next_deadline()
            wait = 1.0 if deadline is None else max(0.05, min(1.0, deadline - now))
            with trio.move_on_after(wait):
                await self._changed.wait()

    async def _trackers(self) -> None:
        from torrio.tracker import Announcer, AnnounceResult, TrackerList, TransferStats

        send, recv = trio.open_memory_channel[AnnounceResult](16)
        announcer = Announcer(
            self.session.trackers,
            TrackerList([[url] for url in self.trackers()]),  # a tier per tracker, as libtorrent
            info_hash=self.info_hash.wire,
            peer_id=self.session.peer_id.value,
            port=self.session.port or 1,
            stats=lambda: TransferStats(uploaded=0, downloaded=0, left=1),
            results=send,
        )

        async def nudge() -> None:
            # trackers' intervals are long: ask again sooner while nobody has the metadata
            while True:
                await trio.sleep(REANNOUNCE)
                if not self.sources:
                    announcer.reannounce()

        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(announcer.run)
                nursery.start_soon(nudge)
                async for result in recv:
                    if result.response is not None:
                        now = trio.current_time()
                        for addr in result.response.peers:
                            self.peer_list.add(addr, SOURCE_TRACKER, now)
                        self.wake()
                    elif result.error is not None:
                        self.last_error = f"tracker {result.url}: {result.error}"
        finally:
            with trio.CancelScope(shield=True):
                await announcer.stop(wait=2.0)

    async def _dht(self) -> None:
        from ._dht_source import DhtPeerSource

        def found(addr: PeerAddr) -> None:
            if self.peer_list.add(addr, SOURCE_DHT, trio.current_time()):
                self.wake()

        def reported(round_: Any) -> None:
            if round_.error is not None:
                self.last_error = f"DHT: {round_.error}"

        # every wire id (v1, truncated v2) on every DHT node (IPv4, IPv6); no announce: we
        # have nothing to serve yet
        source = DhtPeerSource(
            self.session.dht_nodes,
            self.info_hash,
            found,
            port=self.session.port,
            announce=False,
            fast_interval=min(REANNOUNCE, self.session.settings.dht_interval),
            retry_interval=min(REANNOUNCE, self.session.settings.dht_interval, 10.0),
            on_round=reported,
        )
        await source.run()

    # -- one connection ------------------------------------------------------------------------

    async def _connection(self, addr: PeerAddr) -> None:
        try:
            result = await self.session.dial(addr, _Target(self.info_hash))  # type: ignore[arg-type]
        except Exception:  # any dial failure backs that address off
            self.connecting -= 1
            self.peer_list.failed(addr, trio.current_time())
            self.wake()
            return
        self.peer_list.connected(addr, SOURCE_MANUAL, trio.current_time())
        await self._serve(addr, result.stream, True)

    async def _serve(self, addr: PeerAddr, stream: trio.abc.Stream, outgoing: bool) -> None:
        self.connecting -= 1
        try:
            async with open_peer_connection(
                stream,
                registry=ExtensionRegistry(local=dict(_LOCAL)),
                close_timeout=1.0,
            ) as conn:
                self.conns[addr] = conn
                await conn.send(ExtendedHandshake(m=dict(_LOCAL), v="torrio 0.1"))
                if self.layers is not None:
                    self.layers.add_peer(addr)
                async for ev in conn:
                    if isinstance(ev, Hashes | HashReject):
                        if self.layers is not None:
                            self.layers.receive(addr, ev, trio.current_time())
                    elif isinstance(ev, HashRequest):
                        await conn.send(ev.rejected())
                        continue
                    elif isinstance(ev, ExtendedHandshake):
                        size = ev.metadata_size if conn.registry.supports(UT_METADATA) else None
                        self.fetcher.add_peer(addr, size)
                        # an incoming peer's address is an ephemeral port: not worth redialing
                        if size is not None and outgoing and addr not in self.sources:
                            self.sources.append(addr)
                    elif isinstance(ev, UtMetadataRequest):
                        await conn.send(UtMetadataReject(ev.piece))
                        continue
                    elif isinstance(ev, UtMetadataData | UtMetadataReject):
                        try:
                            self.fetcher.receive(addr, ev, trio.current_time())
                        except MetadataFetchError as exc:
                            self.last_error = str(exc)
                    else:
                        continue
                    self.wake()
        except (WireError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            self.conns.pop(addr, None)
            self.fetcher.remove_peer(addr)
            if self.layers is not None:
                self.layers.remove_peer(addr)
            if outgoing:
                self.peer_list.disconnected(addr, trio.current_time())
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
            self.wake()


def magnet_peers(magnet: Magnet) -> list[PeerAddr]:
    """The magnet's ``x.pe`` peers that parse as addresses."""
    out: list[PeerAddr] = []
    for host, port in magnet.peers:
        try:
            out.append(PeerAddr.from_tuple((host, port)))
        except (ValueError, TorrioError):
            continue
    return out


def magnet_torrent(magnet: Magnet, fetcher: MetadataFetcher[Any]) -> Torrent:
    """The fetched torrent, with the magnet's trackers and web seeds.

    A v2-only torrent still lacks its piece layers (the resolver fetches them next); a hybrid one
    is verified by its v1 hashes (``version="v1"``: same info dict and info-hash)."""
    torrent = fetcher.torrent(
        trackers=tuple((url,) for url in magnet.trackers), web_seeds=tuple(magnet.web_seeds)
    )
    if torrent.version == "hybrid" and not torrent.piece_layers:
        # BEP 9 carries no piece layers: verify pieces with the v1 hashes only
        torrent = attrs.evolve(torrent, version="v1")
    return torrent


def resolved_params(
    magnet: Magnet, params: AddTorrent, torrent: Torrent, sources: list[PeerAddr]
) -> AddTorrent:
    """``params`` with the fetched torrent as source, BEP 53 priorities and the known peers."""
    prios = params.file_priorities
    if prios is None:
        prios = selection_priorities(torrent, magnet.select_only)
    peers = list(dict.fromkeys([*params.peers, *magnet_peers(magnet), *sources]))
    return attrs.evolve(
        params,
        source=torrent,
        peers=tuple(peers),
        trackers=tuple(u for u in params.trackers if u not in magnet.trackers),
        file_priorities=prios,
    )


async def resolve_magnet(session: Session, magnet: Magnet, params: AddTorrent) -> AddTorrent:
    """Fetch ``magnet``'s metadata through ``session``; ``params`` with the torrent as source.

    Waits until the metadata (and, for a v2-only torrent, its piece layers) arrives: wrap it in
    a trio timeout to give up. :meth:`Session.add_torrent` does not wait: it returns a handle at
    once and runs a :class:`MagnetTorrent`.
    """
    resolver = _Resolver(session, magnet, params)
    session.handshaker.add_torrent(magnet.info_hash)
    try:
        torrent = await resolver.run()
    finally:
        session.handshaker.remove_torrent(magnet.info_hash)
    return resolved_params(magnet, params, torrent, resolver.sources)


class MagnetTorrent:
    """A torrent added from a magnet link, before (and after) its metadata arrives.

    :meth:`Session.add_torrent` creates one and returns a :class:`TorrentHandle` on it at once:
    the handle reports :attr:`TorrentState.DOWNLOADING_METADATA` until the info dict is fetched,
    then behaves exactly like the handle of a torrent added from a file (it forwards to
    :attr:`runtime`). Pausing stops the fetch (connections closed); resuming starts it again.
    Incoming connections for the info-hash are served while fetching.
    """

    def __init__(self, session: Session, magnet: Magnet, params: AddTorrent) -> None:
        self.session = session
        self.magnet = magnet
        self.params = params
        self.info_hash = magnet.info_hash
        self.name = magnet.name or magnet.info_hash.hex()
        self.runtime: TorrentRuntime | None = None
        """The running torrent once the metadata arrived."""
        self.removed = False
        self.paused = params.paused
        self.error: str | None = None
        self.resolver: _Resolver | None = None
        self.metadata_event = trio.Event()
        """Set when :attr:`runtime` is available, or the torrent was removed."""
        self.extra_peers: list[PeerAddr] = []
        self.sequential = params.sequential
        self.rate_limits: dict[str, int] = {}
        self._changed = trio.Event()
        self._scope: trio.CancelScope | None = None

    def __repr__(self) -> str:
        return f"MagnetTorrent({self.name!r}, {self.info_hash.hex()})"

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def fetch(self) -> AddTorrent | None:
        """Fetch until the metadata arrives (None if removed first); pauses stop and restart it."""
        while not self.removed:
            if self.paused or self.error is not None:
                await self._changed.wait()
                continue
            resolver = _Resolver(self.session, self.magnet, self.params)
            for addr in self.extra_peers:
                resolver.add_peer(addr)
            self.resolver = resolver
            with trio.CancelScope() as self._scope:
                try:
                    torrent = await resolver.run()
                except (MagnetError, MetadataFetchError, PieceLayerFetchError) as exc:
                    self.fail(str(exc))
                    continue
                return resolved_params(self.magnet, self.params, torrent, resolver.sources)
        return None

    def fail(self, message: str) -> None:
        """The fetch cannot go on (resume to retry)."""
        from ._events import TorrentError

        self.error = message
        self.session.hub.publish(TorrentError(self.info_hash, message))
        self._wake()

    async def serve_incoming(self, result: HandshakeResult, addr: PeerAddr) -> bool:
        """Serve an incoming connection for our info-hash while fetching (False: close it)."""
        resolver = self.resolver
        if resolver is None or self.paused or self.removed or self.runtime is not None:
            return False
        return await resolver.serve_incoming(result, addr)

    def connect_peer(self, addr: PeerAddr) -> None:
        """Try ``addr`` for the metadata (and later for the download)."""
        if addr not in self.extra_peers and len(self.extra_peers) < 200:
            self.extra_peers.append(addr)
            self.params = attrs.evolve(self.params, peers=(*self.params.peers, addr))
        if self.resolver is not None:
            self.resolver.add_peer(addr)

    def pause(self) -> bool:
        """Stop fetching; True if it was running."""
        if self.paused:
            return False
        self.paused = True
        if self._scope is not None:
            self._scope.cancel()
        self._wake()
        return True

    def resume(self) -> bool:
        """Fetch again after a pause or an error; True if something changed."""
        changed = self.paused or self.error is not None
        self.paused = False
        self.error = None
        self._wake()
        return changed

    def remove(self) -> None:
        """Stop for good (the session forgets the torrent)."""
        self.removed = True
        if self._scope is not None:
            self._scope.cancel()
        self.metadata_event.set()
        self._wake()

    def status(self) -> TorrentStatus:
        """A snapshot while the metadata is missing (sizes and pieces are 0)."""
        if self.runtime is not None:
            return self.runtime.status()
        from ._status import TorrentState, TorrentStatus

        resolver = self.resolver
        if self.error is not None:
            state = TorrentState.ERROR
        elif self.paused:
            state = TorrentState.PAUSED
        else:
            state = TorrentState.DOWNLOADING_METADATA
        return TorrentStatus(
            info_hash=self.info_hash,
            name=self.name,
            state=state,
            total_length=0,
            wanted_length=0,
            done=0,
            pieces=0,
            num_pieces=0,
            download_rate=0.0,
            upload_rate=0.0,
            downloaded=0,
            uploaded=0,
            peers=0 if resolver is None else len(resolver.conns),
            seeds=0,
            known_peers=0 if resolver is None else len(resolver.peer_list),
            availability=0.0,
            eta=None,
            error=self.error,
            paused=self.paused,
            finished=False,
            has_metadata=False,
        )
