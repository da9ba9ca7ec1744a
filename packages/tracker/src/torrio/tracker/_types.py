"""Requests and responses shared by the HTTP and UDP codecs (and by torrio-tracker-server)."""

from __future__ import annotations

import enum
import ipaddress

import attrs

from torrio.core import IPAddress, PeerAddr

from ._errors import TrackerProtocolError


class Event(enum.IntEnum):
    """Announce events; the values are BEP 15's numbering."""

    NONE = 0
    COMPLETED = 1
    STARTED = 2
    STOPPED = 3

    @property
    def http_name(self) -> str:
        """The ``event=`` value in an HTTP announce ("" for NONE)."""
        return "" if self is Event.NONE else self.name.lower()

    @classmethod
    def from_http(cls, name: str) -> Event:
        """Parse an HTTP ``event=`` value (unknown values raise TrackerProtocolError)."""
        name = name.strip().lower()
        if name in ("", "empty", "none", "paused"):
            return cls.NONE
        try:
            return cls[name.upper()]
        except KeyError:
            raise TrackerProtocolError(f"unknown announce event {name!r}") from None


def _twenty(value: bytes) -> bytes:
    value = bytes(value)
    if len(value) != 20:
        raise TrackerProtocolError(f"expected 20 bytes, got {len(value)}")
    return value


def _u64(_i: object, a: attrs.Attribute[int], v: int) -> None:
    if not 0 <= v < 1 << 64:
        raise TrackerProtocolError(f"{a.name} out of range: {v}")


def _port(_i: object, _a: object, v: int) -> None:
    if not 0 <= v <= 0xFFFF:
        raise TrackerProtocolError(f"port out of range: {v}")


@attrs.frozen
class AnnounceRequest:
    """One announce, independent of transport.

    ``info_hash`` is the 20-byte id sent on the wire (``InfoHash.wire``); ``numwant`` -1 means
    "tracker's default"; ``key`` is a 32-bit value that lets the tracker recognise us across
    IP changes; ``ip``/``ipv6`` are optional address hints (BEP 7).
    """

    info_hash: bytes = attrs.field(converter=_twenty)
    peer_id: bytes = attrs.field(converter=_twenty)
    port: int = attrs.field(validator=_port)
    uploaded: int = attrs.field(default=0, validator=_u64)
    downloaded: int = attrs.field(default=0, validator=_u64)
    left: int = attrs.field(default=0, validator=_u64)
    event: Event = Event.NONE
    numwant: int = -1
    key: int = 0
    compact: bool = True
    no_peer_id: bool = True
    ip: str | None = None
    ipv6: str | None = None
    tracker_id: bytes | None = None


@attrs.frozen
class AnnounceResponse:
    """What a tracker answered to an announce.

    ``peers`` holds IPv4 and IPv6 peers together; ``peer_ids`` is parallel to ``peers`` when
    the tracker sent dict-form peers with ids (else empty). Counts are None when not sent.
    """

    interval: int
    peers: tuple[PeerAddr, ...] = ()
    min_interval: int | None = None
    complete: int | None = None
    incomplete: int | None = None
    downloaded: int | None = None
    tracker_id: bytes | None = None
    warning: str | None = None
    external_ip: IPAddress | None = None
    peer_ids: tuple[bytes | None, ...] = ()


@attrs.frozen
class ScrapeEntry:
    """Swarm counts for one info-hash: seeds (complete), leechers (incomplete), downloads."""

    complete: int
    incomplete: int
    downloaded: int


@attrs.frozen
class ScrapeResponse:
    """A scrape answer: counts per 20-byte info-hash."""

    files: dict[bytes, ScrapeEntry]


def parse_ip(text: str | bytes) -> IPAddress:
    """Parse an IP literal; IPv4-mapped IPv6 addresses come back as IPv4."""
    try:
        if isinstance(text, bytes):
            text = text.decode("ascii")
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TrackerProtocolError(f"not an IP address: {text!r}") from exc
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
