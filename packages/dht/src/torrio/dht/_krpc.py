"""KRPC messages (BEP 5) with the extensions of BEP 32, 33, 42, 43, 44 and 51: a strict codec.

Input is hostile: datagrams are size-capped before decoding, every field is type- and length-checked,
lists are capped, and every failure is a :class:`KrpcError` (carrying the transaction id when one
was readable, so a query can still be answered with a KRPC error).
"""

from __future__ import annotations

from typing import Any

import attrs

from torrio.bencode import BencodeError, decode, encode, raw_value
from torrio.core import (
    COMPACT_NODE_V4_LEN,
    COMPACT_NODE_V6_LEN,
    CoreError,
    NodeId,
    NodeInfo,
    PeerAddr,
)

from ._bloom import BLOOM_SIZE
from ._errors import KrpcError

MAX_DATAGRAM = 4096
"""Datagrams larger than this are dropped unread."""
MAX_TID = 32
MAX_NODES = 64
"""At most this many nodes (per family) are read from one response."""
MAX_VALUES = 256
"""At most this many peers are read from one ``get_peers`` response."""
MAX_SAMPLES = 256
MAX_TOKEN = 64
MAX_VALUE_SIZE = 1000
"""BEP 44: the bencoded ``v`` of an item is at most 1000 bytes."""
MAX_SALT = 64
MAX_ERROR_TEXT = 256

ERROR_GENERIC = 201
ERROR_SERVER = 202
ERROR_PROTOCOL = 203
ERROR_METHOD_UNKNOWN = 204
ERROR_TOO_BIG = 205
ERROR_BAD_SIGNATURE = 206
ERROR_SALT_TOO_BIG = 207
ERROR_CAS_MISMATCH = 301
ERROR_SEQ_TOO_OLD = 302

METHODS = frozenset(
    {"ping", "find_node", "get_peers", "announce_peer", "get", "put", "sample_infohashes"}
)


@attrs.frozen
class Query:
    """A KRPC query. Which optional fields are set depends on ``method``.

    ``value`` (BEP 44 ``put``) is the exact bencoded bytes of ``v``; ``want`` holds ``"n4"``/``"n6"``
    (BEP 32); ``read_only`` is BEP 43's ``ro``. BEP 33: ``seed`` (announce_peer: we have the
    whole torrent), ``scrape`` (get_peers: send bloom filters) and ``noseed`` (get_peers: prefer
    non-seeds).
    """

    tid: bytes
    method: str
    sender: NodeId
    target: NodeId | None = None
    info_hash: NodeId | None = None
    port: int | None = None
    implied_port: bool = False
    token: bytes | None = None
    want: frozenset[str] = frozenset()
    seq: int | None = None
    value: bytes | None = None
    key: bytes | None = None
    signature: bytes | None = None
    salt: bytes = b""
    cas: int | None = None
    read_only: bool = False
    version: bytes | None = None
    seed: bool = False
    scrape: bool = False
    noseed: bool = False


@attrs.frozen
class Response:
    """A KRPC response. ``ip`` is BEP 42's view of the requester's address; ``value`` is raw ``v``.

    ``bf_seeds``/``bf_peers`` are BEP 33's ``BFsd``/``BFpe`` bloom filters (256 bytes each)."""

    tid: bytes
    sender: NodeId
    nodes: tuple[NodeInfo, ...] = ()
    nodes6: tuple[NodeInfo, ...] = ()
    values: tuple[PeerAddr, ...] = ()
    token: bytes | None = None
    value: bytes | None = None
    key: bytes | None = None
    signature: bytes | None = None
    seq: int | None = None
    samples: tuple[bytes, ...] = ()
    interval: int | None = None
    num: int | None = None
    ip: PeerAddr | None = None
    version: bytes | None = None
    bf_seeds: bytes | None = None
    bf_peers: bytes | None = None


@attrs.frozen
class ErrorReply:
    """A KRPC error message (``y`` = ``e``)."""

    tid: bytes
    code: int
    message: str
    ip: PeerAddr | None = None
    version: bytes | None = None


Message = Query | Response | ErrorReply


def _bytes(d: dict[bytes, Any], key: bytes, tid: bytes | None, *, max_len: int = 1 << 16) -> bytes:
    v = d.get(key)
    if not isinstance(v, bytes):
        raise KrpcError(f"field {key.decode()!r} missing or not a string", tid=tid)
    if len(v) > max_len:
        raise KrpcError(f"field {key.decode()!r} too long ({len(v)} bytes)", tid=tid)
    return v


