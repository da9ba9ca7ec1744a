"""Parameters of :meth:`Session.add_torrent` and of the session itself."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from torrio.core import PeerAddr

from ._errors import ClientError

ENCRYPTION_POLICIES = ("prefer", "require", "disable")


def _peers(value: Sequence[PeerAddr | str]) -> tuple[PeerAddr, ...]:
    return tuple(p if isinstance(p, PeerAddr) else PeerAddr.parse(p) for p in value)


def _strs(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


def _priorities(value: Sequence[int] | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    out = tuple(int(v) for v in value)
    if any(not 0 <= v <= 7 for v in out):
        raise ClientError("file priorities must be 0 (skip) .. 7")
    return out


def _non_negative(_inst: object, attr: attrs.Attribute[Any], value: int) -> None:
    if value < 0:
        raise ClientError(f"{attr.name} must be >= 0")


@attrs.frozen
class AddTorrent:
    """What to add and how (libtorrent's ``add_torrent_params``).

    ``source`` is a :class:`torrio.metainfo.Torrent`, the bytes of a .torrent, a path to one, or an
    http(s) URL of one. ``save_path`` means what libtorrent's means: the directory that holds the
    torrent's name. ``file_priorities`` (0 = skip, 1..7) are per entry of ``Torrent.files``.
    ``resume_data`` is what :meth:`TorrentHandle.save_resume_data` produced (otherwise the session
    looks in its ``resume_dir``). ``storage`` builds the torrent's ``torrio.disk.FileSystem`` from the
    save path (default: native files).
    """

    source: Any
    save_path: str | os.PathLike[str] = "."
    file_priorities: tuple[int, ...] | None = attrs.field(default=None, converter=_priorities)
    sequential: bool = False
    seed_mode: bool = False
    """Trust that the data is complete (each piece is hash-checked the first time it is served)."""
    paused: bool = False
    upload_only: bool = False
    """Never request pieces: serve what is verified (``torrio seed``)."""
    peers: tuple[PeerAddr, ...] = attrs.field(default=(), converter=_peers)
    trackers: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    """Extra tracker URLs (each its own tier), after the torrent's own. Ignored for private torrents."""
    resume_data: bytes | None = None
    max_download_rate: int = attrs.field(default=0, validator=_non_negative)
    max_upload_rate: int = attrs.field(default=0, validator=_non_negative)
    max_connections: int = attrs.field(default=50, validator=_non_negative)
    upload_slots: int | None = 4
    """Upload slots; None selects the automatic mode."""
    ratio_limit: float | None = None
    """Stop seeding once uploaded/downloaded reaches this."""
    seed_time_limit: float | None = None
    """Stop seeding after this many seconds of seeding."""
    storage: Callable[[str], Any] | None = None
    web_seeds: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    """Extra BEP 19 web seed URLs, used besides the torrent's own ``url-list``."""
    super_seed: bool = False
    """BEP 16 super-seeding while the torrent is a seed (``torrio seed --super-seed``)."""
    share_mode: bool = False
    """libtorrent's share mode: fetch only pieces connected peers want and we can upload again
    soon (within an upload/download ratio budget); the torrent does not try to complete."""


@attrs.frozen
class SessionSettings:
    """Session-wide settings (:func:`open_session` takes them as keyword arguments too)."""

    listen_host: str = "0.0.0.0"
    listen_port: int = 0
    encryption: str = attrs.field(default="prefer")
    transport: str = attrs.field(default="tcp")
    """``tcp``; ``utp`` (dial over uTP); ``both`` (dial uTP first, fall back to TCP after a failure
    or ~3 s of silence, remembering peers without uTP, as libtorrent does). With ``utp`` or
    ``both`` uTP is accepted on the UDP port with the TCP port's number; TCP is always accepted.
    With a proxy, outgoing connections are TCP through the proxy."""
    max_connections: int = 200
    max_download_rate: int = 0
    max_upload_rate: int = 0
    active_downloads: int = -1
    active_seeds: int = -1
    active_limit: int = -1
    resume_dir: str | None = None
    resume_interval: float = 60.0
    stats_interval: float = 1.0
    connect_timeout: float = 10.0
    max_half_open: int = 20
    event_buffer: int = 1000
    peer_id_prefix: bytes = b"-TO0001-"
    announce_interval_min: float = 30.0
    user_agent: str = "torrio/0.1"
    dht: bool = False
    """Run a DHT node on the session's UDP port and find peers of public torrents through it."""
    dht_bootstrap: tuple[tuple[str, int], ...] = ()
    """DHT bootstrap nodes (the CLI uses the public routers unless given ``--dht-bootstrap``)."""
    dht_state: str | None = None
    """File the DHT routing table is restored from and saved to."""
    dht_interval: float = 300.0
    """Seconds between DHT lookups/announces of a public torrent that wants more peers; a seed,
    or a torrent with enough peers, goes every 15 minutes (libtorrent's interval)."""
    pex: bool = True
    """Peer exchange (BEP 11 ut_pex) for public torrents (never for private ones, BEP 27)."""
    pex_interval: float = 60.0
    """Seconds between two ut_pex messages to one peer (BEP 11: at least 60; tests lower it)."""
    lsd: bool = False
    """Local service discovery (BEP 14) for public torrents (``torrio download`` turns it on
    unless ``--no-lsd``; off here so library users and tests opt in)."""
    lsd_group: tuple[str, int] = ("239.192.152.143", 6771)
    """IPv4 multicast group and port (tests use another port). Loopback sessions multicast on lo."""
    lsd_min_gap: float = 60.0
    """Seconds between two LSD datagrams (BEP 14: at most one a minute; tests lower it)."""
    share_mode_target: float = attrs.field(default=3.0)
    """Upload/download ratio a share-mode torrent aims for (libtorrent's ``share_mode_target``,
    ``torrio download --share-ratio R``): it starts a new piece only while ``downloaded`` stays
    within ``uploaded / share_mode_target`` plus a couple of pieces of start-up credit. Must be
    > 0; lower values let it fetch more per byte uploaded."""
    write_cache_bytes: int = 32 << 20
    read_cache_bytes: int = 32 << 20
    disk_threads: int = 4
    tracker_allow_local: bool = True
    """Announce to trackers on loopback/private addresses at any path (off: only ``/announce``)."""
    reraise_errors: bool = False
    """Let an unexpected error in a torrent's task propagate (tests), instead of a TorrentError."""
    ip_filter: Any = None
    """Path of an eMule/PeerGuardian filter file, or a ``torrio.client.IpFilter``: blocked peers
    are never dialed nor accepted (counted in ``SessionStatus.blocked_peers``)."""
    proxy: Any = None
    """``socks5://user:pass@host:port``, ``socks5h://``, ``socks4://`` or ``http://`` URL (or a
    ``ProxyConfig``): outgoing peer connections (TCP only; uTP dialing is off with a proxy), HTTP
    trackers and web seeds go through it. Incoming connections are still accepted directly."""

    @transport.validator
    def _check_transport(self, _attr: attrs.Attribute[str], value: str) -> None:
        if value not in ("tcp", "utp", "both"):
            raise ClientError("transport must be one of tcp, utp, both")

    @share_mode_target.validator
    def _check_share_mode_target(self, _attr: attrs.Attribute[float], value: float) -> None:
        if not value > 0 or value == float("inf"):
            raise ClientError("share_mode_target must be a finite number > 0")

    @encryption.validator
    def _check_encryption(self, _attr: attrs.Attribute[str], value: str) -> None:
        if value not in ENCRYPTION_POLICIES:
            raise ClientError(f"encryption must be one of {', '.join(ENCRYPTION_POLICIES)}")
