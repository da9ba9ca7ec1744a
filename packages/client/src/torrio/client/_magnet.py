"""Adding a torrent from a magnet link: find peers, fetch the info dict (BEP 9), then add it.

:func:`resolve_magnet` is what :meth:`Session.add_torrent` runs when ``AddTorrent.source`` is a
magnet URI or a :class:`torrio.metainfo.Magnet`. Peers come from the magnet's ``x.pe``, the
``AddTorrent.peers``, its ``tr`` trackers (plus ``AddTorrent.trackers``) and the session's DHT when
it is on. Every connected peer that advertises ``ut_metadata`` feeds one
:class:`~torrio.client.MetadataFetcher` (several peers in parallel, size-capped, hash-checked
against the magnet's info-hash, bad sources banned). The result is an :class:`AddTorrent` whose
source is the fetched :class:`torrio.metainfo.Torrent`, whose file priorities follow BEP 53
``so=`` (unless the caller set them), and whose peers include those that served the metadata.

v2-only magnets are refused with a :class:`MagnetError`: BEP 9 carries no piece layers, and
fetching them with BEP 52 hash requests is not implemented. Hybrid magnets work: the torrent is
stored with ``version="v1"`` (same info dict and info-hash, pieces verified by their v1 SHA-1
hashes).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs
import trio

from torrio.core import InfoHash, PeerAddr, TorrioError
from torrio.metainfo import Magnet, MetainfoError
from torrio.wire import (
    UT_METADATA,
    ExtendedHandshake,
    ExtensionRegistry,
    UtMetadataData,
    UtMetadataReject,
    UtMetadataRequest,
    WireError,
    open_peer_connection,
)

from ._errors import ClientError
from ._metadata_fetch import MetadataFetcher, MetadataFetchError, selection_priorities
from ._peer_list import SOURCE_DHT, SOURCE_MANUAL, SOURCE_TRACKER, PeerList

if TYPE_CHECKING:
    from torrio.metainfo import Torrent
    from torrio.wire import PeerConnection

    from ._params import AddTorrent
    from ._session import Session

#: Connections used at once to fetch metadata.
MAX_METADATA_CONNECTIONS = 8
#: Seconds between tracker announces / DHT lookups while the metadata is missing.
REANNOUNCE = 30.0
_LOCAL = {UT_METADATA: 2}


class MagnetError(ClientError):
    """A magnet link cannot be used (unparsable, or a v2-only magnet)."""


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
        self.last_error: str | None = None
        now = trio.current_time()
        for addr in params.peers:
            self.peer_list.add(addr, SOURCE_MANUAL, now)
        for host, port in magnet.peers:
            try:
                self.peer_list.add(PeerAddr.from_tuple((host, port)), SOURCE_MANUAL, now)
            except (ValueError, TorrioError):
                continue

    def wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def trackers(self) -> list[str]:
        return list(dict.fromkeys([*self.magnet.trackers, *self.params.trackers]))

    async def run(self) -> bytes:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._dialer, nursery)
            for url in self.trackers():
                nursery.start_soon(self._tracker, url)
            if self.session.dht is not None:
                nursery.start_soon(self._dht)
            while self.fetcher.info_bytes is None:
                waiting = self._changed
                now = trio.current_time()
                for addr in self.fetcher.take_banned():
                    self.peer_list.ban(addr)
                    conn = self.conns.get(addr)
                    if conn is not None:
                        nursery.start_soon(conn.aclose)
                for addr, req in self.fetcher.poll(now):
                    conn = self.conns.get(addr)
                    try:
                        if conn is None:
                            raise WireError("gone")
                        await conn.send(req)
                    except (WireError, trio.BrokenResourceError, trio.ClosedResourceError):
                        self.fetcher.remove_peer(addr)
                deadline = self.fetcher.next_deadline()
                with trio.move_on_at(math.inf if deadline is None else deadline):
                    await waiting.wait()
            nursery.cancel_scope.cancel()
        info = self.fetcher.info_bytes
        assert info is not None
        return info

    # -- peer sources --------------------------------------------------------------------------

    async def _dialer(self, nursery: trio.Nursery) -> None:
        while True:
            now = trio.current_time()
            room = MAX_METADATA_CONNECTIONS - len(self.conns) - self.connecting
            if room > 0:
                for addr in self.peer_list.candidates(now, room):
                    if self.session.is_self(addr):
                        self.peer_list.failed(addr, now)
                        continue
                    self.connecting += 1
                    nursery.start_soon(self._connection, addr)
            deadline = self.peer_list.next_deadline()
            wait = 1.0 if deadline is None else max(0.05, min(1.0, deadline - now))
            with trio.move_on_after(wait):
                await self._changed.wait()

    async def _tracker(self, url: str) -> None:
        from torrio.tracker import AnnounceRequest, TrackerError

        while True:
            request = AnnounceRequest(
                info_hash=self.info_hash.wire,
                peer_id=self.session.peer_id.value,
                port=self.session.port or 1,
                left=1,
            )
            interval = REANNOUNCE
            try:
                with trio.fail_after(30):
                    resp = await self.session.trackers.announce(url, request)
            except (TrackerError, trio.TooSlowError, OSError) as exc:
                self.last_error = f"tracker {url}: {exc}"
            else:
                now = trio.current_time()
                for addr in resp.peers:
                    self.peer_list.add(addr, SOURCE_TRACKER, now)
                self.wake()
                interval = max(REANNOUNCE, min(float(resp.interval or 0), 300.0))
            await trio.sleep(interval)

    async def _dht(self) -> None:
        node = self.session.dht
        while True:
            with trio.move_on_after(60):
                try:
                    async for addr in node.get_peers(self.info_hash.wire):
                        if self.peer_list.add(addr, SOURCE_DHT, trio.current_time()):
                            self.wake()
                except TorrioError as exc:
                    self.last_error = f"DHT: {exc}"
            await trio.sleep(REANNOUNCE)

    # -- one connection ------------------------------------------------------------------------

    async def _connection(self, addr: PeerAddr) -> None:
        try:
            result = await self.session.dial(addr, _Target(self.info_hash))  # type: ignore[arg-type]
        except Exception:  # any dial failure backs that address off
            self.connecting -= 1
            self.peer_list.failed(addr, trio.current_time())
            self.wake()
            return
        self.connecting -= 1
        self.peer_list.connected(addr, SOURCE_MANUAL, trio.current_time())
        try:
            async with open_peer_connection(
                result.stream,
                registry=ExtensionRegistry(local=dict(_LOCAL)),
                close_timeout=1.0,
            ) as conn:
                self.conns[addr] = conn
                await conn.send(ExtendedHandshake(m=dict(_LOCAL), v="torrio 0.1"))
                async for ev in conn:
                    if isinstance(ev, ExtendedHandshake):
                        size = ev.metadata_size if conn.registry.supports(UT_METADATA) else None
                        self.fetcher.add_peer(addr, size)
                        if size is not None and addr not in self.sources:
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
            self.peer_list.disconnected(addr, trio.current_time())
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(result.stream)
            self.wake()


def magnet_torrent(magnet: Magnet, fetcher: MetadataFetcher[Any]) -> Torrent:
    """The fetched torrent, with the magnet's trackers and web seeds (MagnetError for v2-only)."""
    torrent = fetcher.torrent(
        trackers=tuple((url,) for url in magnet.trackers), web_seeds=tuple(magnet.web_seeds)
    )
    if not torrent.has_v1:
        raise MagnetError(
            "v2-only magnet links are not supported (BEP 52 piece layers are not fetched); "
            "use the .torrent file or a hybrid magnet",
            info_hash=magnet.info_hash.hex(),
        )
    if torrent.version == "hybrid" and not torrent.piece_layers:
        # BEP 9 carries no piece layers: verify pieces with the v1 hashes only
        torrent = attrs.evolve(torrent, version="v1")
    return torrent


