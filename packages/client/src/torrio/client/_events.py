"""Typed events a session reports (``async for event in session.events()``), like libtorrent's alerts.

Every event is ``@attrs.frozen`` and names its torrent by ``info_hash`` (a :class:`torrio.core.InfoHash`),
except the session-wide :class:`SessionStats`. Peers are named by :class:`torrio.core.PeerAddr`.
"""

from __future__ import annotations

import attrs

from torrio.core import InfoHash, PeerAddr

from ._status import SessionStatus, TorrentStatus


@attrs.frozen
class Event:
    """Base class of every session event."""


@attrs.frozen
class TorrentEvent(Event):
    """An event about one torrent."""

    info_hash: InfoHash


@attrs.frozen
class TorrentAdded(TorrentEvent):
    """A torrent was added to the session."""

    name: str


@attrs.frozen
class MetadataReceived(TorrentEvent):
    """The info dictionary of a torrent is known (at once for a .torrent; later for a magnet)."""

    name: str
    total_length: int


@attrs.frozen
class TorrentChecked(TorrentEvent):
    """Existing data was checked (or fast-resume data trusted); ``have`` pieces are valid."""

    have: int
    num_pieces: int


@attrs.frozen
class PieceFinished(TorrentEvent):
    """A piece was downloaded, hash-checked and written."""

    piece: int


@attrs.frozen
class HashFailed(TorrentEvent):
    """A downloaded piece failed its hash check and will be downloaded again."""

    piece: int
    peers: tuple[PeerAddr, ...]


@attrs.frozen
class PeerConnected(TorrentEvent):
    """A peer completed its handshake (``incoming`` tells who dialled)."""

    peer: PeerAddr
    client: str | None
    incoming: bool
    encrypted: bool
    transport: str = "tcp"
    """``"tcp"`` or ``"utp"``."""


@attrs.frozen
class PeerDisconnected(TorrentEvent):
    """A peer connection ended; ``reason`` is a short text."""

    peer: PeerAddr
    reason: str


@attrs.frozen
class PeerBanned(TorrentEvent):
    """A peer was banned (e.g. smart ban found it sent a corrupt block)."""

    peer: PeerAddr
    reason: str


@attrs.frozen
class TrackerReply(TorrentEvent):
    """A tracker answered an announce."""

    url: str
    peers: int
    interval: float


@attrs.frozen
class TrackerError(TorrentEvent):
    """A tracker announce failed."""

    url: str
    message: str


@attrs.frozen
class DhtReply(TorrentEvent):
    """A DHT lookup (and announce) for the torrent ended; ``peers`` new candidates were found."""

    peers: int
    error: str | None


@attrs.frozen
class StorageError(TorrentEvent):
    """Reading or writing the torrent's files failed (e.g. disk full); the torrent pauses.

    ``errno`` is the OS error number when there is one (``errno.ENOSPC`` for a full disk).
    """

    message: str
    errno: int | None
    path: str | None


@attrs.frozen
class TorrentFinished(TorrentEvent):
    """Every wanted piece is downloaded and verified."""


@attrs.frozen
class TorrentError(TorrentEvent):
    """The torrent stopped because of an error it cannot recover from by itself."""

    message: str


@attrs.frozen
class TorrentPaused(TorrentEvent):
    """The torrent was paused (by the user, or by a storage error)."""


@attrs.frozen
class TorrentResumed(TorrentEvent):
    """A paused torrent was resumed."""


@attrs.frozen
class TorrentRemoved(TorrentEvent):
    """The torrent was removed from the session."""


@attrs.frozen
class ResumeDataSaved(TorrentEvent):
    """Fast-resume data was written to ``path``."""

    path: str


@attrs.frozen
class TorrentStateChanged(TorrentEvent):
    """The torrent's state changed (``checking``, ``downloading``, ``seeding``, ...)."""

    old: str
    new: str


@attrs.frozen
class StatsEvent(Event):
    """Periodic statistics: the session and every torrent."""

    session: SessionStatus
    torrents: tuple[TorrentStatus, ...]