def _opt_bytes(d: dict[bytes, Any], key: bytes, tid: bytes | None, max_len: int) -> bytes | None:
    if key not in d:
        return None
    return _bytes(d, key, tid, max_len=max_len)


def _id(d: dict[bytes, Any], key: bytes, tid: bytes | None) -> NodeId:
    v = d.get(key)
    if not isinstance(v, bytes) or len(v) != 20:
        raise KrpcError(f"field {key.decode()!r} must be a 20-byte string", tid=tid)
    return NodeId(v)


def _opt_int(d: dict[bytes, Any], key: bytes, tid: bytes | None, lo: int, hi: int) -> int | None:
    if key not in d:
        return None
    v = d[key]
    if not isinstance(v, int) or not lo <= v <= hi:
        raise KrpcError(f"field {key.decode()!r} must be an integer in [{lo}, {hi}]", tid=tid)
    return v


_NODE_CACHE: dict[bytes, NodeInfo] = {}
_NODE_CACHE_MAX = 8192


def _nodes(data: bytes, size: int, tid: bytes | None) -> tuple[NodeInfo, ...]:
    if len(data) % size:
        raise KrpcError(f"compact node list length {len(data)} not a multiple of {size}", tid=tid)
    out = []
    cache = _NODE_CACHE
    for i in range(0, min(len(data), size * MAX_NODES), size):
        raw = data[i : i + size]
        node = cache.get(raw)
        if node is None:
            # the same contacts recur in answer after answer: building them is most of the cost
            try:
                node = NodeInfo.from_compact(raw)
            except CoreError as exc:  # pragma: no cover - lengths are checked above
                raise KrpcError(str(exc), tid=tid) from exc
            if len(cache) >= _NODE_CACHE_MAX:
                cache.clear()
            cache[raw] = node
        if node.addr.port != 0:
            out.append(node)
    return tuple(out)


def _ip_field(d: dict[bytes, Any]) -> PeerAddr | None:
    v = d.get(b"ip")
    if isinstance(v, bytes) and len(v) in (6, 18):
        return PeerAddr.from_compact(v)
    return None  # BEP 42 is advisory: a bad ``ip`` is ignored, not fatal


def decode_message(data: bytes | bytearray | memoryview) -> Message:
    """Decode one KRPC datagram. Raises :class:`KrpcError` for anything malformed."""
    if len(data) > MAX_DATAGRAM:
        raise KrpcError(f"datagram of {len(data)} bytes exceeds {MAX_DATAGRAM}", ERROR_TOO_BIG)
    raw = bytes(data)
    try:
        msg = decode(raw, strict=False, max_depth=16)
    except BencodeError as exc:
        raise KrpcError(f"not bencode: {exc}") from exc
    if not isinstance(msg, dict):
        raise KrpcError("a KRPC message must be a dict")
    tid = msg.get(b"t")
    if not isinstance(tid, bytes) or not 0 < len(tid) <= MAX_TID:
        raise KrpcError("missing or bad transaction id")
    version = msg.get(b"v")
    if not isinstance(version, bytes) or len(version) > 16:
        version = None
    y = msg.get(b"y")
    if y == b"q":
        try:
            return _decode_query(raw, msg, tid, version)
        except KrpcError as exc:
            exc.query = True
            raise
    if y == b"r":
        return _decode_response(raw, msg, tid, version)
    if y == b"e":
        e = msg.get(b"e")
        if not isinstance(e, list) or len(e) < 2 or not isinstance(e[0], int):
            raise KrpcError("malformed error message", tid=tid)
        text = e[1] if isinstance(e[1], bytes) else b""
        return ErrorReply(
            tid,
            e[0],
            text[:MAX_ERROR_TEXT].decode("utf-8", "replace"),
            ip=_ip_field(msg),
            version=version,
        )
    raise KrpcError("unknown message type", tid=tid)


def _check_value(raw_v: bytes, tid: bytes) -> bytes:
    if len(raw_v) > MAX_VALUE_SIZE:
        raise KrpcError(f"item value of {len(raw_v)} bytes exceeds 1000", ERROR_TOO_BIG, tid)
    return raw_v


