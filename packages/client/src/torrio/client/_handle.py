"""The user's handle on one torrent of a session (libtorrent's ``torrent_handle``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import trio

from torrio.core import InfoHash, PeerAddr
from torrio.metainfo import Torrent

from ._errors import ClientError
from ._events import TorrentPaused, TorrentResumed
from ._magnet import MagnetTorrent
from ._peer_list import SOURCE_MANUAL
from ._status import FileStatus, PeerStatus, TorrentStatus
from ._web_seed import WebSeedStatistics

if TYPE_CHECKING:
    from ._torrent import TorrentRuntime


class TorrentHandle:
    """Controls and inspects one torrent. Methods raise :class:`ClientError` once it is removed.

    A handle on a magnet link works before its metadata arrives: :meth:`status` reports
    ``DOWNLOADING_METADATA``, :meth:`pause`, :meth:`resume`, :meth:`connect_peer`,
    :meth:`set_sequential` and :meth:`set_rate_limits` work (the last two apply once the torrent
    starts), :attr:`has_metadata` is False, and what needs the metainfo (:attr:`torrent`, file
    priorities, resume data) raises :class:`ClientError` until :meth:`wait_metadata` returns.
    """

    def __init__(self, target: TorrentRuntime | MagnetTorrent) -> None:
        self._target = target

    def __repr__(self) -> str:
        return f"TorrentHandle({self._target.name!r}, {self.info_hash.hex()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TorrentHandle) and self._target is other._target

    def __hash__(self) -> int:
        return id(self._target)

    @property
    def _rt(self) -> TorrentRuntime:
        t = self._target
        if isinstance(t, MagnetTorrent):
            if t.runtime is None:
                if t.removed:
                    raise ClientError("torrent was removed", info_hash=t.info_hash.hex())
                raise ClientError("metadata not received yet", info_hash=t.info_hash.hex())
            return t.runtime
        return t

    def _pending(self) -> MagnetTorrent | None:
        """The magnet still fetching its metadata, if that is what this handle is on."""
        t = self._target
        return t if isinstance(t, MagnetTorrent) and t.runtime is None else None

    def _live(self) -> TorrentRuntime:
        rt = self._rt
        if rt.removed:
            raise ClientError("torrent was removed", info_hash=rt.info_hash.hex())
        return rt

    def _live_pending(self) -> MagnetTorrent | None:
        pending = self._pending()
        if pending is not None and pending.removed:
            raise ClientError("torrent was removed", info_hash=pending.info_hash.hex())
        return pending

    @property
    def info_hash(self) -> InfoHash:
        """The torrent's info-hash (a magnet's until its metadata arrives; then the torrent's,
        which may add the v2 digest of a hybrid torrent)."""
        t = self._target
        if isinstance(t, MagnetTorrent) and t.runtime is None:
            return t.info_hash
        return self._rt.info_hash

    @property
    def has_metadata(self) -> bool:
        """True once the metainfo is known (always for a torrent added from a file)."""
        return self._pending() is None

    @property
    def torrent(self) -> Torrent:
        """The torrent's metainfo (ClientError while a magnet's metadata is missing)."""
        return self._rt.torrent

    @property
    def is_valid(self) -> bool:
        """False once the torrent was removed from its session."""
        t = self._target
        if isinstance(t, MagnetTorrent) and t.runtime is None:
            return not t.removed
        return not self._rt.removed

    def status(self) -> TorrentStatus:
        """A snapshot of progress, rates, peers and state."""
        pending = self._pending()
        if pending is not None:
            return pending.status()
        return self._rt.status()

    def peers(self) -> list[PeerStatus]:
        """A snapshot of each connected peer (empty while fetching a magnet's metadata)."""
        return [] if self._pending() is not None else self._rt.peer_statuses()

    def file_status(self) -> list[FileStatus]:
        """Progress of each (non-pad) file (empty while a magnet's metadata is missing)."""
        return [] if self._pending() is not None else self._rt.file_status()

    def web_seeds(self) -> list[WebSeedStatistics]:
        """A snapshot of each web seed in use (empty while the torrent is not active)."""
        if self._live_pending() is not None:
            return []
        return [ws.statistics() for ws in self._live().web_seeds]

    def have_pieces(self) -> list[int]:
        """Indices of verified pieces."""
        return [] if self._pending() is not None else list(self._rt.have)

    async def wait_metadata(self) -> None:
        """Wait until the metainfo is known (returns at once for a torrent added from a file)."""
        t = self._target
        if isinstance(t, MagnetTorrent):
            await t.metadata_event.wait()
            if t.runtime is None:
                raise ClientError("torrent was removed", info_hash=t.info_hash.hex())
        await trio.lowlevel.checkpoint()

    async def wait_finished(self) -> None:
        """Wait until every wanted piece is downloaded and verified."""
        await self.wait_metadata()
        while True:
            rt = self._live()
            if rt.lifecycle.finished and rt.lifecycle.checked:
                await trio.lowlevel.checkpoint()
                return
            await rt.finished_event.wait()

    async def wait_checked(self) -> None:
        """Wait until existing data was checked (or resume data loaded)."""
        await self.wait_metadata()
        await self._live().checked_event.wait()

    async def pause(self) -> None:
        """Disconnect every peer and stop; resume data is saved."""
        pending = self._live_pending()
        if pending is not None:
            if pending.pause():
                pending.session.hub.publish(TorrentPaused(pending.info_hash))
            await trio.lowlevel.checkpoint()
            return
        await self._live().pause()

    async def resume(self) -> None:
        """Resume a paused torrent (also after a storage error, or a failed metadata fetch)."""
        pending = self._live_pending()
        if pending is not None:
            if pending.resume():
                pending.session.hub.publish(TorrentResumed(pending.info_hash))
            await trio.lowlevel.checkpoint()
            return
        await self._live().resume()

    def connect_peer(self, addr: PeerAddr | str) -> None:
        """Add a peer to dial."""
        a = addr if isinstance(addr, PeerAddr) else PeerAddr.parse(addr)
        pending = self._live_pending()
        if pending is not None:
            pending.connect_peer(a)
            return
        rt = self._live()
        rt.peer_list.add(a, SOURCE_MANUAL, trio.current_time())
        rt._connect_wake.set()

    def set_file_priorities(self, priorities: Sequence[int]) -> None:
        """Priority per file (0 = do not download, 1..7)."""
        try:
            self._live().set_file_priorities(priorities)
        except ValueError as exc:
            raise ClientError(str(exc), info_hash=self.info_hash.hex()) from exc

    def set_sequential(self, sequential: bool) -> None:
        """Download pieces in order (for streaming)."""
        pending = self._live_pending()
        if pending is not None:
            pending.sequential = sequential
            return
        rt = self._live()
        if rt.picker is not None:
            rt.picker.set_sequential(sequential)

    def set_rate_limits(self, *, download: int | None = None, upload: int | None = None) -> None:
        """Per-torrent limits in bytes/s (0 = unlimited; None leaves a limit unchanged)."""
        pending = self._live_pending()
        if pending is not None:
            for name, rate in (("download", download), ("upload", upload)):
                if rate is not None:
                    if rate < 0:
                        raise ClientError("rate limits must be >= 0")
                    pending.rate_limits[name] = rate
            return
        rt = self._live()
        now = trio.current_time()
        if download is not None:
            rt.down_bucket.set_rate(download, now)
        if upload is not None:
            rt.up_bucket.set_rate(upload, now)

    async def save_resume_data(self) -> bytes:
        """Write fast-resume data now (to the session's resume folder, if any) and return it."""
        data = await self._live().save_resume()
        if data is None:
            raise ClientError("torrent is still checking", info_hash=self.info_hash.hex())
        return data
