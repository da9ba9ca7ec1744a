"""Status snapshots: frozen views of a torrent, a peer and the session at one moment."""

from __future__ import annotations

import enum

import attrs

from torrio.core import InfoHash, PeerAddr


class TorrentState(enum.Enum):
    """Where a torrent is in its life."""

    DOWNLOADING_METADATA = "downloading_metadata"
    """A magnet link's info dict (and, for v2, its piece layers) is being fetched from peers."""
    CHECKING = "checking"
    """Checking existing data or loading fast-resume data."""
    DOWNLOADING = "downloading"
    SEEDING = "seeding"
    """Every wanted piece is here; upload only."""
    PAUSED = "paused"
    QUEUED = "queued"
    """Waiting for a free slot under the session's active-torrent limits."""
    ERROR = "error"


@attrs.frozen
class PeerStatus:
    """One connected peer."""

    addr: PeerAddr
    client: str | None
    incoming: bool
    encrypted: bool
    download_rate: float
    upload_rate: float
    downloaded: int
    uploaded: int
    progress: float
    am_choking: bool
    am_interested: bool
    peer_choking: bool
    peer_interested: bool
    requests: int
    transport: str = "tcp"
    """``"tcp"`` or ``"utp"``."""


@attrs.frozen
class FileStatus:
    """Progress of one file (pad files are left out)."""

    index: int
    path: str
    length: int
    done: int
    priority: int


@attrs.frozen
class TorrentStatus:
    """A snapshot of one torrent."""

    info_hash: InfoHash
    name: str
    state: TorrentState
    total_length: int
    wanted_length: int
    done: int
    """Verified bytes of wanted pieces."""
    pieces: int
    num_pieces: int
    download_rate: float
    upload_rate: float
    downloaded: int
    """Payload bytes received this session."""
    uploaded: int
    """Payload bytes sent this session."""
    peers: int
    seeds: int
    known_peers: int
    availability: float
    """Distributed copies in the connected swarm (libtorrent's ``distributed_copies``)."""
    eta: float | None
    """Seconds to finish at the current rate (None when unknown or done)."""
    error: str | None
    paused: bool
    finished: bool
    has_metadata: bool = True
    """False while a magnet link's metadata is being fetched (sizes and pieces are then 0)."""

    @property
    def progress(self) -> float:
        """Fraction (0..1) of wanted bytes verified (0 while the metadata is missing)."""
        if not self.has_metadata:
            return 0.0
        return 1.0 if not self.wanted_length else self.done / self.wanted_length

    @property
    def ratio(self) -> float:
        """Uploaded / downloaded this session (0 if nothing downloaded)."""
        return self.uploaded / self.downloaded if self.downloaded else 0.0


@attrs.frozen
class SessionStatus:
    """A snapshot of the session."""

    port: int
    torrents: int
    peers: int
    download_rate: float
    upload_rate: float
    downloaded: int
    uploaded: int
    blocked_peers: int = 0
    """Connection attempts (in or out) refused by the IP filter."""
