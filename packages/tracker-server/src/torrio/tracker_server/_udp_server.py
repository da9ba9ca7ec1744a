"""The UDP tracker (BEP 15) on its own socket.

Connection ids are stateless: a keyed BLAKE2b of the client's IP address and the current minute,
so an id is valid for 1-2 minutes and the server keeps no per-client table a flood could grow.
The port is left out on purpose (as opentracker does): a client may announce from several sockets
of one host with one cached id — libtorrent shares its id cache among all sessions of a process.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import socket
import struct
from typing import Any

import trio

from torrio.core import IPAddress, SocketAddress
from torrio.tracker import (
    AnnounceRequest,
    ConnectRequest,
    ConnectResponse,
    Event,
    ScrapeEntry,
    TrackerError,
    UdpAnnounce,
    UdpError,
    UdpScrape,
    UdpScrapeReply,
    decode_request,
    encode_announce_reply,
    encode_response,
    parse_ip,
)

from ._tracker import Tracker

_Q = struct.Struct("!Q")
_TID = struct.Struct("!I")
# connection id, action, transaction id, info-hash, peer id, downloaded, left, uploaded, event,
# IPv4, key, numwant, port: a plain 98-byte BEP 15 announce
_ANNOUNCE = struct.Struct("!QII20s20sQQQIIIiH")
_EVENTS = (Event.NONE, Event.COMPLETED, Event.STARTED, Event.STOPPED)


class ConnectionIds:
    """Issue and check BEP 15 connection ids without state (keyed hash of IP and minute).

    The two ids valid for a host right now are memoised per host for the current period (at
    most ``cache_size`` hosts; the memo is dropped when full or when the period turns), so a
    busy client's announces cost a dictionary lookup instead of two keyed hashes.
    """

    def __init__(
        self, secret: bytes | None = None, lifetime: float = 60.0, *, cache_size: int = 65536
    ) -> None:
        self._secret = secret or os.urandom(32)
        self.lifetime = lifetime
        self.cache_size = cache_size
        self._epoch = -1
        self._valid: dict[str, tuple[int, int]] = {}  # host -> (id now, id of previous period)

    def _make(self, host: str, epoch: int) -> int:
        h = hashlib.blake2b(f"{host}|{epoch}".encode(), key=self._secret, digest_size=8)
        return int(_Q.unpack(h.digest())[0])

    def _ids(self, host: str, now: float) -> tuple[int, int]:
        epoch = int(now // self.lifetime)
        if epoch != self._epoch:
            self._epoch = epoch
            self._valid = {}
        pair = self._valid.get(host)
        if pair is None:
            if len(self._valid) >= self.cache_size:
                self._valid = {}
            pair = self._valid[host] = (self._make(host, epoch), self._make(host, epoch - 1))
        return pair

    def issue(self, addr: SocketAddress, now: float) -> int:
        """A connection id for ``addr``."""
        return self._ids(addr[0], now)[0]

    def check(self, conn_id: int, addr: SocketAddress, now: float) -> bool:
        """True if ``conn_id`` was issued to ``addr`` in this or the previous period."""
        return conn_id in self._ids(addr[0], now)


@functools.lru_cache(maxsize=4096)
def _source_ip(host: str) -> IPAddress:
    return parse_ip(host)


async def handle_datagram(
    tracker: Tracker, ids: ConnectionIds, data: memoryview, addr: SocketAddress
) -> bytes | None:
    """The reply to one datagram (None: drop it silently)."""
    if len(data) == 98:  # the common plain announce: unpacked here, no intermediate message
        (conn, action, tid, ih, pid, down, left, up, event, ip, key, numwant, port) = (
            _ANNOUNCE.unpack_from(data)
        )
        if action == 1 and event <= 3 and ip == 0:
            now = tracker.clock()
            if not ids.check(conn, addr, now):
                return encode_response(UdpError(tid, "invalid connection id"))
            req = AnnounceRequest(
                info_hash=ih,
                peer_id=pid,
                port=port,
                uploaded=up,
                downloaded=down,
                left=left,
                event=_EVENTS[event],
                numwant=numwant,
                key=key,
            )
            return await _announce(tracker, tid, req, addr)
    try:
        msg = decode_request(data)
    except TrackerError as exc:
        if len(data) >= 16:
            return encode_response(UdpError(_TID.unpack_from(data, 12)[0], exc.message))
        return None
    now = tracker.clock()
    if isinstance(msg, ConnectRequest):
        return encode_response(ConnectResponse(msg.transaction_id, ids.issue(addr, now)))
    if not ids.check(msg.connection_id, addr, now):
        return encode_response(UdpError(msg.transaction_id, "invalid connection id"))
    try:
        if isinstance(msg, UdpAnnounce):
            return await _announce(tracker, msg.transaction_id, msg.request, addr)
        assert isinstance(msg, UdpScrape)
        scraped = await tracker.scrape(msg.info_hashes)
        entries = tuple(scraped.files.get(h) for h in msg.info_hashes)
        zero = ScrapeEntry(0, 0, 0)
        return encode_response(
            UdpScrapeReply(msg.transaction_id, tuple(e or zero for e in entries))
        )
    except TrackerError as exc:
        return encode_response(UdpError(msg.transaction_id, exc.message))


async def _announce(tracker: Tracker, tid: int, req: AnnounceRequest, addr: SocketAddress) -> bytes:
    source = _source_ip(addr[0])
    try:
        outcome = await tracker.exchange(req, source, family=source.version)
    except TrackerError as exc:
        return encode_response(UdpError(tid, exc.message))
    return encode_announce_reply(
        tid,
        tracker.config.interval,
        outcome.counts.incomplete,
        outcome.counts.complete,
        b"".join([p.compact for p in outcome.peers]),
    )


def _peer_address(raw: Any, mapped: bool) -> SocketAddress:
    host = str(raw[0])
    if mapped and host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return (host, int(raw[1]))


async def _serve_in_order(
    tracker: Tracker, sock: trio.socket.SocketType, ids: ConnectionIds, batch: int
) -> None:
    # One scheduler pass per batch of datagrams, not two per datagram: after trio says the socket
    # is readable, drain it with plain non-blocking calls on the same file descriptor.
    plain = socket.socket(sock.family, sock.type, fileno=sock.fileno())
    plain.setblocking(False)
    buf = bytearray(2048)
    view = memoryview(buf)
    mapped = sock.family == socket.AF_INET6
    try:
        while True:
            await trio.lowlevel.wait_readable(plain)
            for _ in range(batch):
                try:
                    n, raw = plain.recvfrom_into(buf)
                except BlockingIOError:
                    break
                except ConnectionResetError:
                    continue
                reply = await handle_datagram(tracker, ids, view[:n], _peer_address(raw, mapped))
                if reply is None:
                    continue
                try:
                    plain.sendto(reply, raw)
                except BlockingIOError:  # send buffer full: wait for room like any trio call
                    with contextlib.suppress(OSError):
                        await sock.sendto(reply, raw)
                except OSError:  # the peer's socket is gone: nothing to do
                    pass
            await trio.lowlevel.checkpoint()
    finally:
        plain.detach()  # the descriptor belongs to ``sock``


async def serve_udp(
    tracker: Tracker,
    sock: trio.socket.SocketType,
    *,
    ids: ConnectionIds | None = None,
    concurrency: int = 1,
    batch: int = 256,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Answer BEP 15 requests arriving on ``sock`` until cancelled.

    ``concurrency`` 1 answers one datagram at a time, in order, up to ``batch`` per scheduler pass
    (best for the memory store, whose announces never wait); more lets that many announces wait
    on a store (SQLite, Redis) at once. When all are busy, reading stops and the kernel's socket
    buffer absorbs (then drops) the rest.
    """
    ids = ids or ConnectionIds()
    if concurrency <= 1:
        task_status.started()
        await _serve_in_order(tracker, sock, ids, batch)
        return
    buf = bytearray(2048)
    view = memoryview(buf)
    mapped = sock.family == socket.AF_INET6

    async def answer(data: memoryview, addr: SocketAddress, raw: Any, token: object) -> None:
        try:
            reply = await handle_datagram(tracker, ids, data, addr)
            if reply is not None:
                with contextlib.suppress(OSError):  # the peer's socket is gone: nothing to do
                    await sock.sendto(reply, raw)
        finally:
            limiter.release_on_behalf_of(token)

    limiter = trio.CapacityLimiter(concurrency)
    async with trio.open_nursery() as nursery:
        task_status.started()
        while True:
            try:
                n, raw = await sock.recvfrom_into(buf)
            except ConnectionResetError:
                continue
            token = object()
            await limiter.acquire_on_behalf_of(token)
            data = memoryview(bytes(view[:n]))
            nursery.start_soon(answer, data, _peer_address(raw, mapped), raw, token)
