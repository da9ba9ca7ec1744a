"""Fetching a torrent's info dict from peers (BEP 9, ut_metadata) and serving ours.

:class:`MetadataFetcher` is a sans-I/O state machine keyed by whatever the caller uses to name a
peer (a connection object, a :class:`torrio.core.PeerAddr`, ...). The caller tells it about each
peer's extended handshake (:meth:`~MetadataFetcher.add_peer`), sends the requests that
:meth:`~MetadataFetcher.poll` returns, and feeds every ut_metadata message the peer sends to
:meth:`~MetadataFetcher.receive`; the verified info dict comes back from ``receive`` once
complete. Time is an input (``now``) and :meth:`~MetadataFetcher.next_deadline` says when
``poll`` has timeouts to expire.

Policy:

* the size is the ``metadata_size`` most (unbanned) peers advertise, capped at ``max_size``;
  peers advertising another size are not asked;
* up to ``per_peer`` outstanding 16 KiB requests per peer, several peers in parallel; a reject
  or a timeout rests that peer for ``rest`` seconds and hands the piece to another;
* the assembled dict must hash to every digest the info-hash has (SHA-1 for v1, SHA-256 for v2,
  both for hybrid). On a mismatch all pieces are discarded and every contributor gets a strike;
  a peer that supplied *all* pieces of a bad copy is banned outright, and so is one reaching
  ``max_strikes``. After the first mismatch the fetcher takes each attempt from a single peer
  at a time, so the next failure names its culprit. Banned peers are drained with
  :meth:`~MetadataFetcher.take_banned` for the session to disconnect.

:class:`MetadataServer` answers requests from our info bytes. :func:`selection_priorities` maps a
magnet's BEP 53 ``so=`` to file priorities. :func:`fetch_metadata` is the thin trio helper that
drives a fetcher over open :class:`torrio.wire.PeerConnection` objects.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

import attrs

from torrio.core import InfoHash
from torrio.wire import (
    DEFAULT_MAX_METADATA_SIZE,
    METADATA_PIECE_SIZE,
    UtMetadataData,
    UtMetadataMessage,
    UtMetadataReject,
    UtMetadataRequest,
    metadata_piece_count,
)

from ._errors import ClientError

if TYPE_CHECKING:
    from torrio.metainfo import Torrent

K = TypeVar("K", bound=Hashable)

#: Outstanding ut_metadata requests per peer.
DEFAULT_PER_PEER = 2
#: Seconds a request may stay unanswered before it goes to another peer.
DEFAULT_REQUEST_TIMEOUT = 20.0
#: Seconds a peer that rejected or timed out is left alone.
DEFAULT_REST = 30.0
#: Strikes (contributions to copies that failed the hash check) that ban a peer.
DEFAULT_MAX_STRIKES = 3


class MetadataFetchError(ClientError):
    """The metadata cannot be fetched (no usable peer left, or hashing failed too often)."""


def metadata_matches(info_hash: InfoHash, info_bytes: bytes) -> bool:
    """Does ``info_bytes`` hash to every digest of ``info_hash`` (v1 SHA-1, v2 SHA-256)?"""
    if info_hash.v1 is not None and hashlib.sha1(info_bytes).digest() != info_hash.v1:
        return False
    return info_hash.v2 is None or hashlib.sha256(info_bytes).digest() == info_hash.v2


@attrs.frozen
class MetadataFetchStatistics:
    """A snapshot of a :class:`MetadataFetcher`."""

    size: int | None
    pieces_total: int
    pieces_have: int
    outstanding: int
    peers: int
    banned: int
    requests_sent: int
    pieces_received: int
    rejects: int
    timeouts: int
    unsolicited: int
    hash_failures: int
    done: bool


@attrs.define
class _Peer:
    size: int | None
    outstanding: dict[int, float] = attrs.field(factory=dict)
    strikes: int = 0
    rest_until: float = -math.inf


class MetadataFetcher(Generic[K]):
    """Sans-I/O BEP 9 download of one info dict from several peers (see the module docstring)."""

    def __init__(
        self,
        info_hash: InfoHash,
        *,
        max_size: int = DEFAULT_MAX_METADATA_SIZE,
        per_peer: int = DEFAULT_PER_PEER,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        rest: float = DEFAULT_REST,
        max_strikes: int = DEFAULT_MAX_STRIKES,
        max_hash_failures: int = 16,
    ) -> None:
        if not 0 < max_size <= DEFAULT_MAX_METADATA_SIZE:
            raise ValueError(f"max_size must be 1..{DEFAULT_MAX_METADATA_SIZE}")
        if per_peer < 1:
            raise ValueError("per_peer must be >= 1")
        self.info_hash = info_hash
        self.max_size = max_size
        self.per_peer = per_peer
        self.request_timeout = request_timeout
        self.rest = rest
        self.max_strikes = max_strikes
        self.max_hash_failures = max_hash_failures
        self._peers: dict[K, _Peer] = {}
        self._banned: set[K] = set()
        self._newly_banned: list[K] = []
        self._size: int | None = None
        self._pieces: dict[int, tuple[bytes, K]] = {}
        self._single_source = False
        self._source: K | None = None
        self._result: bytes | None = None
        self._requests_sent = 0
        self._received = 0
        self._rejects = 0
        self._timeouts = 0
        self._unsolicited = 0
        self._hash_failures = 0

    # -- peers -------------------------------------------------------------------------------

    def add_peer(self, peer: K, metadata_size: int | None) -> None:
        """A peer's extended handshake arrived (again): it supports ut_metadata with this size.

        Sizes that are missing, non-positive or above ``max_size`` make the peer unusable for
        fetching (it stays known so a later handshake can change that). Banned peers are ignored.
        """
        if peer in self._banned:
            return
        size = metadata_size if metadata_size and 0 < metadata_size <= self.max_size else None
        st = self._peers.get(peer)
        if st is None:
            self._peers[peer] = _Peer(size)
        else:
            st.size = size
        self._choose_size()

    def remove_peer(self, peer: K) -> None:
        """The peer disconnected: its outstanding requests go to others."""
        self._peers.pop(peer, None)
        if self._source == peer:
            self._source = None
        self._choose_size()

    def take_banned(self) -> list[K]:
        """Peers banned since the last call (disconnect them)."""
        out, self._newly_banned = self._newly_banned, []
        return out

    @property
    def banned(self) -> frozenset[K]:
        """Every peer banned so far."""
        return frozenset(self._banned)

    def _ban(self, peer: K) -> None:
        if peer in self._banned:
            return
        self._banned.add(peer)
        self._newly_banned.append(peer)
        self._peers.pop(peer, None)
        if self._source == peer:
            self._source = None

    def _choose_size(self) -> None:
        votes = Counter(p.size for p in self._peers.values() if p.size is not None)
        if not votes:
            return
        best = max(votes.items(), key=lambda kv: (kv[1], kv[0] == self._size))[0]
        if best != self._size:
            self._size = best
            self._pieces.clear()
            for p in self._peers.values():
                p.outstanding.clear()

    # -- requests ------------------------------------------------------------------------------

    @property
    def size(self) -> int | None:
        """The metadata size being fetched (None until a usable peer is known)."""
        return self._size

    @property
    def done(self) -> bool:
        """Has the verified info dict arrived?"""
        return self._result is not None

    @property
    def info_bytes(self) -> bytes | None:
        """The verified info dict, once :attr:`done`."""
        return self._result

    def _missing(self) -> list[int]:
        assert self._size is not None
        return [i for i in range(metadata_piece_count(self._size)) if i not in self._pieces]

    def _eligible(self, now: float) -> list[tuple[K, _Peer]]:
        return [
            (k, p)
            for k, p in self._peers.items()
            if p.size == self._size and p.rest_until <= now and len(p.outstanding) < self.per_peer
        ]

    def poll(self, now: float) -> list[tuple[K, UtMetadataRequest]]:
        """Expire timed-out requests and return the requests to send now, as ``(peer, message)``."""
        for p in self._peers.values():
            for piece, sent in list(p.outstanding.items()):
                if now - sent >= self.request_timeout:
                    del p.outstanding[piece]
                    p.rest_until = now + self.rest
                    self._timeouts += 1
        if self._result is not None or self._size is None:
            return []
        in_flight = {i for p in self._peers.values() for i in p.outstanding}
        todo = [i for i in self._missing() if i not in in_flight]
        if not todo:
            return []
        eligible = self._eligible(now)
        if self._single_source:
            src = self._peers.get(self._source) if self._source is not None else None
            if src is None or src.rest_until > now or src.size != self._size:
                # choose the least-suspected available peer as the next sole source
                cands = [(k, p) for k, p in eligible]
                if not cands:
                    return []
                self._source = min(cands, key=lambda kp: kp[1].strikes)[0]
            eligible = [(k, p) for k, p in eligible if k == self._source]
        else:
            eligible.sort(key=lambda kp: (kp[1].strikes, len(kp[1].outstanding)))
        out: list[tuple[K, UtMetadataRequest]] = []
        # round-robin so that several peers share the work
        while todo and eligible:
            still: list[tuple[K, _Peer]] = []
            for k, p in eligible:
                if not todo:
                    break
                piece = todo.pop(0)
                p.outstanding[piece] = now
                out.append((k, UtMetadataRequest(piece)))
                if len(p.outstanding) < self.per_peer:
                    still.append((k, p))
            eligible = still
        self._requests_sent += len(out)
        return out

    def next_deadline(self) -> float | None:
        """The earliest request timeout or end of a rest, or None if there is nothing to wait for."""
        times = [
            t + self.request_timeout for p in self._peers.values() for t in p.outstanding.values()
        ]
        times += [p.rest_until for p in self._peers.values() if p.rest_until > -math.inf]
        return min(times) if times and self._result is None else None

    # -- replies ---------------------------------------------------------------------------------

    def receive(self, peer: K, message: UtMetadataMessage, now: float) -> bytes | None:
        """Feed a ut_metadata message from ``peer``; returns the verified info dict when complete.

        Requests from the peer are not handled here (answer them with :class:`MetadataServer`, or
        reject them while we have no metadata). Unsolicited or stale data is counted and dropped;
        data whose ``total_size`` differs from the size the peer advertised bans the peer.
        """
        if self._result is not None:
            return None
        st = self._peers.get(peer)
        if st is None or isinstance(message, UtMetadataRequest):
            return None
        if isinstance(message, UtMetadataReject):
            if st.outstanding.pop(message.piece, None) is not None:
                self._rejects += 1
                st.rest_until = now + self.rest
            return None
        if st.outstanding.pop(message.piece, None) is None:
            self._unsolicited += 1
            return None
        if message.total_size != st.size or message.total_size != self._size:
            self._ban(peer)
            self._choose_size()
            return None
        self._received += 1
        self._pieces[message.piece] = (message.data, peer)
        if self._missing():
            return None
        return self._verify()

    def _verify(self) -> bytes | None:
        assert self._size is not None
        n = metadata_piece_count(self._size)
        data = b"".join(self._pieces[i][0] for i in range(n))
        if len(data) == self._size and metadata_matches(self.info_hash, data):
            self._result = data
            for p in self._peers.values():
                p.outstanding.clear()
            return data
        self._hash_failures += 1
        sources = {src for _, src in self._pieces.values()}
        self._pieces.clear()
        self._single_source = True
        self._source = None
        for src in sources:
            st = self._peers.get(src)
            if st is None:
                continue
            st.strikes += 1
            if len(sources) == 1 or st.strikes >= self.max_strikes:
                self._ban(src)
        self._choose_size()
        if self._hash_failures >= self.max_hash_failures:
            raise MetadataFetchError(
                f"metadata failed the hash check {self._hash_failures} times; giving up"
            )
        return None

    @property
    def exhausted(self) -> bool:
        """True when no known peer can supply the metadata (wait for more peers, or give up)."""
        return self._result is None and not any(
            p.size == self._size and p.size is not None for p in self._peers.values()
        )

    def torrent(
        self,
        *,
        trackers: tuple[tuple[str, ...], ...] = (),
        web_seeds: tuple[str, ...] = (),
    ) -> Torrent:
        """The fetched metadata as a :class:`torrio.metainfo.Torrent` (MetadataFetchError if not done
        or if the info dict does not parse). v2 piece layers are not part of BEP 9: add them later
        with ``Torrent.with_piece_layers``."""
        from torrio.metainfo import MetainfoError, Torrent

        if self._result is None:
            raise MetadataFetchError("metadata not fetched yet")
        try:
            return Torrent.from_info_bytes(self._result, trackers=trackers, web_seeds=web_seeds)
        except MetainfoError as exc:
            raise MetadataFetchError(f"fetched metadata does not parse: {exc}") from exc

    def statistics(self) -> MetadataFetchStatistics:
        """Counters and progress."""
        total = metadata_piece_count(self._size) if self._size else 0
        return MetadataFetchStatistics(
            size=self._size,
            pieces_total=total,
            pieces_have=total if self._result is not None else len(self._pieces),
            outstanding=sum(len(p.outstanding) for p in self._peers.values()),
            peers=len(self._peers),
            banned=len(self._banned),
            requests_sent=self._requests_sent,
            pieces_received=self._received,
            rejects=self._rejects,
            timeouts=self._timeouts,
            unsolicited=self._unsolicited,
            hash_failures=self._hash_failures,
            done=self._result is not None,
        )


# -- serving -------------------------------------------------------------------------------------


@attrs.frozen
class MetadataServerStatistics:
    """A snapshot of a :class:`MetadataServer`."""

    served: int
    rejected: int


@attrs.define
class MetadataServer:
    """Answers ut_metadata requests from our info dict (``info_bytes``).

    Advertise ``metadata_size`` (``len(info_bytes)``) in the extended handshake. Pass ``peer`` to
    :meth:`respond` to cap what one peer may take: ``max_copies`` times the whole dict (a peer
    that keeps asking is using us as an amplifier); the per-peer counts are kept for at most
    ``max_peers`` peers (the oldest are forgotten) — call :meth:`forget` when a peer leaves.
    """

    info_bytes: bytes = attrs.field(converter=bytes)
    max_copies: int = 3
    max_peers: int = 1024
    _served: int = 0
    _rejected: int = 0
    _per_peer: dict[Hashable, int] = attrs.field(factory=dict)

    @property
    def metadata_size(self) -> int:
        """The value for the extended handshake's ``metadata_size``."""
        return len(self.info_bytes)

    def respond(
        self, request: UtMetadataRequest, peer: Hashable | None = None
    ) -> UtMetadataData | UtMetadataReject:
        """The piece, or a reject (a piece beyond the info dict, or ``peer`` over its budget)."""
        total = len(self.info_bytes)
        start = request.piece * METADATA_PIECE_SIZE
        if request.piece < 0 or start >= total:
            self._rejected += 1
            return UtMetadataReject(request.piece)
        if peer is not None:
            n = self._per_peer.pop(peer, 0)
            self._per_peer[peer] = n + 1  # re-inserted: the dict stays in least-recent order
            while len(self._per_peer) > self.max_peers:
                del self._per_peer[next(iter(self._per_peer))]
            if n >= self.max_copies * metadata_piece_count(total):
                self._rejected += 1
                return UtMetadataReject(request.piece)
        self._served += 1
        return UtMetadataData(
            request.piece, total, self.info_bytes[start : start + METADATA_PIECE_SIZE]
        )

    def forget(self, peer: Hashable) -> None:
        """Drop ``peer``'s count (it disconnected)."""
        self._per_peer.pop(peer, None)

    def statistics(self) -> MetadataServerStatistics:
        """Pieces served and requests rejected."""
        return MetadataServerStatistics(self._served, self._rejected)


