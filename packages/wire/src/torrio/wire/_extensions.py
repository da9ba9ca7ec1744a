"""BEP 10 extension protocol: the extended handshake, an id registry and the built-in extensions
ut_metadata (BEP 9), ut_pex (BEP 11), lt_donthave (BEP 54) and upload_only.

Local ids are the ones *we* chose and advertised in our ``m`` dictionary: a peer sends us
extension messages with those ids. Remote ids come from the peer's ``m`` dictionary: we send
with those. Each extension message class has ``EXTENSION_NAME``, ``to_payload()`` and
``from_payload()``.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import struct
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

import attrs

from torrio.bencode import BencodeError, decode, decode_prefix, encode
from torrio.core import CoreError, IPAddress, PeerAddr

from ._errors import WireError

UT_METADATA = "ut_metadata"
UT_PEX = "ut_pex"
LT_DONTHAVE = "lt_donthave"
UPLOAD_ONLY = "upload_only"

#: The ids we advertise by default (the same numbers libtorrent uses).
DEFAULT_LOCAL_IDS: Mapping[str, int] = {UT_PEX: 1, UT_METADATA: 2, UPLOAD_ONLY: 3, LT_DONTHAVE: 7}

#: ut_metadata piece size (BEP 9).
METADATA_PIECE_SIZE = 16384
#: Largest info dict we will fetch by default.
DEFAULT_MAX_METADATA_SIZE = 8 << 20
#: Most added/dropped entries accepted in one ut_pex message (per list, v4 and v6 together).
PEX_MAX_ENTRIES = 200
#: Most added entries we send in one ut_pex message (libtorrent and BEP 11 practice).
PEX_SEND_LIMIT = 50
#: Minimum seconds between two ut_pex messages on one connection (BEP 11).
PEX_MIN_INTERVAL = 60.0


def _bdecode_dict(payload: bytes, what: str) -> dict[bytes, Any]:
    try:
        value = decode(payload, strict=False, max_depth=8)
    except BencodeError as exc:
        raise WireError(f"{what}: bad bencode ({exc})") from exc
    if not isinstance(value, dict):
        raise WireError(f"{what}: payload is not a dictionary")
    return value


def _int(d: Mapping[bytes, Any], key: bytes, what: str) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, int):
        raise WireError(f"{what}: {key.decode()} is not an integer")
    return v


def _text(v: Any) -> str | None:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return None


# -- extended handshake --------------------------------------------------------------------


@attrs.frozen
class ExtendedHandshake:
    """BEP 10 extended handshake (extended message id 0).

    ``m`` maps extension names to the sender's ids (0 = disabled). ``extra`` keeps every other
    key of the dictionary as decoded, so nothing a peer sent is lost.
    """

    EXTENSION_NAME: ClassVar[str] = ""
    m: Mapping[str, int] = attrs.field(factory=dict)
    p: int | None = None
    v: str | None = None
    yourip: IPAddress | None = None
    ipv4: ipaddress.IPv4Address | None = None
    ipv6: ipaddress.IPv6Address | None = None
    reqq: int | None = None
    metadata_size: int | None = None
    upload_only: bool = False
    extra: Mapping[bytes, Any] = attrs.field(factory=dict)

    def to_payload(self) -> bytes:
        """The bencoded dictionary."""
        d: dict[bytes, Any] = dict(self.extra)
        d[b"m"] = {k.encode(): v for k, v in self.m.items()}
        if self.p is not None:
            d[b"p"] = self.p
        if self.v is not None:
            d[b"v"] = self.v.encode()
        if self.yourip is not None:
            d[b"yourip"] = self.yourip.packed
        if self.ipv4 is not None:
            d[b"ipv4"] = self.ipv4.packed
        if self.ipv6 is not None:
            d[b"ipv6"] = self.ipv6.packed
        if self.reqq is not None:
            d[b"reqq"] = self.reqq
        if self.metadata_size is not None:
            d[b"metadata_size"] = self.metadata_size
        if self.upload_only:
            d[b"upload_only"] = 1
        return encode(d)

    @classmethod
    def from_payload(cls, payload: bytes) -> ExtendedHandshake:
        """Decode; unknown keys go to ``extra``; malformed known keys raise WireError."""
        what = "extended handshake"
        d = _bdecode_dict(payload, what)
        m_raw = d.pop(b"m", {})
        if not isinstance(m_raw, dict):
            raise WireError(f"{what}: m is not a dictionary")
        m: dict[str, int] = {}
        for k, v in m_raw.items():
            if isinstance(v, int) and 0 <= v <= 255:
                m[k.decode("utf-8", "replace")] = v
        p = _int(d, b"p", what)
        d.pop(b"p", None)
        if p is not None and not 0 <= p <= 0xFFFF:
            p = None
        v = _text(d.pop(b"v", None))
        yourip = _ip(d.pop(b"yourip", None), (4, 16))
        ipv4 = _ip(d.pop(b"ipv4", None), (4,))
        ipv6 = _ip(d.pop(b"ipv6", None), (16,))
        reqq = _int(d, b"reqq", what)
        d.pop(b"reqq", None)
        msize = _int(d, b"metadata_size", what)
        d.pop(b"metadata_size", None)
        if msize is not None and msize < 0:
            raise WireError(f"{what}: negative metadata_size")
        uo = d.pop(b"upload_only", 0)
        return cls(
            m=m, p=p, v=v, yourip=yourip,
            ipv4=ipv4 if isinstance(ipv4, ipaddress.IPv4Address) else None,
            ipv6=ipv6 if isinstance(ipv6, ipaddress.IPv6Address) else None,
            reqq=reqq if reqq is None or reqq > 0 else None,
            metadata_size=msize, upload_only=bool(uo) if isinstance(uo, int) else False, extra=d,
        )  # fmt: skip


def _ip(v: Any, sizes: tuple[int, ...]) -> IPAddress | None:
    if isinstance(v, bytes) and len(v) in sizes:
        return ipaddress.ip_address(v)
    return None


# -- ut_metadata (BEP 9) ---------------------------------------------------------------------


@attrs.frozen
class UtMetadataRequest:
    """BEP 9: please send metadata piece ``piece``."""

    EXTENSION_NAME: ClassVar[str] = UT_METADATA
    piece: int

    def to_payload(self) -> bytes:
        """The extension payload."""
        return encode({b"msg_type": 0, b"piece": self.piece})


@attrs.frozen
class UtMetadataData:
    """BEP 9: metadata piece ``piece`` of an info dict of ``total_size`` bytes."""

    EXTENSION_NAME: ClassVar[str] = UT_METADATA
    piece: int
    total_size: int
    data: bytes = attrs.field(converter=bytes)

    def to_payload(self) -> bytes:
        """The extension payload (dictionary then raw bytes)."""
        return (
            encode({b"msg_type": 1, b"piece": self.piece, b"total_size": self.total_size})
            + self.data
        )


@attrs.frozen
class UtMetadataReject:
    """BEP 9: the sender will not send metadata piece ``piece``."""

    EXTENSION_NAME: ClassVar[str] = UT_METADATA
    piece: int

    def to_payload(self) -> bytes:
        """The extension payload."""
        return encode({b"msg_type": 2, b"piece": self.piece})


UtMetadataMessage = UtMetadataRequest | UtMetadataData | UtMetadataReject


def decode_ut_metadata(
    payload: bytes, max_metadata_size: int = DEFAULT_MAX_METADATA_SIZE
) -> UtMetadataMessage:
    """Decode a ut_metadata payload; sizes beyond BEP 9's limits raise WireError."""
    what = "ut_metadata"
    try:
        d, end = decode_prefix(payload, strict=False, max_depth=4)
    except BencodeError as exc:
        raise WireError(f"{what}: bad bencode ({exc})") from exc
    if not isinstance(d, dict):
        raise WireError(f"{what}: payload is not a dictionary")
    mt = _int(d, b"msg_type", what)
    piece = _int(d, b"piece", what)
    if mt is None or piece is None or piece < 0:
        raise WireError(f"{what}: missing msg_type or piece")
    if piece > max_metadata_size // METADATA_PIECE_SIZE:
        raise WireError(f"{what}: piece {piece} beyond the metadata size limit")
    if mt == 0:
        return UtMetadataRequest(piece)
    if mt == 2:
        return UtMetadataReject(piece)
    if mt == 1:
        total = _int(d, b"total_size", what)
        if total is None or not 0 < total <= max_metadata_size:
            raise WireError(f"{what}: total_size missing or out of range")
        data = payload[end:]
        npieces = -(-total // METADATA_PIECE_SIZE)
        if piece >= npieces:
            raise WireError(f"{what}: piece {piece} beyond total_size")
        want = min(METADATA_PIECE_SIZE, total - piece * METADATA_PIECE_SIZE)
        if len(data) != want:
            raise WireError(f"{what}: piece {piece} has {len(data)} bytes, want {want}")
        return UtMetadataData(piece, total, data)
    raise WireError(f"{what}: unknown msg_type {mt}")


# -- ut_pex (BEP 11) -------------------------------------------------------------------------


class PexFlags(enum.IntFlag, boundary=enum.KEEP):
    """BEP 11 per-peer flags in ``added.f``."""

    NONE = 0
    PREFERS_ENCRYPTION = 0x01
    SEED = 0x02  # upload only
    UTP = 0x04
    HOLEPUNCH = 0x08
    REACHABLE = 0x10  # the sender connected out to it (it accepts incoming connections)


@attrs.frozen
class PexPeer:
    """A peer in a ut_pex ``added`` list."""

    addr: PeerAddr
    flags: PexFlags = PexFlags.NONE


@attrs.frozen
class UtPex:
    """BEP 11 peer exchange: peers the sender connected to or dropped since its last message."""

    EXTENSION_NAME: ClassVar[str] = UT_PEX
    added: tuple[PexPeer, ...] = ()
    dropped: tuple[PeerAddr, ...] = ()

    def to_payload(self) -> bytes:
        """The extension payload (v4 and v6 in separate keys, as BEP 11 says)."""
        d: dict[bytes, bytes] = {}
        for fam, suffix in ((4, b""), (6, b"6")):
            added = [p for p in self.added if p.addr.family == fam]
            dropped = [a for a in self.dropped if a.family == fam]
            if added:
                d[b"added" + suffix] = b"".join(p.addr.to_compact() for p in added)
                d[b"added" + suffix + b".f"] = bytes(int(p.flags) & 0xFF for p in added)
            if dropped:
                d[b"dropped" + suffix] = b"".join(a.to_compact() for a in dropped)
        return encode(d)

    @classmethod
    def from_payload(cls, payload: bytes, max_entries: int = PEX_MAX_ENTRIES) -> UtPex:
        """Decode; more than ``max_entries`` added (or dropped) peers raise WireError."""
        what = "ut_pex"
        d = _bdecode_dict(payload, what)
        added: list[PexPeer] = []
        dropped: list[PeerAddr] = []
        for suffix, size in ((b"", 6), (b"6", 18)):
            a = d.get(b"added" + suffix, b"")
            f = d.get(b"added" + suffix + b".f", b"")
            dr = d.get(b"dropped" + suffix, b"")
            if not isinstance(a, bytes) or not isinstance(f, bytes) or not isinstance(dr, bytes):
                raise WireError(f"{what}: peer lists must be byte strings")
            if len(a) % size or len(dr) % size:
                raise WireError(f"{what}: compact peer list length not a multiple of {size}")
            n = len(a) // size
            if n + len(added) > max_entries or len(dr) // size + len(dropped) > max_entries:
                raise WireError(f"{what}: more than {max_entries} peers in one message")
            try:
                for i in range(n):
                    flags = PexFlags(f[i]) if i < len(f) else PexFlags.NONE
                    added.append(
                        PexPeer(PeerAddr.from_compact(a[i * size : (i + 1) * size]), flags)
                    )
                dropped.extend(
                    PeerAddr.from_compact(dr[i : i + size]) for i in range(0, len(dr), size)
                )
            except CoreError as exc:
                raise WireError(f"{what}: {exc}") from exc
        return cls(tuple(added), tuple(dropped))


@attrs.define
class PexState:
    """What one connection has told its peer by ut_pex, and when (BEP 11's rules, time as input).

    :meth:`build` diffs the current peer set against what was sent, caps ``added`` at
    ``send_limit`` (the rest goes in later messages) and returns None until ``min_interval``
    seconds have passed since the last message. :meth:`accept` rate-limits the peer's messages.
    """

    min_interval: float = PEX_MIN_INTERVAL
    send_limit: int = PEX_SEND_LIMIT
    _sent: dict[PeerAddr, PexFlags] = attrs.field(factory=dict)
    _last_sent: float | None = None
    _last_received: float | None = None

    def next_deadline(self) -> float | None:
        """When :meth:`build` may next return a message (None: right away)."""
        return None if self._last_sent is None else self._last_sent + self.min_interval

    def build(self, current: Mapping[PeerAddr, PexFlags], now: float) -> UtPex | None:
        """The message to send now, or None (too early, or nothing changed)."""
        deadline = self.next_deadline()
        if deadline is not None and now < deadline:
            return None
        added = [PexPeer(a, f) for a, f in current.items() if a not in self._sent]
        added = added[: self.send_limit]
        dropped = [a for a in self._sent if a not in current][: self.send_limit]
        if not added and not dropped:
            return None
        for p in added:
            self._sent[p.addr] = p.flags
        for a in dropped:
            del self._sent[a]
        self._last_sent = now
        return UtPex(tuple(added), tuple(dropped))

    def accept(self, now: float) -> bool:
        """Should a ut_pex message arriving at ``now`` be used? (False if too soon after the last.)

        A small grace (10% of the interval) allows for timer jitter on the sender's side.
        """
        last = self._last_received
        if last is not None and now - last < self.min_interval * 0.9:
            return False
        self._last_received = now
        return True


# -- lt_donthave (BEP 54) and upload_only ----------------------------------------------------

_U32 = struct.Struct(">I")


@attrs.frozen
class LtDontHave:
    """BEP 54: the sender no longer has piece ``index``."""

    EXTENSION_NAME: ClassVar[str] = LT_DONTHAVE
    index: int

    def to_payload(self) -> bytes:
        """The extension payload (a 4-byte index)."""
        return _U32.pack(self.index)

    @classmethod
    def from_payload(cls, payload: bytes) -> LtDontHave:
        """Decode a 4-byte index."""
        if len(payload) != 4:
            raise WireError("lt_donthave payload must be 4 bytes")
        return cls(_U32.unpack(payload)[0])


@attrs.frozen
class UploadOnly:
    """libtorrent's upload_only extension: the sender is (or stops being) upload-only."""

    EXTENSION_NAME: ClassVar[str] = UPLOAD_ONLY
    enabled: bool

    def to_payload(self) -> bytes:
        """The extension payload (one byte)."""
        return b"\x01" if self.enabled else b"\x00"

    @classmethod
    def from_payload(cls, payload: bytes) -> UploadOnly:
        """Decode one byte."""
        if len(payload) != 1:
            raise WireError("upload_only payload must be 1 byte")
        return cls(payload != b"\x00")


ExtensionMessage = (
    ExtendedHandshake | UtMetadataRequest | UtMetadataData | UtMetadataReject | UtPex
    | LtDontHave | UploadOnly
)  # fmt: skip
"""Typed BEP 10 messages :class:`torrio.wire.WireConnection` yields and accepts."""


class _ExtensionMsg(Protocol):
    EXTENSION_NAME: ClassVar[str]

    def to_payload(self) -> bytes: ...


Codec = Callable[[bytes], Any]


@attrs.define
class ExtensionRegistry:
    """Extension names and their ids on both sides of one connection.

    ``local`` is what we advertise (and what the peer sends to us); ``remote`` is filled from the
    peer's extended handshake with :meth:`update_remote`. ``decoders`` maps names to payload
    decoders; unknown names decode to raw :class:`torrio.wire.Extended` messages.
    """

    local: dict[str, int] = attrs.field(factory=lambda: dict(DEFAULT_LOCAL_IDS))
    remote: dict[str, int] = attrs.field(factory=dict)
    max_metadata_size: int = DEFAULT_MAX_METADATA_SIZE
    decoders: dict[str, Codec] = attrs.field(factory=dict)
    _by_local: dict[int, str] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        for name, ext_id in self.local.items():
            if not 1 <= ext_id <= 255:
                raise ValueError(f"local extension id for {name} must be 1..255")
        if len(set(self.local.values())) != len(self.local):
            raise ValueError("local extension ids must be distinct")
        builtin: dict[str, Codec] = {
            UT_METADATA: lambda p: decode_ut_metadata(p, self.max_metadata_size),
            UT_PEX: UtPex.from_payload,
            LT_DONTHAVE: LtDontHave.from_payload,
            UPLOAD_ONLY: UploadOnly.from_payload,
        }
        for k, v in builtin.items():
            self.decoders.setdefault(k, v)
        self._by_local = {v: k for k, v in self.local.items()}

    def local_name(self, ext_id: int) -> str | None:
        """The extension we assigned ``ext_id`` to, if any."""
        return self._by_local.get(ext_id)

    def remote_id(self, name: str) -> int | None:
        """The id the peer wants for ``name``, or None if it does not support it."""
        ext_id = self.remote.get(name)
        return ext_id or None

    def supports(self, name: str) -> bool:
        """Did the peer advertise ``name``?"""
        return self.remote_id(name) is not None

    def update_remote(self, m: Mapping[str, int]) -> None:
        """Apply the ``m`` of a peer's (possibly repeated) extended handshake; id 0 disables."""
        for name, ext_id in m.items():
            if ext_id == 0:
                self.remote.pop(name, None)
            elif 1 <= ext_id <= 255:
                self.remote[name] = ext_id

    def handshake(self, **fields: Any) -> ExtendedHandshake:
        """Our extended handshake advertising ``local`` (``fields`` as in ExtendedHandshake)."""
        return ExtendedHandshake(m=dict(self.local), **fields)

    def decode(self, ext_id: int, payload: bytes) -> Any:
        """A typed message for a payload the peer sent with our id ``ext_id`` (None if unknown)."""
        if ext_id == 0:
            return ExtendedHandshake.from_payload(payload)
        name = self._by_local.get(ext_id)
        if name is None:
            return None
        dec = self.decoders.get(name)
        return None if dec is None else dec(payload)

    def encode(self, message: _ExtensionMsg) -> tuple[int, bytes]:
        """``(remote id, payload)`` for sending ``message``; WireError if the peer lacks it."""
        name = message.EXTENSION_NAME
        if not name:
            return 0, message.to_payload()
        ext_id = self.remote_id(name)
        if ext_id is None:
            raise WireError(f"peer does not support {name}")
        return ext_id, message.to_payload()


def metadata_piece_count(total_size: int) -> int:
    """How many 16 KiB ut_metadata pieces an info dict of ``total_size`` bytes has."""
    return -(-total_size // METADATA_PIECE_SIZE)


@attrs.define
class MetadataAssembler:
    """Collects ut_metadata pieces and checks the result against the info-hash.

    ``expected`` is the SHA-1 (v1 wire id) or SHA-256 (v2) digest of the info dict.
    """

    total_size: int
    expected: bytes
    _pieces: dict[int, bytes] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if not 0 < self.total_size <= DEFAULT_MAX_METADATA_SIZE:
            raise WireError("metadata size out of range")

    def missing(self) -> list[int]:
        """Piece numbers still missing."""
        return [i for i in range(metadata_piece_count(self.total_size)) if i not in self._pieces]

    def add(self, message: UtMetadataData) -> bytes | None:
        """Store a piece; returns the whole verified info dict once complete.

        A size mismatch raises WireError; a hash mismatch raises WireError and forgets all pieces.
        """
        if message.total_size != self.total_size:
            raise WireError("ut_metadata total_size changed")
        self._pieces[message.piece] = message.data
        if self.missing():
            return None
        data = b"".join(self._pieces[i] for i in range(metadata_piece_count(self.total_size)))
        digest = (hashlib.sha256 if len(self.expected) == 32 else hashlib.sha1)(data).digest()
        if digest != self.expected:
            self._pieces.clear()
            raise WireError("metadata does not hash to the info-hash")
        return data


def pex_flags_for(prefers_encryption: bool, seed: bool, utp: bool, reachable: bool) -> PexFlags:
    """Assemble the BEP 11 flags for one peer."""
    f = PexFlags.NONE
    if prefers_encryption:
        f |= PexFlags.PREFERS_ENCRYPTION
    if seed:
        f |= PexFlags.SEED
    if utp:
        f |= PexFlags.UTP
    if reachable:
        f |= PexFlags.REACHABLE
    return f
