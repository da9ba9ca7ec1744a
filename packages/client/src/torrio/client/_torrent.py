"""One torrent inside a session: check, connect, choke, request, verify, announce, resume.

The runtime is driven by trio tasks in the session's nursery; every decision is delegated to a pure
piece (torrio-select's Picker, the Choker, the PeerList, SmartBan, Lifecycle) so this module only
wires events between them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from torrio.core import Bitfield, PeerAddr
from torrio.disk import DiskError, PieceVerified, StorageFailed
from torrio.disk import StorageError as DiskStorageError
from torrio.handshake import HandshakeResult, Reserved
from torrio.metainfo import Torrent
from torrio.select import Picker, PieceLayout
from torrio.wire import UPLOAD_ONLY, Cancel, Have, RateMeter, UploadOnly, allowed_fast_set

from . import _events as ev
from ._choker import ChokeCandidate, Choker
from ._donthave import announce_lost, lost_on_read
from ._hash_server import HashServer
from ._lifecycle import Lifecycle
from ._lsd_driver import announce_torrent
from ._metadata_fetch import MetadataServer
from ._params import AddTorrent
from ._peer import Peer
from ._peer_list import SOURCE_DHT, SOURCE_INCOMING, SOURCE_MANUAL, SOURCE_TRACKER, PeerList
from ._pex_driver import PexDriver, keep_new_duplicate
from ._piece_store import PieceStore
from ._rate_limit import TokenBucket
from ._share_mode_driver import ShareModeDriver
from ._smart_ban import SmartBan
from ._status import FileStatus, PeerStatus, TorrentStatus
from ._super_seed import SuperSeedDriver
from ._web_seed_driver import report_web_seeds, run_web_seeds

if TYPE_CHECKING:
    from ._dht_source import DhtPeerSource, DhtRound
    from ._session import Session

TICK = 0.5


class TorrentRuntime:
    """The state and tasks of one torrent. Users hold a :class:`TorrentHandle` instead."""

    def __init__(
        self,
        session: Session,
        torrent: Torrent,
        params: AddTorrent,
        store: PieceStore,
        resume: bytes | None,
    ) -> None:
        self.session = session
        self.torrent = torrent
        self.params = params
        self.info_hash = torrent.info_hash
        self.name = torrent.name
        self.layout = torrent.layout
        self.num_pieces = torrent.num_pieces
        self.store = store
        self._resume_in = resume
        self.have = Bitfield(self.num_pieces)
        self.missing_wanted = Bitfield(self.num_pieces)
        n_files = len(torrent.files)
        self.file_priorities = list(params.file_priorities or [4] * n_files)
        if len(self.file_priorities) != n_files:
            raise ValueError(f"file_priorities needs {n_files} entries")
        self.piece_priority = self._piece_priorities()
        self.picker: Picker | None = None
        self.web_seeds: list[Any] = []
        """The ``WebSeed`` objects of the current active phase (their ``statistics()``)."""
        self.share_mode = ShareModeDriver(self)
        """Share mode (``params.share_mode``): sets the picker's priorities on every tick."""
        self.super_seed = SuperSeedDriver(self)
        """BEP 16 super-seeding (``params.super_seed``) once the torrent is a seed."""
        self.peers: dict[Peer, None] = {}
        self.peer_list = PeerList()
        self.pex_driver = PexDriver(self)
        """Peer exchange (BEP 11; off for private torrents)."""
        self.choker = Choker(slots=params.upload_slots)
        self.smart_ban = SmartBan()
        self.metadata_server = MetadataServer(torrent.info_bytes)
        """Answers ut_metadata requests (BEP 9) so magnet downloaders can fetch our info dict."""
        self.hash_server = HashServer(torrent)
        """Answers BEP 52 hash requests so v2 magnet downloaders can fetch our piece layers."""
        self.lifecycle = Lifecycle(paused=params.paused)
        self.up_bucket = TokenBucket(rate=params.max_upload_rate)
        self.down_bucket = TokenBucket(rate=params.max_download_rate)
        self.down = RateMeter()
        self.up = RateMeter()
        self.finished_event = trio.Event()
        self.checked_event = trio.Event()
        self.removed = False
        self.seeding_since: float | None = None
        self._nursery: trio.Nursery | None = None
        self._active_scope: trio.CancelScope | None = None
        self._state_changed = trio.Event()
        self._tick_wake = trio.Event()
        self._connect_wake = trio.Event()
        self._announcers: list[Any] = []
        self.dht_source: DhtPeerSource | None = None
        """The DHT peer source of the current active phase (its ``statistics()``), if any."""
        self._last_state = self.lifecycle.state
        self._done_bytes = 0
        self._connecting = 0
        self._storage_error = False
        self._resume_lock = trio.Lock()
        self._avail_cache: tuple[float, float] | None = None
        self.wanted_length = sum(
            self.layout.piece_size(p) for p in range(self.num_pieces) if self.piece_priority[p]
        )
        now = trio.current_time()
        for addr in params.peers:
            self.peer_list.add(addr, SOURCE_MANUAL, now)

    # -- small helpers -----------------------------------------------------------------------

    def _piece_priorities(self) -> list[int]:
        prio = [0] * self.num_pieces
        for i, f in enumerate(self.torrent.files):
            if f.is_pad or f.length == 0:
                continue
            for p in self.layout.file_piece_range(i):
                prio[p] = max(prio[p], self.file_priorities[i])
        return prio

    def piece_size(self, piece: int) -> int:
        """Bytes in ``piece``."""
        return self.layout.piece_size(piece)

    def publish(self, event: ev.Event) -> None:
        """Send an event to the session's subscribers."""
        self.session.hub.publish(event)

    def spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in the torrent's active nursery (dropped when not active)."""
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    def down_buckets(self) -> list[TokenBucket]:
        """Download rate limits that apply (torrent, then session)."""
        return [self.down_bucket, self.session.down_bucket]

    def up_buckets(self) -> list[TokenBucket]:
        """Upload rate limits that apply (torrent, then session)."""
        return [self.up_bucket, self.session.up_bucket]

    def upload_only_now(self) -> bool:
        """BEP 21: we only upload (finished, or a seed-only torrent)."""
        return self.lifecycle.finished or self.params.upload_only

    def allowed_fast_for(self, peer: Peer) -> list[int]:
        """BEP 6 allowed-fast pieces we grant ``peer`` (only ones we have)."""
        if self.num_pieces < 50:
            return []
        cand = allowed_fast_set(peer.addr.ip, self.info_hash.wire, self.num_pieces, 10)
        return [p for p in cand if self.have[p]]

    def _set_state_event(self) -> None:
        new = self.lifecycle.state
        if new is not self._last_state:
            self.publish(ev.TorrentStateChanged(self.info_hash, self._last_state.value, new.value))
            self._last_state = new
        self._state_changed.set()
        self._state_changed = trio.Event()

    # -- status --------------------------------------------------------------------------------

    def status(self) -> TorrentStatus:
        """A snapshot."""
        now = trio.current_time()
        dr = self.down.rate(now)
        left = self.wanted_length - self._done_bytes
        eta = None if dr <= 0 or left <= 0 else left / dr
        seeds = sum(1 for p in self.peers if p.is_seed)
        availability = self._availability(now, seeds)
        return TorrentStatus(
            info_hash=self.info_hash,
            name=self.name,
            state=self.lifecycle.state,
            total_length=self.torrent.total_length,
            wanted_length=self.wanted_length,
            done=self._done_bytes,
            pieces=self.have.count(),
            num_pieces=self.num_pieces,
            download_rate=dr,
            upload_rate=self.up.rate(now),
            downloaded=self.down.total,
            uploaded=self.up.total,
            peers=len(self.peers),
            seeds=seeds,
            known_peers=len(self.peer_list),
            availability=availability,
            eta=eta,
            error=self.lifecycle.error,
            paused=self.lifecycle.paused,
            finished=self.lifecycle.finished,
        )

    def _availability(self, now: float, seeds: int) -> float:
        """libtorrent's distributed copies; recomputed at most every 2 s (it is O(peers*pieces))."""
        cached = self._avail_cache
        if cached is not None and now - cached[0] < 2.0:
            return cached[1]
        if not self.peers:
            value = 0.0
        else:
            counts = [0] * self.num_pieces
            for p in self.peers:
                if not p.is_seed:
                    for i in p.bits:
                        counts[i] += 1
            base = min(counts) if counts else 0
            above = sum(1 for c in counts if c > base) / max(1, self.num_pieces)
            value = seeds + base + above
        self._avail_cache = (now, value)
        return value

    def peer_statuses(self) -> list[PeerStatus]:
        """A snapshot of every connected peer."""
        now = trio.current_time()
        return [p.status(now) for p in self.peers]

    def file_status(self) -> list[FileStatus]:
        """Progress per file (pad files left out), counted in verified pieces."""
        out = []
        for i, f in enumerate(self.torrent.files):
            if f.is_pad:
                continue
            done = 0
            for p in self.layout.file_piece_range(i):
                if self.have[p]:
                    start = max(f.offset, self.layout.piece_offset(p))
                    end = min(f.offset + f.length, self.layout.piece_offset(p) + self.piece_size(p))
                    done += max(0, end - start)
            out.append(FileStatus(i, "/".join(f.path), f.length, done, self.file_priorities[i]))
        return out

    # -- accounting (called by peers) ---------------------------------------------------------

    def payload_received(self, n: int, now: float) -> None:
        """Payload bytes arrived from a peer."""
        self.down.add(n, now)

    def payload_sent(self, n: int, now: float) -> None:
        """Payload bytes were sent to a peer."""
        self.up.add(n, now)

    def choker_dirty(self) -> None:
        """A peer's interest changed: run the choker soon."""
        self._tick_wake.set()

    def _rebuild_missing(self) -> None:
        missing = Bitfield(self.num_pieces)
        for p in range(self.num_pieces):
            if self.piece_priority[p] and not self.have[p]:
                missing.set(p)
        self.missing_wanted = missing
        for peer in self.peers:
            self._recount(peer)

    def _recount(self, peer: Peer) -> None:
        n = len(peer.bits.to_bytes())
        a = int.from_bytes(peer.bits.to_bytes(), "big")
        b = int.from_bytes(self.missing_wanted.to_bytes(), "big")
        peer.wanted = (a & b).bit_count() if n else 0

    def peer_has(self, peer: Peer, piece: int) -> None:
        """A peer announced a piece: maybe we become interested (O(1))."""
        if self.missing_wanted[piece]:
            peer.wanted += 1
            if not peer.am_interested:
                peer.update_interest()
        self.super_seed.peer_has(peer, piece)
        self._maybe_drop_seed(peer)

    def peer_bits_changed(self, peer: Peer) -> None:
        """A peer's whole bitfield is known or replaced."""
        self._recount(peer)
        peer.update_interest()
        self.super_seed.peer_bitfield(peer)
        self._maybe_drop_seed(peer)

    def _maybe_drop_seed(self, peer: Peer) -> None:
        if self.upload_only_now() and (peer.is_seed or peer.upload_only):
            # both sides only upload: the connection is useless
            self.spawn(peer.close, "both are seeds")

    # -- storage -------------------------------------------------------------------------------

    async def write_block(
        self, piece: int, offset: int, data: bytes | memoryview, peer: Peer
    ) -> None:
        """Hand a downloaded block to storage (hashing follows when the piece is complete)."""
        try:
            await self.store.write_block(piece, offset, data, peer)
        except DiskError:
            # storage paused after a failure (the StorageFailed event pauses us too), or a block
            # it refuses: the picker must not count this block as received. Blocks storage did
            # keep are ignored as duplicates when they come again.
            self._unreceive(piece)
        except BaseException:
            # cancelled before storage took the block (a pause): same as above
            self._unreceive(piece)
            raise

    def _unreceive(self, piece: int) -> None:
        if self.picker is not None and not self.have[piece]:
            self.picker.piece_failed(piece)

    async def read_block(self, piece: int, offset: int, length: int) -> bytes | None:
        """Read a block to upload (None if it cannot be served)."""
        if not self.have[piece]:
            return None
        try:
            return await self.store.read_block(piece, offset, length)
        except DiskError:
            # seed mode found the piece bad (PieceVerified(ok=False) follows), or a read failed
            # (StorageFailed follows)
            return None

    async def _disk_events(self) -> None:
        async for event in self.store.events():
            if isinstance(event, PieceVerified):
                await self._on_verified(event)
            elif isinstance(event, StorageFailed):
                await self._storage_failed(event)

    async def _storage_failed(self, event: StorageFailed) -> None:
        self.publish(
            ev.StorageError(
                self.info_hash,
                f"{event.operation} {event.file!r}: {event.message}",
                event.errno,
                event.file,
            )
        )
        if event.operation == "read" and await lost_on_read(self, event):
            return  # a file went missing or short: its pieces are lost (BEP 54), no pause
        for piece in event.pieces_lost:
            self._piece_lost(piece)
        self._storage_error = True
        if self.lifecycle.pause():
            self.publish(ev.TorrentPaused(self.info_hash))
            self._set_state_event()
            self._stop_active()

    def _piece_lost(self, piece: int) -> None:
        if self.have[piece]:
            announce_lost(self, piece)  # BEP 54
            if self.picker is not None:
                self.picker.piece_lost(piece)  # wanted (and requested) again
        if self.have.clear(piece) and self.piece_priority[piece]:
            self._done_bytes -= self.piece_size(piece)
            self.missing_wanted.set(piece)
            for p in self.peers:
                if p.bits[piece]:
                    p.wanted += 1
                    p.update_interest()

    async def _on_verified(self, event: PieceVerified) -> None:
        """A piece was hashed: mark have (or re-download it and find who lied)."""
        piece = event.index
        picker = self.picker
        report_web_seeds(event.contributors, event.ok)
        if event.ok:
            self._piece_passed(piece)
            liars = self.smart_ban.piece_passed(piece)
        else:
            if picker is not None:
                picker.piece_failed(piece)
            self._piece_lost(piece)
            liars = self.smart_ban.piece_failed(piece)
            addrs = tuple(sorted(p.addr for p in event.contributors if isinstance(p, Peer)))
            self.publish(ev.HashFailed(self.info_hash, piece, addrs))
        for liar in liars:
            if isinstance(liar, Peer):
                await self.ban(liar, "sent corrupt data (smart ban)")

    def _piece_passed(self, piece: int) -> None:
        picker = self.picker
        if not self.have.set(piece):
            return
        if self.piece_priority[piece]:
            self._done_bytes += self.piece_size(piece)
        if picker is not None:
            for holder, r in picker.piece_passed(piece):
                if isinstance(holder, Peer):
                    holder.send_soon(Cancel(r.piece, r.offset, r.length))
        self.publish(ev.PieceFinished(self.info_hash, piece))
        wanted = self.missing_wanted.clear(piece)
        for p in list(self.peers):
            if not p.bits[piece]:
                p.send_soon(Have(piece))  # have suppression: only to peers that lack it
            elif wanted:
                p.wanted -= 1
                if p.am_interested and p.wanted <= 0:
                    p.update_interest()
        if self._done_bytes >= self.wanted_length:
            self._finished()

    def _finished(self) -> None:
        if not self.lifecycle.all_wanted_done():
            return
        self.seeding_since = trio.current_time()
        self.publish(ev.TorrentFinished(self.info_hash))
        self.finished_event.set()
        self._set_state_event()
        self.session.requeue()
        for announcer in self._announcers:
            announcer.completed()
        for p in list(self.peers):
            if p.am_interested:
                p.update_interest()
            if p.conn is not None and p.conn.registry.supports(UPLOAD_ONLY):
                p.send_soon(UploadOnly(True))
            self._maybe_drop_seed(p)
        self.spawn(self.save_resume)

    async def ban(self, peer: Peer, reason: str) -> None:
        """Ban a peer for this torrent and drop its connection."""
        if peer.banned:
            return
        peer.banned = True
        self.peer_list.ban(peer.addr, peer.peer_id.value)
        self.smart_ban.forget_peer(peer)
        self.publish(ev.PeerBanned(self.info_hash, peer.addr, reason))
        await peer.close(f"banned: {reason}")

    # -- resume data --------------------------------------------------------------------------

    def resume_path(self) -> Path | None:
        """Where this torrent's fast-resume file lives (None without a resume folder)."""
        d = self.session.settings.resume_dir
        return None if d is None else Path(d) / f"{self.info_hash.hex()}.resume"

    async def resume_data(self) -> bytes:
        """Fast-resume data now (only pieces whose data is synced are claimed)."""
        return await self.store.resume_data()

    async def save_resume(self) -> bytes | None:
        """Write fast-resume data atomically (temp file, fsync, rename); returns it."""
        async with self._resume_lock:
            return await self._save_resume()

    async def _save_resume(self) -> bytes | None:
        if not self.lifecycle.checked or not self.store.attached:
            return None
        try:
            data = await self.resume_data()
        except DiskError:
            return None
        path = self.resume_path()
        if path is None:
            return data

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)

        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(write)
        self.publish(ev.ResumeDataSaved(self.info_hash, str(path)))
        return data

    def load_resume_file(self) -> bytes | None:
        """The saved fast-resume data, if any."""
        path = self.resume_path()
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    # -- control ------------------------------------------------------------------------------

    def _stop_active(self) -> None:
        if self._active_scope is not None:
            self._active_scope.cancel()

    async def pause(self) -> None:
        """Pause: close every connection and save resume data."""
        if self.lifecycle.pause():
            self._stop_active()
            self.publish(ev.TorrentPaused(self.info_hash))
            self._set_state_event()
        await trio.lowlevel.checkpoint()

    async def resume(self) -> None:
        """Resume after a pause or a storage error (failed writes are retried first)."""
        if self._storage_error and self.store.attached:
            try:
                lost = await self.store.retry()
            except DiskStorageError as exc:
                self.publish(ev.StorageError(self.info_hash, str(exc), exc.errno, exc.file))
                return
            self._storage_error = False
            for piece in lost:
                self._piece_lost(piece)
        if self.lifecycle.resume():
            self.publish(ev.TorrentResumed(self.info_hash))
            self._set_state_event()
        await trio.lowlevel.checkpoint()

    def set_queued(self, queued: bool) -> None:
        """The session's queue decided (un)queueing."""
        if self.lifecycle.queued == queued:
            return
        self.lifecycle.set_queued(queued)
        if queued:
            self._stop_active()
        self._set_state_event()

    def set_file_priorities(self, priorities: Iterable[int]) -> None:
        """New priorities (0 = skip) per file."""
        prios = list(priorities)
        if len(prios) != len(self.torrent.files) or any(not 0 <= p <= 7 for p in prios):
            raise ValueError("one priority 0..7 per file")
        self.file_priorities = prios
        self.piece_priority = self._piece_priorities()
        self.wanted_length = sum(
            self.piece_size(p) for p in range(self.num_pieces) if self.piece_priority[p]
        )
        self._done_bytes = sum(self.piece_size(p) for p in self.have if self.piece_priority[p])
        if self.picker is not None:
            self.picker.set_piece_priorities(self.piece_priority)
        self._rebuild_missing()
        if self.store.attached:
            self.session.spawn(self.store.set_file_priorities, prios)
        if self._done_bytes < self.wanted_length and self.lifecycle.finished:
            self.lifecycle.wanted_more()
            self.finished_event = trio.Event()
            self._set_state_event()
        for p in list(self.peers):
            p.update_interest()
        if self._done_bytes >= self.wanted_length:
            self._finished()

    # -- the tasks ----------------------------------------------------------------------------

    async def run(self) -> None:
        """The torrent's main task (in the session nursery) until removed."""
        self.publish(ev.MetadataReceived(self.info_hash, self.name, self.torrent.total_length))
        await self._check()
        if not self.store.attached:
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._disk_events)
            while not self.removed:
                if self.session.closing:
                    await trio.sleep_forever()
                if self.lifecycle.active:
                    await self._active_phase()
                    await self.save_resume()
                else:
                    await self._state_changed.wait()
            nursery.cancel_scope.cancel()

    async def _check(self) -> None:
        try:
            await self._check_inner()
        finally:
            self.checked_event.set()

    async def _check_inner(self) -> None:
        resume = self._resume_in if self._resume_in is not None else self.load_resume_file()
        try:
            have = await self.store.check(resume)
        except DiskError as exc:
            self.lifecycle.fail(str(exc))
            self.publish(ev.TorrentError(self.info_hash, str(exc)))
            self._set_state_event()
            return
        self.have = have
        self._done_bytes = sum(self.piece_size(p) for p in have if self.piece_priority[p])
        self._rebuild_missing()
        if not self.params.upload_only:
            self.picker = Picker(
                PieceLayout.from_sizes(self.piece_size(p) for p in range(self.num_pieces)),
                have=have,
            )
            self.picker.set_piece_priorities(self.piece_priority)
            self.picker.set_sequential(self.params.sequential)
        finished = self._done_bytes >= self.wanted_length or self.params.upload_only
        self.lifecycle.check_done(finished=finished)
        self.publish(ev.TorrentChecked(self.info_hash, have.count(), self.num_pieces))
        if finished:
            self.seeding_since = trio.current_time()
            self.finished_event.set()
            if not self.params.upload_only:
                self.publish(ev.TorrentFinished(self.info_hash))
        self.session.requeue()
        self._set_state_event()

    async def _active_phase(self) -> None:
        with trio.CancelScope() as scope:
            self._active_scope = scope
            self.share_mode.apply()
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._ticker)
                    nursery.start_soon(self._connector)
                    nursery.start_soon(run_web_seeds, self)
                    if self._tracker_tiers():
                        nursery.start_soon(self._tracker_loop)
                    if self.session.dht_nodes and not self.torrent.private:
                        nursery.start_soon(self._dht_loop)
                    nursery.start_soon(announce_torrent, self)
            finally:
                self._nursery = None
                self._active_scope = None

    def _tracker_tiers(self) -> list[list[str]]:
        tiers = [list(t) for t in self.torrent.trackers]
        if not self.torrent.private:
            tiers += [[url] for url in self.params.trackers]
        return [t for t in tiers if t]

    async def _tracker_loop(self) -> None:
        from torrio.tracker import (
            Announcer,
            AnnounceResult,
            TrackerList,
            TransferStats,
        )

        send, recv = trio.open_memory_channel[AnnounceResult](16)

        def stats() -> TransferStats:
            left = max(0, self.wanted_length - self._done_bytes)
            return TransferStats(uploaded=self.up.total, downloaded=self.down.total, left=left)

        # a hybrid torrent is in two swarms: announce its v1 id and its truncated v2 id (as
        # libtorrent does), each with its own tracker state; replies feed one peer list
        announcers = [
            Announcer(
                self.session.trackers,
                TrackerList(self._tracker_tiers()),
                info_hash=wire_id,
                peer_id=self.session.peer_id.value,
                port=self.session.port,
                stats=stats,
                results=send,
            )
            for wire_id in self.announce_ids()
        ]
        self._announcers = announcers
        try:
            async with trio.open_nursery() as nursery:
                for announcer in announcers:
                    await nursery.start(announcer.run)
                    if self.lifecycle.finished:
                        announcer.completed()
                async for result in recv:
                    now = trio.current_time()
                    if result.response is not None:
                        r = result.response
                        for addr in r.peers:
                            self.peer_list.add(addr, SOURCE_TRACKER, now)
                        self._connect_wake.set()
                        self.publish(
                            ev.TrackerReply(self.info_hash, result.url, len(r.peers), r.interval)
                        )
                    elif result.error is not None:
                        self.publish(ev.TrackerError(self.info_hash, result.url, str(result.error)))
        finally:
            self._announcers = []
            with trio.CancelScope(shield=True):
                for announcer in announcers:
                    await announcer.stop(wait=2.0)

    def announce_ids(self) -> tuple[bytes, ...]:
        """The 20-byte ids this torrent announces: v1, plus the truncated v2 id of a hybrid."""
        if self.torrent.version == "hybrid":
            return self.info_hash.wire_ids()
        return (self.info_hash.wire,)

    async def _dht_loop(self) -> None:
        """Find peers through the DHT and announce ourselves (public torrents only, BEP 27): a
        :class:`DhtPeerSource` over the session's nodes, each round reported as a DhtReply."""
        # imported here: torrio.dht loads only in sessions that run the DHT
        from ._dht_source import ANNOUNCE_INTERVAL, RETRY_INTERVAL, DhtPeerSource

        settings = self.session.settings
        new_peers = 0

        def found(addr: PeerAddr) -> None:
            nonlocal new_peers
            if self.peer_list.add(addr, SOURCE_DHT, trio.current_time()):
                new_peers += 1
                self._connect_wake.set()

        def reported(result: DhtRound) -> None:
            nonlocal new_peers
            self.publish(ev.DhtReply(self.info_hash, new_peers, result.error))
            new_peers = 0

        source = DhtPeerSource(
            self.session.dht_nodes,
            self.info_hash,
            found,
            port=self.session.port,
            implied_port=True,  # the DHT shares the peer port's number (one UDP port)
            private=self.torrent.private,
            wants_peers=self._wants_peers,
            is_seed=lambda: self.have.all(),
            interval=max(settings.dht_interval, ANNOUNCE_INTERVAL),
            fast_interval=settings.dht_interval,
            retry_interval=min(settings.dht_interval, RETRY_INTERVAL),
            on_round=reported,
        )
        self.dht_source = source
        try:
            await source.run()
        finally:
            self.dht_source = None

    def _wants_peers(self) -> bool:
        """Whether discovery should look for more peers (a downloader below its limits)."""
        return (
            not self.upload_only_now()
            and len(self.peers) < self.params.max_connections
            and self.session.connection_room() > 0
        )

    async def _connector(self) -> None:
        while True:
            now = trio.current_time()
            room = self.params.max_connections - len(self.peers) - self._connecting
            room = min(room, self.session.connection_room())
            if room > 0 and not self.upload_only_now():
                for addr in self.peer_list.candidates(now, room):
                    if self.session.is_self(addr):
                        self.peer_list.failed(addr, now)
                        continue
                    self._connecting += 1
                    self.spawn(self._connect, addr)
            elif room > 0 and self.upload_only_now():
                # a seed dials only peers we never saw as seeds
                for addr in self.peer_list.candidates(now, room):
                    entry = self.peer_list.get(addr)
                    if entry is not None and entry.seed:
                        self.peer_list.failed(addr, now)
                        continue
                    self._connecting += 1
                    self.spawn(self._connect, addr)
            deadline = self.peer_list.next_deadline()
            wait = 1.0 if deadline is None else max(0.05, min(1.0, deadline - now))
            with trio.move_on_after(wait):
                await self._connect_wake.wait()
            self._connect_wake = trio.Event()

    async def _connect(self, addr: PeerAddr) -> None:
        try:
            result = await self.session.dial(addr, self)
        except Exception as exc:  # dial failures of any kind just back off that address
            self._connecting -= 1
            self.peer_list.failed(addr, trio.current_time())
            del exc
            return
        self._connecting -= 1
        await self.add_peer(result, addr, incoming=False)

    async def add_peer(self, result: HandshakeResult, addr: PeerAddr, *, incoming: bool) -> None:
        """Run a handshaken connection as a peer of this torrent (until it closes)."""
        now = trio.current_time()
        peer_id = result.peer_id
        stream = result.stream
        if (
            self._nursery is None
            or self.peer_list.is_banned(addr, peer_id.value)
            or len(self.peers) >= self.params.max_connections
            or not keep_new_duplicate(self, peer_id, incoming)
        ):
            await trio.aclose_forcefully(stream)
            if not incoming:
                self.peer_list.failed(addr, now)
            return
        self.peer_list.connected(addr, SOURCE_INCOMING if incoming else SOURCE_TRACKER, now)
        ours = self.session.handshaker.reserved
        theirs = result.reserved
        peer = Peer(
            self,
            stream,
            addr,
            peer_id,
            incoming=incoming,
            encrypted=result.encrypted,
            fast=theirs.supports(Reserved.FAST) and ours.supports(Reserved.FAST),
            extensions=theirs.supports(Reserved.EXTENSION_PROTOCOL)
            and ours.supports(Reserved.EXTENSION_PROTOCOL),
        )
        self.peers[peer] = None
        if self.picker is not None:
            self.picker.add_peer(peer, now)
        self.session.peer_count += 1
        self.publish(
            ev.PeerConnected(
                self.info_hash, addr, peer.client, incoming, result.encrypted, peer.transport
            )
        )
        await peer.run()

    def peer_closed(self, peer: Peer) -> None:
        """Called by a peer's task when its connection ended."""
        if peer not in self.peers:
            return
        del self.peers[peer]
        self.session.peer_count -= 1
        self.metadata_server.forget(peer)
        self.hash_server.forget(peer)
        self.pex_driver.closed(peer)
        self.super_seed.peer_left(peer)
        if self.picker is not None:
            self.picker.remove_peer(peer)
        self.choker.remove(peer)
        entry = self.peer_list.get(peer.addr)
        if entry is not None and entry.source == SOURCE_INCOMING:
            # an incoming peer's address has an ephemeral port we cannot dial: forget it
            self.peer_list.forget(peer.addr)
        elif not self.peer_list.is_banned(peer.addr):
            self.peer_list.disconnected(
                peer.addr, trio.current_time(), seed=peer.is_seed or peer.upload_only
            )
        self.publish(ev.PeerDisconnected(self.info_hash, peer.addr, peer.close_reason or "closed"))
        self._tick_wake.set()

    async def _ticker(self) -> None:
        last_resume = trio.current_time()
        while True:
            now = trio.current_time()
            await self._choke_round(now)
            if self.picker is not None:
                for e in self.picker.tick(now):
                    p = e.peer
                    if isinstance(p, Peer):
                        p.send_soon(Cancel(e.request.piece, e.request.offset, e.request.length))
                for p in list(self.peers):
                    if p.am_interested and not p.closed:
                        self.spawn(p.fill_requests)
            interval = self.session.settings.resume_interval
            if interval > 0 and now - last_resume >= interval:
                last_resume = now
                self.spawn(self.save_resume)
            self._check_seed_limits(now)
            self.share_mode.apply()
            self.super_seed.tick()
            self.pex_driver.tick(now)
            with trio.move_on_after(TICK):
                await self._tick_wake.wait()
            self._tick_wake = trio.Event()

    async def _choke_round(self, now: float) -> None:
        seeding = self.lifecycle.finished
        cands = [
            ChokeCandidate(
                p,
                p.peer_interested and not (p.is_seed or p.upload_only),
                download_rate=p.down.rate(now),
                upload_rate=p.up.rate(now),
                snubbed=self.picker is not None and self.picker.queueing.is_snubbed(p),
            )
            for p in self.peers
            if not p.closed
        ]
        unchoked = self.choker.tick(now, cands, seeding=seeding)
        for p in list(self.peers):
            want_choke = p not in unchoked
            if want_choke != p.am_choking:
                self.spawn(self._set_choking, p, want_choke)

    async def _set_choking(self, peer: Peer, choking: bool) -> None:
        try:
            await peer.set_choking(choking)
        except Exception:
            await peer.close("send failed")

    def _check_seed_limits(self, now: float) -> None:
        if not self.lifecycle.finished or self.seeding_since is None:
            return
        p = self.params
        ratio_hit = (
            p.ratio_limit is not None
            and self.down.total > 0
            and self.up.total / self.down.total >= p.ratio_limit
        )
        time_hit = p.seed_time_limit is not None and now - self.seeding_since >= p.seed_time_limit
        if ratio_hit or time_hit:
            self.spawn(self.pause)

    def connection_info(self) -> tuple[int, float]:
        """(peers, download rate) for the session's statistics."""
        return len(self.peers), self.down.rate(trio.current_time())
