"""UDP tracker codec (BEP 15, with BEP 41 URL data): every packet both ways.

``encode_request``/``decode_request`` are the client->tracker packets, ``encode_response``/
``decode_response`` the tracker->client ones. Structs are compiled once; malformed packets raise
:class:`TrackerProtocolError`.
"""

from __future__ import annotations

import ipaddress
import struct

import attrs

from torrio.core import PeerAddr

from ._errors import TrackerProtocolError
from ._types import AnnounceRequest, Event, ScrapeEntry

PROTOCOL_ID = 0x41727101980
"""The magic connection id of a connect request."""

ACTION_CONNECT = 0
ACTION_ANNOUNCE = 1
ACTION_SCRAPE = 2
ACTION_ERROR = 3

MAX_SCRAPE_HASHES = 74
"""BEP 15: at most ~74 info-hashes fit in one scrape packet."""

_HEAD = struct.Struct("!QII")  # connection id, action, transaction id
_RESP_HEAD = struct.Struct("!II")  # action, transaction id
_CONNECT_RESP = struct.Struct("!IIQ")
_ANNOUNCE = struct.Struct("!QII20s20sQQQIIIiH")
_ANNOUNCE_RESP = struct.Struct("!IIIII")
_SCRAPE_ENTRY = struct.Struct("!III")

_OPT_END = 0
_OPT_NOP = 1
_OPT_URL = 2


@attrs.frozen
class ConnectRequest:
    """Client -> tracker: obtain a connection id."""

    transaction_id: int


@attrs.frozen
class UdpAnnounce:
    """Client -> tracker: announce; ``url_data`` is the BEP 41 path-and-query of the URL."""

    connection_id: int
    transaction_id: int
    request: AnnounceRequest
    url_data: bytes = b""


@attrs.frozen
class UdpScrape:
    """Client -> tracker: scrape up to 74 info-hashes."""

    connection_id: int
    transaction_id: int
    info_hashes: tuple[bytes, ...]


@attrs.frozen
class ConnectResponse:
    """Tracker -> client: the connection id to use for the next minute."""

    transaction_id: int
    connection_id: int


@attrs.frozen
class UdpAnnounceReply:
    """Tracker -> client: interval, counts and peers (the tracker's address family)."""

    transaction_id: int
    interval: int
    leechers: int
    seeders: int
    peers: tuple[PeerAddr, ...] = ()


@attrs.frozen
class UdpScrapeReply:
    """Tracker -> client: counts in the order the info-hashes were asked."""

    transaction_id: int
    entries: tuple[ScrapeEntry, ...]


@attrs.frozen
class UdpError:
    """Tracker -> client: an error message."""

    transaction_id: int
    message: str


UdpRequest = ConnectRequest | UdpAnnounce | UdpScrape
UdpResponse = ConnectResponse | UdpAnnounceReply | UdpScrapeReply | UdpError


def _url_options(url_data: bytes) -> bytes:
    if not url_data:
        return b""
    out = bytearray()
    for i in range(0, len(url_data), 255):
        chunk = url_data[i : i + 255]
        out += bytes((_OPT_URL, len(chunk))) + chunk
    out.append(_OPT_END)
    return bytes(out)


def encode_request(msg: UdpRequest) -> bytes:
    """Encode a client -> tracker packet."""
    if isinstance(msg, ConnectRequest):
        return _HEAD.pack(PROTOCOL_ID, ACTION_CONNECT, msg.transaction_id)
    if isinstance(msg, UdpScrape):
        if len(msg.info_hashes) > MAX_SCRAPE_HASHES:
            raise TrackerProtocolError(f"at most {MAX_SCRAPE_HASHES} info-hashes per UDP scrape")
        return _HEAD.pack(msg.connection_id, ACTION_SCRAPE, msg.transaction_id) + b"".join(
            msg.info_hashes
        )
    r = msg.request
    ip = 0
    if r.ip:
        try:
            addr = ipaddress.ip_address(r.ip)
            if addr.version == 4:
                ip = int(addr)
        except ValueError:
            pass
    return _ANNOUNCE.pack(
        msg.connection_id,
        ACTION_ANNOUNCE,
        msg.transaction_id,
        r.info_hash,
        r.peer_id,
        r.downloaded,
        r.left,
        r.uploaded,
        int(r.event),
        ip,
        r.key & 0xFFFFFFFF,
        max(-1, min(r.numwant, 0x7FFFFFFF)),
        r.port,
    ) + _url_options(msg.url_data)


def _parse_options(data: memoryview) -> bytes:
    url = bytearray()
    i = 0
    while i < len(data):
        kind = data[i]
        if kind == _OPT_END:
            break
        if kind == _OPT_NOP:
            i += 1
            continue
        if i + 1 >= len(data):
            raise TrackerProtocolError("truncated BEP 41 option")
        length = data[i + 1]
        if i + 2 + length > len(data):
            raise TrackerProtocolError("truncated BEP 41 option")
        if kind == _OPT_URL:
            url += data[i + 2 : i + 2 + length]
        i += 2 + length
    return bytes(url)


