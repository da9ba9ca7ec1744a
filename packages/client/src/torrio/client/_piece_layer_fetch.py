"""Fetching a v2 torrent's piece layers from peers with BEP 52 hash requests.

A v2 (or hybrid) magnet download gets the info dict through BEP 9, but the per-file piece layers
live outside it; without them no piece can be verified. :class:`PieceLayerFetcher` is the
sans-I/O state machine that asks peers for them, shaped like
:class:`~torrio.client._metadata_fetch.MetadataFetcher`: the caller names each peer with a key of
its choosing, calls :meth:`~PieceLayerFetcher.add_peer` once the connection is up (BEP 3
handshake done with the v2 info-hash: libtorrent answers hash requests only on such
connections), sends what :meth:`~PieceLayerFetcher.poll` returns, feeds every ``hashes`` /
``hash reject`` the peer sends to :meth:`~PieceLayerFetcher.receive`, and when
:attr:`~PieceLayerFetcher.done` passes :meth:`~PieceLayerFetcher.layers` to
``Torrent.with_piece_layers`` (or calls :meth:`~PieceLayerFetcher.torrent`).

Requests are the ones libtorrent 2.1 makes, so any BEP 52 peer can answer them: per file, runs
of ``chunk`` (512) piece-layer hashes at multiples of ``chunk``, the last run shortened to the
power of two covering the file's remaining pieces (pad hashes fill the rest), with
``proof_layers = H - 1`` (H = the file's tree height above the piece layer) so that the uncles
lead exactly to the file's ``pieces root``. Every answer is checked against that root before it
is kept; a peer whose answer does not verify (or has the wrong number of hashes) is banned and
drained with :meth:`~PieceLayerFetcher.take_banned`. Answers nobody asked for are counted and
dropped. Up to ``per_peer`` requests are outstanding per peer, spread round-robin; a request
unanswered for ``request_timeout`` seconds goes to another peer and rests the slow one for
``rest`` seconds, doubling with each further timeout (up to 32x) until it answers again; peers
with the fewest unanswered timeouts are asked first. A rejected run is not asked of that peer
again for ``rest`` seconds.
:func:`fetch_piece_layers` is the thin trio helper driving a fetcher over open
:class:`torrio.wire.PeerConnection` objects.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

import attrs

from torrio.metainfo import BLOCK_SIZE, merkle_uncle_count, verify_hashes
from torrio.wire import Hashes, HashReject, HashRequest

from ._errors import ClientError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from torrio.metainfo import Torrent
    from torrio.wire import PeerConnection

K = TypeVar("K", bound=Hashable)

#: Piece-layer hashes per request (libtorrent's, and BEP 52's "SHOULD NOT be greater than 512").
DEFAULT_CHUNK = 512
#: Outstanding hash requests per peer.
DEFAULT_PER_PEER = 4
#: Seconds a request may stay unanswered before it goes to another peer.
DEFAULT_REQUEST_TIMEOUT = 20.0
#: Seconds a slow peer is left alone, and a rejected run is not asked of the same peer again.
DEFAULT_REST = 10.0


class PieceLayerFetchError(ClientError):
    """The piece layers cannot be fetched (a v1 torrent, or every peer disconnected)."""


def _pow2_at_least(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


@attrs.frozen
class _Chunk:
    root: bytes
    first: int
    """Index of the run's first piece in the file."""
    count: int
    """Real piece hashes in the run (the rest of ``length`` is padding past the file's end)."""


@attrs.define
class _Peer:
    outstanding: dict[HashRequest, float] = attrs.field(factory=dict)
    rest_until: float = -math.inf
    strikes: int = 0
    """Timeouts since this peer last answered; it rests longer and is asked last."""
    refused: dict[HashRequest, float] = attrs.field(factory=dict)
    """Runs this peer rejected, with the time it may be asked again."""


@attrs.frozen
class PieceLayerFetchStatistics:
    """A snapshot of a :class:`PieceLayerFetcher`."""

    files: int
    chunks_total: int
    chunks_have: int
    outstanding: int
    peers: int
    banned: int
    requests_sent: int
    chunks_received: int
    rejects: int
    timeouts: int
    unsolicited: int
    bad_answers: int
    done: bool


