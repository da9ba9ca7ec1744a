"""The life of a torrent (checking -> downloading -> seeding; paused; queued; error) and the queue.

Pure state: transitions live here, in one place, and the session shell only reports what happened.
:func:`assign_queue` decides which torrents may be active under the session's limits (like
libtorrent's auto-managed queue: the first in queue order win; paused and errored torrents do not
count).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import attrs

from ._errors import ClientError
from ._status import TorrentState


@attrs.define
class Lifecycle:
    """The state of one torrent. ``state`` is what the user sees; flags record why."""

    finished: bool = False
    paused: bool = False
    queued: bool = False
    checked: bool = False
    error: str | None = None

    @property
    def state(self) -> TorrentState:
        """The visible state, derived from the flags."""
        if self.error is not None:
            return TorrentState.ERROR
        if self.paused:
            return TorrentState.PAUSED
        if not self.checked:
            return TorrentState.CHECKING
        if self.queued:
            return TorrentState.QUEUED
        return TorrentState.SEEDING if self.finished else TorrentState.DOWNLOADING

    @property
    def active(self) -> bool:
        """True when the torrent may connect to peers and transfer data."""
        return self.state in (TorrentState.DOWNLOADING, TorrentState.SEEDING)

    def check_done(self, *, finished: bool) -> None:
        """Checking (or loading resume data) is over."""
        self.checked = True
        self.finished = finished

    def all_wanted_done(self) -> bool:
        """Every wanted piece is verified; returns True if this is news (downloading -> seeding)."""
        news = not self.finished
        self.finished = True
        return news

    def wanted_more(self) -> None:
        """Priorities changed so that pieces are missing again (seeding -> downloading)."""
        self.finished = False

    def pause(self) -> bool:
        """Pause; returns True if the torrent was not paused before."""
        was = self.paused
        self.paused = True
        return not was

    def resume(self) -> bool:
        """Resume after a pause (also clears a storage error); True if it was paused."""
        was = self.paused
        self.paused = False
        self.error = None
        return was

    def set_queued(self, queued: bool) -> None:
        """The queue decided whether this torrent may be active."""
        self.queued = queued

    def fail(self, message: str) -> None:
        """An unrecoverable error; only :meth:`resume` clears it."""
        if not message:
            raise ClientError("an error needs a message")
        self.error = message


@attrs.frozen
class QueueEntry:
    """A torrent as the queue sees it."""

    key: Hashable
    seeding: bool
    eligible: bool
    """False for paused, errored or still-checking torrents: they neither count nor queue."""


@attrs.frozen
class QueueLimits:
    """Active-torrent limits; -1 means no limit."""

    active_downloads: int = -1
    active_seeds: int = -1
    active_limit: int = -1


def assign_queue(entries: Sequence[QueueEntry], limits: QueueLimits) -> set[Hashable]:
    """The keys of the torrents allowed to be active, first in ``entries`` order first."""
    active: set[Hashable] = set()
    downloads = seeds = 0

    def room(count: int, limit: int) -> bool:
        return limit < 0 or count < limit

    for e in entries:
        if not e.eligible:
            continue
        if not room(len(active), limits.active_limit):
            break
        if e.seeding:
            if room(seeds, limits.active_seeds):
                seeds += 1
                active.add(e.key)
        elif room(downloads, limits.active_downloads):
            downloads += 1
            active.add(e.key)
    return active