def decode_request(data: bytes | memoryview) -> UdpRequest:
    """Decode a client -> tracker packet (server side)."""
    mv = memoryview(data)
    if len(mv) < _HEAD.size:
        raise TrackerProtocolError("UDP tracker request shorter than 16 bytes")
    conn, action, tid = _HEAD.unpack_from(mv)
    if action == ACTION_CONNECT:
        if conn != PROTOCOL_ID:
            raise TrackerProtocolError("connect request without the protocol id")
        return ConnectRequest(tid)
    if action == ACTION_ANNOUNCE:
        if len(mv) < _ANNOUNCE.size:
            raise TrackerProtocolError("UDP announce shorter than 98 bytes")
        (_, _, _, ih, pid, downloaded, left, uploaded, event, ip, key, numwant, port) = (
            _ANNOUNCE.unpack_from(mv)
        )
        if event > 3:
            raise TrackerProtocolError(f"unknown announce event {event}")
        req = AnnounceRequest(
            info_hash=ih,
            peer_id=pid,
            port=port,
            uploaded=uploaded,
            downloaded=downloaded,
            left=left,
            event=Event(event),
            numwant=numwant,
            key=key,
            ip=str(ipaddress.IPv4Address(ip)) if ip else None,
        )
        return UdpAnnounce(conn, tid, req, _parse_options(mv[_ANNOUNCE.size :]))
    if action == ACTION_SCRAPE:
        body = mv[_HEAD.size :]
        if len(body) % 20 or not body:
            raise TrackerProtocolError("UDP scrape body is not a list of 20-byte info-hashes")
        hashes = tuple(
            bytes(body[i : i + 20]) for i in range(0, min(len(body), 20 * MAX_SCRAPE_HASHES), 20)
        )
        return UdpScrape(conn, tid, hashes)
    raise TrackerProtocolError(f"unknown UDP tracker action {action}")


def encode_response(msg: UdpResponse) -> bytes:
    """Encode a tracker -> client packet (peers must all be of one family)."""
    if isinstance(msg, ConnectResponse):
        return _CONNECT_RESP.pack(ACTION_CONNECT, msg.transaction_id, msg.connection_id)
    if isinstance(msg, UdpAnnounceReply):
        return encode_announce_reply(
            msg.transaction_id,
            msg.interval,
            msg.leechers,
            msg.seeders,
            b"".join(p.to_compact() for p in msg.peers),
        )
    if isinstance(msg, UdpScrapeReply):
        return _RESP_HEAD.pack(ACTION_SCRAPE, msg.transaction_id) + b"".join(
            _SCRAPE_ENTRY.pack(
                min(e.complete, 0xFFFFFFFF),
                min(e.downloaded, 0xFFFFFFFF),
                min(e.incomplete, 0xFFFFFFFF),
            )
            for e in msg.entries
        )
    return _RESP_HEAD.pack(ACTION_ERROR, msg.transaction_id) + msg.message.encode()[:1000]


def encode_announce_reply(
    transaction_id: int, interval: int, leechers: int, seeders: int, compact_peers: bytes
) -> bytes:
    """An announce reply from already-compact peers (the server's hot path; one family only)."""
    return (
        _ANNOUNCE_RESP.pack(
            ACTION_ANNOUNCE,
            transaction_id,
            min(interval, 0xFFFFFFFF),
            min(leechers, 0xFFFFFFFF),
            min(seeders, 0xFFFFFFFF),
        )
        + compact_peers
    )


def response_transaction_id(data: bytes | memoryview) -> int | None:
    """The transaction id of a tracker -> client packet, or None if too short to carry one."""
    if len(data) < 8:
        return None
    return int(_RESP_HEAD.unpack_from(data)[1])


def decode_response(data: bytes | memoryview, family: int = 4) -> UdpResponse:
    """Decode a tracker -> client packet; ``family`` (4 or 6) is the tracker's address family."""
    mv = memoryview(data)
    if len(mv) < _RESP_HEAD.size:
        raise TrackerProtocolError("UDP tracker response shorter than 8 bytes")
    action, tid = _RESP_HEAD.unpack_from(mv)
    if action == ACTION_CONNECT:
        if len(mv) < _CONNECT_RESP.size:
            raise TrackerProtocolError("connect response shorter than 16 bytes")
        return ConnectResponse(tid, _CONNECT_RESP.unpack_from(mv)[2])
    if action == ACTION_ANNOUNCE:
        if len(mv) < _ANNOUNCE_RESP.size:
            raise TrackerProtocolError("announce response shorter than 20 bytes")
        _, _, interval, leechers, seeders = _ANNOUNCE_RESP.unpack_from(mv)
        body = mv[_ANNOUNCE_RESP.size :]
        size = 6 if family == 4 else 18
        if len(body) % size:
            raise TrackerProtocolError(
                f"announce response peer list is not a multiple of {size} bytes"
            )
        peers = []
        for i in range(0, len(body), size):
            peer = PeerAddr.from_compact(body[i : i + size])
            if peer.port:
                peers.append(peer)
        return UdpAnnounceReply(tid, interval, leechers, seeders, tuple(peers))
    if action == ACTION_SCRAPE:
        body = mv[_RESP_HEAD.size :]
        if len(body) % _SCRAPE_ENTRY.size:
            raise TrackerProtocolError("scrape response is not a list of 12-byte entries")
        entries = []
        for i in range(0, len(body), _SCRAPE_ENTRY.size):
            seeders, completed, leechers = _SCRAPE_ENTRY.unpack_from(body, i)
            entries.append(ScrapeEntry(complete=seeders, incomplete=leechers, downloaded=completed))
        return UdpScrapeReply(tid, tuple(entries))
    if action == ACTION_ERROR:
        return UdpError(tid, bytes(mv[_RESP_HEAD.size :]).decode("utf-8", "replace"))
    raise TrackerProtocolError(f"unknown UDP tracker action {action}")