class PieceLayerFetcher(Generic[K]):
    """Sans-I/O BEP 52 download of the piece layers ``torrent`` lacks (see the module docstring)."""

    def __init__(
        self,
        torrent: Torrent,
        *,
        chunk: int = DEFAULT_CHUNK,
        per_peer: int = DEFAULT_PER_PEER,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        rest: float = DEFAULT_REST,
    ) -> None:
        if not torrent.has_v2:
            raise PieceLayerFetchError("a v1 torrent has no piece layers to fetch")
        if chunk < 1 or chunk & (chunk - 1):
            raise ValueError("chunk must be a power of two")
        if per_peer < 1:
            raise ValueError("per_peer must be >= 1")
        self._torrent = torrent
        self.per_peer = per_peer
        self.request_timeout = request_timeout
        self.rest = rest
        pl = torrent.piece_length
        self.base_layer = max(0, (pl // BLOCK_SIZE).bit_length() - 1)
        self._pieces: dict[bytes, int] = {}
        self._chunks: dict[HashRequest, _Chunk] = {}
        for f in torrent.files:
            root = f.pieces_root
            if root is None or f.length <= pl or root in torrent.piece_layers:
                continue
            if root in self._pieces:
                continue  # identical files share one layer
            n = -(-f.length // pl)
            self._pieces[root] = n
            proof = (n - 1).bit_length() - 1
            for first in range(0, n, chunk):
                length = min(chunk, _pow2_at_least(n - first))
                req = HashRequest(root, self.base_layer, first, length, proof)
                self._chunks[req] = _Chunk(root, first, min(length, n - first))
        self._todo: list[HashRequest] = list(self._chunks)
        self._got: dict[HashRequest, bytes] = {}
        self._peers: dict[K, _Peer] = {}
        self._banned: set[K] = set()
        self._newly_banned: list[K] = []
        self._requests_sent = 0
        self._received = 0
        self._rejects = 0
        self._timeouts = 0
        self._unsolicited = 0
        self._bad = 0

    # -- peers -------------------------------------------------------------------------------

    def add_peer(self, peer: K) -> None:
        """A connected peer that may answer hash requests (banned peers are ignored)."""
        if peer not in self._banned and peer not in self._peers:
            self._peers[peer] = _Peer()

    def remove_peer(self, peer: K) -> None:
        """The peer disconnected: its outstanding requests go to others."""
        self._peers.pop(peer, None)

    def take_banned(self) -> list[K]:
        """Peers banned since the last call (disconnect them)."""
        out, self._newly_banned = self._newly_banned, []
        return out

    @property
    def banned(self) -> frozenset[K]:
        """Every peer banned so far."""
        return frozenset(self._banned)

    def _ban(self, peer: K) -> None:
        if peer not in self._banned:
            self._banned.add(peer)
            self._newly_banned.append(peer)
        self._peers.pop(peer, None)

    # -- requests ------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Has every missing layer arrived (True at once when nothing was missing)?"""
        return len(self._got) == len(self._chunks)

    @property
    def exhausted(self) -> bool:
        """True while no peer is known (wait for more, or give up)."""
        return not self.done and not self._peers

    def poll(self, now: float) -> list[tuple[K, HashRequest]]:
        """Expire timed-out requests and return the requests to send now, as ``(peer, message)``."""
        for p in self._peers.values():
            for req, sent in list(p.outstanding.items()):
                if now - sent >= self.request_timeout:
                    del p.outstanding[req]
                    p.strikes += 1
                    p.rest_until = now + self.rest * (1 << min(p.strikes - 1, 5))
                    self._timeouts += 1
            for req, until in list(p.refused.items()):
                if until <= now:
                    del p.refused[req]
        if self.done:
            return []
        in_flight = {r for p in self._peers.values() for r in p.outstanding}
        self._todo = [r for r in self._todo if r not in self._got]
        todo = [r for r in self._todo if r not in in_flight]
        eligible = [
            (k, p)
            for k, p in self._peers.items()
            if p.rest_until <= now and len(p.outstanding) < self.per_peer
        ]
        # peers that answer first: a silent peer must not keep taking the runs it sits on
        eligible.sort(key=lambda kp: (kp[1].strikes, len(kp[1].outstanding)))
        out: list[tuple[K, HashRequest]] = []
        while todo and eligible:
            still: list[tuple[K, _Peer]] = []
            for k, p in eligible:
                pick = next((r for r in todo if r not in p.refused), None)
                if pick is None:
                    continue
                todo.remove(pick)
                p.outstanding[pick] = now
                out.append((k, pick))
                if len(p.outstanding) < self.per_peer:
                    still.append((k, p))
            eligible = still
        self._requests_sent += len(out)
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`poll` next has a timeout, a rest or a refusal to expire (None: nothing)."""
        if self.done:
            return None
        times = [
            t + self.request_timeout for p in self._peers.values() for t in p.outstanding.values()
        ]
        times += [p.rest_until for p in self._peers.values() if p.rest_until > -math.inf]
        times += [t for p in self._peers.values() for t in p.refused.values()]
        return min(times) if times else None

    # -- answers -------------------------------------------------------------------------------

    def receive(self, peer: K, message: Hashes | HashReject, now: float) -> None:
        """Feed a ``hashes`` or ``hash reject`` from ``peer``.

        Answers to requests we did not send to that peer (or that timed out) are counted and
        dropped; an answer to ours whose hashes do not prove the run up to the file's pieces
        root bans the peer.
        """
        st = self._peers.get(peer)
        if st is None:
            return
        m = message
        req = HashRequest(m.pieces_root, m.base_layer, m.index, m.length, m.proof_layers)
        if st.outstanding.pop(req, None) is None:
            self._unsolicited += 1
            return
        st.strikes = 0
        if isinstance(m, HashReject):
            self._rejects += 1
            st.refused[req] = now + self.rest
            return
        chunk = self._chunks[req]
        expected = req.length + merkle_uncle_count(req.length, req.proof_layers)
        if len(m.hashes) != expected * 32:
            self._bad += 1
            self._ban(peer)
            return
        hashes = m.hash_list()
        if not verify_hashes(hashes, req.index, req.length, req.proof_layers, req.pieces_root):
            self._bad += 1
            self._ban(peer)
            return
        self._received += 1
        if req not in self._got:
            self._got[req] = b"".join(hashes[: chunk.count])

    # -- results -------------------------------------------------------------------------------

    def layers(self) -> dict[bytes, bytes]:
        """``{pieces root: piece layer}`` for every file whose layer is complete."""
        parts: dict[bytes, list[tuple[int, bytes]]] = {}
        for req, chunk in self._chunks.items():
            got = self._got.get(req)
            if got is not None:
                parts.setdefault(chunk.root, []).append((chunk.first, got))
        out: dict[bytes, bytes] = {}
        for root, runs in parts.items():
            runs.sort()
            layer = b"".join(r for _, r in runs)
            if len(layer) == self._pieces[root] * 32:
                out[root] = layer
        return out

    def torrent(self) -> Torrent:
        """The torrent with the fetched layers added (PieceLayerFetchError if not :attr:`done`)."""
        if not self.done:
            raise PieceLayerFetchError("piece layers not fetched yet")
        return self._torrent.with_piece_layers(self.layers())

    def statistics(self) -> PieceLayerFetchStatistics:
        """Counters and progress."""
        return PieceLayerFetchStatistics(
            files=len(self._pieces),
            chunks_total=len(self._chunks),
            chunks_have=len(self._got),
            outstanding=sum(len(p.outstanding) for p in self._peers.values()),
            peers=len(self._peers),
            banned=len(self._banned),
            requests_sent=self._requests_sent,
            chunks_received=self._received,
            rejects=self._rejects,
            timeouts=self._timeouts,
            unsolicited=self._unsolicited,
            bad_answers=self._bad,
            done=self.done,
        )


# -- trio helper ---------------------------------------------------------------------------------


async def fetch_piece_layers(
    fetcher: PieceLayerFetcher[K], connections: Mapping[K, PeerConnection]
) -> dict[bytes, bytes]:
    """Drive ``fetcher`` over open, handshaken connections until every layer is verified.

    The connections must have been opened with the torrent's v2 info-hash (truncated to 20
    bytes) in the BEP 3 handshake. Hash requests from the peers are rejected (we have no
    layers yet); banned peers' connections are closed; other messages are ignored, so run this
    before (or instead of) the session's own reader on those connections. Returns
    :meth:`PieceLayerFetcher.layers`. Raises :class:`PieceLayerFetchError` if every connection
    closed first. Wrap it in a trio timeout.
    """
    from ._fetch_driver import drive

    async def handle(key: K, conn: PeerConnection, ev: object) -> bool:
        import trio

        if isinstance(ev, HashRequest):
            await conn.send(ev.rejected())
            return False
        if isinstance(ev, Hashes | HashReject):
            fetcher.receive(key, ev, trio.current_time())
            return True
        return False

    await drive(
        fetcher,
        connections,
        handle,
        on_open=lambda key, _conn: fetcher.add_peer(key),
        everyone_left=lambda: PieceLayerFetchError(
            "every peer disconnected before the piece layers arrived"
        ),
        abort=PieceLayerFetchError,
    )
    return fetcher.layers()