async def resolve_magnet(session: Session, magnet: Magnet, params: AddTorrent) -> AddTorrent:
    """Fetch ``magnet``'s metadata through ``session``; ``params`` with the torrent as source.

    Waits until the metadata arrives (wrap it in a trio timeout to give up). Raises
    :class:`MagnetError` for v2-only magnets.
    """
    if magnet.info_hash.v1 is None:
        raise MagnetError(
            "v2-only magnet links are not supported (BEP 52 piece layers are not fetched); "
            "use the .torrent file or a hybrid magnet",
            info_hash=magnet.info_hash.hex(),
        )
    resolver = _Resolver(session, magnet, params)
    session.handshaker.add_torrent(magnet.info_hash)
    try:
        await resolver.run()
    finally:
        session.handshaker.remove_torrent(magnet.info_hash)
    torrent = magnet_torrent(magnet, resolver.fetcher)
    prios = params.file_priorities
    if prios is None:
        prios = selection_priorities(torrent, magnet.select_only)
    xpe = []
    for host, port in magnet.peers:
        try:
            xpe.append(PeerAddr.from_tuple((host, port)))
        except (ValueError, TorrioError):
            continue
    peers = list(dict.fromkeys([*params.peers, *xpe, *resolver.sources]))
    return attrs.evolve(
        params,
        source=torrent,
        peers=tuple(peers),
        trackers=tuple(u for u in params.trackers if u not in magnet.trackers),
        file_priorities=prios,
    )
