"""HTTP tracker codec (BEP 3, 7, 23, 24, 48): query strings and bencoded responses.

Pure functions, both directions: a client builds announce/scrape URLs and parses responses;
a server parses query strings and encodes responses. Every malformed input raises
:class:`TrackerProtocolError` (a tracker's ``failure reason`` raises :class:`TrackerFailure`).
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any

from torrio.bencode import BencodeError, decode, encode
from torrio.core import CoreError, PeerAddr, decode_peers

from ._errors import TrackerFailure, TrackerProtocolError
from ._types import AnnounceRequest, AnnounceResponse, Event, ScrapeEntry, ScrapeResponse, parse_ip

MAX_INTERVAL = 7 * 24 * 3600
"""Intervals above this (a week) are clamped: a tracker must not silence us for ever."""

MAX_PEERS = 20_000
"""At most this many peers are taken from one response."""

MAX_SCRAPE_FILES = 10_000
"""At most this many entries are taken from one scrape response."""

_I64 = 1 << 63


def _q(value: bytes | str) -> str:
    if isinstance(value, str):
        value = value.encode()
    return urllib.parse.quote_from_bytes(value, safe="")


def _join(base: str, params: Sequence[tuple[str, str]]) -> str:
    url = base.partition("#")[0]
    query = "&".join(f"{k}={v}" for k, v in params)
    sep = "&" if "?" in url else "?"
    if url.endswith(("?", "&")):
        sep = ""
    return url + sep + query


def announce_url(base: str, req: AnnounceRequest) -> str:
    """The full GET URL of an HTTP announce (binary fields percent-escaped byte by byte)."""
    params: list[tuple[str, str]] = [
        ("info_hash", _q(req.info_hash)),
        ("peer_id", _q(req.peer_id)),
        ("port", str(req.port)),
        ("uploaded", str(req.uploaded)),
        ("downloaded", str(req.downloaded)),
        ("left", str(req.left)),
        ("corrupt", "0"),
        ("key", f"{req.key & 0xFFFFFFFF:08X}"),
    ]
    if req.event is not Event.NONE:
        params.append(("event", req.event.http_name))
    if req.numwant >= 0:
        params.append(("numwant", str(req.numwant)))
    params.append(("compact", "1" if req.compact else "0"))
    if req.no_peer_id:
        params.append(("no_peer_id", "1"))
    if req.ip:
        params.append(("ip", _q(req.ip)))
    if req.ipv6:
        params.append(("ipv6", _q(req.ipv6)))
    if req.tracker_id is not None:
        params.append(("trackerid", _q(req.tracker_id)))
    return _join(base, params)


def scrape_url(announce: str) -> str | None:
    """BEP 48 / the convention: the scrape URL of an announce URL, or None if it has none.

    Only a last path segment that starts with ``announce`` can be turned into ``scrape``.
    """
    parts = urllib.parse.urlsplit(announce)
    if parts.scheme not in ("http", "https"):
        return None
    head, _, last = parts.path.rpartition("/")
    if not last.startswith("announce"):
        return None
    path = f"{head}/scrape{last[len('announce') :]}"
    return urllib.parse.urlunsplit(parts._replace(path=path))


def scrape_request_url(scrape: str, info_hashes: Iterable[bytes]) -> str:
    """The GET URL scraping ``info_hashes`` (20 bytes each) at ``scrape``."""
    return _join(scrape, [("info_hash", _q(h)) for h in info_hashes])


def _decode_dict(body: bytes) -> dict[bytes, Any]:
    try:
        value = decode(body, strict=False)
    except (
        BencodeError,
        ValueError,
    ) as exc:  # ValueError: torrio.bencode lets int() overflow through
        raise TrackerProtocolError(f"response is not bencode: {exc}") from exc
    if not isinstance(value, dict):
        raise TrackerProtocolError("response is not a bencoded dictionary")
    return value


def _text(value: object, field: str) -> str:
    if not isinstance(value, bytes):
        raise TrackerProtocolError(f"{field!r} is not a string")
    return value.decode("utf-8", "replace")


def _int(d: dict[bytes, Any], key: bytes, *, required: bool = False) -> int | None:
    value = d.get(key)
    if value is None:
        if required:
            raise TrackerProtocolError(f"missing {key.decode()!r}")
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TrackerProtocolError(f"{key.decode()!r} is not an integer")
    if not 0 <= value < _I64:
        raise TrackerProtocolError(f"{key.decode()!r} out of range: {value}")
    return value


def _raise_failure(d: dict[bytes, Any]) -> None:
    reason = d.get(b"failure reason")
    if reason is None:
        return
    retry_in: float | None = None
    retry = d.get(b"retry in")
    if isinstance(retry, int) and 0 < retry < MAX_INTERVAL:
        retry_in = float(retry)
    if isinstance(reason, bytes):
        raise TrackerFailure(reason.decode("utf-8", "replace"), retry_in=retry_in)
    raise TrackerFailure("tracker failed (malformed failure reason)", retry_in=retry_in)


def _dict_peers(items: list[Any]) -> tuple[list[PeerAddr], list[bytes | None]]:
    peers: list[PeerAddr] = []
    ids: list[bytes | None] = []
    for item in items[:MAX_PEERS]:
        if not isinstance(item, dict):
            raise TrackerProtocolError("dict-form peer is not a dictionary")
        ip, port, pid = item.get(b"ip"), item.get(b"port"), item.get(b"peer id")
        if not isinstance(ip, bytes) or not isinstance(port, int):
            raise TrackerProtocolError("dict-form peer lacks ip or port")
        if not 0 < port <= 0xFFFF:
            continue
        try:
            addr = PeerAddr(parse_ip(ip), port)
        except TrackerProtocolError:
            continue  # a host name: the tracker package never resolves peers
        peers.append(addr)
        ids.append(pid if isinstance(pid, bytes) and len(pid) == 20 else None)
    return peers, ids


def parse_announce_response(body: bytes) -> AnnounceResponse:
    """Parse a bencoded HTTP announce response (compact v4 ``peers``, ``peers6`` or dict form)."""
    d = _decode_dict(body)
    _raise_failure(d)
    interval = _int(d, b"interval", required=True)
    assert interval is not None
    min_interval = _int(d, b"min interval")
    peers: list[PeerAddr] = []
    ids: list[bytes | None] = []
    try:
        raw = d.get(b"peers", b"")
        if isinstance(raw, bytes):
            peers.extend(decode_peers(raw[: MAX_PEERS * 6], 4))
        elif isinstance(raw, list):
            peers, ids = _dict_peers(raw)
        else:
            raise TrackerProtocolError("'peers' is neither a string nor a list")
        raw6 = d.get(b"peers6", b"")
        if not isinstance(raw6, bytes):
            raise TrackerProtocolError("'peers6' is not a string")
        v6 = decode_peers(raw6[: MAX_PEERS * 18], 6)
    except CoreError as exc:
        raise TrackerProtocolError(f"bad compact peers: {exc}") from exc
    if ids:
        ids.extend([None] * len(v6))
    peers.extend(v6)
    peers = [p for p in peers if p.port != 0][:MAX_PEERS]
    tracker_id = d.get(b"tracker id")
    if tracker_id is not None and not isinstance(tracker_id, bytes):
        raise TrackerProtocolError("'tracker id' is not a string")
    warning = d.get(b"warning message")
    external: Any = d.get(b"external ip")
    external_ip = None
    if isinstance(external, bytes) and len(external) in (4, 16):
        external_ip = ipaddress.ip_address(external)
    return AnnounceResponse(
        interval=min(interval, MAX_INTERVAL),
        min_interval=None if min_interval is None else min(min_interval, MAX_INTERVAL),
        peers=tuple(peers),
        peer_ids=tuple(ids[: len(peers)]) if ids else (),
        complete=_int(d, b"complete"),
        incomplete=_int(d, b"incomplete"),
        downloaded=_int(d, b"downloaded"),
        tracker_id=tracker_id,
        warning=None if warning is None else _text(warning, "warning message"),
        external_ip=external_ip,
    )


def parse_scrape_response(body: bytes) -> ScrapeResponse:
    """Parse a bencoded scrape response (``files`` keyed by 20-byte info-hash)."""
    d = _decode_dict(body)
    _raise_failure(d)
    files = d.get(b"files", {})
    if not isinstance(files, dict):
        raise TrackerProtocolError("'files' is not a dictionary")
    out: dict[bytes, ScrapeEntry] = {}
    for key, entry in list(files.items())[:MAX_SCRAPE_FILES]:
        if len(key) != 20:
            raise TrackerProtocolError("scrape key is not a 20-byte info-hash")
        if not isinstance(entry, dict):
            raise TrackerProtocolError("scrape entry is not a dictionary")
        out[key] = ScrapeEntry(
            complete=_int(entry, b"complete") or 0,
            incomplete=_int(entry, b"incomplete") or 0,
            downloaded=_int(entry, b"downloaded") or 0,
        )
    return ScrapeResponse(out)


# --- server side -------------------------------------------------------------------------------


def parse_query(query: bytes | str) -> list[tuple[str, bytes]]:
    """Split a raw query string into (name, raw value bytes) pairs, percent-decoding values."""
    if isinstance(query, str):
        query = query.encode("latin-1", "replace")
    out: list[tuple[str, bytes]] = []
    for part in query.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        key = urllib.parse.unquote_to_bytes(name).decode("latin-1")
        out.append((key, urllib.parse.unquote_to_bytes(value)))
        if len(out) > 512:
            raise TrackerProtocolError("too many query parameters")
    return out


def _qint(raw: bytes, name: str, lo: int, hi: int) -> int:
    try:
        value = int(raw.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise TrackerProtocolError(f"{name} is not an integer") from None
    if not lo <= value <= hi:
        raise TrackerProtocolError(f"{name} out of range")
    return value


def parse_announce_query(query: bytes | str) -> AnnounceRequest:
    """Parse the query string of an HTTP announce (server side)."""
    p: dict[str, bytes] = {}
    for name, value in parse_query(query):
        p.setdefault(name, value)
    for required in ("info_hash", "peer_id", "port"):
        if required not in p:
            raise TrackerProtocolError(f"missing {required}")
    if len(p["info_hash"]) != 20:
        raise TrackerProtocolError("info_hash is not 20 bytes")
    if len(p["peer_id"]) != 20:
        raise TrackerProtocolError("peer_id is not 20 bytes")
    hi = (1 << 63) - 1

    def text(name: str) -> str | None:
        raw = p.get(name)
        return None if raw is None else raw.decode("latin-1")

    key_raw = p.get("key", b"0")
    try:
        key = int(key_raw.decode("ascii"), 16) & 0xFFFFFFFF
    except (ValueError, UnicodeDecodeError):
        key = 0
    return AnnounceRequest(
        info_hash=p["info_hash"],
        peer_id=p["peer_id"],
        port=_qint(p["port"], "port", 0, 0xFFFF),
        uploaded=_qint(p.get("uploaded", b"0"), "uploaded", 0, hi),
        downloaded=_qint(p.get("downloaded", b"0"), "downloaded", 0, hi),
        left=_qint(p.get("left", b"0"), "left", 0, hi),
        event=Event.from_http(p.get("event", b"").decode("latin-1")),
        numwant=_qint(p.get("numwant", b"-1"), "numwant", -1, 1 << 31),
        key=key,
        compact=p.get("compact", b"1") != b"0",
        no_peer_id=p.get("no_peer_id", b"0") == b"1",
        ip=text("ip"),
        ipv6=text("ipv6"),
        tracker_id=p.get("trackerid"),
    )


def parse_scrape_query(query: bytes | str) -> list[bytes]:
    """The 20-byte info-hashes named by a scrape query string (server side)."""
    hashes = [v for k, v in parse_query(query) if k == "info_hash"]
    for h in hashes:
        if len(h) != 20:
            raise TrackerProtocolError("info_hash is not 20 bytes")
    return hashes


def encode_announce_response(resp: AnnounceResponse, *, compact: bool = True) -> bytes:
    """Bencode an announce response: compact ``peers``/``peers6`` or dict-form ``peers``."""
    d: dict[bytes, Any] = {b"interval": resp.interval}
    if resp.min_interval is not None:
        d[b"min interval"] = resp.min_interval
    counts = (
        (b"complete", resp.complete),
        (b"incomplete", resp.incomplete),
        (b"downloaded", resp.downloaded),
    )
    d.update({key: value for key, value in counts if value is not None})
    if resp.tracker_id is not None:
        d[b"tracker id"] = resp.tracker_id
    if resp.warning is not None:
        d[b"warning message"] = resp.warning.encode()
    if resp.external_ip is not None:
        d[b"external ip"] = resp.external_ip.packed
    if compact:
        d[b"peers"] = b"".join(p.to_compact() for p in resp.peers if p.ip.version == 4)
        v6 = b"".join(p.to_compact() for p in resp.peers if p.ip.version == 6)
        if v6:
            d[b"peers6"] = v6
    else:
        items = []
        for i, peer in enumerate(resp.peers):
            item: dict[bytes, Any] = {b"ip": str(peer.ip).encode(), b"port": peer.port}
            pid = resp.peer_ids[i] if i < len(resp.peer_ids) else None
            if pid is not None:
                item[b"peer id"] = pid
            items.append(item)
        d[b"peers"] = items
    return encode(d)


def encode_failure(reason: str, *, retry_in: int | None = None) -> bytes:
    """Bencode a ``failure reason`` response."""
    d: dict[bytes, Any] = {b"failure reason": reason.encode()}
    if retry_in is not None:
        d[b"retry in"] = retry_in
    return encode(d)


def encode_scrape_response(resp: ScrapeResponse) -> bytes:
    """Bencode a scrape response."""
    return encode(
        {
            b"files": {
                h: {
                    b"complete": e.complete,
                    b"incomplete": e.incomplete,
                    b"downloaded": e.downloaded,
                }
                for h, e in resp.files.items()
            }
        }
    )
