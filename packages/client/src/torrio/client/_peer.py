"""One peer connection of a torrent: the wire protocol loop, requests, uploads.

The protocol state lives in torrio-wire's sans-I/O :class:`~torrio.wire.WireConnection`; what to
request comes from the torrent's torrio-select :class:`~torrio.select.Picker`; blocks go to the
torrent's piece store. This module moves bytes and applies BitTorrent's rules (BEP 3, BEP 6 fast
extension, BEP 10 extended handshake, BEP 21 upload-only).
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import TYPE_CHECKING

import trio

from torrio.core import Bitfield, PeerAddr, PeerId
from torrio.select import BlockRequest, SelectError
from torrio.wire import (
    LT_DONTHAVE,
    NEED_DATA,
    UPLOAD_ONLY,
    UT_METADATA,
    UT_PEX,
    AllowedFast,
    BitfieldMessage,
    Cancel,
    Choke,
    ExtendedHandshake,
    ExtensionRegistry,
    HashRequest,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    LtDontHave,
    NotInterested,
    PeerConnection,
    PeerConnectionClosed,
    Piece,
    RateMeter,
    Reject,
    Request,
    Suggest,
    Unchoke,
    UploadOnly,
    UtMetadataRequest,
    UtPex,
    WireError,
    open_peer_connection,
)

from ._donthave import peer_lost
from ._rate_limit import consume_all
from ._status import PeerStatus
from ._transport import stream_kind

if TYPE_CHECKING:
    from ._torrent import TorrentRuntime

MAX_PEER_REQUESTS = 500
"""Requests a peer may queue with us; more are rejected (BEP 6) or dropped."""
MAX_BLOCK = 16384
SEND_QUEUE = 1024
UPLOAD_BATCH = 16
"""Blocks read and queued together before the writer runs (one write of up to 256 KiB)."""
LOCAL_EXTENSIONS = {UPLOAD_ONLY: 3, UT_METADATA: 2, LT_DONTHAVE: 7}


class PeerClosed(Exception):
    """Internal: the connection is finished (reason in ``args[0]``)."""


class Peer:
    """A connected, handshaken peer of one torrent."""

    def __init__(
        self,
        torrent: TorrentRuntime,
        stream: trio.abc.Stream,
        addr: PeerAddr,
        peer_id: PeerId,
        *,
        incoming: bool,
        encrypted: bool,
        fast: bool,
        extensions: bool,
    ) -> None:
        self.torrent = torrent
        self.stream = stream
        self.addr = addr
        self.peer_id = peer_id
        self.incoming = incoming
        self.encrypted = encrypted
        self.transport = stream_kind(stream)
        """``"tcp"`` or ``"utp"``."""
        self.fast = fast
        self.extensions = extensions
        n = torrent.num_pieces
        self.conn: PeerConnection | None = None
        self.bits = Bitfield(n)
        self.wanted = 0
        """Pieces this peer has that we want and lack (interest, kept incrementally)."""
        self.am_choking = True
        self.am_interested = False
        self.peer_choking = True
        self.peer_interested = False
        self.upload_only = False
        self.down = RateMeter()
        self.up = RateMeter()
        self.requests: deque[Request] = deque()
        self._requests_changed = trio.Event()
        self.allowed_fast_out: set[int] = set()
        self.closed = False
        self.banned = False
        self.close_reason = ""
        self._scope: trio.CancelScope | None = None
        self.client = peer_id.client
        self.reqq = 250

    # -- identity ----------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"Peer({self.addr})"

    @property
    def is_seed(self) -> bool:
        """The peer has every piece (or says it only uploads)."""
        return self.bits.all() and self.bits.length > 0

    def status(self, now: float) -> PeerStatus:
        """A snapshot for status displays."""
        n = self.bits.length
        return PeerStatus(
            addr=self.addr,
            client=self.client,
            incoming=self.incoming,
            encrypted=self.encrypted,
            download_rate=self.down.rate(now),
            upload_rate=self.up.rate(now),
            downloaded=self.down.total,
            uploaded=self.up.total,
            progress=self.bits.count() / n if n else 1.0,
            am_choking=self.am_choking,
            am_interested=self.am_interested,
            peer_choking=self.peer_choking,
            peer_interested=self.peer_interested,
            requests=len(self.requests),
            transport=self.transport,
        )

    # -- sending -----------------------------------------------------------------------------

    async def send(self, *msgs: object) -> None:
        """Queue messages (in order); waits while the connection's send queue is full."""
        conn = self.conn
        if self.closed or conn is None:
            return
        try:
            # queue without yielding in between, so the writer sends them in one batch
            for m in msgs:
                try:
                    conn.send_nowait(m)  # type: ignore[arg-type]
                except trio.WouldBlock:
                    await conn.send(m)  # type: ignore[arg-type]
        except PeerConnectionClosed as exc:
            raise PeerClosed(exc.reason) from exc
        await trio.lowlevel.checkpoint()

    def send_soon(self, *msgs: object) -> None:
        """Queue messages from synchronous code (falls back to a task when the queue is full)."""
        conn = self.conn
        if self.closed or conn is None:
            return
        for i, m in enumerate(msgs):
            try:
                conn.send_nowait(m)  # type: ignore[arg-type]
            except trio.WouldBlock:
                self.torrent.spawn(self._send_quietly, *msgs[i:])
                return
            except (PeerConnectionClosed, WireError):
                return

    async def _send_quietly(self, *msgs: object) -> None:
        try:
            await self.send(*msgs)
        except PeerClosed:
            await self.close("send failed")

    async def close(self, reason: str) -> None:
        """Close the stream (idempotent)."""
        if not self.closed:
            self.closed = True
            self.close_reason = reason
        if self._scope is not None:
            self._scope.cancel()
        await trio.lowlevel.checkpoint()

    # -- the connection ----------------------------------------------------------------------

    async def run(self) -> None:
        """Run the connection until it ends; the torrent is told about everything."""
        t = self.torrent
        try:
            with trio.CancelScope() as self._scope:
                async with open_peer_connection(
                    self.stream,
                    num_pieces=t.num_pieces,
                    registry=ExtensionRegistry(local=t.pex_driver.extensions(LOCAL_EXTENSIONS)),
                    send_queue_size=SEND_QUEUE,
                    close_timeout=1.0,
                ) as conn:
                    self.conn = conn
                    await self._greet()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._uploader)
                        await self._receiver()
                        nursery.cancel_scope.cancel()
        except* PeerClosed as eg:
            self._closed_by(eg, "")
        except* PeerConnectionClosed as eg:
            self._closed_by(eg, "")
        except* (WireError, SelectError) as eg:
            self._closed_by(eg, "protocol error: ")
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as eg:
            self._closed_by(eg, "connection lost: ")
        except* Exception as eg:
            if t.session.settings.reraise_errors:
                raise
            self._closed_by(eg, "internal error: ")
        finally:
            self.closed = True
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self.stream)
            t.peer_closed(self)

    def _closed_by(self, group: BaseExceptionGroup[BaseException], prefix: str) -> None:
        if not self.close_reason:
            first = group.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            reason = getattr(first, "reason", None) or str(first) or type(first).__name__
            self.close_reason = prefix + str(reason)

    async def _greet(self) -> None:
        t = self.torrent
        msgs: list[object] = []
        if self.extensions:
            msgs.append(
                ExtendedHandshake(
                    m=t.pex_driver.extensions(LOCAL_EXTENSIONS),
                    v="torrio 0.1",
                    reqq=MAX_PEER_REQUESTS,
                    upload_only=t.upload_only_now(),
                    yourip=self.addr.ip,
                    metadata_size=t.metadata_server.metadata_size,
                    p=t.session.port or None,
                )
            )
        have = t.have
        reveal = t.super_seed.greeting(self)
        if reveal is not None:
            msgs.extend(reveal)
        elif self.fast and have.all():
            msgs.append(HaveAll())
        elif self.fast and have.none():
            msgs.append(HaveNone())
        elif not have.none():
            msgs.append(BitfieldMessage(have.to_bytes()))
        if self.fast:
            for piece in t.allowed_fast_for(self):
                self.allowed_fast_out.add(piece)
                msgs.append(AllowedFast(piece))
        if msgs:
            await self.send(*msgs)

    async def _receiver(self) -> None:
        conn = self.conn
        assert conn is not None
        wire = conn.wire
        while True:
            # handle everything already decoded before refilling the request pipeline
            ev = await conn.receive()
            await self._handle(ev)
            while True:
                nxt = wire.next_event()
                if nxt is NEED_DATA:
                    break
                await self._handle(nxt)
            await self.fill_requests()

    async def _handle(self, ev: object) -> None:
        t = self.torrent
        picker = t.picker
        cls = type(ev)
        if cls is Piece:
            assert isinstance(ev, Piece)
            await self._on_block(ev)
        elif cls is Have:
            assert isinstance(ev, Have)
            if self.bits.set(ev.index):
                if picker is not None:
                    picker.peer_has(self, ev.index)
                t.peer_has(self, ev.index)
        elif cls is BitfieldMessage:
            assert isinstance(ev, BitfieldMessage)
            self.bits = Bitfield.from_bytes(ev.bits, t.num_pieces)
            if picker is not None:
                picker.peer_bitfield(self, self.bits)
            t.peer_bits_changed(self)
        elif cls is HaveAll:
            self.bits = Bitfield.full(t.num_pieces)
            if picker is not None:
                picker.peer_has_all(self)
            t.peer_bits_changed(self)
        elif cls is HaveNone:
            self.bits = Bitfield(t.num_pieces)
            if picker is not None:
                picker.peer_has_none(self)
            t.peer_bits_changed(self)
        elif cls is Choke:
            self.peer_choking = True
            if picker is not None:
                picker.set_peer_choking(self, True)
        elif cls is Unchoke:
            self.peer_choking = False
            if picker is not None:
                picker.set_peer_choking(self, False)
        elif cls is Interested:
            self.peer_interested = True
            t.choker_dirty()
        elif cls is NotInterested:
            self.peer_interested = False
            t.choker_dirty()
        elif cls is Request:
            assert isinstance(ev, Request)
            await self._on_request(ev)
        elif cls is Cancel:
            assert isinstance(ev, Cancel)
            with contextlib.suppress(ValueError):
                self.requests.remove(Request(ev.index, ev.begin, ev.length))
        elif cls is Reject:
            assert isinstance(ev, Reject)
            if picker is not None:
                picker.block_rejected(self, BlockRequest(ev.index, ev.begin, ev.length))
        elif cls is AllowedFast:
            assert isinstance(ev, AllowedFast)
            if picker is not None and not t.have[ev.index]:
                picker.allowed_fast(self, ev.index)
        elif cls is Suggest:
            assert isinstance(ev, Suggest)
            if picker is not None:
                picker.suggest(self, ev.index)
        elif cls is ExtendedHandshake:
            assert isinstance(ev, ExtendedHandshake)
            self.upload_only = ev.upload_only
            if ev.reqq:
                self.reqq = max(1, min(ev.reqq, 2000))
            if ev.v:
                self.client = ev.v[:64]
            conn = self.conn
            t.pex_driver.handshake(self, ev, conn is not None and conn.registry.supports(UT_PEX))
        elif cls is UploadOnly:
            assert isinstance(ev, UploadOnly)
            self.upload_only = ev.enabled
        elif cls is LtDontHave:
            assert isinstance(ev, LtDontHave)
            peer_lost(self, ev)
        elif cls is UtPex:
            assert isinstance(ev, UtPex)
            t.pex_driver.received(self, ev)
        elif cls is UtMetadataRequest:
            assert isinstance(ev, UtMetadataRequest)
            await self.send(t.metadata_server.respond(ev, self))
        elif cls is HashRequest:
            assert isinstance(ev, HashRequest)
            # BEP 52: MUST be answered with hashes or hash reject; block hashes are computed from
            # pieces we have, read like an upload
            reply = await t.hash_server.answer(
                ev, self, trio.current_time(), lambda p: t.read_block(p, 0, t.piece_size(p))
            )
            await self.send(reply)
        # keep-alives, PORT, hashes, unknown and unsupported extension messages: nothing to do

    # -- downloading -------------------------------------------------------------------------

    def update_interest(self) -> None:
        """Send INTERESTED / NOT INTERESTED when our interest changed."""
        t = self.torrent
        want = t.picker is not None and not t.lifecycle.finished and self.wanted > 0
        if want != self.am_interested:
            self.am_interested = want
            self.send_soon(Interested() if want else NotInterested())

    async def fill_requests(self) -> None:
        """Keep the request pipeline full (depth adapts to the peer's rate; torrio-select)."""
        t = self.torrent
        picker = t.picker
        if picker is None or not self.am_interested or self.closed:
            return
        now = trio.current_time()
        budget = min(
            picker.request_budget(self, now), self.reqq - picker.queueing.outstanding(self)
        )
        # refill in batches (fewer, larger writes), unless the pipeline is nearly empty
        if budget <= 0 or (budget < 8 and picker.queueing.outstanding(self) > 4):
            return
        reqs = picker.pick(self, budget, now)
        if reqs:
            await self.send(*(Request(r.piece, r.offset, r.length) for r in reqs))

    async def _on_block(self, ev: Piece) -> None:
        t = self.torrent
        picker = t.picker
        now = trio.current_time()
        n = len(ev.block)
        self.down.add(n, now)
        t.payload_received(n, now)
        delay = consume_all(t.down_buckets(), n, now)
        if delay > 0:
            await trio.sleep(delay)
        if picker is None or t.have[ev.index] or n == 0 or n > MAX_BLOCK:
            return
        req = BlockRequest(ev.index, ev.begin, n)
        try:
            res = picker.block_received(self, req, now)
        except SelectError:
            return  # a block we never asked for (or misaligned): ignore it
        for other in res.cancel:
            if isinstance(other, Peer) and other is not self:
                other.send_soon(Cancel(req.piece, req.offset, req.length))
        if not res.accepted:
            return
        t.smart_ban.block_received(req.piece, req.offset, self, ev.block)
        await t.write_block(req.piece, req.offset, ev.block, self)

    # -- uploading ---------------------------------------------------------------------------

    async def _on_request(self, ev: Request) -> None:
        t = self.torrent
        ok = (
            0 <= ev.index < t.num_pieces
            and t.have[ev.index]
            and 0 < ev.length <= MAX_BLOCK
            and ev.begin + ev.length <= t.piece_size(ev.index)
            and (not self.am_choking or ev.index in self.allowed_fast_out)
            and len(self.requests) < MAX_PEER_REQUESTS
            and t.super_seed.may_upload(self, ev.index)
        )
        if not ok:
            if self.fast:
                await self.send(Reject(ev.index, ev.begin, ev.length))
            return
        self.requests.append(ev)
        self._requests_changed.set()

    async def set_choking(self, choking: bool) -> None:
        """Choke or unchoke the peer; choking drops (BEP 6: rejects) its queued requests."""
        if choking == self.am_choking:
            return
        self.am_choking = choking
        if choking:
            dropped = [r for r in self.requests if r.index not in self.allowed_fast_out]
            self.requests = deque(r for r in self.requests if r.index in self.allowed_fast_out)
            msgs: list[object] = [Choke()]
            if self.fast:
                msgs += [Reject(r.index, r.begin, r.length) for r in dropped]
            await self.send(*msgs)
        else:
            await self.send(Unchoke())

    async def _uploader(self) -> None:
        t = self.torrent
        while True:
            while not self.requests:
                self._requests_changed = trio.Event()
                await self._requests_changed.wait()
            # serve a batch: the blocks go out in one write (fewer syscalls and wakeups)
            batch: list[object] = []
            size = 0
            while self.requests and len(batch) < UPLOAD_BATCH:
                r = self.requests.popleft()
                if self.am_choking and r.index not in self.allowed_fast_out:
                    continue
                now = trio.current_time()
                delay = consume_all(t.up_buckets(), r.length, now)
                if delay > 0:
                    if batch:
                        await self.send(*batch)
                        batch = []
                    await trio.sleep(delay)
                data = await t.read_block(r.index, r.begin, r.length)
                if data is None:
                    if self.fast:
                        batch.append(Reject(r.index, r.begin, r.length))
                    continue
                batch.append(Piece(r.index, r.begin, data))
                size += r.length
            if batch:
                await self.send(*batch)
            if size:
                now = trio.current_time()
                self.up.add(size, now)
                t.payload_sent(size, now)