def _decode_query(raw: bytes, msg: dict[bytes, Any], tid: bytes, version: bytes | None) -> Query:
    q = msg.get(b"q")
    a = msg.get(b"a")
    if not isinstance(q, bytes) or not isinstance(a, dict):
        raise KrpcError("query without method name or arguments", tid=tid)
    method = q.decode("ascii", "replace")
    if method not in METHODS:
        raise KrpcError(f"method unknown: {method[:32]!r}", ERROR_METHOD_UNKNOWN, tid)
    sender = _id(a, b"id", tid)
    ro = msg.get(b"ro") == 1
    want_raw = a.get(b"want")
    want: frozenset[str] = frozenset()
    if isinstance(want_raw, list):
        want = frozenset(w.decode() for w in want_raw[:4] if w in (b"n4", b"n6"))
    kw: dict[str, Any] = {"want": want, "read_only": ro, "version": version}
    if method in ("find_node", "sample_infohashes"):
        kw["target"] = _id(a, b"target", tid)
    elif method == "get_peers":
        kw["info_hash"] = _id(a, b"info_hash", tid)
        kw["scrape"] = a.get(b"scrape") == 1
        kw["noseed"] = a.get(b"noseed") == 1
    elif method == "announce_peer":
        kw["info_hash"] = _id(a, b"info_hash", tid)
        kw["implied_port"] = a.get(b"implied_port") == 1
        kw["seed"] = a.get(b"seed") == 1
        port = _opt_int(a, b"port", tid, 0, 0xFFFF)
        if port is None and not kw["implied_port"]:
            raise KrpcError("announce_peer without port", tid=tid)
        kw["port"] = port
        kw["token"] = _bytes(a, b"token", tid, max_len=MAX_TOKEN)
    elif method == "get":
        kw["target"] = _id(a, b"target", tid)
        kw["seq"] = _opt_int(a, b"seq", tid, 0, (1 << 63) - 1)
    elif method == "put":
        kw["token"] = _bytes(a, b"token", tid, max_len=MAX_TOKEN)
        if b"v" not in a:
            raise KrpcError("put without v", tid=tid)
        raw_v = raw_value(raw, b"a", b"v", strict=False)
        assert raw_v is not None
        kw["value"] = _check_value(raw_v, tid)
        if b"k" in a:
            k = _bytes(a, b"k", tid, max_len=32)
            sig = _bytes(a, b"sig", tid, max_len=64)
            if len(k) != 32 or len(sig) != 64:
                raise KrpcError("put: k must be 32 bytes and sig 64 bytes", tid=tid)
            seq = _opt_int(a, b"seq", tid, 0, (1 << 63) - 1)
            if seq is None:
                raise KrpcError("mutable put without seq", tid=tid)
            salt = _opt_bytes(a, b"salt", tid, 1 << 12) or b""
            if len(salt) > MAX_SALT:
                raise KrpcError("salt too big", ERROR_SALT_TOO_BIG, tid)
            kw.update(
                key=k,
                signature=sig,
                seq=seq,
                salt=salt,
                cas=_opt_int(a, b"cas", tid, 0, (1 << 63) - 1),
            )
    return Query(tid, method, sender, **kw)


def _decode_response(
    raw: bytes, msg: dict[bytes, Any], tid: bytes, version: bytes | None
) -> Response:
    r = msg.get(b"r")
    if not isinstance(r, dict):
        raise KrpcError("response without r dict", tid=tid)
    sender = _id(r, b"id", tid)
    kw: dict[str, Any] = {"ip": _ip_field(msg), "version": version}
    if b"nodes" in r:
        kw["nodes"] = _nodes(_bytes(r, b"nodes", tid), COMPACT_NODE_V4_LEN, tid)
    if b"nodes6" in r:
        kw["nodes6"] = _nodes(_bytes(r, b"nodes6", tid), COMPACT_NODE_V6_LEN, tid)
    if b"values" in r:
        vals = r[b"values"]
        if not isinstance(vals, list):
            raise KrpcError("values must be a list", tid=tid)
        peers = []
        for v in vals[:MAX_VALUES]:
            if isinstance(v, bytes) and len(v) in (6, 18):
                peer = PeerAddr.from_compact(v)
                if peer.port:
                    peers.append(peer)
        kw["values"] = tuple(peers)
    kw["token"] = _opt_bytes(r, b"token", tid, MAX_TOKEN)
    if b"v" in r:
        raw_v = raw_value(raw, b"r", b"v", strict=False)
        assert raw_v is not None
        kw["value"] = _check_value(raw_v, tid)
    if b"k" in r:
        k = _bytes(r, b"k", tid, max_len=32)
        sig = _bytes(r, b"sig", tid, max_len=64)
        if len(k) != 32 or len(sig) != 64:
            raise KrpcError("k must be 32 bytes and sig 64 bytes", tid=tid)
        kw["key"] = k
        kw["signature"] = sig
    kw["seq"] = _opt_int(r, b"seq", tid, 0, (1 << 63) - 1)
    if b"samples" in r:
        s = _bytes(r, b"samples", tid)
        if len(s) % 20:
            raise KrpcError("samples length not a multiple of 20", tid=tid)
        kw["samples"] = tuple(s[i : i + 20] for i in range(0, min(len(s), 20 * MAX_SAMPLES), 20))
    kw["interval"] = _opt_int(r, b"interval", tid, 0, 1 << 31)
    kw["num"] = _opt_int(r, b"num", tid, 0, 1 << 62)
    # BEP 33 filters are advisory: one of the wrong size is ignored, not fatal
    for field, name in ((b"BFsd", "bf_seeds"), (b"BFpe", "bf_peers")):
        bf = r.get(field)
        if isinstance(bf, bytes) and len(bf) == BLOOM_SIZE:
            kw[name] = bf
    return Response(tid, sender, **kw)


