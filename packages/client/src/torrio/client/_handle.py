"""The user's handle on one torrent of a session (libtorrent's ``torrent_handle``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import trio

from torrio.core import InfoHash, PeerAddr
from torrio.metainfo import Torrent

from ._errors import ClientError
from ._peer_list import SOURCE_MANUAL
from ._status import FileStatus, PeerStatus, TorrentStatus
from ._web_seed import WebSeedStatistics

if TYPE_CHECKING:
    from ._torrent import TorrentRuntime


class TorrentHandle:
    """Controls and inspects one torrent. Methods raise :class:`ClientError` once it is removed."""

    def __init__(self, runtime: TorrentRuntime) -> None:
        self._rt = runtime

    def __repr__(self) -> str:
        return f"TorrentHandle({self._rt.name!r}, {self.info_hash.hex()})"

    def _live(self) -> TorrentRuntime:
        if self._rt.removed:
            raise ClientError("torrent was removed", info_hash=self._rt.info_hash.hex())
        return self._rt

    @property
    def info_hash(self) -> InfoHash:
        """The torrent's info-hash."""
        return self._rt.info_hash

    @property
    def torrent(self) -> Torrent:
        """The torrent's metainfo."""
        return self._rt.torrent

    @property
    def is_valid(self) -> bool:
        """False once the torrent was removed from its session."""
        return not self._rt.removed

    def status(self) -> TorrentStatus:
        """A snapshot of progress, rates, peers and state."""
        return self._rt.status()

    def peers(self) -> list[PeerStatus]:
        """A snapshot of each connected peer."""
        return self._rt.peer_statuses()

    def file_status(self) -> list[FileStatus]:
        """Progress of each (non-pad) file."""
        return self._rt.file_status()

    def web_seeds(self) -> list[WebSeedStatistics]:
        """A snapshot of each web seed in use (empty while the torrent is not active)."""
        return [ws.statistics() for ws in self._live().web_seeds]

    def have_pieces(self) -> list[int]:
        """Indices of verified pieces."""
        return list(self._rt.have)

    async def wait_finished(self) -> None:
        """Wait until every wanted piece is downloaded and verified."""
        while True:
            rt = self._live()
            if rt.lifecycle.finished and rt.lifecycle.checked:
                await trio.lowlevel.checkpoint()
                return
            await rt.finished_event.wait()

    async def wait_checked(self) -> None:
        """Wait until existing data was checked (or resume data loaded)."""
        await self._live().checked_event.wait()

    async def pause(self) -> None:
        """Disconnect every peer and stop; resume data is saved."""
        await self._live().pause()

    async def resume(self) -> None:
        """Resume a paused torrent (also after a storage error)."""
        await self._live().resume()

    def connect_peer(self, addr: PeerAddr | str) -> None:
        """Add a peer to dial."""
        rt = self._live()
        a = addr if isinstance(addr, PeerAddr) else PeerAddr.parse(addr)
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
        rt = self._live()
        if rt.picker is not None:
            rt.picker.set_sequential(sequential)

    def set_rate_limits(self, *, download: int | None = None, upload: int | None = None) -> None:
        """Per-torrent limits in bytes/s (0 = unlimited; None leaves a limit unchanged)."""
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