# -- BEP 53 --------------------------------------------------------------------------------------


def selection_priorities(
    torrent: Torrent,
    select_only: Sequence[int] | None,
    *,
    selected: int = 4,
    unselected: int = 0,
) -> tuple[int, ...] | None:
    """File priorities (one per ``torrent.files`` entry) for a magnet's BEP 53 ``so=`` list.

    Indices are positions in ``torrent.files`` — libtorrent's file indices, pad files included
    (libtorrent lists v2 alignment pads as files too), the same numbering as ``--file-priority``.
    Pad files always get ``unselected``; indices beyond the list are ignored. None in, None out
    (download everything).
    """
    if select_only is None:
        return None
    wanted = set(select_only)
    prios = [
        selected if i in wanted and not f.is_pad else unselected
        for i, f in enumerate(torrent.files)
    ]
    return tuple(prios)


# -- trio helper ---------------------------------------------------------------------------------

if TYPE_CHECKING:
    from collections.abc import Mapping

    from torrio.wire import PeerConnection


async def fetch_metadata(
    fetcher: MetadataFetcher[K], connections: Mapping[K, PeerConnection]
) -> bytes:
    """Drive ``fetcher`` over open, handshaken connections until the info dict is verified.

    Each connection must have the extension protocol on; the peer's extended handshake may already
    have arrived (``conn.wire.peer_extended_handshake``) or arrive while this runs. Requests from
    the peers are rejected; banned peers' connections are closed. Other messages are ignored, so
    run this before (or instead of) the session's own reader on those connections. Raises
    :class:`MetadataFetchError` if every connection closed first. Wrap it in a trio timeout.
    """
    from torrio.wire import UT_METADATA, ExtendedHandshake

    from ._fetch_driver import drive

    def offer(key: K, conn: PeerConnection, size: int | None) -> None:
        # a metadata_size without ut_metadata in "m" is no offer at all
        fetcher.add_peer(key, size if conn.registry.supports(UT_METADATA) else None)

    def on_open(key: K, conn: PeerConnection) -> None:
        hs = conn.wire.peer_extended_handshake
        if hs is not None:
            offer(key, conn, hs.metadata_size)

    async def handle(key: K, conn: PeerConnection, ev: object) -> bool:
        import trio

        if isinstance(ev, ExtendedHandshake):
            offer(key, conn, ev.metadata_size)
        elif isinstance(ev, UtMetadataRequest):
            await conn.send(UtMetadataReject(ev.piece))
            return False
        elif isinstance(ev, UtMetadataData | UtMetadataReject):
            fetcher.receive(key, ev, trio.current_time())
        else:
            return False
        return True

    await drive(
        fetcher,
        connections,
        handle,
        on_open=on_open,
        everyone_left=lambda: MetadataFetchError(
            "every peer disconnected before the metadata arrived"
        ),
        abort=MetadataFetchError,
    )
    assert fetcher.info_bytes is not None
    return fetcher.info_bytes