def _nodes_bytes(nodes: tuple[NodeInfo, ...]) -> bytes:
    return b"".join(n.to_compact() for n in nodes)


def encode_message(msg: Message) -> bytes:
    """Encode a :class:`Query`, :class:`Response` or :class:`ErrorReply` to bytes."""
    out: dict[bytes, Any] = {b"t": msg.tid}
    if msg.version is not None:
        out[b"v"] = msg.version
    if isinstance(msg, Query):
        out[b"y"] = b"q"
        out[b"q"] = msg.method.encode()
        if msg.read_only:
            out[b"ro"] = 1
        a: dict[bytes, Any] = {b"id": msg.sender.value}
        if msg.target is not None:
            a[b"target"] = msg.target.value
        if msg.info_hash is not None:
            a[b"info_hash"] = msg.info_hash.value
        if msg.method == "announce_peer":
            a[b"port"] = msg.port or 0
            if msg.implied_port:
                a[b"implied_port"] = 1
        if msg.seed:
            a[b"seed"] = 1
        if msg.scrape:
            a[b"scrape"] = 1
        if msg.noseed:
            a[b"noseed"] = 1
        if msg.token is not None:
            a[b"token"] = msg.token
        if msg.want:
            a[b"want"] = sorted(w.encode() for w in msg.want)
        if msg.seq is not None:
            a[b"seq"] = msg.seq
        if msg.value is not None:
            a[b"v"] = decode(msg.value, strict=False)
        if msg.key is not None:
            a[b"k"] = msg.key
        if msg.signature is not None:
            a[b"sig"] = msg.signature
        if msg.salt:
            a[b"salt"] = msg.salt
        if msg.cas is not None:
            a[b"cas"] = msg.cas
        out[b"a"] = a
    elif isinstance(msg, Response):
        out[b"y"] = b"r"
        if msg.ip is not None:
            out[b"ip"] = msg.ip.to_compact()
        r: dict[bytes, Any] = {b"id": msg.sender.value}
        if msg.nodes:
            r[b"nodes"] = _nodes_bytes(msg.nodes)
        if msg.nodes6:
            r[b"nodes6"] = _nodes_bytes(msg.nodes6)
        if msg.values:
            r[b"values"] = [p.to_compact() for p in msg.values]
        if msg.token is not None:
            r[b"token"] = msg.token
        if msg.value is not None:
            r[b"v"] = decode(msg.value, strict=False)
        if msg.key is not None:
            r[b"k"] = msg.key
        if msg.signature is not None:
            r[b"sig"] = msg.signature
        if msg.seq is not None:
            r[b"seq"] = msg.seq
        if msg.samples or msg.interval is not None:
            r[b"samples"] = b"".join(msg.samples)
        if msg.interval is not None:
            r[b"interval"] = msg.interval
        if msg.num is not None:
            r[b"num"] = msg.num
        if msg.bf_seeds is not None:
            r[b"BFsd"] = msg.bf_seeds
        if msg.bf_peers is not None:
            r[b"BFpe"] = msg.bf_peers
        out[b"r"] = r
    else:
        out[b"y"] = b"e"
        if msg.ip is not None:
            out[b"ip"] = msg.ip.to_compact()
        out[b"e"] = [msg.code, msg.message.encode()]
    return encode(out)
